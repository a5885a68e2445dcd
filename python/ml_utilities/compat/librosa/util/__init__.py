"""Mirror of ``librosa.util``: ``util.exceptions`` maps librosa's exceptions to
ml_utilities'; every other utility forwarded to librosa.util.
"""

from __future__ import annotations

from typing import Any

from .._mirror import mirror

_IMPLEMENTED: dict[str, str] = {}

_SUBMODULES = ("exceptions",)

__all__ = sorted(set(_IMPLEMENTED) | set(_SUBMODULES))

_getattr, _dir = mirror(__name__, _IMPLEMENTED, _SUBMODULES)


def __getattr__(name: str) -> Any:
    return _getattr(name)


def __dir__() -> list[str]:
    return _dir()
