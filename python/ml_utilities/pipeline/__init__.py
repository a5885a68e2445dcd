"""DataPipeline: one configuration from data sources to a validated, registered model.

``import ml_utilities.pipeline`` imports pandas and scikit-learn's base classes; database,
Redis, S3 and HTTP clients are imported when a source of their type is read.

Examples
--------
>>> from ml_utilities.pipeline import DataPipeline
>>> pipeline = DataPipeline()  # doctest: +SKIP
>>> results = await pipeline.run_complete_pipeline(  # doctest: +SKIP
...     target_column="user_satisfaction", config=pipeline_config)
"""

from __future__ import annotations

from .core import DataPipeline
from .emotion import (
    EmotionDataset,
    extract_audio_emotion_features,
    extract_audio_emotion_features_sync,
    extract_lyrics_features,
    extract_lyrics_features_sync,
    load_emotion_dataset,
)
from .errors import DataValidationError, ParameterError, PipelineConfigError, SourceError
from .features import FeatureBuilder, PolynomialExpansion, user_features
from .multimodal import MultimodalAdapter, MultimodalModel
from .scale import fit_incremental
from .sources import iter_batches, quote_identifier, read_source, read_source_async
from .training import PipelineModel
from .validation import population_stability_index, validate_frame

__all__ = [
    "DataPipeline",
    "DataValidationError",
    "EmotionDataset",
    "FeatureBuilder",
    "MultimodalAdapter",
    "MultimodalModel",
    "ParameterError",
    "PipelineConfigError",
    "PipelineModel",
    "PolynomialExpansion",
    "SourceError",
    "extract_audio_emotion_features",
    "extract_audio_emotion_features_sync",
    "extract_lyrics_features",
    "extract_lyrics_features_sync",
    "fit_incremental",
    "iter_batches",
    "load_emotion_dataset",
    "population_stability_index",
    "quote_identifier",
    "read_source",
    "read_source_async",
    "user_features",
    "validate_frame",
]
