"""The specification's DataPipeline example, as written, against real PostgreSQL, Redis and S3
holding the Last.fm data; the registered pipeline reused on new rows; audio folders; errors."""

from __future__ import annotations

import asyncio

import numpy as np
import pandas as pd
import pytest

from ml_utilities.pipeline import DataPipeline, ParameterError, PipelineConfigError, SourceError


@pytest.fixture
def home(tmp_path, monkeypatch):
    """ML_UTILITIES_HOME in a temp folder, so DataPipeline() registers there."""
    from ml_utilities.config import reload_settings

    monkeypatch.setenv("ML_UTILITIES_HOME", str(tmp_path / "home"))
    reload_settings()
    yield tmp_path / "home"
    monkeypatch.undo()
    reload_settings()


def test_specification_example(loaded_stores, home, lastfm):
    # ---- the specification's code, verbatim ----
    pipeline = DataPipeline()

    pipeline_config = {
        "data_sources": [
            {"type": "postgresql", "table": "user_listening_history"},
            {"type": "redis", "key_pattern": "user:*:features"},
            {"type": "s3", "bucket": "audio-features", "prefix": "processed/"},
        ],
        "preprocessing": {
            "missing_values": "knn_imputation",
            "outliers": "isolation_forest",
            "scaling": "robust_scaler",
            "encoding": "target_encoding",
        },
        "feature_engineering": {
            "polynomial_degree": 2,
            "interaction_depth": 2,
            "temporal_features": True,
            "embedding_features": True,
        },
        "validation": {"cv_folds": 5, "test_size": 0.2, "stratify": True, "shuffle": True},
    }

    async def main():
        return await pipeline.run_complete_pipeline(
            target_column="user_satisfaction", config=pipeline_config
        )

    results = asyncio.run(main())
    # ---- what it returned ----
    history = lastfm["history"]
    assert results["n_rows"] == len(history)  # every listening row found its user and artist
    assert [s["type"] for s in results["sources"]] == ["postgresql", "redis", "s3"]
    assert results["sources"][1]["rows"] == history["user_id"].nunique()
    folds = results["cv_metrics"]["folds"]
    assert len(folds) == 5 and sum(f["n_validation"] for f in folds) == round(0.8 * len(history))
    # the label is partly learnable (who listens to whom, how other listeners rank the
    # artist): above chance (AUC 0.5) and better calibrated than the class prior
    p = history["user_satisfaction"].mean()
    prior_log_loss = -(p * np.log(p) + (1 - p) * np.log(1 - p))
    for metrics in (results["cv_metrics"]["mean"], results["test_metrics"]):
        assert metrics["roc_auc"] > 0.58
        assert metrics["log_loss"] < prior_log_loss
    names = results["feature_names"]
    assert any("user_emb_" in n for n in names) and any("item_emb_" in n for n in names)
    assert any(n.count(" ") == 1 for n in names)  # interaction terms
    assert any(n.endswith("^2") for n in names)
    assert results["validation_report"]["passed"]
    assert any(w["check"] == "temporal_features" for w in results["validation_report"]["warnings"])
    for stage in (
        "ingestion",
        "validation",
        "preprocessing",
        "feature_engineering",
        "training",
        "model_validation",
        "registration",
    ):
        assert results["stage_times"][stage] >= 0
    # registered, reloaded from the registry, and reusable on new rows
    assert results["model_version"] == 1
    loaded = pipeline.load_pipeline_sync(results["model_name"], "latest")
    rows = pipeline.load_data_sync(pipeline_config).drop(columns="user_satisfaction").head(50)
    np.testing.assert_allclose(
        loaded.predict_proba(rows), results["model"].predict_proba(rows), rtol=1e-5
    )
    assert (home / "registry.db").is_file()


def test_sync_twin_and_regression(pipeline, rng):
    n = 300
    data = pd.DataFrame(
        {"a": rng.normal(size=n), "b": rng.normal(size=n), "g": rng.choice(["x", "y", "z"], n)}
    )
    data["target"] = 3 * data["a"] - data["b"] + (data["g"] == "x") * 2 + rng.normal(0, 0.1, n)
    cfg = {
        "data_sources": [{"type": "stream", "records": iter(data.to_dict("records"))}],
        "preprocessing": {"encoding": "target_encoding", "scaling": "standard_scaler"},
        "model": {"framework": "sklearn", "architecture": "linear"},
        "validation": {"cv_folds": 3, "test_size": 0.2},
        "progress": True,
    }
    res = pipeline.run_complete_pipeline_sync("target", cfg)
    assert res["task"] == "regression"
    assert res["test_metrics"]["r2"] > 0.95 and res["cv_metrics"]["mean"]["r2"] > 0.95
    assert res["model"].metrics["test_r2"] == res["test_metrics"]["r2"]
    again = pipeline.load_pipeline_sync(res["model_name"], res["model_version"])
    np.testing.assert_allclose(
        again.predict(data.head(10)), res["model"].predict(data.head(10)), rtol=1e-5
    )


