"""Mirror of ``librosa.core``: STFT, decibels, I/O and conversions from
ml_utilities; every other name forwarded to librosa.core.
"""

from __future__ import annotations

from typing import Any

from .._mirror import mirror

_IMPLEMENTED = {
    "cqt": "ml_utilities.audio",
    "estimate_tuning": "ml_utilities.audio",
    "piptrack": "ml_utilities.audio",
    "pitch_tuning": "ml_utilities.audio",
    "stft": "ml_utilities.audio",
    "power_to_db": "ml_utilities.audio",
    "amplitude_to_db": "ml_utilities.audio",
    "db_to_power": "ml_utilities.audio",
    "db_to_amplitude": "ml_utilities.audio",
    "load": "ml_utilities.audio",
    "resample": "ml_utilities.audio",
    "get_duration": "ml_utilities.audio",
    "get_samplerate": "ml_utilities.audio",
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

_SUBMODULES = (
    "audio",
    "convert",
    "spectrum",
)

__all__ = sorted(set(_IMPLEMENTED) | set(_SUBMODULES))

_getattr, _dir = mirror(__name__, _IMPLEMENTED, _SUBMODULES)


def __getattr__(name: str) -> Any:
    return _getattr(name)


def __dir__() -> list[str]:
    return _dir()
