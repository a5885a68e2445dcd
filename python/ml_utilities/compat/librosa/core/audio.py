"""Mirror of ``librosa.core.audio``: ``load``, ``resample``, ``get_duration`` and
``get_samplerate`` from ml_utilities; every other name forwarded to librosa.core.audio.
"""

from __future__ import annotations

from typing import Any

from .._mirror import mirror

_IMPLEMENTED = {
    "load": "ml_utilities.audio",
    "resample": "ml_utilities.audio",
    "get_duration": "ml_utilities.audio",
    "get_samplerate": "ml_utilities.audio",
}

__all__ = sorted(_IMPLEMENTED)

_getattr, _dir = mirror(__name__, _IMPLEMENTED)


def __getattr__(name: str) -> Any:
    return _getattr(name)


def __dir__() -> list[str]:
    return _dir()