def test_another_modelmanager_framework(pipeline, listening):
    pytest.importorskip("xgboost", reason="this test trains an XGBoost model")
    data = listening.copy()
    data["heavy"] = (data["plays"] > 15).astype(int)
    cfg = {
        "model": {"framework": "xgboost", "hyperparameters": {"n_estimators": 20}},
        "feature_engineering": {"embedding_features": {"n_components": 3, "method": "als"}},
        "validation": {"cv_folds": 2, "test_size": 0.25},
        "columns": {"drop": ["plays"]},
    }
    res = pipeline.run_complete_pipeline_sync("heavy", cfg, data=data)
    assert res["model"].framework == "xgboost" and "plays" not in res["model"].input_columns
    again = pipeline.load_pipeline_sync(res["model_name"])
    np.testing.assert_allclose(
        again.predict_proba(data), res["model"].predict_proba(data), rtol=1e-6
    )


def test_temporal_features_in_the_pipeline(pipeline, listening):
    data = listening.copy()
    data["evening"] = (data["timestamp"].dt.hour >= 18).astype(int)
    cfg = {
        "feature_engineering": {"temporal_features": True},
        "model": {
            "framework": "sklearn",
            "architecture": "random_forest",
            "hyperparameters": {"n_estimators": 30},
        },
        "validation": {"cv_folds": 2, "test_size": 0.25},
        "register": False,
    }
    res = pipeline.run_complete_pipeline_sync("evening", cfg, data=data)
    assert "num__timestamp_hour" in res["feature_names"]
    assert res["test_metrics"]["accuracy"] > 0.95  # the hour gives it away


def _write_wav(path, freq, rng, sr=22050):
    import soundfile as sf

    t = np.arange(sr // 2) / sr
    y = 0.3 * np.sin(2 * np.pi * freq * t) + 0.02 * rng.standard_normal(t.size)
    sf.write(path, y.astype(np.float32), sr)


def test_pipeline_on_an_audio_folder(pipeline, tmp_path, rng):
    folder = tmp_path / "clips"
    folder.mkdir()
    rows = []
    for i in range(16):
        high = i % 2 == 1
        name = f"clip{i:02d}.wav"
        _write_wav(folder / name, rng.uniform(2000, 3000) if high else rng.uniform(150, 300), rng)
        rows.append({"track": name, "label": "bright" if high else "dark"})
    labels = tmp_path / "labels.csv"
    pd.DataFrame(rows).to_csv(labels, index=False)
    cfg = {
        "data_sources": [
            {"type": "audio", "path": str(folder)},
            {"type": "file", "path": str(labels)},
        ],
        "columns": {"drop": ["track"]},
        "model": {"framework": "sklearn", "architecture": "linear"},
        "validation": {"cv_folds": 2, "test_size": 0.25},
        "register": False,
    }
    res = pipeline.run_complete_pipeline_sync("label", cfg)
    assert res["n_rows"] == 16 and res["cv_metrics"]["mean"]["accuracy"] == 1.0


def test_errors(pipeline, rng, postgres_url):
    data = pd.DataFrame({"a": rng.normal(size=50), "y": rng.integers(0, 2, 50)})
    with pytest.raises(ParameterError, match=r"target_column='label' is not in the data.*'a'"):
        pipeline.run_complete_pipeline_sync("label", {"register": False}, data=data)
    with pytest.raises(PipelineConfigError, match=r"unknown config key\(s\) \['sources'\]"):
        pipeline.run_complete_pipeline_sync("y", {"sources": []})
    with pytest.raises(PipelineConfigError, match="no 'data_sources'"):
        pipeline.run_complete_pipeline_sync("y", {})
    with pytest.raises(PipelineConfigError, match="cv_folds"):
        pipeline.run_complete_pipeline_sync("y", {"validation": {"cv_folds": 1.5}}, data=data)
    with pytest.raises(PipelineConfigError, match="polynomial_degree"):
        pipeline.run_complete_pipeline_sync(
            "y", {"feature_engineering": {"polynomial_degree": "2"}}, data=data
        )
    with pytest.raises(SourceError, match="'missing_table' does not exist"):
        pipeline.run_complete_pipeline_sync(
            "y",
            {
                "data_sources": [
                    {"type": "postgresql", "url": postgres_url, "table": "missing_table"}
                ]
            },
        )
    with pytest.raises(SourceError, match="refused"):
        asyncio.run(
            pipeline.run_complete_pipeline(
                "y",
                {
                    "data_sources": [
                        {"type": "postgresql", "url": postgres_url, "table": "t; DROP TABLE t"}
                    ]
                },
            )
        )
    with pytest.raises(SourceError, match="empty"):
        pipeline.run_complete_pipeline_sync(
            "y", {"data_sources": [{"type": "stream", "records": iter([])}]}
        )
