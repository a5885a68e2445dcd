"""Models registered once per session in a temporary registry, for the serving tests.

Synthetic data with a known structure: 12 features, of which the first three carry the signal.
"""

from __future__ import annotations

import pytest
from serving_support import FEATURE_NAMES, N_FEATURES, Running, make_data  # noqa: F401

#: name -> (training config, task)
MODELS = {
    "xgb-reg": (
        {
            "framework": "xgboost",
            "task": "regression",
            "hyperparameters": {"n_estimators": 60, "max_depth": 4, "n_jobs": 1},
        },
        "regression",
    ),
    "xgb-clf": (
        {
            "framework": "xgboost",
            "task": "classification",
            "hyperparameters": {"n_estimators": 40, "max_depth": 3, "n_jobs": 1},
        },
        "classification",
    ),
    "lgb-clf": (
        {
            "framework": "lightgbm",
            "task": "classification",
            "hyperparameters": {"n_estimators": 40, "num_leaves": 15},
        },
        "classification",
    ),
    "rf-reg": (
        {
            "framework": "sklearn",
            "architecture": "random_forest",
            "task": "regression",
            "hyperparameters": {"n_estimators": 20, "max_depth": 6, "n_jobs": 1},
        },
        "regression",
    ),
    "mlp-clf": (
        {
            "framework": "pytorch",
            "architecture": "mlp",
            "task": "classification",
            "hyperparameters": {"hidden_sizes": [32], "epochs": 8, "batch_size": 64},
        },
        "classification",
    ),
}


@pytest.fixture(scope="session")
def serving_registry(tmp_path_factory):
    """A registry with every model of :data:`MODELS` (version 1), plus ``xgb-reg`` v2 under the
    alias ``champion``; returns ``(registry, trained handles by name)``."""
    from ml_utilities.models import ModelManager, ModelRegistry

    root = tmp_path_factory.mktemp("serving-registry")
    registry = ModelRegistry(f"sqlite:///{root / 'registry.db'}", root / "artifacts")
    manager = ModelManager(registry)
    handles = {}
    for name, (config, task) in MODELS.items():
        x, y = make_data(900, seed=len(name), task=task)
        handle = manager.train_model_sync(x, y, {**config, "name": name, "seed": 0})
        registry.register(handle, metadata={"feature_names": FEATURE_NAMES})
        handles[name] = handle
    x, y = make_data(900, seed=99, task="regression")
    v2 = manager.train_model_sync(x, y, {**MODELS["xgb-reg"][0], "name": "xgb-reg", "seed": 1})
    registry.register(
        v2, metadata={"feature_names": FEATURE_NAMES, "version": "2.0.1"}, aliases=["champion"]
    )
    handles["xgb-reg@2"] = v2
    yield registry, handles
    registry.dispose()


@pytest.fixture
def service(serving_registry):
    from ml_utilities.serving import PredictionService

    registry, _ = serving_registry
    svc = PredictionService(registry=registry, config={"gpu_enabled": False})
    yield svc
    svc.close_sync()


@pytest.fixture(params=["result-cache", "no-result-cache"])
def served(request, serving_registry):
    """The front end over a service with its default in-process result cache (predict requests
    answered through ``predict_json`` in a task), or without one (the callback path:
    ``submit_json``)."""
    from ml_utilities.serving import PredictionService
    from ml_utilities.serving.app import create_app

    registry, _ = serving_registry
    config = {"gpu_enabled": False}
    if request.param == "no-result-cache":
        config["prediction_cache_ttl"] = 0
    service = PredictionService(registry=registry, config=config)
    app = create_app(service)
    running = Running(app)
    yield running
    running.shutdown()
