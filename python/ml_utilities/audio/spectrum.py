"""Short-time Fourier transform and decibel conversions, librosa 0.11 compatible."""

from __future__ import annotations

import contextlib
import contextvars
import math
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from ..exceptions import ParameterError
from . import _plans
from ._validation import (
    STFT_REFUSED_PAD_MODES,
    check_bool,
    check_pad_mode,
    is_positive_int,
    pad_center,
    valid_audio,
)

__all__ = [
    "amplitude_to_db",
    "spectrogram",
    "db_to_amplitude",
    "db_to_power",
    "power_to_db",
    "stft",
]


# Set (per thread / task) by callers that knowingly analyse signals shorter than n_fft, such as
# the low octaves of a CQT on a short clip: the warning librosa gives there is then noise.
# A context variable rather than warnings.catch_warnings, which is not thread-safe.
_QUIET_SHORT_SIGNALS: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "mlu_quiet_short_signals", default=False
)


@contextlib.contextmanager
def quiet_short_signals() -> Iterator[None]:
    """Within this block (in this thread or task only), do not warn that ``n_fft`` is larger
    than a centred signal."""
    token = _QUIET_SHORT_SIGNALS.set(True)
    try:
        yield
    finally:
        _QUIET_SHORT_SIGNALS.reset(token)


def _dtype_r2c(dtype: np.dtype) -> np.dtype:
    """librosa.util.dtype_r2c: float32 -> complex64, float64 -> complex128, else complex64."""
    dtype = np.dtype(dtype)
    if dtype.kind == "c":
        return dtype
    return {
        np.dtype(np.float32): np.dtype(np.complex64),
        np.dtype(np.float64): np.dtype(np.complex128),
    }.get(dtype, np.dtype(np.complex64))


# float32 audio whose peak |y| times n_fft exceeds this can overflow float32 in |X|^2 (|X| can
# reach peak * n_fft, and |X| > 1.8e19 overflows its square); a peak below _F32_PEAK_MIN puts the
# spectrum's quiet bins where their squares underflow float32 (and denormal samples make a
# float32 FFT imprecise). Such audio is transformed in float64, as librosa does.
_F32_SPAN_MAX = 2.0**60
_F32_PEAK_MIN = 2.0**-30


def _float32_out_of_range(y: Any, n_fft: Any) -> bool:
    """True for float32 audio too loud or too quiet for a float32 STFT's |X|^2 (see above).

    Two reductions over ``y``: negligible next to the transform itself."""
    if not isinstance(y, np.ndarray) or y.dtype != np.float32 or y.size == 0:
        return False
    peak = max(float(y.max()), -float(y.min()))
    if not math.isfinite(peak):
        return False  # NaN or inf audio is left to the usual validation, which refuses it
    span = peak * (n_fft if is_positive_int(n_fft) else 1)
    return bool(span > _F32_SPAN_MAX or 0.0 < peak < _F32_PEAK_MIN)


def _stft_window(window: Any, win_length: int, n_fft: int) -> np.ndarray:
    from .filters import get_window

    fft_window = np.asarray(get_window(window, win_length, fftbins=True), dtype=np.float64)
    return pad_center(fft_window, size=n_fft)


def _edge_padding(
    signal: np.ndarray, n_fft: int, hop_length: int, pad_mode: Any
) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray, bool]:
    """The padding before and after the signal exactly as librosa.stft computes it.

    librosa pads only the slices that the first and last frames read (np.pad on those slices,
    so short slices reflect differently than a full-signal pad would); we pad the same slices
    and keep only the padding. Returns ``(head, tail, signal, center)``; where librosa pads the
    whole signal (the head and tail frames overlap), the padded signal comes back uncentred.
    """
    n = signal.shape[-1]
    pad = n_fft // 2
    start_k = int(np.ceil(pad / hop_length))
    tail_k = (n + pad - n_fft) // hop_length + 1
    if tail_k <= start_k:
        padded = np.pad(signal, [(0, 0), (pad, pad)], mode=pad_mode)
        return None, None, np.ascontiguousarray(padded, dtype=signal.dtype), False
    y_pre = np.pad(
        signal[:, : (start_k - 1) * hop_length - pad + n_fft + 1], [(0, 0), (pad, 0)], mode=pad_mode
    )
    head = np.ascontiguousarray(y_pre[:, :pad], dtype=signal.dtype)
    tail = None
    if tail_k * hop_length - pad + n_fft <= n + pad:
        y_post = np.pad(signal[:, tail_k * hop_length - pad :], [(0, 0), (0, pad)], mode=pad_mode)
        tail = np.ascontiguousarray(y_post[:, y_post.shape[-1] - pad :], dtype=signal.dtype)
    return head, tail, signal, True


