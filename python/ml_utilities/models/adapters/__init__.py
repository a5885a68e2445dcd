"""One adapter per framework behind :class:`~ml_utilities.models.adapters.base.Adapter`.

Frameworks are imported when their adapter is built, never when this package is imported.
"""

from __future__ import annotations

import importlib

from ..errors import ParameterError
from .base import Adapter, OnnxExport, TrainingResult

__all__ = [
    "FRAMEWORKS",
    "Adapter",
    "OnnxExport",
    "TrainingResult",
    "adapter_class",
    "canonical_framework",
]

#: canonical framework name -> "module:Class"
FRAMEWORKS: dict[str, str] = {
    "sklearn": "sklearn:SklearnAdapter",
    "xgboost": "boosting:XGBoostAdapter",
    "lightgbm": "boosting:LightGBMAdapter",
    "pytorch": "torch:TorchAdapter",
    "tensorflow": "keras:KerasAdapter",
    "transformers": "hf:TransformersAdapter",
    "onnx": "onnx:OnnxAdapter",
    "automl": "automl:AutoMLAdapter",
}
_ALIASES = {
    "scikit-learn": "sklearn",
    "scikit_learn": "sklearn",
    "torch": "pytorch",
    "keras": "tensorflow",
    "tf": "tensorflow",
    "huggingface": "transformers",
    "hugging_face": "transformers",
    "hf": "transformers",
    "onnxruntime": "onnx",
}


def canonical_framework(name: object) -> str:
    if not isinstance(name, str):
        raise ParameterError(f"framework={name!r}: expected one of {sorted(FRAMEWORKS)}")
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in FRAMEWORKS:
        raise ParameterError(
            f"framework={name!r} is not supported; choose one of {sorted(FRAMEWORKS)}"
        )
    return key


def adapter_class(framework: str) -> type[Adapter]:
    module, cls = FRAMEWORKS[canonical_framework(framework)].split(":")
    return getattr(importlib.import_module(f"{__name__}.{module}"), cls)
