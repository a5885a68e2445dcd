"""The pipeline's model from the AutoMLHelper: ``model={'framework': 'automl', ...}``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml_utilities.pipeline import PipelineConfigError

FAST = {"algorithms": ["logistic_regression", "random_forest"]}


def _songs(rng, n: int = 360) -> pd.DataFrame:
    data = pd.DataFrame(
        {
            "tempo": rng.normal(120, 20, n),
            "energy": rng.uniform(0, 1, n),
            "genre": rng.choice(["rock", "pop", "jazz"], n),
        }
    )
    data.loc[rng.choice(n, 25, replace=False), "tempo"] = np.nan
    score = (data["energy"] - 0.5) * 4 + (data["genre"] == "rock") * 1.5
    data["liked"] = np.where(score + rng.normal(0, 0.3, n) > 0.5, "yes", "no")
    return data


def test_automl_model_in_the_pipeline(pipeline, rng):
    data = _songs(rng)
    cfg = {
        "data_sources": [{"type": "stream", "records": iter(data.to_dict("records"))}],
        "preprocessing": {"missing_values": "knn_imputation"},
        "model": {
            "framework": "automl",
            "time_budget_seconds": 12,
            "optimization_metric": "f1_weighted",
            "model_search_space": FAST,
            "ensemble_methods": ["voting"],
        },
        "validation": {"cv_folds": 2, "test_size": 0.25},
        "progress": False,
    }
    res = pipeline.run_complete_pipeline_sync("liked", cfg)
    model = res["model"]
    assert model.framework == "automl" and res["task"] == "classification"
    assert len(res["cv_metrics"]["folds"]) == 2
    # a learnable rule: far above the 0.5 of guessing, on the folds and the test rows
    assert res["cv_metrics"]["mean"]["accuracy"] > 0.8
    assert res["test_metrics"]["accuracy"] > 0.8 and res["test_metrics"]["n_test"] == 90
    report = model.training["automl_report"]
    # the budget is the run's: each of the three searches (two folds, the final fit) got a third
    assert report["budget_s"] == pytest.approx(4.0)
    assert report["metric"] == "f1_weighted"
    for fold_model in res["fold_models"]:
        assert fold_model.training["automl_report"]["budget_s"] == pytest.approx(4.0)
    # the search saw the preprocessing's output names, so importances are named by feature
    assert set(report["feature_importance"]) <= set(res["feature_names"])
    assert any(name.endswith("energy") for name in report["feature_importance"])
    # registered as a pipeline, reloaded, and equal on raw rows
    rows = data.drop(columns="liked").head(40)
    loaded = pipeline.load_pipeline_sync(res["model_name"], res["model_version"])
    assert loaded.framework == "automl"
    np.testing.assert_allclose(loaded.predict_proba(rows), model.predict_proba(rows), rtol=1e-6)
    assert set(loaded.predict(rows)) <= {"yes", "no"}


def test_automl_regression_task_from_task_type(pipeline, rng):
    n = 240
    data = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n)})
    # integer-valued with few levels would be guessed a classification; task_type decides
    data["target"] = np.round(2 * data["a"] - data["b"]).astype(float).clip(-3, 3)
    res = pipeline.run_complete_pipeline_sync(
        "target",
        {
            "model": {
                "framework": "automl",
                "task_type": "regression",
                "time_budget_seconds": 6,
                "model_search_space": {"algorithms": ["linear_regression", "random_forest"]},
            },
            "validation": {"cv_folds": 0, "test_size": 0.25},
            "register": False,
            "progress": False,
        },
        data=data,
    )
    assert res["task"] == "regression"
    assert res["model"].training["automl_report"]["task_type"] == "regression"
    assert res["test_metrics"]["r2"] > 0.8
    assert res["model_version"] is None


@pytest.mark.parametrize(
    ("model", "needle"),
    [
        ({"framework": "automl", "time_budget_days": 1}, "time_budget_days"),
        ({"framework": "automl", "task_type": "clustering"}, "clustering"),
        ({"framework": "automl", "task_type": "recommendation"}, "recommendation"),
        ({"framework": "automl", "register": False}, "register"),
        (
            {"framework": "automl", "task": "regression", "task_type": "classification"},
            "disagree",
        ),
        (
            {"framework": "automl", "model_search_space": {"algorithms": ["quantum_forest"]}},
            "quantum_forest",
        ),
    ],
)
def test_bad_automl_model_config_fails_before_reading(pipeline, model, needle):
    def never():
        raise AssertionError("the source was read before the configuration was checked")
        yield {}

    with pytest.raises(PipelineConfigError, match=needle):
        pipeline.run_complete_pipeline_sync(
            "y", {"data_sources": [{"type": "stream", "records": never()}], "model": model}
        )
