"""Fixtures of the model manager's tests: small data sets, trained models, registries on SQLite
and on a real PostgreSQL server started here from Debian's binaries."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from model_cases import ADAPTER_CASES, MODULES, case_data

# the [models] extra; TensorFlow and transformers are optional and skipped test by test
REQUIRED = {
    "sqlalchemy": "SQLAlchemy",
    "sklearn": "scikit-learn",
    "skops": "skops",
    "xgboost": "xgboost-cpu",
    "lightgbm": "lightgbm",
    "torch": "torch",
    "safetensors": "safetensors",
    "onnx": "onnx",
    "onnxruntime": "onnxruntime",
    "skl2onnx": "skl2onnx",
    "onnxmltools": "onnxmltools",
    "fsspec": "fsspec",
}
MISSING = sorted(pkg for mod, pkg in REQUIRED.items() if importlib.util.find_spec(mod) is None)
HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config, items):
    if not MISSING:
        return
    skip = pytest.mark.skip(
        reason=f"the model manager's tests need {', '.join(MISSING)} "
        "(pip install 'ml_utilities[models]')"
    )
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(skip)


@pytest.fixture(params=["sqlite", "postgresql"])
def registry_url(request, tmp_path):
    """The registry's database: SQLite in a temp folder, then a real PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'registry.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def manager(registry_url, tmp_path):
    from ml_utilities.models import ModelManager

    m = ModelManager(registry_url=registry_url, artifact_root=tmp_path / "artifacts")
    yield m
    m.registry.dispose()


# -- data and trained models ----------------------------------------------------------------------
@pytest.fixture(scope="session")
def tabular():
    """400 rows of 8 features, string labels of 3 genres, and a regression target."""
    rng = np.random.default_rng(7)
    x = rng.standard_normal((400, 8)).astype(np.float32)
    score = x[:, 0] + 0.5 * x[:, 1] - 0.25 * x[:, 2]
    y = np.where(score > 0.5, "rock", np.where(score < -0.5, "jazz", "pop"))
    target = (2.0 * x[:, 0] - x[:, 3] + 0.1 * rng.standard_normal(400)).astype(np.float32)
    return x, y, target


@pytest.fixture(scope="session")
def sequences():
    """160 sequences of 16 frames x 12 features (frame-level features), 2 classes."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal((160, 16, 12)).astype(np.float32)
    y = (x[:, :, 0].mean(axis=1) + 0.3 * x[:, :, 1].mean(axis=1) > 0).astype(np.int64)
    x[y == 1, :, 2] += 0.8  # a learnable cue
    return x, y


@pytest.fixture(scope="session")
def mels():
    """120 mel spectrograms of 16 bands x 20 frames, 2 classes (a band brighter in class 1)."""
    rng = np.random.default_rng(13)
    x = rng.random((120, 16, 20)).astype(np.float32)
    y = rng.integers(0, 2, 120)
    x[y == 1, 4:6, :] += 1.0
    return x, y


@pytest.fixture(scope="session")
def trained_models(request):
    """Every adapter case trained once per session (ModelHandle by case name)."""
    from ml_utilities.models import ModelManager

    cache: dict = {}

    def get(case: str):
        if case not in cache:
            framework = ADAPTER_CASES[case][0]
            pytest.importorskip(
                MODULES[framework], reason=f"{framework} models need {MODULES[framework]}"
            )
            x, labels, config = case_data(request, case)
            cache[case] = ModelManager().train_model_sync(x, labels, config, validation_split=0.2)
        return cache[case]

    return get


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    """Point ML_UTILITIES_HOME at a temp folder so no test touches ~/.ml_utilities."""
    from ml_utilities import config

    monkeypatch.setenv("ML_UTILITIES_HOME", str(tmp_path / "home"))
    config.reload_settings()
    yield
    monkeypatch.undo()
    config.reload_settings()
