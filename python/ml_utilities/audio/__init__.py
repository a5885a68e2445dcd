"""librosa-compatible audio functions on a compiled core.

Every function takes numpy arrays of shape ``(..., n)`` (leading axes are independent channels)
and returns what librosa 0.11 returns: same shapes, dtypes and exceptions. The functions with a
CUDA twin also take CuPy arrays and torch CUDA tensors (:mod:`ml_utilities.gpu.dispatch`).
Submodules are imported on first use so that ``import ml_utilities`` stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    # spectrum.py: STFT and decibel conversions
    "stft": "spectrum",
    "spectrogram": "spectrum",
    "power_to_db": "spectrum",
    "amplitude_to_db": "spectrum",
    "db_to_power": "spectrum",
    "db_to_amplitude": "spectrum",
    # feature.py: mel, MFCC, deltas
    "melspectrogram": "feature",
    "mfcc": "feature",
    "delta": "feature",
    # spectral.py: spectral and temporal features (one STFT for all of them)
    "spectral_centroid": "spectral",
    "spectral_bandwidth": "spectral",
    "spectral_rolloff": "spectral",
    "spectral_contrast": "spectral",
    "spectral_flatness": "spectral",
    "spectral_flux": "spectral",
    "zero_crossing_rate": "spectral",
    "rms": "spectral",
    "frame_energy": "spectral",
    # onset.py: onset strength, onset detection, peak picking
    "onset_strength": "onset",
    "onset_strength_multi": "onset",
    "onset_detect": "onset",
    "onset_backtrack": "onset",
    "peak_pick": "onset",
    # tempo_estimation.py: tempogram and tempo (a module named tempo would shadow the function)
    "tempo": "tempo_estimation",
    "tempogram": "tempo_estimation",
    "tempo_frequencies": "tempo_estimation",
    # beat.py: beat tracking
    "beat_track": "beat",
    # pitch.py: pitch tracking and tuning
    "piptrack": "pitch",
    "estimate_tuning": "pitch",
    "pitch_tuning": "pitch",
    # chroma.py: chroma and tonnetz
    "chroma_stft": "chroma",
    "chroma_cqt": "chroma",
    "tonnetz": "chroma",
    # constantq.py: constant-Q transform
    "cqt": "constantq",
    # decompose.py: harmonic/percussive separation
    "hpss": "decompose",
    "effects_hpss": "decompose",
    "harmonicity": "decompose",
    # filters.py: filter banks and windows
    "mel": "filters",
    "dct": "filters",
    "get_window": "filters",
    # io.py: decoding and resampling
    "load": "io",
    "resample": "io",
    "get_duration": "io",
    "get_samplerate": "io",
    # convert.py: time, frame, frequency conversions
    "frames_to_time": "convert",
    "time_to_frames": "convert",
    "frames_to_samples": "convert",
    "samples_to_frames": "convert",
    "time_to_samples": "convert",
    "samples_to_time": "convert",
    "fft_frequencies": "convert",
    "mel_frequencies": "convert",
    "hz_to_mel": "convert",
    "mel_to_hz": "convert",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'ml_utilities.audio' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    from ..gpu.dispatch import GPU_FUNCTIONS, dispatching  # imports neither CuPy nor torch

    if name in GPU_FUNCTIONS:
        # numpy input goes straight to the CPU function; a CuPy array or torch CUDA tensor runs
        # the CUDA twin in ml_utilities.gpu.features and comes back as the same kind of array
        value = dispatching(value, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
