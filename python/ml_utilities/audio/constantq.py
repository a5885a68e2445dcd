"""The constant-Q transform, librosa 0.11 compatible (``librosa.core.constantq.cqt``, with the
wavelet lengths and window bandwidths of ``librosa.filters``).

librosa's multirate algorithm: the sparse per-octave filter products run natively on native
STFTs; the filter design is numpy, ordered exactly as librosa orders it, so the numbers are
librosa's.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from ..exceptions import ParameterError
from ._shapes import kernels
from ._validation import check_finite, check_sr, is_positive_int, normalize, valid_audio
from .filters import get_window
from .io import resample
from .pitch import estimate_tuning
from .spectrum import _dtype_r2c, stft

__all__ = ["cqt"]


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
    kern = kernels("harmonic", np.float64 if out_dtype == np.complex128 else np.float32)
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
