"""Dispatch on the input array: numpy to the CPU functions, device arrays to the CUDA twins.

:func:`dispatching` wraps a CPU function of ``ml_utilities.audio`` so that a call whose audio
argument is a CuPy array, a torch CUDA tensor, or any ``__cuda_array_interface__`` / DLPack
CUDA object runs :mod:`ml_utilities.gpu.features` instead. A numpy call pays one ``type(...)
is np.ndarray`` test and goes straight through; ``_cuda`` is imported only when a device array
arrives (and a clear :class:`BackendUnavailableError` says why when it cannot load).
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from typing import Any

import numpy as np

from ._arrays import ensure_backend, is_device_array

__all__ = ["GPU_FUNCTIONS", "dispatching", "function"]

#: the functions of ml_utilities.audio with a CUDA twin; each takes its audio as ``y``
GPU_FUNCTIONS: frozenset[str] = frozenset(
    (
        "stft",
        "melspectrogram",
        "mfcc",
        "chroma_stft",
        "spectral_centroid",
        "spectral_bandwidth",
        "spectral_rolloff",
        "spectral_contrast",
        "spectral_flatness",
        "spectral_flux",
        "zero_crossing_rate",
        "rms",
        "onset_strength",
        "tempo",
        "beat_track",
    )
)


def _audio_argument(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if "y" in kwargs:
        return kwargs["y"]
    return args[0] if args else None


def dispatching(cpu_function: Callable[..., Any], name: str | None = None) -> Callable[..., Any]:
    """``cpu_function`` for numpy input, its CUDA twin for device arrays.

    Raises
    ------
    BackendUnavailableError
        A device array arrived and the CUDA module is not built or cannot load here.
    """
    fname = name or cpu_function.__name__
    if fname not in GPU_FUNCTIONS:
        raise AttributeError(f"{fname!r} has no CUDA twin; those that do: {sorted(GPU_FUNCTIONS)}")

    @functools.wraps(cpu_function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        y = _audio_argument(args, kwargs)
        if type(y) is np.ndarray or y is None or not is_device_array(y):
            return cpu_function(*args, **kwargs)
        ensure_backend()
        gpu = getattr(importlib.import_module(f"{__package__}.features"), fname)
        return gpu(*args, **kwargs)

    wrapper.__mlu_dispatch__ = True  # type: ignore[attr-defined]
    return wrapper


def function(name: str) -> Callable[..., Any]:
    """The dispatching ``ml_utilities.audio.<name>`` (the package wraps every function of
    :data:`GPU_FUNCTIONS` with :func:`dispatching` when it first hands it out)."""
    if name not in GPU_FUNCTIONS:
        raise AttributeError(f"{name!r} has no CUDA twin; those that do: {sorted(GPU_FUNCTIONS)}")
    return getattr(importlib.import_module("ml_utilities.audio"), name)
