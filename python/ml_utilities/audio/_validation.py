"""Argument checks with librosa's rules and messages (the bad value is always in the message)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..exceptions import ParameterError

__all__ = ["is_positive_int", "pad_center", "valid_audio"]


def valid_audio(y: Any) -> bool:
    """Raise :class:`ParameterError` unless ``y`` is a finite floating-point ndarray, ndim >= 1."""
    if not isinstance(y, np.ndarray):
        raise ParameterError("Audio data must be of type numpy.ndarray")
    if not np.issubdtype(y.dtype, np.floating):
        raise ParameterError("Audio data must be floating-point")
    if y.ndim == 0:
        raise ParameterError(
            f"Audio data must be at least one-dimensional, given y.shape={y.shape}"
        )
    if not np.isfinite(y).all():
        raise ParameterError("Audio buffer is not finite everywhere")
    return True


def is_positive_int(x: Any) -> bool:
    """True for a Python or numpy integer greater than zero (booleans excluded)."""
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool) and x > 0


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
    if not np.all(np.isfinite(S)):
        raise ParameterError("Input must be finite")
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
