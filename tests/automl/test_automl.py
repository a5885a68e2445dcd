"""AutoMLHelper: configuration checks, search, ensembles, report, registry, storage, ONNX."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path

import numpy as np
import pytest

from ml_utilities.automl import AutoMLHelper, AutoMLModel
from ml_utilities.automl.ensemble import caruana_weights
from ml_utilities.automl.options import parse_config
from ml_utilities.exceptions import ParameterError

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"

FAST = {
    "time_budget_seconds": 6,
    "cv_folds": 3,
    "n_jobs": 2,
    "model_search_space": {"algorithms": ["linear", "lightgbm", "xgboost", "random_forest"]},
}


def _split(n, seed=0):
    rng = np.random.default_rng(seed)
    idx = rng.permutation(n)
    return idx[: int(0.75 * n)], idx[int(0.75 * n) :]


# -- configuration -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("config", "match"),
    [
        ({"task_typ": "classification"}, "unknown config key"),
        ({"task_type": "clustering"}, "clustering"),
        ({"optimization_metric": "r2"}, "r2"),
        ({"optimization_metric": "ndcg@10"}, "ndcg@10"),
        ({"time_budget_hours": -1}, "time_budget_hours"),
        ({"time_budget_hours": 1, "time_budget_seconds": 5}, "not both"),
        ({"ensemble_methods": ["bagging"]}, "bagging"),
        ({"ensemble_methods": "voting"}, "ensemble_methods"),
        ({"feature_engineering": {"polynomial": True}}, "polynomial"),
        ({"feature_engineering": {"feature_selection": "chi2"}}, "chi2"),
        ({"model_search_space": {"algorithms": ["catboost"]}}, "catboost"),
        ({"model_search_space": {"hyperparameter_optimization": "grid"}}, "grid"),
        ({"cv_folds": 1}, "cv_folds"),
        ({"task_type": "recommendation", "optimization_metric": "ndcg"}, "ndcg"),
        ({"task_type": "recommendation", "model_search_space": {"algorithms": ["knn"]}}, "knn"),
        ({"storage": ""}, "storage"),
    ],
)
def test_bad_config_names_the_value(config, match):
    with pytest.raises(ParameterError, match=match):
        parse_config(config)


def test_config_defaults_follow_the_environment(monkeypatch):
    monkeypatch.setenv("ML_UTILITIES_AUTOML_TIME_BUDGET", "0.5")
    monkeypatch.setenv("ML_UTILITIES_AUTOML_TRIALS", "17")
    monkeypatch.setenv("ML_UTILITIES_FEATURE_SELECTION", "false")
    from ml_utilities.config import reload_settings

    reload_settings()
    opts = parse_config({"time_budget_hours": 0.25})
    assert opts.budget_s == 900.0
    opts = parse_config({})
    assert opts.budget_s == 1800.0 and opts.max_trials == 17
    assert opts.feature_selection == "none"
    assert opts.ensembles == ("stacking", "voting")


def test_bad_inputs():
    helper = AutoMLHelper()
    with pytest.raises(ParameterError, match="labels has 3 entries"):
        helper.train_automl_pipeline_sync(np.zeros((4, 2)), [0, 1, 0], {"register": False})
    with pytest.raises(ParameterError, match="dtype"):
        helper.train_automl_pipeline_sync(np.array([["a", "b"]] * 4), [0, 1, 0, 1], {})
    with pytest.raises(ParameterError, match="cv_folds"):
        helper.train_automl_pipeline_sync(
            np.random.default_rng(0).normal(size=(12, 2)), [0] * 10 + [1] * 2, {"cv_folds": 5}
        )


# -- ensembles -------------------------------------------------------------------------------
def test_caruana_prefers_complementary_models():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    truth = np.eye(2)[y]
    good_a = np.where(np.arange(400)[:, None] < 200, truth, 0.5)  # right on the first half
    good_b = np.where(np.arange(400)[:, None] >= 200, truth, 0.5)  # right on the second half
    noise = rng.dirichlet([1, 1], 400)

    def scorer(rows, p):
        return float(np.mean(np.argmax(p, 1) == y[rows])), float(
            np.mean(np.log(np.clip(p[np.arange(len(rows)), y[rows]], 1e-9, 1)))
        )

    w = caruana_weights([noise, good_a, good_b], np.arange(400), scorer)
    assert w[0] == 0 and w[1] > 0 and w[2] > 0


# -- the tabular search -----------------------------------------------------------------------
def test_mixed_frame_search_report_and_registry(mixed_frame, tmp_path):
    frame, y = mixed_frame
    tr, te = _split(len(y))
    helper = AutoMLHelper()
    config = dict(FAST, optimization_metric="f1_weighted", ensemble_methods=["stacking", "voting"])
    model = helper.train_automl_pipeline_sync(frame.iloc[tr], y[tr], config)
    assert isinstance(model, AutoMLModel)
    r = model.report
    for key in (
        "best_model",
        "best_score",
        "training_time",
        "models_evaluated",
        "feature_importance",
        "ensemble_performance",
    ):
        assert key in r
    assert r["best_model"] in ("LinearModel", "LightGBM", "XGBoost", "RandomForest")
    assert r["models_evaluated"] >= 2
    # each ensemble is either compared on the same folds or reported as skipped for the budget
    # (a loaded machine leaves too little time for the second one)
    perf = r["ensemble_performance"]
    built = {k for k, v in perf.items() if v is not None}
    assert "single_best" in built and not built & set(r["ensembles_skipped"])
    assert (
        set(perf)
        == built | set(r["ensembles_skipped"])
        == {
            "single_best",
            "stacking_ensemble",
            "voting_ensemble",
        }
    )
    assert set(r["feature_importance"]) <= set(frame.columns)
    assert abs(sum(r["feature_importance"].values()) - 1) < 1e-3
    top = sorted(r["feature_importance"], key=r["feature_importance"].get)[-3:]
    assert "noise" not in top  # the informative columns carry the importance
    # within budget with a generous margin (precise adherence is measured in the benchmarks)
    assert r["training_time_s"] <= 1.5 * config["time_budget_seconds"]
    assert r["latency_ms_per_row"] > 0 and len(r["search_history"]) >= r["models_evaluated"]
    pred = model.predict(frame.iloc[te])
    assert set(pred) <= {"liked", "skipped"}
    assert np.mean(pred == y[te]) > 0.75
    assert model.predict_proba(frame.iloc[te]).shape == (len(te), 2)
    # registered with its signature and report; loads back and predicts the same
    assert r["registered_version"] == 1
    loaded = helper.load_model_sync(model.name)
    assert loaded.signature["inputs"]["columns"] == list(frame.columns)
    assert loaded.report["best_model"] == r["best_model"]
    np.testing.assert_array_equal(loaded.predict(frame.iloc[te]), pred)
    # JSON and HTML
    data = json.loads(r.to_json(tmp_path / "report.json"))
    assert data["best_score"] == pytest.approx(r["best_score"])
    page = r.to_html(tmp_path / "report.html").read_text()
    pngs = page.count("data:image/png;base64,")
    assert pngs == 3
    blob = page.split("data:image/png;base64,")[1].split('"')[0]
    assert base64.b64decode(blob)[:4] == b"\x89PNG"


def test_regression_numpy_random_sampler_and_async():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(300, 6)).astype(np.float32)
    y = 2 * x[:, 0] - x[:, 1] ** 2 + 0.1 * rng.normal(size=300)
    tr, te = _split(300)
    config = dict(
        FAST,
        task_type="regression",
        optimization_metric="rmse",
        register=False,
        model_search_space={
            "algorithms": ["linear", "lightgbm", "knn"],
            "hyperparameter_optimization": "random",
        },
        feature_engineering={"polynomial_features": True, "feature_selection": "mutual_info"},
    )
    model = asyncio.run(
        AutoMLHelper().train_automl_pipeline(features=x[tr], labels=y[tr], config=config)
    )
    r = model.report
    assert r["metric"] == "rmse" and r["greater_is_better"] is False
    assert r["study"]["sampler"] == "RandomSampler"
    assert set(r["feature_importance"]) <= {f"feature_{i}" for i in range(6)}
    pred = model.predict(x[te])
    resid = np.sqrt(np.mean((pred - y[te]) ** 2))
    assert resid < 0.6 * np.std(y[te])
    # history scores are rmse values (lower is better) and the best is the minimum
    done = [h["score"] for h in r["search_history"] if h["state"] == "complete"]
    assert r["best_score"] == pytest.approx(min(done))


def test_onnx_export_of_a_voting_bag_matches():
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxmltools")
    from sklearn.datasets import load_breast_cancer

    x, y = load_breast_cancer(return_X_y=True)
    config = dict(
        FAST,
        register=False,
        ensemble_methods=["voting"],
        model_search_space={"algorithms": ["xgboost", "linear"]},
        feature_engineering={"interaction_features": True, "feature_selection": "mutual_info"},
    )
    model = AutoMLHelper().train_automl_pipeline_sync(x, y, config)
    export = model.adapter.to_onnx(x[:4].astype(np.float32))
    sess = ort.InferenceSession(export.model.SerializeToString())
    out = sess.run([export.score_output], {export.input_name: x.astype(np.float32)})[0]
    np.testing.assert_allclose(out, model.predict_proba(x), atol=1e-5)


def test_postgresql_storage_shares_the_study(postgres_url, mixed_frame):
    import optuna

    frame, y = mixed_frame
    config = dict(
        FAST, storage=postgres_url, study_name="shared-study", register=False, time_budget_seconds=5
    )
    model = AutoMLHelper().train_automl_pipeline_sync(frame, y, config)
    storage = optuna.storages.RDBStorage(postgres_url)
    try:
        study = optuna.load_study(study_name="shared-study", storage=storage)
        finished = [t for t in study.trials if t.state.is_finished()]
    finally:
        storage.engine.dispose()
    assert len(finished) >= model.report["models_evaluated"] >= 1
    assert "password" not in model.report["study"]["storage"]


def test_sqlite_storage_by_default(mixed_frame, tmp_path):
    import optuna

    frame, y = mixed_frame
    model = AutoMLHelper().train_automl_pipeline_sync(
        frame, y, dict(FAST, register=False, time_budget_seconds=4)
    )
    url = model.report["study"]["storage"]
    assert url.startswith("sqlite:///") and str(tmp_path) in url
    storage = optuna.storages.RDBStorage(url)
    try:
        study = optuna.load_study(study_name=model.report["study"]["study_name"], storage=storage)
        assert study.best_trial.params["family"] in FAST["model_search_space"]["algorithms"]
    finally:
        storage.engine.dispose()


# -- budget adherence ---------------------------------------------------------------------------
def test_blocking_families_keep_the_budget_and_get_permutation_importance():
    """k-NN and SVM (fits and predictions that cannot be interrupted) on more rows than the
    budget allows many of: the run still ends in time, and the importances come from
    permutations of the best model's validation rows (those families have none of their own)."""
    import time

    rng = np.random.default_rng(5)
    n = 2500
    x = rng.normal(size=(n, 6))
    y = np.where(x[:, 0] - 0.8 * x[:, 2] + 0.3 * rng.normal(size=n) > 0, "a", "b")
    budget = 6.0
    config = dict(
        FAST,
        register=False,
        time_budget_seconds=budget,
        model_search_space={"algorithms": ["knn", "svm"]},
    )
    t = time.monotonic()
    model = AutoMLHelper().train_automl_pipeline_sync(x, y, config)
    wall = time.monotonic() - t
    r = model.report
    assert r["training_time_s"] <= 1.25 * budget and wall < budget + 10
    assert r["best_model"] in ("KNeighbors", "SVM")
    assert r["feature_importance_source"].startswith("permutation")
    imp = r["feature_importance"]
    assert abs(sum(imp.values()) - 1) < 1e-3
    assert sorted(imp, key=imp.get)[-2:] in (["feature_2", "feature_0"], ["feature_0", "feature_2"])


