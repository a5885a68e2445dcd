"""Mirror of ``librosa.effects``: HPSS natively; other names are forwarded to
librosa.effects when librosa is installed.
"""

from __future__ import annotations

from typing import Any

from ._mirror import mirror

_IMPLEMENTED: dict[str, str] = {
    "hpss": "ml_utilities.audio.decompose:effects_hpss",
}

__all__ = sorted(_IMPLEMENTED)

_getattr, _dir = mirror(__name__, _IMPLEMENTED)


def __getattr__(name: str) -> Any:
    return _getattr(name)


def __dir__() -> list[str]:
    return _dir()
