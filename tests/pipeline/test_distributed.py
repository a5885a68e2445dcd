"""The Ray Data recipe on a local Ray instance: sharded PostgreSQL read, registered pipeline
applied by Ray actors, the same predictions as in process."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pipeline_support import copy_frame, pg_dsn

ray = pytest.importorskip("ray", reason="the Ray Data recipe needs ray[data] (pip install ray)")
pytest.importorskip("ray.data", reason="the Ray Data recipe needs ray[data]")


@pytest.fixture(scope="module")
def local_ray():
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
        runtime_env={"env_vars": {"PYTHONWARNINGS": "ignore"}},
    )
    yield
    ray.shutdown()


@pytest.mark.slow  # about a minute on a busy 2-core machine, most of it starting Ray workers
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.filterwarnings("ignore::FutureWarning")
@pytest.mark.filterwarnings("ignore::ResourceWarning")
def test_ray_recipe(local_ray, postgres_url, tmp_path, rng):
    from ml_utilities.pipeline import DataPipeline
    from ml_utilities.pipeline.distributed import predict_dataset, read_postgresql_sharded

    n = 2000
    frame = pd.DataFrame(
        {
            "user_id": np.arange(n, dtype=np.int64),
            "x": rng.normal(size=n),
            "genre": rng.choice(["rock", "pop"], n),
        }
    )
    frame["y"] = ((frame["x"] > 0) ^ (frame["genre"] == "rock")).astype(np.int64)
    copy_frame(pg_dsn(postgres_url), "rows", frame)
    source = {"type": "postgresql", "url": postgres_url, "table": "rows"}

    ds = read_postgresql_sharded(source, shard_column="user_id", n_shards=3)
    got = ds.to_pandas().sort_values("user_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(got, frame, check_dtype=False)

    registry = f"sqlite:///{tmp_path / 'registry.db'}"
    pipeline = DataPipeline(registry_url=registry, artifact_root=tmp_path / "artifacts")
    res = pipeline.run_complete_pipeline_sync(
        "y",
        {
            "data_sources": [source],
            "columns": {"drop": ["user_id"]},
            "feature_engineering": {"interaction_depth": 2},
            "validation": {"cv_folds": 0, "test_size": 0.2},
        },
    )
    scored = (
        predict_dataset(
            ds.drop_columns(["y"]),
            res["model_name"],
            res["model_version"],
            registry_url=registry,
            artifact_root=tmp_path / "artifacts",
            batch_size=300,
        )
        .to_pandas()
        .sort_values("user_id")
    )
    expected = res["model"].predict(frame.drop(columns="y"))
    np.testing.assert_array_equal(scored["prediction"].to_numpy(), expected)
    np.testing.assert_allclose(
        scored["proba_1"].to_numpy(), res["model"].predict_proba(frame)[:, 1], rtol=1e-5
    )
    with pytest.raises(Exception, match="refused"):
        read_postgresql_sharded(source, shard_column="user_id; DROP TABLE rows")
