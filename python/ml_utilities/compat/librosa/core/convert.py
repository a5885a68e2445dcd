"""Mirror of ``librosa.core.convert``: time, frame and frequency conversions from
ml_utilities; every other name forwarded to librosa.core.convert.
"""

from __future__ import annotations

from typing import Any

from .._mirror import mirror

_IMPLEMENTED = {
    "frames_to_time": "ml_utilities.audio",
    "time_to_frames": "ml_utilities.audio",
    "frames_to_samples": "ml_utilities.audio",
    "samples_to_frames": "ml_utilities.audio",
    "time_to_samples": "ml_utilities.audio",
    "samples_to_time": "ml_utilities.audio",
    "fft_frequencies": "ml_utilities.audio",
    "mel_frequencies": "ml_utilities.audio",
    "hz_to_mel": "ml_utilities.audio",
    "mel_to_hz": "ml_utilities.audio",
}

__all__ = sorted(_IMPLEMENTED)

_getattr, _dir = mirror(__name__, _IMPLEMENTED)


def __getattr__(name: str) -> Any:
    return _getattr(name)


def __dir__() -> list[str]:
    return _dir()
