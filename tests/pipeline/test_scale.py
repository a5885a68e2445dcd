"""Out-of-core fitting: chunks from PostgreSQL / files / streams into partial_fit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pipeline_support import copy_frame, pg_dsn

from ml_utilities.pipeline import ParameterError, PipelineConfigError, fit_incremental


def _separable(rng, n):
    x = rng.normal(size=(n, 3))
    frame = pd.DataFrame(x * [1.0, 10.0, 100.0] + [0, 50, -300], columns=["a", "b", "c"])
    frame["genre"] = rng.choice(["rock", "pop"], n)
    frame["label"] = np.where(x[:, 0] + x[:, 1] + (frame["genre"] == "rock") > 0.5, "yes", "no")
    frame.loc[rng.random(n) < 0.05, "a"] = np.nan
    return frame


def test_postgresql_table_in_chunks(postgres_url, rng):
    frame = _separable(rng, 6000)
    copy_frame(pg_dsn(postgres_url), "big", frame)
    spec = {"type": "postgresql", "url": postgres_url, "table": "big"}
    model = fit_incremental(spec, "label", chunk_size=1000, hash_columns=["genre"], epochs=2)
    m = model.metrics
    assert m["n_rows"] == 6000 and m["n_chunks"] == 6 and m["max_chunk_rows"] == 1000
    assert m["accuracy"] > 0.85 and m["n_holdout"] == pytest.approx(600, abs=80)
    # the scaler saw every row (two passes): its mean is the table's
    np.testing.assert_allclose(model.scaler.mean_, frame[["a", "b", "c"]].mean(), rtol=1e-9)
    assert (model.predict(frame.head(200)) == frame["label"].head(200)).mean() > 0.85


def test_regression_from_a_parquet_file(tmp_path, rng):
    n = 3000
    x = rng.normal(size=(n, 2))
    frame = pd.DataFrame({"x0": x[:, 0], "x1": x[:, 1], "y": 2 * x[:, 0] - x[:, 1] + 0.05})
    path = tmp_path / "rows.parquet"
    frame.to_parquet(path, row_group_size=500)
    model = fit_incremental(
        {"type": "file", "path": str(path)}, "y", task="regression", chunk_size=700, epochs=3
    )
    assert model.metrics["n_chunks"] == 5 and model.metrics["r2"] > 0.98


def test_one_shot_stream_and_errors(rng):
    frame = _separable(rng, 1000)
    recs = frame.to_dict("records")
    model = fit_incremental(
        {"type": "stream", "records": iter(recs)},
        "label",
        chunk_size=250,
        feature_columns=["a", "b", "c"],
    )
    assert model.metrics["n_chunks"] == 4 and model.metrics["accuracy"] > 0.7
    with pytest.raises(PipelineConfigError, match="once"):
        fit_incremental({"type": "stream", "records": iter(recs)}, "label", epochs=2)
    from sklearn.ensemble import RandomForestClassifier

    with pytest.raises(ParameterError, match="no partial_fit"):
        fit_incremental(
            {"type": "stream", "records": recs}, "label", estimator=RandomForestClassifier()
        )
    with pytest.raises(ParameterError, match="target_column='nope'"):
        fit_incremental({"type": "stream", "records": recs}, "nope")
