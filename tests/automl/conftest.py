"""Fixtures of the AutoML tests: small synthetic tables, and an isolated ML_UTILITIES_HOME."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    """Registry, artifacts and Optuna's SQLite studies in a temporary ML_UTILITIES_HOME."""
    from ml_utilities.config import reload_settings

    monkeypatch.setenv("ML_UTILITIES_HOME", str(tmp_path / "home"))
    reload_settings()
    yield
    monkeypatch.undo()
    reload_settings()


@pytest.fixture(scope="session")
def mixed_frame():
    """A classification table of named mixed-type columns, missing values included."""
    import pandas as pd

    rng = np.random.default_rng(7)
    n = 360
    tempo = rng.normal(120, 20, n)
    energy = rng.uniform(0, 1, n)
    genre = rng.choice(["rock", "jazz", "electronic"], n)
    live = rng.random(n) < 0.3
    noise = rng.normal(0, 1, n)
    logit = 0.06 * (tempo - 120) + 3 * (energy - 0.5) + np.where(genre == "electronic", 1.5, 0)
    y = np.where(logit + rng.normal(0, 0.5, n) > 0, "liked", "skipped")
    energy[rng.choice(n, 20, replace=False)] = np.nan
    frame = pd.DataFrame(
        {"audio_tempo": tempo, "energy": energy, "genre": genre, "live": live, "noise": noise}
    )
    return frame, y
