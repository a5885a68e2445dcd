"""Harmonic features, librosa 0.11 compatible: tuning, chroma, CQT, tonnetz and HPSS.

The per-bin and per-frame work runs natively: piptrack's parabolic interpolation and peak
picking, the Ellis chroma filter bank and its application with per-frame normalisation, the
median filters and soft masks of HPSS, and the sparse per-octave filter products of the
constant-Q transform. What is left in numpy is small and ordered exactly as librosa orders it
(the tuning histogram, filter design), so the numbers are librosa's.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from .._native import core
from ..exceptions import ParameterError
from ._validation import check_finite, check_sr, is_positive_int, normalize, valid_audio
from .spectrum import _float32_out_of_range, _spectrogram

__all__ = [
    "chroma_cqt",
    "chroma_stft",
    "cqt",
    "effects_hpss",
    "estimate_tuning",
    "harmonicity",
    "hpss",
    "piptrack",
    "pitch_tuning",
    "tonnetz",
]


# ----------------------------------------------------------------------------- helpers


def _kernels(dtype: Any) -> Any:
    return core.harmonic.f64 if np.dtype(dtype) == np.float64 else core.harmonic.f32


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


def _flat(S: np.ndarray) -> tuple[np.ndarray, tuple[int, ...]]:
    """(channels, bins, frames) C-contiguous view/copy and the leading shape to restore."""
    lead = S.shape[:-2]
    channels = int(np.prod(lead, dtype=np.int64))
    return np.ascontiguousarray(S.reshape(channels, S.shape[-2], S.shape[-1])), lead


def _native_norm(norm: Any) -> float | None:
    """The native code's norm code (0: none, p > 0, inf), or None where numpy must do it."""
    if norm is None:
        return 0.0
    if isinstance(norm, bool) or not np.issubdtype(type(norm), np.number):
        return None
    value = float(norm)
    return value if value > 0 else None


