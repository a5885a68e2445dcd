"""Models of the serving benchmarks: an XGBoost classifier and an MLP, trained on synthetic data.

XGBoost: 32 features, 3 classes, 200 rounds of depth 6. MLP: 32 -> 256 -> 128 -> 3.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

N_FEATURES = 32
CLIENTS = 64


def train_models(root: Path) -> tuple[Any, dict[str, Any]]:
    """A registry under ``root`` holding ``xgb`` and ``mlp`` (trained unless ``root`` already
    holds them); returns ``(registry, handles)``."""
    from ml_utilities.models import ModelManager, ModelRegistry

    fresh = not (root / "registry.db").exists()
    reg = ModelRegistry(f"sqlite:///{root / 'registry.db'}", root / "artifacts")
    if not fresh:  # trained by an earlier run with the same --workdir
        return reg, {name: reg.load(name) for name in ("xgb", "mlp")}
    manager = ModelManager(reg)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4000, N_FEATURES)).astype(np.float32)
    y = np.digitize(x[:, 0] + x[:, 1] * x[:, 2] + 0.3 * rng.standard_normal(4000), [-0.5, 0.5])
    handles = {
        "xgb": manager.train_model_sync(
            x,
            y,
            {
                "framework": "xgboost",
                "name": "xgb",
                "early_stopping_patience": 0,
                "hyperparameters": {"n_estimators": 200, "max_depth": 6},
            },
        ),
        "mlp": manager.train_model_sync(
            x,
            y,
            {
                "framework": "pytorch",
                "architecture": "mlp",
                "name": "mlp",
                "hyperparameters": {"hidden_sizes": [256, 128], "epochs": 5},
            },
        ),
    }
    for h in handles.values():
        reg.register(h)
    return reg, handles


def query_rows(n: int = 2048) -> np.ndarray:
    """The rows the load generators send (not the training rows)."""
    return np.random.default_rng(1).standard_normal((n, N_FEATURES)).astype(np.float32)
