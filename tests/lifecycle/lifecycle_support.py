"""Data and settings shared by the lifecycle tests (a module name of its own: the test folders
have no __init__, so a plain ``conftest`` import could find another folder's)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

GTZAN = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "gtzan-features-5genre"
GTZAN_CSV = GTZAN / "features_3_sec.csv"
GENRES = ["blues", "classical", "hiphop", "pop", "rock"]


def gtzan_or_synthetic() -> tuple[np.ndarray, np.ndarray, list[str], str]:
    """``(X float32, genre labels, feature names, source)``."""
    if GTZAN_CSV.is_file():
        import pandas as pd

        frame = pd.read_csv(GTZAN_CSV)
        y = frame.pop("label").to_numpy().astype(str)
        x = frame.select_dtypes("number").to_numpy(dtype=np.float32)
        return x, y, [str(c) for c in frame.select_dtypes("number").columns], "gtzan"
    rng = np.random.default_rng(0)
    n, d = 2500, 53
    centers = rng.normal(0, 1.5, (len(GENRES), d))
    idx = rng.integers(0, len(GENRES), n)
    x = (centers[idx] + rng.normal(0, 1.0, (n, d))).astype(np.float32)
    return x, np.asarray(GENRES)[idx], [f"f{i}" for i in range(d)], "synthetic"


XGB = {
    "framework": "xgboost",
    "task": "classification",
    "hyperparameters": {"n_estimators": 30, "max_depth": 4, "n_jobs": 1},
}
