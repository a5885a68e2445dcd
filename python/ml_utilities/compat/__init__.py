"""Drop-in namespaces that mirror other libraries' module paths.

``import ml_utilities.compat.librosa as librosa`` gives librosa 0.11's module layout: what
ml_utilities implements comes from :mod:`ml_utilities.audio`, everything else is forwarded to
librosa itself when it is installed. Nothing here imports librosa until a caller asks for a name
ml_utilities does not implement.
"""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["librosa"]


def __getattr__(name: str) -> ModuleType:
    if name in __all__:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return list(__all__)