def _frame_setup(
    y: np.ndarray,
    *,
    n_fft: int,
    hop_length: int | None,
    win_length: int | None,
    window: Any,
    center: bool,
    pad_mode: Any,
    compute_dtype: np.dtype,
) -> tuple[Any, np.ndarray, bool, np.ndarray | None, np.ndarray | None, tuple[int, ...]]:
    """Validate like librosa.stft and prepare the native call.

    Returns ``(plan, signal, center, head, tail, lead_shape)``: ``signal`` is (channels, n),
    ``head``/``tail`` the padding next to each end (None for zeros), ``lead_shape`` the
    channel axes to restore on the outputs.
    """
    if not is_positive_int(n_fft):
        raise ParameterError(f"n_fft={n_fft} must be a positive integer")
    if win_length is None:
        win_length = n_fft
    elif not is_positive_int(win_length):
        raise ParameterError(f"win_length={win_length!r} must be a positive integer")
    if hop_length is None:
        hop_length = int(win_length // 4)
        if hop_length < 1:
            raise ParameterError(
                f"Invalid hop_length: {hop_length:d} (win_length={win_length} // 4)"
            )
    elif not is_positive_int(hop_length):
        raise ParameterError(f"hop_length={hop_length} must be a positive integer")

    valid_audio(y)
    center = check_bool("center", center)  # the native plan takes a bool only
    fft_window = _stft_window(window, win_length, n_fft)
    plan = _plans.stft_plan(compute_dtype, n_fft, hop_length, fft_window)

    lead_shape = y.shape[:-1]
    n = y.shape[-1]
    channels = int(np.prod(lead_shape, dtype=np.int64))
    signal = np.ascontiguousarray(y.reshape(channels, n), dtype=compute_dtype)
    head = tail = None
    pad = n_fft // 2
    if center:
        if isinstance(pad_mode, str) and pad_mode in STFT_REFUSED_PAD_MODES:
            raise ParameterError(f"pad_mode='{pad_mode}' is not supported by librosa.stft")
        check_pad_mode(pad_mode)
        if n_fft > n and not _QUIET_SHORT_SIGNALS.get():
            warnings.warn(
                f"n_fft={n_fft} is too large for input signal of length={n}", stacklevel=3
            )
        if n + 2 * pad < n_fft:
            raise ParameterError(
                f"Input is too short (n={n + 2 * pad:d}) for frame_length={n_fft:d}"
            )
        if pad_mode != "constant":
            if n == 0 and pad_mode != "empty":
                # numpy.pad's own ValueError in librosa
                raise ParameterError(
                    f"cannot pad an empty signal (y.shape={y.shape}) with pad_mode={pad_mode!r}"
                )
            head, tail, signal, center = _edge_padding(signal, n_fft, hop_length, pad_mode)
    elif n_fft > n:
        raise ParameterError(
            f"n_fft={n_fft} is too large for uncentered analysis of input signal of length={n}"
        )
    return plan, signal, center, head, tail, lead_shape


def stft(
    y: np.ndarray,
    *,
    n_fft: int = 2048,
    hop_length: int | None = None,
    win_length: int | None = None,
    window: Any = "hann",
    center: bool = True,
    dtype: Any = None,
    pad_mode: Any = "constant",
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Short-time Fourier transform, as ``librosa.stft``.

    Parameters
    ----------
    y : np.ndarray [shape=(..., n)], float32 or float64, host memory
        Audio; leading axes are independent channels.
    n_fft : int > 0
        FFT size (any size; powers of two are fastest).
    hop_length : int > 0 or None
        Samples between frames; ``win_length // 4`` by default.
    win_length : int <= n_fft or None
        Window length, zero-padded (centred) to ``n_fft``; ``n_fft`` by default.
    window : str, tuple, number, callable or array of length ``win_length``
        As ``scipy.signal.get_window``; periodic.
    center : bool
        Pad so that frame ``t`` is centred at ``y[t * hop_length]``.
    dtype : complex dtype or None
        Output dtype; complex64 for float32 input and complex128 for float64 by default.
    pad_mode : str or callable
        ``np.pad`` mode for centring ("constant" is zeros).
    out : np.ndarray or None
        A complex array to write into (its last axis may be longer than needed).

    Returns
    -------
    np.ndarray [shape=(..., 1 + n_fft // 2, n_frames)], complex

    Raises
    ------
    ParameterError
        On non-float or non-finite audio, non-positive sizes, a window longer than ``n_fft``,
        an unsupported ``pad_mode`` or an ``out`` of the wrong shape or dtype.

    Examples
    --------
    >>> import numpy as np
    >>> from ml_utilities.audio import stft
    >>> y = np.sin(2 * np.pi * 440 * np.arange(22050) / 22050).astype(np.float32)
    >>> stft(y).shape
    (1025, 44)
    """
    if not isinstance(y, np.ndarray):
        valid_audio(y)
    out_dtype = np.dtype(dtype) if dtype is not None else _dtype_r2c(y.dtype)
    if out_dtype.kind != "c":
        raise ParameterError(f"dtype={out_dtype} is not a complex dtype")
    if out is None and out_dtype == np.complex64 and _float32_out_of_range(y, n_fft):
        # librosa's FFT runs in float64 and rounds the result: so do we where a float32 FFT
        # would lose the quiet bins (denormal samples) or come near float32's limits
        return stft(
            y.astype(np.float64),
            n_fft=n_fft,
            hop_length=hop_length,
            win_length=win_length,
            window=window,
            center=center,
            pad_mode=pad_mode,
        ).astype(np.complex64)
    compute = np.dtype(np.float64) if out_dtype == np.complex128 else np.dtype(np.float32)
    plan, signal, centre, head, tail, lead = _frame_setup(
        y,
        n_fft=n_fft,
        hop_length=hop_length,
        win_length=win_length,
        window=window,
        center=center,
        pad_mode=pad_mode,
        compute_dtype=compute,
    )
    frames = plan.n_frames(signal.shape[-1], centre)
    bins = plan.n_bins
    shape = (*lead, bins, frames)
    native_dtype = np.complex64 if compute == np.float32 else np.complex128
    if out is not None:
        if not (tuple(out.shape[:-1]) == shape[:-1] and out.shape[-1] >= frames):
            raise ParameterError(
                f"Shape mismatch for provided output array out.shape={out.shape} "
                f"and target shape={list(shape)}"
            )
        if not np.iscomplexobj(out):
            raise ParameterError(f"output with dtype={out.dtype} is not of complex type")
        target = out if out.shape[-1] == frames else out[..., :frames]
        if target.dtype == native_dtype and target.flags.c_contiguous:
            plan.execute(signal, centre, head, tail, stft=target.reshape(-1, bins, frames))
        else:
            result = np.empty((signal.shape[0], bins, frames), dtype=native_dtype)
            plan.execute(signal, centre, head, tail, stft=result)
            target[...] = result.reshape(shape)
        return target
    result = np.empty((signal.shape[0], bins, frames), dtype=native_dtype)
    plan.execute(signal, centre, head, tail, stft=result)
    result = result.reshape(shape)
    if result.dtype != out_dtype:
        result = result.astype(out_dtype)
    return result


def _spectrum_power(
    y: np.ndarray,
    *,
    n_fft: int,
    hop_length: int | None,
    win_length: int | None,
    window: Any,
    center: bool,
    pad_mode: Any,
    power: float,
    compute_dtype: np.dtype,
    mel_bank: Any = None,
) -> np.ndarray:
    """``|stft(y)| ** power`` or, with a bank, the bank applied to it, in one native pass.

    Float32 audio out of a float32 STFT's range (:func:`_float32_out_of_range`) without a bank
    is transformed as librosa does it: in float64, rounded to complex64, ``np.abs`` (hypot, so no
    overflow nor underflow in the squares) and ``** power`` in float32.
    """
    if mel_bank is None and compute_dtype == np.float32 and _float32_out_of_range(y, n_fft):
        # stft itself takes the float64 route for this audio and rounds to complex64
        D = stft(
            y,
            n_fft=n_fft,
            hop_length=hop_length,
            win_length=win_length,
            window=window,
            center=center,
            pad_mode=pad_mode,
        )
        spec: np.ndarray = np.abs(D)
        if power != 1.0:
            spec = spec**power
        return spec
    plan, signal, centre, head, tail, lead = _frame_setup(
        y,
        n_fft=n_fft,
        hop_length=hop_length,
        win_length=win_length,
        window=window,
        center=center,
        pad_mode=pad_mode,
        compute_dtype=compute_dtype,
    )
    frames = plan.n_frames(signal.shape[-1], centre)
    if mel_bank is None:
        spec = np.empty((signal.shape[0], plan.n_bins, frames), dtype=compute_dtype)
        plan.execute(signal, centre, head, tail, spectrum=spec, spectrum_power=float(power))
        return spec.reshape(*lead, plan.n_bins, frames)
    rows = mel_bank.shape[0]
    mel = np.empty((signal.shape[0], rows, frames), dtype=compute_dtype)
    plan.execute(signal, centre, head, tail, mel=mel, mel_bank=mel_bank, mel_power=float(power))
    return mel.reshape(*lead, rows, frames)


def spectrogram(
    y: np.ndarray,
    *,
    n_fft: int = 2048,
    hop_length: int | None = None,
    win_length: int | None = None,
    window: Any = "hann",
    center: bool = True,
    pad_mode: Any = "constant",
    power: float = 2.0,
) -> np.ndarray:
    """``np.abs(stft(y, ...)) ** power`` in one native pass, never storing the complex STFT.

    librosa computes this inside every spectral feature (its private ``_spectrogram``); here it
    is public. Same framing, shapes and rules as :func:`stft`.

    Parameters
    ----------
    y : np.ndarray [shape=(..., n)], float
    power : float > 0
        1 for magnitude, 2 for power.

    Returns
    -------
    np.ndarray [shape=(..., 1 + n_fft // 2, n_frames)], float32 for float32 audio

    Raises
    ------
    ParameterError
        As :func:`stft`, and for ``power <= 0``.
    """
    if not power > 0:
        raise ParameterError(f"power={power} must be positive")
    if not isinstance(y, np.ndarray):
        valid_audio(y)
    compute = np.dtype(np.float64) if y.dtype == np.float64 else np.dtype(np.float32)
    return _spectrum_power(
        y,
        n_fft=n_fft,
        hop_length=hop_length,
        win_length=win_length,
        window=window,
        center=center,
        pad_mode=pad_mode,
        power=power,
        compute_dtype=compute,
    )


def _spectrogram(
    *,
    y: np.ndarray | None,
    S: np.ndarray | None,
    n_fft: int | None,
    hop_length: int | None,
    win_length: int | None,
    window: Any,
    center: bool,
    pad_mode: Any,
    power: float,
) -> tuple[np.ndarray, int]:
    """librosa.core.spectrum._spectrogram: ``S`` as given (n_fft inferred from its shape when
    it does not match) or ``|stft(y)| ** power`` in one native pass."""
    if S is not None:
        if n_fft is None or n_fft // 2 + 1 != S.shape[-2]:
            n_fft = 2 * (S.shape[-2] - 1)
        return S, int(n_fft)
    if n_fft is None:
        raise ParameterError(f"Unable to compute spectrogram with n_fft={n_fft}")
    if y is None:
        raise ParameterError("Input signal must be provided to compute a spectrogram")
    valid_audio(y)
    compute = np.dtype(np.float64) if y.dtype == np.float64 else np.dtype(np.float32)
    spec = _spectrum_power(
        y,
        n_fft=n_fft,
        hop_length=hop_length,
        win_length=win_length,
        window=window,
        center=center,
        pad_mode=pad_mode,
        power=power,
        compute_dtype=compute,
    )
    return spec, int(n_fft)


def _magphase(D: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """librosa.magphase: ``|D|`` and the unit phase ``D / |D|`` (1 where ``D`` is 0)."""
    mag = np.abs(D)
    zeros_to_ones = mag == 0
    mag_nonzero = mag + zeros_to_ones
    phase = np.empty_like(D)
    phase.real = D.real / mag_nonzero + zeros_to_ones
    phase.imag = D.imag / mag_nonzero
    return mag, phase


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


def _check_ref(ref: Any) -> None:
    """A numeric ``ref`` must be finite (a NaN or infinite reference makes librosa's every
    decibel value NaN or -inf)."""
    if not callable(ref) and not np.all(np.isfinite(np.asarray(ref, dtype=np.complex128))):
        raise ParameterError(f"ref must be finite (or a callable) (ref={ref!r})")


def _ref_db(ref: Any, magnitude: np.ndarray, amin: float) -> float:
    ref_value = ref(magnitude) if callable(ref) else np.abs(ref)
    return float(10.0 * np.log10(np.maximum(amin, ref_value)))


def power_to_db(
    S: Any,
    *,
    ref: float | Callable[[np.ndarray], Any] = 1.0,
    amin: float = 1e-10,
    top_db: float | None = 80.0,
) -> Any:
    """Power spectrogram to decibels, as ``librosa.power_to_db``.

    ``10 * log10(max(amin, S) / ref)``, then floored at ``max - top_db`` where the maximum is over
    the whole array (every channel and batch item included), as librosa does.

    Parameters
    ----------
    S : np.ndarray
        Power values, any shape; complex input is reduced to its magnitude with a warning.
    ref : float or callable
        Reference power, or a function of the magnitudes returning it (e.g. ``np.max``).
    amin : float > 0
        Floor applied before the logarithm.
    top_db : float >= 0 or None
        Dynamic range kept below the maximum.

    Returns
    -------
    np.ndarray, same shape as ``S`` (float32 for float32 input)

    Raises
    ------
    ParameterError
        If ``amin <= 0`` or ``top_db < 0``.
    """
    _check_ref(ref)
    return _power_to_db(S, ref=ref, amin=amin, top_db=top_db)


def _power_to_db(S: Any, *, ref: Any, amin: float, top_db: float | None) -> Any:
    """:func:`power_to_db` after its ``ref`` check (amplitude_to_db passes a reference it
    computed from the data, which may be non-finite as librosa's would be)."""
    S = np.asarray(S)
    if not amin > 0:  # NaN included (the native path would refuse it without naming it)
        raise ParameterError(f"amin must be strictly positive (amin={amin!r})")
    if np.issubdtype(S.dtype, np.complexfloating):
        warnings.warn(
            "power_to_db was called on complex input so phase "
            "information will be discarded. To suppress this warning, "
            "call power_to_db(np.abs(D)**2) instead.",
            stacklevel=2,
        )
        magnitude = np.abs(S)
    else:
        magnitude = S
    if top_db is not None and not top_db >= 0:  # NaN included: librosa's result is all NaN
        raise ParameterError(f"top_db must be non-negative (top_db={top_db!r})")
    if callable(ref) and magnitude.size == 0:
        # numpy's reductions refuse an empty array, in librosa too
        raise ParameterError(
            f"S is empty (S.shape={magnitude.shape}): ref={ref!r} needs its values"
        )
    if top_db is not None and magnitude.size == 0:
        raise ParameterError(
            f"S is empty (S.shape={magnitude.shape}): top_db={top_db!r} needs its maximum"
        )
    if (
        magnitude.dtype in (np.float32, np.float64)
        and magnitude.ndim > 0
        and magnitude.size > 0
        # NaN or +inf in S: librosa's numpy arithmetic spreads them (through the maximum with
        # top_db); the reference path below does the same.
        and np.isfinite(magnitude.max())
    ):
        ref_db = _ref_db(ref, magnitude, amin)
        result = np.array(magnitude, dtype=magnitude.dtype, order="C", copy=True)
        _plans.core.spectrum.power_to_db_inplace(
            result, float(amin), ref_db, -1.0 if top_db is None else float(top_db)
        )
        return result
    # Scalars, empty arrays and other dtypes: the reference computation, in numpy.
    ref_value = ref(magnitude) if callable(ref) else np.abs(ref)
    log_spec = 10.0 * np.log10(np.maximum(amin, magnitude))
    log_spec -= 10.0 * np.log10(np.maximum(amin, ref_value))
    if top_db is not None:
        log_spec = np.maximum(log_spec, log_spec.max() - top_db)
    return log_spec


def amplitude_to_db(
    S: Any,
    *,
    ref: float | Callable[[np.ndarray], Any] = 1.0,
    amin: float = 1e-5,
    top_db: float | None = 80.0,
) -> Any:
    """Amplitude spectrogram to decibels, as ``librosa.amplitude_to_db``
    (``power_to_db(S**2, ref=ref**2, amin=amin**2, top_db=top_db)``)."""
    S = np.asarray(S)
    if np.issubdtype(S.dtype, np.complexfloating):
        warnings.warn(
            "amplitude_to_db was called on complex input so phase "
            "information will be discarded. To suppress this warning, "
            "call amplitude_to_db(np.abs(S)) instead.",
            stacklevel=2,
        )
    magnitude = np.abs(S)
    if callable(ref) and np.size(magnitude) == 0:
        raise ParameterError(
            f"S is empty (S.shape={np.shape(magnitude)}): ref={ref!r} needs its values"
        )
    _check_ref(ref)
    ref_value = ref(magnitude) if callable(ref) else np.abs(ref)
    out_array = magnitude if isinstance(magnitude, np.ndarray) else None
    power = np.square(magnitude, out=out_array)
    return _power_to_db(power, ref=ref_value**2, amin=amin**2, top_db=top_db)


def db_to_power(S_db: Any, *, ref: float = 1.0) -> Any:
    """Decibels to power, as ``librosa.db_to_power``: ``ref * 10 ** (S_db / 10)``."""
    return ref * np.power(10.0, S_db * 0.1)


def db_to_amplitude(S_db: Any, *, ref: float = 1.0) -> Any:
    """Decibels to amplitude, as ``librosa.db_to_amplitude``."""
    return db_to_power(S_db, ref=ref**2) ** 0.5
