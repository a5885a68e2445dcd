"""Loads the compiled modules: ``_core`` always, ``_cuda`` only when a device array arrives."""

from __future__ import annotations

import importlib
from types import ModuleType

from .exceptions import BackendUnavailableError

__all__ = ["core", "cuda"]

_BUILD_HINT = (
    "ml_utilities' compiled core could not be imported ({err}). Build and install the package "
    "with a C++17 compiler: `python3 -m pip install .` from the source tree."
)

try:
    from . import _core as core
except ImportError as err:  # pragma: no cover - only without a build
    raise ImportError(_BUILD_HINT.format(err=err)) from err

_cuda_module: ModuleType | None = None
_cuda_error: str | None = None


def cuda() -> ModuleType:
    """Return the ``_cuda`` module, importing it on first use.

    Raises
    ------
    BackendUnavailableError
        If the package was built without CUDA or the module cannot load here.
    """
    global _cuda_module, _cuda_error
    if _cuda_module is not None:
        return _cuda_module
    if _cuda_error is None:
        try:
            _cuda_module = importlib.import_module("ml_utilities._cuda")
            return _cuda_module
        except ImportError as err:
            if "No module named" in str(err):
                why = core.build_info().get("cuda_build", "unknown")
                _cuda_error = f"ml_utilities was built without CUDA ({why} at build time)"
            else:
                _cuda_error = f"ml_utilities' CUDA module failed to load: {err}"
    raise BackendUnavailableError(_cuda_error)
