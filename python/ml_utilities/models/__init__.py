"""Model manager: train, version, export and optimise models across frameworks.

``import ml_utilities.models`` stays light: scikit-learn, XGBoost, LightGBM, PyTorch, ONNX
Runtime, TensorFlow and transformers are imported when a model of theirs is built or loaded,
SQLAlchemy when the registry opens.

Examples
--------
>>> from ml_utilities.models import ModelManager
>>> manager = ModelManager(registry_url="sqlite:////tmp/mlu.db",
...                        artifact_root="/tmp/mlu-artifacts")  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import Any

from .errors import (
    ArtifactIntegrityError,
    DeploymentRefusedError,
    ExportVerificationError,
    ModelNotFoundError,
)
from .handle import ModelHandle
from .manager import ModelManager

__all__ = [
    "ArtifactIntegrityError",
    "ArtifactStore",
    "DeployedModel",
    "Deployment",
    "DeploymentRefusedError",
    "ExportVerificationError",
    "ModelHandle",
    "ModelManager",
    "ModelNotFoundError",
    "ModelRegistry",
    "ModelVersion",
    "MusicTransformer",
    "MusicTransformerConfig",
    "tensorrt_status",
]

_LAZY = {
    "ModelRegistry": "registry",
    "ModelVersion": "registry",
    "Deployment": "registry",
    "ArtifactStore": "store",
    "DeployedModel": "deploy",
    "tensorrt_status": "deploy",
    "MusicTransformer": "torch_nets",
    "MusicTransformerConfig": "torch_nets",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