# -- the specification's recommendation example, on synthetic rows --------------------------
def _listening(seed=0, n_users=60, n_items=80):
    """Users in two taste groups listen mostly to their group's items."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        group = u % 2
        pool = np.arange(n_items // 2) + group * (n_items // 2)
        items = rng.choice(pool, 12, replace=False)
        extra = rng.choice(n_items, 2, replace=False)
        for i in np.unique(np.r_[items, extra]):
            rows.append((u, int(i), int(rng.integers(1, 500))))
    return pd.DataFrame(rows, columns=["userID", "artistID", "weight"])


def test_spec_example_train_automl_pipeline_recommendation():
    import pandas as pd

    inter = _listening()
    rng = np.random.default_rng(1)
    user_music_features = pd.DataFrame(
        {
            "user_id": inter["userID"],
            "audio_tempo": rng.normal(120, 10, len(inter)),
            "genre_electronic": (inter["artistID"] < 40).astype(float),
            "listening_time_evening": np.log1p(inter["weight"]),
        }
    )
    user_preferences = (inter["weight"] > 250).astype(int).to_numpy()
    automl = AutoMLHelper()
    automl_config = {
        "task_type": "recommendation",
        "optimization_metric": "ndcg@10",
        "time_budget_hours": 4 / 3600,
        "ensemble_methods": ["stacking", "voting"],
        "feature_engineering": {
            "polynomial_features": True,
            "interaction_features": True,
            "feature_selection": "mutual_info",
        },
        "model_search_space": {
            "algorithms": ["xgboost", "lightgbm", "neural_network"],
            "hyperparameter_optimization": "bayesian",
        },
    }

    async def main():
        return await automl.train_automl_pipeline(
            features=user_music_features, labels=user_preferences, config=automl_config
        )

    best_model = asyncio.run(main())
    r = best_model.report
    assert r["metric"] == "ndcg@10" and 0 <= r["best_score"] <= 1
    assert r["best_model"] in ("XGBoost", "LightGBM", "NeuralNetwork")
    assert r["registered_version"] == 1
    # the specification's report: each requested ensemble has its key (None if skipped)
    assert {"single_best", "stacking_ensemble", "voting_ensemble"} == set(r["ensemble_performance"])
    scores = best_model.predict(user_music_features)
    assert scores.shape == (len(inter),)
    # the relevant rows rank higher than the others on average
    assert scores[user_preferences == 1].mean() > scores[user_preferences == 0].mean()


@pytest.mark.parametrize("ranker", ["lambdamart", "automl"])
def test_recommendation_model_recommends_unseen_items_of_the_users_taste(ranker):
    inter = _listening(seed=2, n_users=80)
    automl = AutoMLHelper()

    async def main():
        return await automl.train_recommendation_model(
            user_features=None,
            music_features=None,
            interaction_data=inter,
            task_config={
                "objective": "ranking",
                "metric": "ndcg@10",
                "ensemble": True,
                # the automl ranker's search shares the budget: under a loaded suite 8 s left
                # it once at 0.735 of the group share below (2026-12-07), so it gets 12
                "time_budget_seconds": 12 if ranker == "automl" else 8,
                "n_candidates": 20,
                "ranker": ranker,
            },
        )

    model = asyncio.run(main())
    ev = model.report["evaluation"]
    assert ev["model"]["ndcg@10"] > ev["popularity"]["ndcg@10"]
    recs = model.recommend(0, k=5)
    assert len(recs) == 5
    seen = set(inter.loc[inter.userID == 0, "artistID"])
    assert not seen & set(recs)
    # users of the first taste group (even ids) get items 0-39, the others 40-79: over all users
    # (one user's five items swing with the time-limited search), most recommendations match
    in_group = [(r < 40) == (u % 2 == 0) for u in range(80) for r in model.recommend(u, k=5)]
    assert np.mean(in_group) >= 0.8
    assert len(model.recommend("unknown-user", 3)) == 3
    with pytest.raises(ParameterError, match="k=0"):
        model.recommend(0, 0)
    with pytest.raises(ParameterError, match="unknown task_config"):
        automl.train_recommendation_model_sync(interaction_data=inter, task_config={"x": 1})


# -- real data -------------------------------------------------------------------------------
def test_gtzan_features_beat_chance_by_far():
    import pandas as pd

    path = DATA / "gtzan-features-5genre" / "features_3_sec.csv"
    if not path.is_file():
        pytest.skip(f"{path} is absent (the shared data folder is not here)")
    table = pd.read_csv(path).sample(800, random_state=0)
    y = table.pop("label").to_numpy()
    table = table.drop(columns=[c for c in ("filename", "length") if c in table.columns])
    tr, te = _split(len(y))
    model = AutoMLHelper().train_automl_pipeline_sync(
        table.iloc[tr], y[tr], dict(FAST, register=False, time_budget_seconds=8)
    )
    assert np.mean(model.predict(table.iloc[te]) == y[te]) > 0.6  # chance is 0.2
    assert set(model.report["feature_importance"]) <= set(table.columns)
