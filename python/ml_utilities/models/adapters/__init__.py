"""One adapter per framework behind :class:`~ml_utilities.models.adapters.base.Adapter`.

Frameworks are imported when their adapter is built, never when this package is imported.

The built-in frameworks are :data:`FRAMEWORKS`. Packages above ``models`` (the AutoML helper)
and other distributions add theirs without ``models`` importing them: with
:func:`register_adapter` when they are imported, and through the ``ml_utilities.adapters``
entry-point group so that a registry load finds them before anyone imported them (the way
pytest finds its plugins). This package's own ``pyproject.toml`` declares
``automl = "ml_utilities.automl.model:AutoMLAdapter"`` there.
"""

from __future__ import annotations

import functools
import importlib
from importlib.metadata import EntryPoint, entry_points

from ..errors import ParameterError
from .base import Adapter, OnnxExport, TrainingResult

__all__ = [
    "FRAMEWORKS",
    "Adapter",
    "OnnxExport",
    "TrainingResult",
    "adapter_class",
    "canonical_framework",
    "known_frameworks",
    "register_adapter",
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
}
#: the entry-point group where other packages declare adapters ("name = module:Class")
ENTRY_POINT_GROUP = "ml_utilities.adapters"
_REGISTERED: dict[str, type[Adapter]] = {}
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


@functools.cache
def _entry_points() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def register_adapter(framework: str, cls: type[Adapter]) -> None:
    """Make ``framework`` loadable and trainable with the adapter ``cls`` (an Adapter subclass)."""
    if not isinstance(framework, str) or not framework.strip():
        raise ParameterError(f"framework={framework!r}: expected a non-empty name")
    if not (isinstance(cls, type) and issubclass(cls, Adapter)):
        raise ParameterError(f"adapter {cls!r} for {framework!r} is not an Adapter subclass")
    key = framework.strip().lower()
    if key in FRAMEWORKS or key in _ALIASES:
        raise ParameterError(f"framework={framework!r} is built in; choose another name")
    _REGISTERED[key] = cls


def known_frameworks() -> list[str]:
    """Every framework name an adapter is known for: built in, registered or declared."""
    return sorted(set(FRAMEWORKS) | set(_REGISTERED) | set(_entry_points()))


def canonical_framework(name: object) -> str:
    if not isinstance(name, str):
        raise ParameterError(f"framework={name!r}: expected one of {known_frameworks()}")
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in FRAMEWORKS and key not in _REGISTERED and key not in _entry_points():
        raise ParameterError(
            f"framework={name!r} is not supported; choose one of {known_frameworks()}"
        )
    return key


def adapter_class(framework: str) -> type[Adapter]:
    key = canonical_framework(framework)
    if key in FRAMEWORKS:
        module, cls = FRAMEWORKS[key].split(":")
        return getattr(importlib.import_module(f"{__name__}.{module}"), cls)
    if key not in _REGISTERED:
        # importing the declared module registers it; the class it names is the adapter
        loaded = _entry_points()[key].load()
        if key not in _REGISTERED:
            register_adapter(key, loaded)
    return _REGISTERED[key]
