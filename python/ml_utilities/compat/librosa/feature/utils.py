"""Mirror of ``librosa.feature.utils``: ``delta`` from ml_utilities; every other name
forwarded to librosa.feature.utils.
"""

from __future__ import annotations

from typing import Any

from .._mirror import mirror

_IMPLEMENTED = {
    "delta": "ml_utilities.audio",
}

__all__ = sorted(_IMPLEMENTED)

_getattr, _dir = mirror(__name__, _IMPLEMENTED)


def __getattr__(name: str) -> Any:
    return _getattr(name)


def __dir__() -> list[str]:
    return _dir()
