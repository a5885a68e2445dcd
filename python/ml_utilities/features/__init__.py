"""FeatureExtractor: the specification's five feature groups from one native STFT pass."""

from __future__ import annotations

from .catalog import extract_catalog, find_audio_files
from .config import DEFAULT_FEATURE_CONFIG, resolve_config
from .extractor import FeatureExtractor
from .summary import TrackFeatures, summarize

__all__ = [
    "DEFAULT_FEATURE_CONFIG",
    "FeatureExtractor",
    "TrackFeatures",
    "extract_catalog",
    "find_audio_files",
    "resolve_config",
    "summarize",
]
