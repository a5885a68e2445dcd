"""The CUDA backend's Python side: device arrays in, device arrays out.

``import ml_utilities.gpu`` imports neither CuPy, torch nor the compiled ``_cuda`` module:
they load the first time a device array arrives. The features (``mfcc``, ``chroma_stft``, ...,
and :func:`extract_features` for the whole set from one plan) live in
:mod:`ml_utilities.gpu.features`; :mod:`ml_utilities.gpu.dispatch` routes librosa-style calls
on the input's type. See docs/gpu.md.
"""

from __future__ import annotations

import importlib
from typing import Any

from ._arrays import is_device_array
from .errors import DeviceError, DeviceMemoryError

__all__ = [
    "DeviceError",
    "DeviceMemoryError",
    "available",
    "extract_features",
    "features",
    "is_device_array",
]


def available() -> bool:
    """True when the CUDA module loads and sees at least one device."""
    from .._native import cuda
    from ..exceptions import BackendUnavailableError

    try:
        return int(cuda().device_count()) > 0
    except (BackendUnavailableError, RuntimeError):
        return False


def __getattr__(name: str) -> Any:
    if name == "features":
        return importlib.import_module(f"{__name__}.features")
    if name == "extract_features":
        return importlib.import_module(f"{__name__}.features").extract_features
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
