"""ml_utilities: music and audio machine learning with a compiled core.

``ml_utilities.compat.librosa`` is a drop-in for librosa's feature functions;
``ml_utilities.audio`` holds the same functions under one flat namespace.
"""

from __future__ import annotations

from typing import Any

from ._native import core as _core
from .config import apply_logging, apply_to_core, get_settings
from .exceptions import (
    AudioFileError,
    BackendUnavailableError,
    MLUtilitiesError,
    ParameterError,
)

__all__ = [
    "AudioFileError",
    "BackendUnavailableError",
    "MLUtilitiesError",
    "ParameterError",
    "__version__",
    "build_info",
]

__version__ = "0.1.0"

# Every ML_UTILITIES_* setting is read and checked once, here: a bad value is a ConfigError at
# import naming the variable, and the core's thread pool takes ML_UTILITIES_MAX_WORKERS.
_settings = get_settings()
apply_to_core(_settings)
apply_logging(_settings)


def build_info() -> dict[str, Any]:
    """Describe this build: compiler, SIMD level, threads, and whether CUDA was built and loads.

    Returns
    -------
    dict
        ``version``, ``compiler``, ``simd`` (the level in use), ``simd_detected``, ``threads``,
        ``cuda_build`` (``"built"``, or why the CUDA module was not built: ``"MLU_CUDA=OFF"``,
        no nvcc, nvcc without cuFFT), ``cuda_built`` and ``cuda_loads`` (bool), ``cuda_error``
        (str or None), and ``cuda_devices`` (int, 0 where CUDA does not load).
    """
    from . import _native

    info: dict[str, Any] = dict(_core.build_info())
    info["version"] = __version__
    try:
        cuda = _native.cuda()
        info["cuda_built"] = True
        try:
            info["cuda_devices"] = int(cuda.device_count())
            info["cuda_loads"] = True
            info["cuda_error"] = None
        except RuntimeError as err:
            info["cuda_devices"] = 0
            info["cuda_loads"] = False
            info["cuda_error"] = str(err)
    except BackendUnavailableError as err:
        info["cuda_built"] = "built without CUDA" not in str(err)
        info["cuda_loads"] = False
        info["cuda_devices"] = 0
        info["cuda_error"] = str(err)
    return info
