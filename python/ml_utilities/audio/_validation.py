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
