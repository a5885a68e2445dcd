"""Shape and kernel plumbing shared by the audio modules: the native kernel family for a dtype,
``(..., d, t)`` arrays flattened to the C-contiguous ``(channels, d, t)`` blocks the kernels
take (with the leading shape to restore), and librosa's ``util.expand_to``."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._native import core
from ..exceptions import ParameterError

__all__ = ["NATIVE_DTYPES", "expand_to", "flat_frames", "kernels"]

#: the dtypes the native kernels compute in
NATIVE_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def kernels(family: str, dtype: Any = None) -> Any:
    """The native kernels ``core.<family>``. The families compiled once per precision
    (``features``, ``harmonic``) take ``dtype``: their float64 half for float64, float32
    otherwise; the others (``rhythm``, ``spectrum``) take both dtypes in one module."""
    module = getattr(core, family)
    if dtype is None:
        return module
    return module.f64 if np.dtype(dtype) == np.float64 else module.f32


def flat_frames(S: np.ndarray) -> tuple[np.ndarray, tuple[int, ...]]:
    """(channels, bins, frames) C-contiguous view/copy and the leading shape to restore."""
    lead = S.shape[:-2]
    channels = int(np.prod(lead, dtype=np.int64))
    return np.ascontiguousarray(S.reshape(channels, S.shape[-2], S.shape[-1])), lead


def expand_to(x: np.ndarray, *, ndim: int, axes: Any) -> np.ndarray:
    """librosa.util.expand_to: place x's axes at ``axes`` of an ndim-dimensional shape."""
    try:
        axes = tuple(axes)
    except TypeError:
        axes = tuple([axes])
    if len(axes) != x.ndim:
        raise ParameterError(f"Shape mismatch between axes={axes} and input x.shape={x.shape}")
    if ndim < x.ndim:
        raise ParameterError(f"Cannot expand x.shape={x.shape} to fewer dimensions ndim={ndim}")
    shape: list[int] = [1] * ndim
    for i, axi in enumerate(axes):
        shape[axi] = x.shape[i]
    return x.reshape(shape)
