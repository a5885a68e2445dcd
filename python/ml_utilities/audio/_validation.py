"""Argument checks with librosa's rules and messages (the bad value is always in the message)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..exceptions import ParameterError

__all__ = ["is_positive_int", "pad_center", "valid_audio"]


def valid_audio(y: Any) -> bool:
    """Raise :class:`ParameterError` unless ``y`` is a finite floating-point ndarray, ndim >= 1."""
    # librosa's messages first (callers match them), then the offending value.
    if not isinstance(y, np.ndarray):
        raise ParameterError(
            f"Audio data must be of type numpy.ndarray, given y of type {type(y).__name__}"
        )
    if not np.issubdtype(y.dtype, np.floating):
        raise ParameterError(f"Audio data must be floating-point, given y.dtype={y.dtype}")
    if y.ndim == 0:
        raise ParameterError(
            f"Audio data must be at least one-dimensional, given y.shape={y.shape}"
        )
    finite = np.isfinite(y)
    if not finite.all():
        first = int(np.flatnonzero(~finite.ravel())[0])
        index = np.unravel_index(first, y.shape)
        raise ParameterError(
            f"Audio buffer is not finite everywhere: y (shape={y.shape}) has "
            f"{int(y.size - np.count_nonzero(finite))} non-finite values, the first "
            f"y[{', '.join(str(int(i)) for i in index)}]={y.flat[first]}"
        )
    return True


def is_positive_int(x: Any, *, allow_bool: bool = False) -> bool:
    """True for a Python or numpy integer greater than zero; booleans only with ``allow_bool``
    (librosa.util.is_positive_int lets ``True`` through, and the rhythm functions follow it)."""
    if isinstance(x, bool) and not allow_bool:
        return False
    return isinstance(x, (int, np.integer)) and bool(x > 0)


def check_hop(hop_length: Any) -> None:
    """Raise :class:`ParameterError` unless ``hop_length`` is a positive integer (librosa's
    rule, as the onset, tempo and beat functions check it: ``True`` passes)."""
    if not is_positive_int(hop_length, allow_bool=True):
        raise ParameterError(f"hop_length={hop_length} must be a positive integer")


def check_envelope(onset_envelope: np.ndarray) -> None:
    """Raise :class:`ParameterError` for an onset envelope without frames."""
    if onset_envelope.ndim == 0 or onset_envelope.shape[-1] == 0:
        raise ParameterError(
            f"onset_envelope must have at least one frame, got shape {onset_envelope.shape}"
        )


def pad_center(data: np.ndarray, *, size: int, axis: int = -1) -> np.ndarray:
    """Zero-pad ``data`` on both sides of ``axis`` to length ``size``, centred as librosa does."""
    n = data.shape[axis]
    lpad = int((size - n) // 2)
    if lpad < 0:
        raise ParameterError(f"Target size ({size:d}) must be at least input size ({n:d})")
    lengths = [(0, 0)] * data.ndim
    lengths[axis] = (lpad, int(size - n - lpad))
    return np.pad(data, lengths, mode="constant")


def tiny(x: Any) -> Any:
    """librosa.util.tiny: the smallest normal number of x's float type (float32 otherwise)."""
    x = np.asarray(x)
    if np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.complexfloating):
        dtype = x.dtype
    else:
        dtype = np.dtype(np.float32)
    return np.finfo(dtype).tiny


def normalize(S: np.ndarray, norm: Any, axis: int = -2) -> np.ndarray:
    """librosa.util.normalize(S, norm=norm, axis=axis) with threshold=tiny(S) and fill=None."""
    if norm is None:
        return S
    finite = np.isfinite(S)
    if not np.all(finite):
        raise ParameterError(
            f"Input must be finite: {int(S.size - np.count_nonzero(finite))} of the "
            f"{S.size} values of the input (shape={S.shape}) are NaN or infinite"
        )
    mag = np.abs(S).astype(float)
    if norm == np.inf:
        length = np.max(mag, axis=axis, keepdims=True)
    elif norm == -np.inf:
        length = np.min(mag, axis=axis, keepdims=True)
    elif norm == 0:
        length = np.sum(mag > 0, axis=axis, keepdims=True, dtype=mag.dtype)
    elif np.issubdtype(type(norm), np.number) and norm > 0:
        length = np.sum(mag**norm, axis=axis, keepdims=True) ** (1.0 / norm)
    else:
        raise ParameterError(f"Unsupported norm: {repr(norm)}")
    length[length < tiny(S)] = 1.0
    out = np.empty_like(S)
    out[:] = S / length
    return out


def check_sr(sr: Any, name: str = "sr") -> None:
    """Raise :class:`ParameterError` unless the sample rate ``sr`` is a finite number > 0
    (librosa lets NaN, inf and negative rates through to NaN or empty results)."""
    try:
        ok = bool(np.isfinite(sr)) and sr > 0
    except TypeError:
        ok = False
    if not ok or isinstance(sr, (bool, np.bool_)):
        raise ParameterError(f"{name}={sr!r} must be a finite positive number")


def check_finite(**params: Any) -> None:
    """Raise :class:`ParameterError` for any numeric value among ``params`` that is NaN or
    infinite (None, strings, callables and arrays are left to their own checks)."""
    for name, value in params.items():
        if isinstance(value, (float, np.floating)) and not np.isfinite(value):
            raise ParameterError(f"{name}={value!r} must be a finite number")


def check_bool(name: str, value: Any) -> bool:
    """``value`` as a bool: True/False (numpy's included) or the integers 0 and 1; anything else
    (a string such as ``'no'``, which librosa would take as true) raises ParameterError."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)) and value in (0, 1):
        return bool(value)
    raise ParameterError(f"{name}={value!r} must be a boolean (True or False)")


#: numpy.pad's modes; librosa.stft refuses the statistical ones and "wrap" itself
NUMPY_PAD_MODES = (
    "constant",
    "edge",
    "linear_ramp",
    "maximum",
    "mean",
    "median",
    "minimum",
    "reflect",
    "symmetric",
    "wrap",
    "empty",
)
STFT_REFUSED_PAD_MODES = ("wrap", "maximum", "mean", "median", "minimum")


def check_pad_mode(pad_mode: Any) -> None:
    """A ``pad_mode`` numpy.pad accepts (a name or a callable): librosa lets numpy.pad refuse
    any other, with a plain ValueError naming only the value."""
    if not callable(pad_mode) and pad_mode not in NUMPY_PAD_MODES:
        raise ParameterError(
            f"pad_mode={pad_mode!r} is not supported; expected one of {list(NUMPY_PAD_MODES)} "
            "or a callable, as numpy.pad"
        )
