"""Chroma and tonal features, librosa 0.11 compatible (``librosa.feature.chroma_stft``,
``chroma_cqt`` and ``tonnetz``; librosa keeps them in ``feature/spectral.py``).

The Ellis chroma filter bank is built natively and cached; the bank products (STFT bins or CQT
bins merged into chroma bins) and the per-frame normalisation run natively. The tuning
(:mod:`.pitch`) and the constant-Q transform (:mod:`.constantq`) come from their own modules.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._native import core
from ..exceptions import ParameterError
from ._shapes import flat_frames, kernels
from ._validation import check_finite, check_sr, is_positive_int, normalize
from .constantq import _C1_HZ, cqt
from .pitch import estimate_tuning
from .spectrum import _float32_out_of_range, _spectrogram

__all__ = ["chroma_cqt", "chroma_stft", "tonnetz"]


def _native_norm(norm: Any) -> float | None:
    """The native code's norm code (0: none, p > 0, inf), or None where numpy must do it."""
    if norm is None:
        return 0.0
    if isinstance(norm, bool) or not np.issubdtype(type(norm), np.number):
        return None
    value = float(norm)
    return value if value > 0 else None


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
    flat, lead = flat_frames(np.asarray(S, dtype=dtype))
    W = np.ascontiguousarray(bank, dtype=dtype)
    native = _native_norm(norm)
    thr = -1.0 if threshold is None else float(threshold)
    if native is not None:
        out = kernels("harmonic", dtype).apply_bank(flat, W, thr, native)
        return out.reshape(*lead, W.shape[0], flat.shape[-1])
    raw = (
        kernels("harmonic", dtype)
        .apply_bank(flat, W, thr, 0.0)
        .reshape(*lead, W.shape[0], flat.shape[-1])
    )
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
