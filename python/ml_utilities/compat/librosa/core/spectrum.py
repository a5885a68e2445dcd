"""Mirror of ``librosa.core.spectrum``: the STFT and decibel conversions from
ml_utilities; every other name forwarded to librosa.core.spectrum.
"""

from __future__ import annotations

from typing import Any

from .._mirror import mirror

_IMPLEMENTED = {
    "stft": "ml_utilities.audio",
    "power_to_db": "ml_utilities.audio",
    "amplitude_to_db": "ml_utilities.audio",
    "db_to_power": "ml_utilities.audio",
    "db_to_amplitude": "ml_utilities.audio",
}

__all__ = sorted(_IMPLEMENTED)

_getattr, _dir = mirror(__name__, _IMPLEMENTED)


def __getattr__(name: str) -> Any:
    return _getattr(name)


def __dir__() -> list[str]:
    return _dir()
