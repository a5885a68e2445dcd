"""Harmonic/percussive separation, librosa 0.11 compatible (``librosa.decompose.hpss`` and
``librosa.effects.hpss``), and :func:`harmonicity`, the harmonic share of the energy.

The median filters (a running sorted window) and the soft masks run natively; the inverse STFT
of :func:`effects_hpss` is numpy's, as librosa's.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..exceptions import ParameterError
from ._shapes import flat_frames, kernels
from ._validation import check_finite, check_sr, is_positive_int, valid_audio
from .spectrum import _istft, _magphase, _spectrogram, stft

__all__ = ["effects_hpss", "harmonicity", "hpss"]


def _pair(value: Any) -> tuple[Any, Any]:
    if isinstance(value, (tuple, list)):
        return value[0], value[1]
    return value, value


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
    flat, _ = flat_frames(S)
    if np.isfinite(power) and np.any(flat < 0):
        raise ParameterError("X and X_ref must be non-negative")
    kern = kernels("harmonic", flat.dtype)
    harm, perc = kern.median_filters(flat, int(win_harm), int(win_perc))
    split_zeros = margin_harm == 1 and margin_perc == 1
    return S, flat, kern, harm, perc, (float(margin_harm), float(margin_perc)), split_zeros


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
    >>> from ml_utilities.audio.decompose import effects_hpss
    >>> y = np.random.default_rng(0).standard_normal(22050).astype(np.float32)
    >>> y_h, y_p = effects_hpss(y)
    >>> y_h.shape, y_h.dtype
    ((22050,), dtype('float32'))
    """
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
