"""Serving: the specification's PredictionService, its native dynamic batcher, caches,
explanations, conformal intervals, Prometheus metrics and the HTTP routes (served by the
package's HTTP/1.1 front end, or as an ASGI app: ``create_app``).

``import ml_utilities.serving`` stays light: the service, the frameworks, the HTTP server and
Redis are imported when first used.

Examples
--------
>>> from ml_utilities.serving import PredictionService
>>> service = PredictionService()  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import Any

from .errors import (
    BatcherClosedError,
    BatchError,
    FeatureValueError,
    ModelInputError,
    Overloaded,
    RequestTimeoutError,
    ServingError,
)

__all__ = [
    "BatchError",
    "BatcherClosedError",
    "DynamicBatcher",
    "FeatureValueError",
    "ModelInputError",
    "Overloaded",
    "PredictionService",
    "RecommenderService",
    "RequestTimeoutError",
    "ServiceConfig",
    "ServingError",
    "SplitConformal",
    "create_app",
    "deploy_recommendation_system",
    "deploy_recommendation_system_sync",
]

_LAZY = {
    "DynamicBatcher": "batching",
    "PredictionService": "service",
    "RecommenderService": "recommend",
    "deploy_recommendation_system": "recommend",
    "deploy_recommendation_system_sync": "recommend",
    "ServiceConfig": "config",
    "SplitConformal": "conformal",
    "create_app": "app",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
