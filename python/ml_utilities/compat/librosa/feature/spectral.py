"""Mirror of ``librosa.feature.spectral``: ``melspectrogram`` and ``mfcc`` from
ml_utilities; every other name forwarded to librosa.feature.spectral.
"""

from __future__ import annotations

from typing import Any

from .._mirror import mirror

_IMPLEMENTED = {
    "spectral_centroid": "ml_utilities.audio",
    "spectral_bandwidth": "ml_utilities.audio",
    "spectral_rolloff": "ml_utilities.audio",
    "spectral_contrast": "ml_utilities.audio",
    "spectral_flatness": "ml_utilities.audio",
    "zero_crossing_rate": "ml_utilities.audio",
    "rms": "ml_utilities.audio",
    "chroma_stft": "ml_utilities.audio",
    "chroma_cqt": "ml_utilities.audio",
    "tonnetz": "ml_utilities.audio",
    "melspectrogram": "ml_utilities.audio",
    "mfcc": "ml_utilities.audio",
}

__all__ = sorted(_IMPLEMENTED)

_getattr, _dir = mirror(__name__, _IMPLEMENTED)


def __getattr__(name: str) -> Any:
    return _getattr(name)


def __dir__() -> list[str]:
    return _dir()
