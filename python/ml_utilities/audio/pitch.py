"""Pitch tracking and tuning estimation, librosa 0.11 compatible (``librosa.core.pitch``:
``piptrack``, ``pitch_tuning``, ``estimate_tuning``).

piptrack's parabolic interpolation and peak picking run natively; what is left in numpy (the
tuning histogram) is small and ordered exactly as librosa orders it, so the numbers are
librosa's.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from ..exceptions import ParameterError
from ._shapes import flat_frames, kernels
from ._validation import check_finite, check_sr
from .spectrum import _spectrogram

__all__ = ["estimate_tuning", "piptrack", "pitch_tuning"]


def _as_real_spectrogram(S: np.ndarray) -> np.ndarray:
    """``S`` as float32/float64 for the native piptrack, which takes ``|S|`` itself (so a real
    spectrogram is not copied); complex input is reduced to its magnitude here."""
    S = np.asarray(S)
    if np.iscomplexobj(S):
        S = np.abs(S)
    if S.dtype not in (np.float32, np.float64):
        S = S.astype(np.float64)
    if S.ndim < 2:
        raise ParameterError(f"Spectrogram must be at least 2-dimensional, given S.shape={S.shape}")
    return S


def _piptrack_prepare(
    y: np.ndarray | None,
    sr: float,
    S: np.ndarray | None,
    n_fft: int | None,
    hop_length: int | None,
    fmin: float,
    fmax: float,
    threshold: float,
    win_length: int | None,
    window: Any,
    center: bool,
    pad_mode: Any,
    ref: Any,
) -> tuple[np.ndarray, tuple[int, ...], int, np.ndarray | None]:
    S, n_fft = _spectrogram(
        y=y,
        S=S,
        n_fft=n_fft,
        hop_length=hop_length,
        win_length=win_length,
        window=window,
        center=center,
        pad_mode=pad_mode,
        power=1.0,
    )
    S = _as_real_spectrogram(S)
    flat, lead = flat_frames(S)
    ref_values = None
    if ref is not None:
        if callable(ref):
            value = np.asarray(threshold * ref(np.abs(S), axis=-2))
        else:
            value = np.asarray(np.abs(ref))
        value = np.broadcast_to(np.asarray(value, dtype=S.dtype), (*lead, S.shape[-1]))
        ref_values = np.ascontiguousarray(value.reshape(flat.shape[0], flat.shape[-1]))
    return flat, lead, n_fft, ref_values


def piptrack(
    *,
    y: np.ndarray | None = None,
    sr: float = 22050,
    S: np.ndarray | None = None,
    n_fft: int | None = 2048,
    hop_length: int | None = None,
    fmin: float = 150.0,
    fmax: float = 4000.0,
    threshold: float = 0.1,
    win_length: int | None = None,
    window: Any = "hann",
    center: bool = True,
    pad_mode: Any = "constant",
    ref: Any = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Pitch tracking on thresholded parabolically-interpolated STFT, as ``librosa.piptrack``.

    In every frame, bins between ``fmin`` and ``fmax`` that are local maxima of the magnitude
    spectrum (after zeroing values at or below ``threshold * ref``) become peaks; each peak's
    frequency and height are refined by parabolic interpolation over its two neighbours.

    Parameters
    ----------
    y : np.ndarray [shape=(..., n)], float, or None
        Audio; leading axes are independent channels.
    sr : float > 0
        Sample rate.
    S : np.ndarray [shape=(..., d, t)] or None
        Magnitude or power spectrogram, used instead of ``y``.
    n_fft, hop_length, win_length, window, center, pad_mode
        As :func:`ml_utilities.audio.stft` (when ``y`` is given).
    fmin, fmax : float
        Frequency range searched for peaks (clipped to ``[0, sr / 2]``).
    threshold : float
        Relative threshold: peaks must exceed ``threshold * ref`` of their frame.
    ref : None, scalar or callable
        The reference: ``np.max`` of each frame by default, a fixed value, or a function
        called as ``ref(S, axis=-2)``.

    Returns
    -------
    pitches, magnitudes : np.ndarray [shape=(..., d, t)]
        Interpolated frequency and height of every peak, 0 elsewhere (float32 for float32
        input).

    Raises
    ------
    ParameterError
        No input, or bad audio or STFT parameters.

    Examples
    --------
    >>> import numpy as np
    >>> from ml_utilities.audio import piptrack
    >>> y = np.sin(2 * np.pi * 440 * np.arange(22050) / 22050).astype(np.float32)
    >>> pitches, mags = piptrack(y=y, sr=22050)
    >>> pitches.shape
    (1025, 44)
    """
    check_sr(sr)
    flat, lead, n_fft, ref_values = _piptrack_prepare(
        y,
        sr,
        S,
        n_fft,
        hop_length,
        fmin,
        fmax,
        threshold,
        win_length,
        window,
        center,
        pad_mode,
        ref,
    )
    pitches, mags = kernels("harmonic", flat.dtype).piptrack(
        flat, float(sr), int(n_fft), float(fmin), float(fmax), float(threshold), ref_values
    )
    shape = (*lead, flat.shape[1], flat.shape[2])
    return pitches.reshape(shape), mags.reshape(shape)


