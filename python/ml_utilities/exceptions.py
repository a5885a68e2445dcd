"""Exceptions raised by ml_utilities."""

from __future__ import annotations

__all__ = ["BackendUnavailableError", "MLUtilitiesError", "ParameterError"]


class MLUtilitiesError(Exception):
    """Base class of every exception this package raises on purpose."""


class ParameterError(MLUtilitiesError, ValueError):
    """A bad argument value, shape or dtype (librosa's ``ParameterError`` counterpart)."""


class BackendUnavailableError(MLUtilitiesError, RuntimeError):
    """The requested compute backend (for example CUDA) is not built or cannot run here."""
