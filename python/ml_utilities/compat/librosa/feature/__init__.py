"""Mirror of ``librosa.feature``: ``melspectrogram``, ``mfcc`` and ``delta`` from
ml_utilities; every other feature forwarded to librosa.feature.
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
    "tempo": "ml_utilities.audio",
    "melspectrogram": "ml_utilities.audio",
    "mfcc": "ml_utilities.audio",
    "delta": "ml_utilities.audio",
}

_SUBMODULES = (
    "spectral",
    "utils",
)

__all__ = sorted(set(_IMPLEMENTED) | set(_SUBMODULES))

_getattr, _dir = mirror(__name__, _IMPLEMENTED, _SUBMODULES)


def __getattr__(name: str) -> Any:
    return _getattr(name)


def __dir__() -> list[str]:
    return _dir()