def pitch_tuning(frequencies: Any, *, resolution: float = 0.01, bins_per_octave: int = 12) -> float:
    """Tuning offset of a set of frequencies from A440, as ``librosa.pitch_tuning``.

    The residual of every frequency from the nearest bin of a ``bins_per_octave`` equal
    temperament, in ``[-0.5, 0.5)``, is histogrammed into ``ceil(1 / resolution)`` bins over
    ``[-0.5, 0.5]``; the left edge of the fullest bin is the estimate.

    Parameters
    ----------
    frequencies : array_like, float
        Frequencies in Hz; values <= 0 are ignored.
    resolution : float in (0, 1)
        Histogram resolution in fractions of a bin (0.01: cents).
    bins_per_octave : int > 0
        Bins per octave.

    Returns
    -------
    float (np.float64) in ``[-0.5, 0.5)``
        The tuning deviation in fractions of a bin; 0.0 with a warning for no frequencies.

    Examples
    --------
    >>> import numpy as np
    >>> from ml_utilities.audio import pitch_tuning
    >>> float(pitch_tuning(440.0 * 2.0 ** (np.arange(24) / 12 + 0.25 / 12)))
    0.25
    """
    check_finite(resolution=resolution)
    frequencies = np.atleast_1d(frequencies)
    frequencies = frequencies[frequencies > 0]
    if not np.any(frequencies):
        warnings.warn("Trying to estimate tuning from empty frequency set.", stacklevel=2)
        return 0.0
    # hz_to_octs(f) = log2(f / (440 / 16)), then the residual from the nearest bin.
    octs = np.log2(np.asanyarray(frequencies) / (440.0 / 16))
    residual = np.mod(bins_per_octave * octs, 1.0)
    residual[residual >= 0.5] -= 1.0
    bins = np.linspace(-0.5, 0.5, int(np.ceil(1.0 / resolution)) + 1)
    counts, tuning = np.histogram(residual, bins)
    tuning_est: float = tuning[np.argmax(counts)]
    return tuning_est


def estimate_tuning(
    *,
    y: np.ndarray | None = None,
    sr: float = 22050,
    S: np.ndarray | None = None,
    n_fft: int | None = 2048,
    resolution: float = 0.01,
    bins_per_octave: int = 12,
    **kwargs: Any,
) -> float:
    """Tuning deviation of a signal or spectrogram, as ``librosa.estimate_tuning``.

    :func:`piptrack` peaks (natively, without the full-size outputs), keeping those at least
    as high as the median peak, then :func:`pitch_tuning` on their frequencies.

    Parameters
    ----------
    y : np.ndarray [shape=(..., n)] or None
        Audio (all channels give one estimate).
    sr : float > 0
        Sample rate.
    S : np.ndarray [shape=(..., d, t)] or None
        Magnitude or power spectrogram, used instead of ``y``.
    n_fft : int > 0 or None
        FFT size for ``y`` (inferred from ``S`` when it does not match).
    resolution : float in (0, 1)
        Resolution in fractions of a bin.
    bins_per_octave : int > 0
        Bins per octave.
    **kwargs
        Passed to :func:`piptrack` (``hop_length``, ``fmin``, ``fmax``, ``threshold``, ...).

    Returns
    -------
    float (np.float64) in ``[-0.5, 0.5)``

    Raises
    ------
    ParameterError
        No input, or bad audio or STFT parameters.

    Examples
    --------
    >>> import numpy as np
    >>> from ml_utilities.audio import estimate_tuning
    >>> y = np.sin(2 * np.pi * 443 * np.arange(44100) / 22050).astype(np.float32)
    >>> round(float(estimate_tuning(y=y, sr=22050)), 2)  # 443 Hz: 12 cents sharp
    0.1
    """
    check_sr(sr)
    check_finite(resolution=resolution)
    unknown = set(kwargs) - {
        "hop_length",
        "fmin",
        "fmax",
        "threshold",
        "win_length",
        "window",
        "center",
        "pad_mode",
        "ref",
    }
    if unknown:
        raise TypeError(f"piptrack() got an unexpected keyword argument {sorted(unknown)[0]!r}")
    args: dict[str, Any] = {
        "hop_length": None,
        "fmin": 150.0,
        "fmax": 4000.0,
        "threshold": 0.1,
        "win_length": None,
        "window": "hann",
        "center": True,
        "pad_mode": "constant",
        "ref": None,
    }
    args.update(kwargs)
    flat, _, n_fft, ref_values = _piptrack_prepare(
        y,
        sr,
        S,
        n_fft,
        args["hop_length"],
        args["fmin"],
        args["fmax"],
        args["threshold"],
        args["win_length"],
        args["window"],
        args["center"],
        args["pad_mode"],
        args["ref"],
    )
    pitch, mag = kernels("harmonic", flat.dtype).piptrack_peaks(
        flat,
        float(sr),
        int(n_fft),
        float(args["fmin"]),
        float(args["fmax"]),
        float(args["threshold"]),
        ref_values,
    )
    threshold = np.median(mag) if pitch.size else 0.0
    return pitch_tuning(
        pitch[mag >= threshold], resolution=resolution, bins_per_octave=bins_per_octave
    )
