"""Exceptions of the model manager, each a subclass of the package's own."""

from __future__ import annotations

from typing import Any

from ..exceptions import BackendUnavailableError, MLUtilitiesError, ParameterError

__all__ = [
    "ArtifactIntegrityError",
    "BackendUnavailableError",
    "DeploymentRefusedError",
    "ExportVerificationError",
    "ModelNotFoundError",
    "ParameterError",
]


class ArtifactIntegrityError(MLUtilitiesError, RuntimeError):
    """An artifact's bytes do not match the sha256 recorded when it was saved."""


class ModelNotFoundError(MLUtilitiesError, LookupError):
    """No registered model, version or alias by that name."""


class ExportVerificationError(MLUtilitiesError, RuntimeError):
    """An exported (ONNX) model does not reproduce the original on held-out rows."""

    def __init__(self, message: str, report: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.report = dict(report or {})


class DeploymentRefusedError(MLUtilitiesError, RuntimeError):
    """A deployment was refused; ``report`` holds what was measured (p50/p99 latency, ...)."""

    def __init__(self, message: str, report: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.report = dict(report or {})
