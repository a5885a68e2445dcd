"""Mirror of ``librosa.filters``: ``mel`` and ``get_window`` from ml_utilities; every
other name forwarded to librosa.filters.

``dct`` (a DCT basis) is ml_utilities' own: librosa 0.11 no longer has ``filters.dct``.
"""

from __future__ import annotations

from typing import Any

from ._mirror import mirror

_IMPLEMENTED = {
    "mel": "ml_utilities.audio",
    "dct": "ml_utilities.audio",
    "get_window": "ml_utilities.audio",
}

__all__ = sorted(_IMPLEMENTED)

_getattr, _dir = mirror(__name__, _IMPLEMENTED)


def __getattr__(name: str) -> Any:
    return _getattr(name)


def __dir__() -> list[str]:
    return _dir()