# --------------------------------------------------------------------------- tuning


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
    flat, lead = _flat(S)
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
    pitches, mags = _kernels(flat.dtype).piptrack(
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
    pitch, mag = _kernels(flat.dtype).piptrack_peaks(
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


# --------------------------------------------------------------------------- chroma


_CHROMA_BANKS: dict[tuple[Any, ...], np.ndarray] = {}


def _chroma_bank(
    sr: float,
    n_fft: int,
    n_chroma: int,
    tuning: float,
    ctroct: float = 5.0,
    octwidth: float | None = 2,
    norm: Any = 2,
    base_c: bool = True,
    dtype: Any = np.float32,
) -> np.ndarray:
    """librosa.filters.chroma, built natively and cached (read-only)."""
    if not is_positive_int(n_chroma):
        raise ParameterError(f"n_chroma={n_chroma} must be a positive integer")
    native = _native_norm(norm)
    if native is None:
        raise ParameterError(f"Unsupported norm: {repr(norm)}")
    width = 0.0 if octwidth is None else float(octwidth)
    if octwidth is not None and not width > 0:
        raise ParameterError(f"octwidth={octwidth} must be positive or None")
    key = (
        float(sr),
        int(n_fft),
        int(n_chroma),
        float(tuning),
        float(ctroct),
        width,
        native,
        bool(base_c),
        np.dtype(dtype).str,
    )
    bank = _CHROMA_BANKS.get(key)
    if bank is None:
        wts = core.harmonic.chroma_filterbank(
            float(sr),
            int(n_fft),
            int(n_chroma),
            float(tuning),
            float(ctroct),
            width,
            native,
            bool(base_c),
        )
        bank = np.ascontiguousarray(wts, dtype=dtype)
        bank.setflags(write=False)
        if len(_CHROMA_BANKS) > 64:
            _CHROMA_BANKS.clear()
        _CHROMA_BANKS[key] = bank
    return bank


def _apply_bank(
    S: np.ndarray, bank: np.ndarray, norm: Any, threshold: float | None = None
) -> np.ndarray:
    """``normalize(einsum("cf,...ft->...ct", bank, S), norm, axis=-2)``, natively where the
    norm allows it."""
    dtype = np.result_type(bank.dtype, S.dtype)
    if dtype not in (np.float32, np.float64):
        dtype = np.dtype(np.float64)
    flat, lead = _flat(np.asarray(S, dtype=dtype))
    W = np.ascontiguousarray(bank, dtype=dtype)
    native = _native_norm(norm)
    thr = -1.0 if threshold is None else float(threshold)
    if native is not None:
        out = _kernels(dtype).apply_bank(flat, W, thr, native)
        return out.reshape(*lead, W.shape[0], flat.shape[-1])
    raw = _kernels(dtype).apply_bank(flat, W, thr, 0.0).reshape(*lead, W.shape[0], flat.shape[-1])
    return normalize(raw, norm, axis=-2)


def chroma_stft(
    *,
    y: np.ndarray | None = None,
    sr: float = 22050,
    S: np.ndarray | None = None,
    norm: float | None = np.inf,
    n_fft: int = 2048,
    hop_length: int = 512,
    win_length: int | None = None,
    window: Any = "hann",
    center: bool = True,
    pad_mode: Any = "constant",
    tuning: float | None = None,
    n_chroma: int = 12,
    **kwargs: Any,
) -> np.ndarray:
    """Chromagram from a waveform or power spectrogram, as ``librosa.feature.chroma_stft``.

    The power spectrogram comes from one native STFT pass; with ``tuning=None`` the tuning is
    estimated from it as librosa does (:func:`estimate_tuning` with ``bins_per_octave =
    n_chroma``); the Ellis chroma filter bank (``ctroct=5``, ``octwidth=2``, L2-normalised
    columns, starting at C) is built natively and cached; the bank product and the per-frame
    normalisation run natively.

    Parameters
    ----------
    y : np.ndarray [shape=(..., n)], float, or None
        Audio; leading axes are independent channels.
    sr : float > 0
        Sample rate.
    S : np.ndarray [shape=(..., d, t)] or None
        Power spectrogram, used instead of ``y``.
    norm : float or None
        Per-frame norm (``np.inf``: the maximum is 1), as ``librosa.util.normalize``.
    n_fft, hop_length, win_length, window, center, pad_mode
        As :func:`ml_utilities.audio.stft`.
    tuning : float or None
        Deviation from A440 in fractions of a chroma bin; estimated when None.
    n_chroma : int > 0
        Chroma bins.
    **kwargs
        Passed to the filter bank: ``ctroct``, ``octwidth``, ``norm``, ``base_c``, ``dtype``.

    Returns
    -------
    np.ndarray [shape=(..., n_chroma, t)], float32 for float32 input

    Raises
    ------
    ParameterError
        No input, bad audio, STFT or filter-bank parameters.

    Examples
    --------
    >>> import numpy as np
    >>> from ml_utilities.audio import chroma_stft
    >>> y = np.sin(2 * np.pi * 440 * np.arange(22050) / 22050).astype(np.float32)
    >>> int(chroma_stft(y=y, sr=22050).mean(axis=1).argmax())  # A
    9
    """
    check_sr(sr)
    check_finite(ctroct=kwargs.get("ctroct"), octwidth=kwargs.get("octwidth"))
    bank_kwargs = dict(kwargs)
    unknown = set(bank_kwargs) - {"ctroct", "octwidth", "norm", "base_c", "dtype"}
    if unknown:
        raise TypeError(f"chroma() got an unexpected keyword argument {sorted(unknown)[0]!r}")
    if not is_positive_int(n_chroma):
        raise ParameterError(f"n_chroma={n_chroma} must be a positive integer")
    S, n_fft = _spectrogram(
        y=y,
        S=S,
        n_fft=n_fft,
        hop_length=hop_length,
        win_length=win_length,
        window=window,
        center=center,
        pad_mode=pad_mode,
        power=2.0,
    )
    S = np.asarray(S)
    tuning_arg = tuning
    if tuning is None:
        tuning = estimate_tuning(S=S, sr=sr, bins_per_octave=n_chroma)
    bank = _chroma_bank(sr, n_fft, n_chroma, tuning, **bank_kwargs)
    if bank.shape[1] != S.shape[-2]:
        raise ParameterError(
            f"Spectrogram with {S.shape[-2]} bins does not match n_fft={n_fft} "
            f"({bank.shape[1]} bins)"
        )
    chroma = _apply_bank(S, bank, norm)
    if (
        isinstance(y, np.ndarray)
        and y.dtype == np.float32
        and chroma.dtype == np.float32
        and _float32_out_of_range(y, n_fft)
        and not np.isfinite(chroma).all()
    ):
        # float32's |X|^2 or the bank's sums overflowed (librosa raises here): the chroma is
        # scale-free, so compute it in float64 and round it
        chroma = chroma_stft(
            y=y.astype(np.float64),
            sr=sr,
            norm=norm,
            n_fft=n_fft,
            hop_length=hop_length,
            win_length=win_length,
            window=window,
            center=center,
            pad_mode=pad_mode,
            tuning=tuning_arg,
            n_chroma=n_chroma,
            **kwargs,
        ).astype(np.float32)
    return chroma


# ----------------------------------------------------------------------------- HPSS


def _pair(value: Any) -> tuple[Any, Any]:
    if isinstance(value, (tuple, list)):
        return value[0], value[1]
    return value, value


def _magphase(D: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mag = np.abs(D)
    zeros_to_ones = mag == 0
    mag_nonzero = mag + zeros_to_ones
    phase = np.empty_like(D)
    phase.real = D.real / mag_nonzero + zeros_to_ones
    phase.imag = D.imag / mag_nonzero
    return mag, phase


def hpss(
    S: np.ndarray,
    *,
    kernel_size: int | tuple[int, int] | list[int] = 31,
    power: float = 2.0,
    mask: bool = False,
    margin: float | tuple[float, float] | list[float] = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Median-filtering harmonic/percussive separation, as ``librosa.decompose.hpss``.

    A median filter of ``kernel_size`` across time gives the harmonic reference, one across
    frequency the percussive reference (``scipy.ndimage.median_filter`` with
    ``mode="reflect"``, natively with a running sorted window); soft masks
    (``librosa.util.softmask``) with ``power`` and ``margin`` split ``S``.

    Parameters
    ----------
    S : np.ndarray [shape=(..., d, t)], real or complex
        Spectrogram; complex input keeps its phase in the outputs.
    kernel_size : int or (int, int)
        Median filter sizes (harmonic, percussive).
    power : float > 0 or np.inf
        Soft mask exponent (``np.inf``: hard masks).
    mask : bool
        Return the masks instead of the separated components.
    margin : float >= 1 or (float, float)
        Separation margins (harmonic, percussive); above 1 leaves a residual.

    Returns
    -------
    harmonic, percussive : np.ndarray [shape=(..., d, t)]
        Components (``S``'s dtype) or masks.

    Raises
    ------
    ParameterError
        On margins below 1, non-positive power or bad kernel sizes.

    Examples
    --------
    >>> import numpy as np
    >>> from ml_utilities.audio import hpss
    >>> S = np.abs(np.random.default_rng(0).standard_normal((65, 40))).astype(np.float32)
    >>> H, P = hpss(S)
    >>> bool(np.allclose(H + P, S, rtol=1e-5))
    True
    """
    S = np.asarray(S)
    phase: Any
    if np.iscomplexobj(S):
        S, phase = _magphase(S)
    else:
        phase = 1
    S, flat, kern, harm, perc, margins, split_zeros = _hpss_references(
        S, kernel_size, power, margin
    )
    margin_harm, margin_perc = margins
    if np.isfinite(power):
        mask_harm = kern.softmask(harm, perc, float(margin_harm), float(power), split_zeros)
        mask_perc = kern.softmask(perc, harm, float(margin_perc), float(power), split_zeros)
    else:
        mask_harm = harm > perc * margin_harm
        mask_perc = perc > harm * margin_perc
    mask_harm = mask_harm.reshape(S.shape)
    mask_perc = mask_perc.reshape(S.shape)
    if mask:
        return mask_harm, mask_perc
    return (S * mask_harm) * phase, (S * mask_perc) * phase


def _hpss_references(
    S: np.ndarray, kernel_size: Any, power: float, margin: Any
) -> tuple[np.ndarray, np.ndarray, Any, np.ndarray, np.ndarray, tuple[float, float], bool]:
    """HPSS's checks and its two median-filtered references of the real spectrogram ``S``:
    (S as float, S flat as (channels, d, t), kernels, harmonic ref, percussive ref, margins,
    split_zeros)."""
    win_harm, win_perc = _pair(kernel_size)
    margin_harm, margin_perc = _pair(margin)
    check_finite(margin=margin_harm)
    check_finite(margin=margin_perc)
    if margin_harm < 1 or margin_perc < 1:
        raise ParameterError(
            f"Margins must be >= 1.0. A typical range is between 1 and 10. (margin={margin!r})"
        )
    for name, win in (("harmonic", win_harm), ("percussive", win_perc)):
        if not is_positive_int(win):
            raise ParameterError(
                f"{name} kernel size={win} must be a positive integer (kernel_size={kernel_size!r})"
            )
    if S.ndim < 2:
        raise ParameterError(f"Spectrogram must be at least 2-dimensional, given S.shape={S.shape}")
    if power <= 0:
        raise ParameterError(f"power must be strictly positive (power={power!r})")
    if S.dtype not in (np.float32, np.float64):
        S = S.astype(np.float32 if not np.issubdtype(S.dtype, np.floating) else np.float64)
    if not np.isfinite(S).all():
        raise ParameterError(
            f"Input must be finite: S (shape={S.shape}) has "
            f"{int(S.size - np.count_nonzero(np.isfinite(S)))} NaN or infinite values"
        )
    flat, _ = _flat(S)
    if np.isfinite(power) and np.any(flat < 0):
        raise ParameterError("X and X_ref must be non-negative")
    kern = _kernels(flat.dtype)
    harm, perc = kern.median_filters(flat, int(win_harm), int(win_perc))
    split_zeros = margin_harm == 1 and margin_perc == 1
    return S, flat, kern, harm, perc, (float(margin_harm), float(margin_perc)), split_zeros


def _istft(
    D: np.ndarray,
    *,
    hop_length: int,
    n_fft: int,
    window: Any,
    center: bool,
    length: int,
    dtype: Any,
    win_length: int | None = None,
) -> np.ndarray:
    """librosa.istft with a given ``length``: numpy's irfft of every frame, windowed (a window
    of ``win_length``, ``n_fft`` by default, zero-padded to ``n_fft``), overlap-added block by
    block (hop-sized blocks), then divided by the window's summed square where that is not
    tiny."""
    from ._validation import pad_center
    from .filters import get_window

    win = np.asarray(get_window(window, win_length or n_fft, fftbins=True))
    win = pad_center(win, size=n_fft)
    padded = length + 2 * (n_fft // 2) if center else length
    n_frames = min(D.shape[-1], int(np.ceil(padded / hop_length)))
    lead = D.shape[:-2]
    # (..., frames, n_fft): each frame contiguous
    frames = np.fft.irfft(np.swapaxes(D[..., :n_frames], -1, -2), n=n_fft, axis=-1)
    frames = (frames * win.astype(frames.dtype)).astype(dtype, copy=False)
    blocks = -(-n_fft // hop_length)
    span = blocks * hop_length
    if span != n_fft:
        frames = np.concatenate(
            [frames, np.zeros((*frames.shape[:-1], span - n_fft), dtype=frames.dtype)], axis=-1
        )
    parts = frames.reshape(*lead, n_frames, blocks, hop_length)
    win_sq = np.zeros(span, dtype=dtype)
    win_sq[:n_fft] = win**2
    win_parts = win_sq.reshape(blocks, hop_length)
    total = (n_frames + blocks - 1) * hop_length
    y = np.zeros((*lead, n_frames + blocks - 1, hop_length), dtype=dtype)
    wss = np.zeros((n_frames + blocks - 1, hop_length), dtype=dtype)
    for r in range(blocks):
        y[..., r : r + n_frames, :] += parts[..., :, r, :]
        wss[r : r + n_frames, :] += win_parts[r]
    y = y.reshape(*lead, total)
    wss = wss.reshape(total)
    start = n_fft // 2 if center else 0
    y = y[..., start : start + length]
    wss = wss[start : start + length]
    if y.shape[-1] < length:
        y = np.pad(y, [(0, 0)] * (y.ndim - 1) + [(0, length - y.shape[-1])])
        wss = np.pad(wss, (0, length - wss.shape[-1]))
    y = np.array(y, dtype=dtype)
    nonzero = wss > np.finfo(wss.dtype).tiny
    y[..., nonzero] /= wss[nonzero]
    return y


def effects_hpss(y: np.ndarray, **kwargs: Any) -> tuple[np.ndarray, np.ndarray]:
    """Harmonic and percussive waveforms, as ``librosa.effects.hpss``.

    ``stft(y)`` (native), :func:`hpss` on it (native median filters and masks), then an inverse
    STFT of each component to ``len(y)`` samples. The inverse STFT runs in numpy
    (``np.fft.irfft`` and an overlap-add, as librosa's own ``istft`` with its default
    numpy FFT backend), not natively.

    Parameters
    ----------
    y : np.ndarray [shape=(..., n)], float
        Audio.
    **kwargs
        Passed to :func:`hpss` (``kernel_size``, ``power``, ``margin``); the STFT's
        ``n_fft``, ``hop_length``, ``win_length``, ``window``, ``center`` and ``pad_mode`` go
        to :func:`stft` and the matching inverse, as librosa does.

    Returns
    -------
    y_harmonic, y_percussive : np.ndarray [shape=(..., n)], ``y``'s dtype

    Raises
    ------
    ParameterError
        Bad audio or HPSS parameters.

    Examples
    --------
    >>> import numpy as np
    >>> from ml_utilities.audio.harmonic import effects_hpss
    >>> y = np.random.default_rng(0).standard_normal(22050).astype(np.float32)
    >>> y_h, y_p = effects_hpss(y)
    >>> y_h.shape, y_h.dtype
    ((22050,), dtype('float32'))
    """
    from .spectrum import stft

    mask = kwargs.pop("mask", False)
    if mask is not False:
        # librosa would inverse-transform the two masks as if they were spectrograms
        raise ParameterError(f"effects_hpss returns signals: mask={mask!r} is not supported")
    valid_audio(y)
    stft_kwargs = {
        "n_fft": kwargs.pop("n_fft", 2048),
        "hop_length": kwargs.pop("hop_length", None),
        "win_length": kwargs.pop("win_length", None),
        "window": kwargs.pop("window", "hann"),
        "center": kwargs.pop("center", True),
        "pad_mode": kwargs.pop("pad_mode", "constant"),
    }
    D = stft(y, **stft_kwargs)
    # hpss(D) returns (|D| * mask) * phase; D * mask is the same up to rounding, without
    # splitting D into magnitude and phase.
    mask_h, mask_p = hpss(np.abs(D), mask=True, **kwargs)
    H, P = D * mask_h, D * mask_p
    n_fft = stft_kwargs["n_fft"]
    win_length = stft_kwargs["win_length"] or n_fft
    hop_length = stft_kwargs["hop_length"] or win_length // 4
    inverse = {
        "hop_length": hop_length,
        "n_fft": n_fft,
        "win_length": win_length,
        "window": stft_kwargs["window"],
        "center": bool(stft_kwargs["center"]),
        "length": y.shape[-1],
        "dtype": y.dtype,
    }
    return _istft(H, **inverse), _istft(P, **inverse)


def harmonicity(
    y: np.ndarray | None = None,
    *,
    S: np.ndarray | None = None,
    sr: float = 22050,
    n_fft: int = 2048,
    hop_length: int = 512,
    win_length: int | None = None,
    window: Any = "hann",
    center: bool = True,
    pad_mode: Any = "constant",
    kernel_size: int | tuple[int, int] = 31,
    margin: float | tuple[float, float] = 1.0,
) -> float:
    """Share of the energy that HPSS assigns to the harmonic part, in ``[0, 1]``.

    Definition (librosa has no such feature)::

        P = |stft(y)| ** 2                      # or the power spectrogram S
        H, _ = hpss(P, kernel_size, power=2, margin)
        harmonicity = sum(H) / sum(P)          # 0.0 when sum(P) == 0

    With the default ``margin=1`` the soft masks add to one, so this is the harmonic energy
    over the total energy; a sustained tone gives values near 1, clicks and noise bursts near
    0. Sums are taken in float64 over every bin, frame and channel.

    Parameters
    ----------
    y : np.ndarray [shape=(..., n)], float, or None
        Audio.
    S : np.ndarray [shape=(..., d, t)] or None
        Power spectrogram, used instead of ``y``.
    sr : float > 0
        Sample rate (kept for a uniform signature; the ratio does not depend on it).
    n_fft, hop_length, win_length, window, center, pad_mode
        As :func:`ml_utilities.audio.stft`.
    kernel_size, margin
        As :func:`hpss`.

    Returns
    -------
    float

    Raises
    ------
    ParameterError
        No input, bad audio, STFT or HPSS parameters.

    Examples
    --------
    >>> import numpy as np
    >>> from ml_utilities.audio import harmonicity
    >>> y = np.sin(2 * np.pi * 440 * np.arange(22050) / 22050).astype(np.float32)
    >>> harmonicity(y) > 0.9
    True
    """
    check_sr(sr)
    del sr
    P, _ = _spectrogram(
        y=y,
        S=S,
        n_fft=n_fft,
        hop_length=hop_length,
        win_length=win_length,
        window=window,
        center=center,
        pad_mode=pad_mode,
        power=2.0,
    )
    P = np.asarray(P)
    if np.iscomplexobj(P):
        raise ParameterError("harmonicity needs a power spectrogram, not a complex STFT")
    # sum(H) without forming H: the harmonic soft mask applied and summed in one native pass
    P, flat, kern, harm, perc, (margin_harm, _), split_zeros = _hpss_references(
        P, kernel_size, 2.0, margin
    )
    total = float(np.sum(P, dtype=np.float64))
    if total <= 0:
        return 0.0
    harmonic = kern.softmask_sum(flat, harm, perc, margin_harm, 2.0, split_zeros)
    return float(harmonic / total)


# ------------------------------------------------------------------------------ CQT

_C1_HZ = 440.0 * 2.0 ** ((24 - 69) / 12)  # note_to_hz("C1")

# n * sum(w**2) / sum(w)**2 for librosa's named windows (librosa.filters.WINDOW_BANDWIDTHS):
# measured constants; any other window is measured on 1000 points as librosa does.
_WINDOW_BANDWIDTHS = {
    ("bart", "bartlett", "brt"): 1.3334961334912805,
    ("barthann", "brthan", "bth"): 1.4560255965133932,
    ("bkh", "blackharr", "blackmanharris"): 2.0045975283585014,
    ("black", "blackman", "blk"): 1.7269681554262326,
    ("bman", "bmn", "bohman"): 1.7859588613860062,
    ("box", "boxcar", "ones", "rect", "rectangular"): 1.0,
    ("cosine", "halfcosine"): 1.2337005350199792,
    ("flat", "flattop", "flt"): 2.7762255046484143,
    ("ham", "hamm", "hamming"): 1.3629455320350348,
    ("han", "hann"): 1.50018310546875,
    ("nut", "nutl", "nuttall"): 1.9763500280946082,
    ("par", "parz", "parzen"): 1.9174603174603191,
    ("tri", "triang", "triangle"): 1.3331706523555851,
}
_BANDWIDTH_BY_NAME = {name: bw for names, bw in _WINDOW_BANDWIDTHS.items() for name in names}


def _window_bandwidth(window: Any, n: int = 1000) -> float:
    """librosa.filters.window_bandwidth."""
    from .filters import get_window

    key = window.__name__ if hasattr(window, "__name__") else window
    try:
        known = _BANDWIDTH_BY_NAME.get(key)
    except TypeError:  # unhashable (an array or a list)
        known = None
    if known is not None:
        return known
    win = np.asarray(get_window(window, n, fftbins=True))
    bw = float(n * np.sum(win**2) / (np.sum(win) ** 2 + np.finfo(win.dtype).tiny))
    try:
        _BANDWIDTH_BY_NAME[key] = bw
    except TypeError:
        pass
    return bw


def _relative_bandwidth(freqs: np.ndarray) -> np.ndarray:
    """librosa.filters._relative_bandwidth: alpha per bin from its neighbours' log spacing."""
    if len(freqs) <= 1:
        raise ParameterError(
            f"2 or more frequencies are required to compute bandwidths. Given freqs={freqs}"
        )
    bpo = np.empty_like(freqs)
    logf = np.log2(freqs)
    bpo[0] = 1 / (logf[1] - logf[0])
    bpo[-1] = 1 / (logf[-1] - logf[-2])
    bpo[1:-1] = 2 / (logf[2:] - logf[:-2])
    alpha: np.ndarray = (2.0 ** (2 / bpo) - 1) / (2.0 ** (2 / bpo) + 1)
    return alpha


def _wavelet_lengths(
    freqs: np.ndarray, sr: float, window: Any, filter_scale: float, alpha: np.ndarray
) -> tuple[np.ndarray, float]:
    """librosa.filters.wavelet_lengths with gamma=0: (filter lengths, highest cutoff)."""
    if filter_scale <= 0:
        raise ParameterError(f"filter_scale={filter_scale} must be positive")
    if np.any(freqs <= 0):
        raise ParameterError(f"frequencies must be strictly positive (lowest: {freqs.min()!r})")
    if len(freqs) > 1 and np.any(freqs[:-1] > freqs[1:]):
        raise ParameterError(f"Frequency array={freqs} must be in strictly ascending order")
    Q = float(filter_scale) / alpha
    f_cutoff = float(max(freqs * (1 + 0.5 * _window_bandwidth(window) / Q) + 0.5 * 0))
    lengths = Q * sr / (freqs + 0 / alpha)
    return lengths, f_cutoff


_CQT_BASES: dict[tuple[Any, ...], tuple[np.ndarray, np.ndarray, np.ndarray, int]] = {}


def _window_key(window: Any) -> Any:
    if isinstance(window, np.ndarray):
        return ("array", window.tobytes())
    if isinstance(window, list):
        return ("list", tuple(window))
    return window


def _octave_basis(
    sr: float,
    freqs: np.ndarray,
    alpha: np.ndarray,
    filter_scale: float,
    norm: Any,
    sparsity: float,
    window: Any,
    dtype: Any,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """One octave's FFT-domain filters, as librosa's ``__vqt_filter_fft`` (wavelet basis with
    FFT-size padding, scaled by length / n_fft, FFT, rows sparsified to ``1 - sparsity`` of
    their mass) in CSR form: ``(indptr, indices, values, n_fft)``. Cached."""
    from .filters import get_window

    try:
        key = (
            float(sr),
            freqs.tobytes(),
            alpha.tobytes(),
            float(filter_scale),
            norm,
            float(sparsity),
            _window_key(window),
            np.dtype(dtype).str,
        )
        hash(key)
    except TypeError:
        key = None
    if key is not None and key in _CQT_BASES:
        return _CQT_BASES[key]
    if not 0.0 <= sparsity < 1:
        raise ParameterError(f"Invalid quantile {sparsity:.2f} (sparsity={sparsity!r})")
    lengths, _ = _wavelet_lengths(freqs, sr, window, filter_scale, alpha)
    filters = []
    for ilen, freq in zip(lengths, freqs, strict=True):
        angles = np.arange(-ilen // 2, ilen // 2, dtype=float) * 2 * np.pi * freq / sr
        sig = np.cos(angles) + 1j * np.sin(angles)
        sig *= np.asarray(get_window(window, len(sig), fftbins=True))
        filters.append(normalize(sig, norm, axis=-1))
    n_fft = int(2.0 ** (np.ceil(np.log2(max(lengths)))))
    basis = np.zeros((len(filters), n_fft), dtype=np.complex64)
    for i, filt in enumerate(filters):
        lpad = int((n_fft - len(filt)) // 2)
        if lpad < 0:
            raise ParameterError(
                f"Target size ({n_fft:d}) must be at least input size ({len(filt):d})"
            )
        basis[i, lpad : lpad + len(filt)] = filt
    basis *= lengths[:, np.newaxis] / float(n_fft)
    fft_basis = np.fft.fft(basis, n=n_fft, axis=1)[:, : (n_fft // 2) + 1]
    # util.sparsify_rows: keep, per row, the largest values holding 1 - sparsity of the mass
    mags = np.abs(fft_basis)
    norms = np.sum(mags, axis=1, keepdims=True)
    mag_sort = np.sort(mags, axis=1)
    cumulative = np.cumsum(mag_sort / norms, axis=1)
    threshold_idx = np.argmin(cumulative < sparsity, axis=1)
    keep = mags >= mag_sort[np.arange(len(mags)), threshold_idx][:, np.newaxis]
    rows, cols = np.nonzero(keep)
    values = np.ascontiguousarray(fft_basis[rows, cols], dtype=dtype)
    indptr = np.zeros(len(mags) + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=len(mags)), out=indptr[1:])
    result = (indptr, np.ascontiguousarray(cols, dtype=np.int64), values, n_fft)
    if key is not None:
        if len(_CQT_BASES) > 128:
            _CQT_BASES.clear()
        _CQT_BASES[key] = result
    return result


def _num_two_factors(x: int) -> int:
    if x <= 0:
        return 0
    count = 0
    while x % 2 == 0:
        count += 1
        x //= 2
    return count


def cqt(
    y: np.ndarray,
    *,
    sr: float = 22050,
    hop_length: int = 512,
    fmin: float | None = None,
    n_bins: int = 84,
    bins_per_octave: int = 12,
    tuning: float | None = 0.0,
    filter_scale: float = 1,
    norm: float | None = 1,
    sparsity: float = 0.01,
    window: Any = "hann",
    scale: bool = True,
    pad_mode: Any = "constant",
    res_type: str | None = "soxr_hq",
    dtype: Any = None,
) -> np.ndarray:
    """Constant-Q transform, as ``librosa.cqt`` (librosa's multirate algorithm).

    Octave by octave from the top: the octave's sparse FFT-domain filters (cached) multiply a
    native STFT of the signal (rectangular window, FFT size of the longest filter), natively;
    then the signal is halved through soxr (``res_type``, scaled as librosa scales it) and the
    hop halved, while the hop stays even. Early downsampling happens where librosa does it.

    Parameters
    ----------
    y : np.ndarray [shape=(..., n)], float
        Audio; leading axes are independent channels.
    sr : float > 0
        Sample rate.
    hop_length : int > 0
        Samples between frames.
    fmin : float > 0 or None
        Lowest bin's frequency (C1, 32.70 Hz, by default).
    n_bins : int > 0
        Number of bins.
    bins_per_octave : int > 0
        Bins per octave.
    tuning : float or None
        Tuning offset in fractions of a bin; estimated from ``y`` when None.
    filter_scale : float > 0
        Filter length scale.
    norm : float or None
        Norm of each filter (1: L1).
    sparsity : float in [0, 1)
        Share of each filter's FFT mass that may be dropped.
    window : str, tuple or callable
        Filter window.
    scale : bool
        Divide each bin by the square root of its filter length.
    pad_mode : str
        Padding of the per-octave STFTs.
    res_type : str
        soxr quality for the octave halving (``"soxr_hq"``).
    dtype : complex dtype or None
        Output dtype (complex64 for float32 audio).

    Returns
    -------
    np.ndarray [shape=(..., n_bins, t)], complex

    Raises
    ------
    ParameterError
        Bad audio or parameters, or filters reaching past the Nyquist frequency.

    Examples
    --------
    >>> import numpy as np
    >>> from ml_utilities.audio import cqt
    >>> y = np.sin(2 * np.pi * 440 * np.arange(22050) / 22050).astype(np.float32)
    >>> C = np.abs(cqt(y, sr=22050))
    >>> C.shape, int(C.mean(axis=1).argmax())  # A4 is 45 semitones above C1
    ((84, 44), 45)
    """
    check_sr(sr)
    check_finite(fmin=fmin, tuning=tuning, filter_scale=filter_scale)
    from .io import resample
    from .spectrum import _dtype_r2c, stft

    valid_audio(y)
    if not is_positive_int(bins_per_octave):
        raise ParameterError(f"bins_per_octave={bins_per_octave} must be a positive integer")
    if not is_positive_int(n_bins):
        raise ParameterError(f"n_bins={n_bins} must be a positive integer")
    if not is_positive_int(hop_length):
        raise ParameterError(f"hop_length={hop_length} must be a positive integer")
    if sr <= 0:
        raise ParameterError(f"sr={sr} must be positive")
    n_octaves = int(np.ceil(float(n_bins) / bins_per_octave))
    n_filters = min(bins_per_octave, n_bins)
    if fmin is None:
        fmin = _C1_HZ
    if tuning is None:
        tuning = estimate_tuning(y=y, sr=sr, bins_per_octave=bins_per_octave)
    out_dtype = np.dtype(dtype) if dtype is not None else _dtype_r2c(y.dtype)
    if out_dtype.kind != "c":
        raise ParameterError(f"dtype={out_dtype} is not a complex dtype")
    fmin = fmin * 2.0 ** (tuning / bins_per_octave)
    ratios = 2.0 ** ((0.0 + np.arange(0, bins_per_octave, dtype=float)) / bins_per_octave)
    freqs = (
        np.sort(
            np.multiply.outer(
                2.0 ** np.arange(np.ceil(n_bins / bins_per_octave)), ratios
            ).flatten()[:n_bins]
        )
        * fmin
    )
    if np.any(freqs <= 0):
        raise ParameterError(f"frequencies must be strictly positive (fmin={fmin!r})")
    if n_bins == 1:
        r = 2 ** (1 / bins_per_octave)
        alpha = np.atleast_1d((r**2 - 1) / (r**2 + 1))
    else:
        alpha = _relative_bandwidth(freqs)
    lengths, filter_cutoff = _wavelet_lengths(freqs, sr, window, filter_scale, alpha)
    nyquist = sr / 2.0
    if filter_cutoff > nyquist:
        raise ParameterError(
            f"Wavelet basis with max frequency={np.max(freqs[-bins_per_octave:])} would exceed "
            f"the Nyquist frequency={nyquist}. Try reducing the number of frequency bins. "
            f"(sr={sr}, n_bins={len(freqs)}, bins_per_octave={bins_per_octave})"
        )
    if res_type is None:
        warnings.warn(
            "Support for VQT with res_type=None is deprecated in librosa 0.10\n"
            "and will be removed in version 1.0.",
            category=FutureWarning,
            stacklevel=2,
        )
        res_type = "soxr_hq"

    # Early downsampling (librosa's __early_downsample)
    my_y, my_sr, my_hop = y, float(sr), int(hop_length)
    count1 = max(0, int(np.ceil(np.log2(nyquist / filter_cutoff)) - 1) - 1)
    count2 = max(0, _num_two_factors(my_hop) - n_octaves + 1)
    downsample_count = min(count1, count2)
    if downsample_count > 0:
        factor = 2**downsample_count
        my_hop //= factor
        if y.shape[-1] < factor:
            raise ParameterError(
                f"Input signal length={len(y):d} is too short for {n_octaves:d}-octave CQT"
            )
        my_y = resample(y, orig_sr=factor, target_sr=1, res_type=res_type, scale=True)
        if not scale:
            my_y = my_y * np.sqrt(factor)
        my_sr = my_sr / float(factor)
    sr_full = my_sr

    lead = y.shape[:-1]
    channels = int(np.prod(lead, dtype=np.int64))
    kern = _kernels(np.float64 if out_dtype == np.complex128 else np.float32)
    native = np.complex128 if out_dtype == np.complex128 else np.complex64
    responses = []
    for i in range(n_octaves):
        sl = slice(-n_filters, None) if i == 0 else slice(-n_filters * (i + 1), -n_filters * i)
        indptr, indices, values, n_fft = _octave_basis(
            my_sr, freqs[sl], alpha[sl], filter_scale, norm, sparsity, window, native
        )
        values = (
            values * np.sqrt(sr_full / my_sr).astype(values.dtype) if my_sr != sr_full else values
        )
        D = stft(
            my_y.reshape(channels, my_y.shape[-1]),
            n_fft=n_fft,
            hop_length=my_hop,
            window=np.ones(n_fft),
            pad_mode=pad_mode,
            dtype=native,
        )
        responses.append(kern.sparse_product(indptr, indices, np.ascontiguousarray(values), D))
        if my_hop % 2 == 0:
            my_hop //= 2
            my_sr /= 2.0
            my_y = resample(my_y, orig_sr=2, target_sr=1, res_type=res_type, scale=True)

    max_col = min(r.shape[-1] for r in responses)
    V = np.empty((channels, n_bins, max_col), dtype=native)
    end = n_bins
    for resp in responses:
        n_oct = resp.shape[-2]
        if end < n_oct:
            V[:, :end, :] = resp[:, -end:, :max_col]
        else:
            V[:, end - n_oct : end, :] = resp[:, :, :max_col]
        end -= n_oct
    if scale:
        full_lengths, _ = _wavelet_lengths(freqs, sr_full, window, filter_scale, alpha)
        V /= np.sqrt(full_lengths)[:, np.newaxis]
    V = V.reshape(*lead, n_bins, max_col)
    if V.dtype != out_dtype:
        V = V.astype(out_dtype)
    return V


def _cq_to_chroma(
    n_input: int, bins_per_octave: int, n_chroma: int, fmin: float | None, window: Any
) -> np.ndarray:
    """librosa.filters.cq_to_chroma (float32, ``base_c=True``)."""
    n_merge = float(bins_per_octave) / n_chroma
    fmin_ = _C1_HZ if fmin is None else fmin
    if np.mod(n_merge, 1) != 0:
        raise ParameterError(
            "Incompatible CQ merge: input bins must be an integer multiple of output bins."
        )
    cq_to_ch = np.repeat(np.eye(n_chroma), int(n_merge), axis=1)
    cq_to_ch = np.roll(cq_to_ch, -int(n_merge // 2), axis=1)
    n_octaves = np.ceil(float(n_input) / bins_per_octave)
    cq_to_ch = np.tile(cq_to_ch, int(n_octaves))[:, :n_input]
    midi_0 = np.mod(12 * (np.log2(np.asanyarray(fmin_)) - np.log2(440.0)) + 69, 12)
    roll = int(np.round(midi_0 * (n_chroma / 12.0)))
    cq_to_ch = np.roll(cq_to_ch, roll, axis=0).astype(np.float32)
    if window is not None:
        import scipy.signal

        cq_to_ch = scipy.signal.convolve(cq_to_ch, np.atleast_2d(window), mode="same")
    return cq_to_ch


def chroma_cqt(
    *,
    y: np.ndarray | None = None,
    sr: float = 22050,
    C: np.ndarray | None = None,
    hop_length: int = 512,
    fmin: float | None = None,
    norm: float | None = np.inf,
    threshold: float | None = 0.0,
    tuning: float | None = None,
    n_chroma: int = 12,
    n_octaves: int = 7,
    window: np.ndarray | None = None,
    bins_per_octave: int | None = 36,
    cqt_mode: str = "full",
) -> np.ndarray:
    """Constant-Q chromagram, as ``librosa.feature.chroma_cqt``.

    ``|cqt(y)|`` over ``n_octaves`` with ``bins_per_octave`` bins (tuning estimated with that
    many bins per octave when None), ``bins_per_octave / n_chroma`` neighbouring bins merged
    into each chroma bin, values below ``threshold`` zeroed and each frame normalised, the
    merge and normalisation natively.

    Parameters
    ----------
    y : np.ndarray [shape=(..., n)], float, or None
        Audio.
    sr : float > 0
        Sample rate.
    C : np.ndarray [shape=(..., d, t)] or None
        A precomputed CQT magnitude, used instead of ``y``.
    hop_length : int > 0
        Samples between frames.
    fmin : float or None
        Lowest CQT frequency (C1 by default).
    norm : float or None
        Per-frame norm.
    threshold : float or None
        Values below it are zeroed before normalising.
    tuning : float or None
        Tuning offset in fractions of a CQT bin; estimated when None.
    n_chroma : int > 0
        Chroma bins.
    n_octaves : int > 0
        Octaves analysed.
    window : np.ndarray or None
        Optional smoothing window for the CQT-to-chroma map (needs scipy).
    bins_per_octave : int or None
        CQT bins per octave, a multiple of ``n_chroma`` (``n_chroma`` when None).
    cqt_mode : "full"
        Only the full CQT is implemented ("hybrid" raises).

    Returns
    -------
    np.ndarray [shape=(..., n_chroma, t)], float32 for float32 audio

    Raises
    ------
    ParameterError
        No input, incompatible bin counts, or bad CQT parameters.

    Examples
    --------
    >>> import numpy as np
    >>> from ml_utilities.audio import chroma_cqt
    >>> y = np.sin(2 * np.pi * 440 * np.arange(4 * 22050) / 22050).astype(np.float32)
    >>> int(chroma_cqt(y=y, sr=22050).mean(axis=1).argmax())  # A
    9
    """
    check_sr(sr)
    check_finite(fmin=fmin, tuning=tuning)
    if cqt_mode != "full":
        raise ParameterError(f"cqt_mode={cqt_mode!r} is not supported (only 'full')")
    if not is_positive_int(n_chroma):
        raise ParameterError(f"n_chroma={n_chroma} must be a positive integer")
    if bins_per_octave is None:
        bins_per_octave = n_chroma
    elif np.remainder(bins_per_octave, n_chroma) != 0:
        raise ParameterError(
            f"bins_per_octave={bins_per_octave} must be an integer multiple of n_chroma={n_chroma}"
        )
    if C is None:
        if y is None:
            raise ParameterError("At least one of C or y must be provided to compute chroma")
        C = np.abs(
            cqt(
                y,
                sr=sr,
                hop_length=hop_length,
                fmin=fmin,
                n_bins=n_octaves * bins_per_octave,
                bins_per_octave=bins_per_octave,
                tuning=tuning,
            )
        )
    C = np.asarray(C)
    cq_to_chr = _cq_to_chroma(C.shape[-2], bins_per_octave, n_chroma, fmin, window)
    if np.iscomplexobj(C):
        C = np.abs(C)
    return _apply_bank(C, cq_to_chr, norm, threshold=threshold)


def tonnetz(
    *,
    y: np.ndarray | None = None,
    sr: float = 22050,
    chroma: np.ndarray | None = None,
    **kwargs: Any,
) -> np.ndarray:
    """Tonal centroid features, as ``librosa.feature.tonnetz``.

    The chromagram (:func:`chroma_cqt` of ``y`` by default), L1-normalised per frame, projected
    on six dimensions: fifths, minor thirds and major thirds, each as a (sin, cos) pair with
    radii 1, 1 and 0.5.

    Parameters
    ----------
    y : np.ndarray [shape=(..., n)], float, or None
        Audio.
    sr : float > 0
        Sample rate.
    chroma : np.ndarray [shape=(..., n_chroma, t)] or None
        A precomputed chromagram, used instead of ``y``.
    **kwargs
        Passed to :func:`chroma_cqt`.

    Returns
    -------
    np.ndarray [shape=(..., 6, t)], float64

    Raises
    ------
    ParameterError
        Neither ``y`` nor ``chroma``.

    Examples
    --------
    >>> import numpy as np
    >>> from ml_utilities.audio import tonnetz
    >>> y = np.sin(2 * np.pi * 440 * np.arange(4 * 22050) / 22050).astype(np.float32)
    >>> tonnetz(y=y, sr=22050).shape
    (6, 173)
    """
    check_sr(sr)
    if y is None and chroma is None:
        raise ParameterError(
            "Either the audio samples or the chromagram must be passed as an argument."
        )
    if chroma is None:
        chroma = chroma_cqt(y=y, sr=sr, **kwargs)
    chroma = np.asarray(chroma)
    dim_map = np.linspace(0, 12, num=chroma.shape[-2], endpoint=False)
    scale = np.asarray([7.0 / 6, 7.0 / 6, 3.0 / 2, 3.0 / 2, 2.0 / 3, 2.0 / 3])
    V = np.multiply.outer(scale, dim_map)
    V[::2] -= 0.5
    R = np.array([1, 1, 1, 1, 0.5, 0.5])
    phi = R[:, np.newaxis] * np.cos(np.pi * V)
    ton: np.ndarray = np.einsum(
        "pc,...ci->...pi", phi, normalize(chroma, 1, axis=-2), optimize=True
    )
    return ton
