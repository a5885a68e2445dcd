"""A drop-in for ``import librosa``: librosa 0.11's module paths on ml_utilities' core.

>>> import ml_utilities.compat.librosa as librosa

gives ``librosa.stft``, ``librosa.load``, ``librosa.feature.mfcc``, ``librosa.filters.mel``, ...
computed by ml_utilities (same signatures, defaults, shapes, dtypes and exceptions as
librosa 0.11). Any name ml_utilities does not implement is forwarded to the real librosa module
of the same path when librosa is installed (imported only then), and otherwise raises an
``AttributeError`` naming it. ``librosa.ParameterError`` is
:class:`ml_utilities.exceptions.ParameterError`, and forwarded functions raise it too.

Importing this package imports neither librosa nor scipy nor soundfile.
"""

from __future__ import annotations

from typing import Any

from ._mirror import mirror

# The librosa API this namespace mirrors (not the installed librosa's version).
__version__ = "0.11.0"

_SUBMODULES = ("beat", "core", "decompose", "effects", "feature", "filters", "onset", "util")

_IMPLEMENTED = {
    "cqt": "ml_utilities.audio",
    "estimate_tuning": "ml_utilities.audio",
    "piptrack": "ml_utilities.audio",
    "pitch_tuning": "ml_utilities.audio",
    # core.spectrum
    "stft": "ml_utilities.audio",
    "power_to_db": "ml_utilities.audio",
    "amplitude_to_db": "ml_utilities.audio",
    "db_to_power": "ml_utilities.audio",
    "db_to_amplitude": "ml_utilities.audio",
    # core.audio
    "load": "ml_utilities.audio",
    "resample": "ml_utilities.audio",
    "get_duration": "ml_utilities.audio",
    "get_samplerate": "ml_utilities.audio",
    # core.convert
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
    # util.exceptions
    "ParameterError": "ml_utilities.exceptions",
    "LibrosaError": "ml_utilities.exceptions:MLUtilitiesError",
}

__all__ = sorted(set(_IMPLEMENTED) | set(_SUBMODULES))

_getattr, _dir = mirror(__name__, _IMPLEMENTED, _SUBMODULES)


def __getattr__(name: str) -> Any:
    return _getattr(name)


def __dir__() -> list[str]:
    return _dir()
