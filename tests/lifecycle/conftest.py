"""Models for the lifecycle tests: a champion and challengers (good, incompatible, less
accurate, slow) trained on the GTZAN genre table (``../shared/data``) or, where it is absent,
on synthetic rows of the same shape. Registered once per module in a temporary registry."""

from __future__ import annotations

import numpy as np
import pytest
from lifecycle_support import XGB, gtzan_or_synthetic


@pytest.fixture(scope="module")
def genre_data():
    x, y, names, source = gtzan_or_synthetic()
    order = np.random.default_rng(1).permutation(len(x))
    return x[order], y[order], names, source


@pytest.fixture(scope="module")
def lifecycle_models(tmp_path_factory, genre_data):
    """``(registry, manager, versions)``: ``genre`` v1 (champion, trained on the first half)
    and v2 (the good challenger, the whole training part); ``genre-bad`` v1 champion and the
    challengers v2 (12 features fewer: every request fails), v3 (labels shuffled: less
    accurate); all with the feature names and reference samples."""
    from ml_utilities.models import ModelManager, ModelRegistry

    x, y, names, _ = genre_data
    root = tmp_path_factory.mktemp("lifecycle-registry")
    registry = ModelRegistry(f"sqlite:///{root / 'registry.db'}", root / "artifacts")
    manager = ModelManager(registry)
    n = len(x)
    train = slice(0, int(n * 0.8))
    half = slice(0, int(n * 0.4))
    meta = {"feature_names": names}
    h1 = manager.train_model_sync(x[half], y[half], {**XGB, "name": "genre", "seed": 0})
    registry.register(h1, metadata=meta, aliases=["champion"])
    h2 = manager.train_model_sync(x[train], y[train], {**XGB, "name": "genre", "seed": 1})
    registry.register(h2, metadata=meta)
    b1 = manager.train_model_sync(x[train], y[train], {**XGB, "name": "genre-bad", "seed": 0})
    registry.register(b1, metadata=meta, aliases=["champion"])
    b2 = manager.train_model_sync(
        x[train][:, :-12], y[train], {**XGB, "name": "genre-bad", "seed": 0}
    )
    registry.register(b2, metadata={"feature_names": names[:-12]})
    shuffled = np.random.default_rng(5).permutation(y[train])
    b3 = manager.train_model_sync(x[train], shuffled, {**XGB, "name": "genre-bad", "seed": 0})
    registry.register(b3, metadata=meta)
    yield registry, manager, {"test": slice(int(n * 0.8), n)}
    registry.dispose()
