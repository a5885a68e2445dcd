"""Shared cases and helpers of the model manager's tests (imported by conftest and tests)."""

from __future__ import annotations

import os
import sys
import time

# (framework, architecture, hyperparameters, data set, task)
ADAPTER_CASES = {
    "sklearn": (
        "sklearn",
        "random_forest",
        {"n_estimators": 15, "max_depth": 6},
        "tabular",
        "classification",
    ),
    "sklearn_linear": ("sklearn", "linear", {}, "tabular", "regression"),
    "xgboost": (
        "xgboost",
        "gbtree",
        {"n_estimators": 40, "max_depth": 3},
        "tabular",
        "classification",
    ),
    "lightgbm": (
        "lightgbm",
        "gbdt",
        {"n_estimators": 40, "num_leaves": 8},
        "tabular",
        "regression",
    ),
    "pytorch_mlp": (
        "pytorch",
        "mlp",
        {"hidden_sizes": [32, 16], "epochs": 15},
        "tabular",
        "classification",
    ),
    "pytorch_cnn": (
        "pytorch",
        "cnn",
        {"channels": [8, 16], "epochs": 4},
        "mels",
        "audio_classification",
    ),
    "pytorch_transformer": (
        "pytorch",
        "transformer",
        {"hidden_size": 32, "num_layers": 2, "num_heads": 4, "epochs": 4},
        "sequences",
        "audio_classification",
    ),
}
MODULES = {"sklearn": "skops", "xgboost": "xgboost", "lightgbm": "lightgbm", "pytorch": "torch"}


def case_data(request, case):
    framework, arch, hp, dataset, task = ADAPTER_CASES[case]
    data = request.getfixturevalue(dataset)
    x, labels = data[0], data[1]
    if task == "regression":
        labels = data[2]
    return (
        x,
        labels,
        {
            "framework": framework,
            "architecture": arch,
            "task": task,
            "hyperparameters": hp,
            "name": case.replace("_", "-"),
        },
    )


def subprocess_env() -> dict[str, str]:
    """The environment for a child Python that imports the same ml_utilities as this one."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    return env


def wait_for(predicate, timeout=30.0, interval=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False
