"""The ``feature_config`` dictionary of FeatureExtractor: defaults, validation, merging."""

from __future__ import annotations

import copy
from typing import Any

from ..exceptions import ParameterError

__all__ = ["DEFAULT_FEATURE_CONFIG", "SPECTRAL_FEATURES", "TEMPORAL_FEATURES", "resolve_config"]

SPECTRAL_FEATURES = ("centroid", "bandwidth", "rolloff", "flux", "contrast", "flatness")
TEMPORAL_FEATURES = ("zcr", "energy", "rms")

# Every group of the specification's result, with the settings each group understands.
DEFAULT_FEATURE_CONFIG: dict[str, dict[str, Any]] = {
    "stft": {"n_fft": 2048, "hop_length": 512, "window": "hann", "center": True},
    "temporal": {"features": list(TEMPORAL_FEATURES), "frame_length": 2048},
    "spectral": {"features": ["centroid", "bandwidth", "rolloff", "flux"], "roll_percent": 0.85},
    "harmonic": {"tonnetz": True, "harmonicity": True},
    "chroma": {"n_chroma": 12, "harmonic": False, "tuning": None},
    "rhythm": {"tempo_estimation": True, "beat_tracking": True, "onset_detection": True},
    "mfcc": {
        "n_mfcc": 13,
        "n_mels": 128,
        "fmin": 0.0,
        "fmax": None,
        "lifter": 0.0,
        "delta_width": 9,
    },
}

# Keys a section may set that change the STFT shared by the whole extraction.
_STFT_KEYS = ("n_fft", "hop_length")

_TYPES: dict[str, dict[str, tuple[type, ...]]] = {
    "stft": {"n_fft": (int,), "hop_length": (int,), "window": (str, tuple), "center": (bool,)},
    "temporal": {"features": (list, tuple), "frame_length": (int,), "hop_length": (int,)},
    "spectral": {
        "features": (list, tuple),
        "roll_percent": (float, int),
        "n_fft": (int,),
        "hop_length": (int,),
    },
    "harmonic": {"tonnetz": (bool,), "harmonicity": (bool,)},
    "chroma": {
        "n_chroma": (int,),
        "harmonic": (bool,),
        "tuning": (float, int, type(None)),
        "n_fft": (int,),
        "hop_length": (int,),
    },
    "rhythm": {
        "tempo_estimation": (bool,),
        "beat_tracking": (bool,),
        "onset_detection": (bool,),
        "hop_length": (int,),
    },
    "mfcc": {
        "n_mfcc": (int,),
        "n_mels": (int,),
        "fmin": (float, int),
        "fmax": (float, int, type(None)),
        "lifter": (float, int),
        "delta_width": (int,),
        "n_fft": (int,),
        "hop_length": (int,),
    },
}


def resolve_config(feature_config: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """Merge ``feature_config`` over the defaults, refusing unknown sections, keys and values.

    The STFT is shared by every group, so ``n_fft`` / ``hop_length`` given in any section set it
    for all (giving two different values is an error).

    Raises
    ------
    ParameterError
        Naming the section, key and bad value.
    """
    config = copy.deepcopy(DEFAULT_FEATURE_CONFIG)
    if feature_config is None:
        return config
    if not isinstance(feature_config, dict):
        raise ParameterError(f"feature_config must be a dict, got {type(feature_config).__name__}")
    stft_overrides: dict[str, tuple[str, Any]] = {}
    for section, values in feature_config.items():
        if section not in _TYPES:
            raise ParameterError(
                f"unknown feature_config section {section!r}; expected one of {sorted(_TYPES)}"
            )
        if not isinstance(values, dict):
            raise ParameterError(f"feature_config[{section!r}] must be a dict, got {values!r}")
        for key, value in values.items():
            allowed = _TYPES[section].get(key)
            if allowed is None:
                raise ParameterError(
                    f"unknown key {key!r} in feature_config[{section!r}]; "
                    f"expected one of {sorted(_TYPES[section])}"
                )
            if isinstance(value, bool) and bool not in allowed:
                raise ParameterError(
                    f"feature_config[{section!r}][{key!r}]={value!r} has the wrong type"
                )
            if not isinstance(value, allowed):
                raise ParameterError(
                    f"feature_config[{section!r}][{key!r}]={value!r} must be of type "
                    f"{' or '.join(t.__name__ for t in allowed)}"
                )
            if key in _STFT_KEYS:
                previous = stft_overrides.get(key)
                if previous is not None and previous[1] != value:
                    raise ParameterError(
                        f"feature_config sets {key} to {previous[1]!r} in {previous[0]!r} and to "
                        f"{value!r} in {section!r}: the extraction shares one STFT"
                    )
                stft_overrides[key] = (section, value)
                config["stft"][key] = value
                continue
            config[section][key] = value
    _check_values(config)
    return config


def _check_values(config: dict[str, dict[str, Any]]) -> None:
    def positive(section: str, key: str) -> None:
        value = config[section][key]
        if value is not None and value <= 0:
            raise ParameterError(f"feature_config[{section!r}][{key!r}]={value!r} must be positive")

    positive("stft", "n_fft")
    positive("stft", "hop_length")
    positive("temporal", "frame_length")
    positive("mfcc", "n_mfcc")
    positive("mfcc", "n_mels")
    positive("chroma", "n_chroma")
    for section, names in (("spectral", SPECTRAL_FEATURES), ("temporal", TEMPORAL_FEATURES)):
        unknown = [f for f in config[section]["features"] if f not in names]
        if unknown:
            raise ParameterError(
                f"unknown {section} feature(s) {unknown}; expected some of {list(names)}"
            )
    if not 0 < config["spectral"]["roll_percent"] < 1:
        raise ParameterError(
            f"feature_config['spectral']['roll_percent']={config['spectral']['roll_percent']!r} "
            "must lie in (0, 1)"
        )
    width = config["mfcc"]["delta_width"]
    if width < 3 or width % 2 != 1:
        raise ParameterError(
            f"feature_config['mfcc']['delta_width']={width} must be an odd integer >= 3"
        )
    if config["mfcc"]["lifter"] < 0:
        raise ParameterError(
            f"feature_config['mfcc']['lifter']={config['mfcc']['lifter']} must be >= 0"
        )
