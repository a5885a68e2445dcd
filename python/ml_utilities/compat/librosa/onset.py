"""Mirror of ``librosa.onset``: onset strength and detection natively; other names are
forwarded to librosa.onset when librosa is installed.
"""

from __future__ import annotations

from typing import Any

from ._mirror import mirror

_IMPLEMENTED: dict[str, str] = {
    "onset_strength": "ml_utilities.audio",
    "onset_detect": "ml_utilities.audio",
    "onset_backtrack": "ml_utilities.audio.onset",
    "onset_strength_multi": "ml_utilities.audio.onset",
}

__all__ = sorted(_IMPLEMENTED)

_getattr, _dir = mirror(__name__, _IMPLEMENTED)


def __getattr__(name: str) -> Any:
    return _getattr(name)


def __dir__() -> list[str]:
    return _dir()
