"""PredictionService: the specification's example, answers under concurrency, versions and
aliases, bad input, caches (in-process and Redis), explanations, conformal coverage, backends
and metrics."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from serving_support import FEATURE_NAMES, N_FEATURES, make_data

from ml_utilities.exceptions import ParameterError
from ml_utilities.models import ModelNotFoundError
from ml_utilities.serving import ModelInputError, PredictionService
from ml_utilities.serving.cache import InProcessResultCache
from ml_utilities.serving.conformal import SplitConformal
from ml_utilities.serving.metrics import render

ALL = {"explain_predictions": True, "confidence_intervals": True, "feature_importance": True}


def _no_cuda() -> bool:
    import torch

    return not torch.cuda.is_available()


def test_specification_example_runs_as_written(tmp_path, monkeypatch) -> None:
    from ml_utilities import config
    from ml_utilities.models import ModelManager

    monkeypatch.setenv("ML_UTILITIES_HOME", str(tmp_path / "home"))
    config.reload_settings()
    try:
        x, y = make_data(600, seed=7, task="regression")
        manager = ModelManager()
        model = manager.train_model_sync(
            x,
            y,
            {
                "framework": "xgboost",
                "task": "regression",
                "name": "recommendation_v3",
                "hyperparameters": {"n_estimators": 30, "n_jobs": 1},
            },
        )
        manager.register_model_sync(model, metadata={"feature_names": FEATURE_NAMES})
        user_features_batch, _ = make_data(128, seed=8, task="regression")

        async def example() -> dict:
            # -- the specification's code, verbatim --
            prediction_service = PredictionService()

            await prediction_service.configure(
                {
                    "model_cache_size": 10,  # Modèles en mémoire
                    "prediction_cache_ttl": 3600,  # 1h cache résultats
                    "batch_size": 128,
                    "max_latency_ms": 5,
                    "gpu_enabled": True,
                    "model_optimization": "tensorrt",
                }
            )

            predictions = await prediction_service.predict_batch(
                model_name="recommendation_v3",
                features=user_features_batch,
                options={
                    "explain_predictions": True,
                    "confidence_intervals": True,
                    "feature_importance": True,
                },
            )
            # --
            await prediction_service.close()
            return predictions

        predictions = asyncio.run(example())
    finally:
        monkeypatch.undo()
        config.reload_settings()
    assert len(predictions["predictions"]) == 128
    np.testing.assert_allclose(
        predictions["predictions"], model.predict(user_features_batch), rtol=1e-4, atol=1e-4
    )
    ci = predictions["confidence_intervals"]
    assert len(ci) == 128 and all(isinstance(p, tuple) and p[0] < p[1] for p in ci)
    assert all(lo <= v <= hi for (lo, hi), v in zip(ci, predictions["predictions"], strict=True))
    ex = predictions["explanations"][0]
    assert set(ex) == {"top_features", "impact"} and len(ex["top_features"]) == 5
    assert set(ex["top_features"]) <= set(FEATURE_NAMES)
    meta = predictions["metadata"]
    assert meta["model_version"] == "v1" and meta["batch_size"] == 128
    assert meta["inference_time_ms"] > 0
    assert meta["explanation_method"] == "tree_shap"
    if _no_cuda():
        # the CPU path, said plainly: no CUDA, no TensorRT, ONNX Runtime on the CPU
        assert meta["device"] == "cpu"
        assert meta["backend"] == "onnxruntime-cpu"
        assert "no CUDA device" in meta["fallback"]
        assert "tensorrt" in meta["fallback"]


@pytest.mark.parametrize("name", ["xgb-clf", "mlp-clf", "xgb-reg:1"])
def test_concurrent_rows_each_get_their_own_answer(service, serving_registry, name) -> None:
    _, handles = serving_registry
    handle = handles[name.split(":")[0]]
    x, _ = make_data(256, seed=11, task="regression")
    classification = handle.task == "classification"
    expected = handle.predict_proba(x) if classification else handle.predict(x)

    def one(i: int) -> tuple[int, dict]:
        return i, service.predict_sync(name, x[i])

    with ThreadPoolExecutor(64) as pool:
        answers = list(pool.map(one, range(len(x))))

    async def coro() -> list[dict]:
        return await asyncio.gather(*(service.predict(name, row) for row in x))

    answers_async = list(enumerate(asyncio.run(coro())))
    for i, out in answers + answers_async:
        if classification:
            np.testing.assert_allclose(out["probabilities"], expected[i], atol=2e-6)
            assert out["prediction"] == handle.predict(x[i : i + 1])[0]
        else:
            np.testing.assert_allclose(out["prediction"], expected[i], rtol=1e-5, atol=1e-5)
    model = service.get_model(name)
    stats = model.batcher.stats()
    assert stats["max_batch_seen"] > 1, "concurrent requests were never batched"
    assert stats["failed"] == 0


def test_versions_and_aliases(service, serving_registry) -> None:
    _, handles = serving_registry
    x, _ = make_data(5, seed=12, task="regression")
    v1 = service.predict_batch_sync("xgb-reg:1", x)
    champion = service.predict_batch_sync("xgb-reg@champion", x)
    latest = service.predict_batch_sync("xgb-reg", x)
    np.testing.assert_allclose(v1["predictions"], handles["xgb-reg"].predict(x), rtol=1e-5)
    np.testing.assert_allclose(champion["predictions"], handles["xgb-reg@2"].predict(x), rtol=1e-5)
    assert v1["metadata"]["model_version"] == "v1"
    assert champion["metadata"]["model_version"] == "2.0.1"
    assert latest["metadata"]["registry_version"] == 2
    same = service.predict_batch_sync("xgb-reg", x, version="champion")
    assert same["predictions"] == champion["predictions"]


def test_bad_requests_are_refused_with_reasons(service) -> None:
    x, _ = make_data(3, seed=13, task="regression")
    with pytest.raises(ModelNotFoundError, match="no registered model named 'nope'"):
        service.predict_batch_sync("nope", x)
    with pytest.raises(ModelNotFoundError, match="no alias 'ghost'"):
        service.predict_batch_sync("xgb-reg@ghost", x)
    with pytest.raises(ModelInputError, match=r"expects 12 features per row .* got an array of"):
        service.predict_batch_sync("xgb-reg", x[:, :11])
    bad = x.copy()
    bad[2, 4] = np.nan
    with pytest.raises(ModelInputError, match=r"1 non-finite .* row 2, feature 4 \(feat_4\)"):
        service.predict_batch_sync("xgb-reg", bad)
    with pytest.raises(ModelInputError, match="not a numeric array"):
        service.predict_batch_sync("xgb-reg", [["a"] * N_FEATURES])
    with pytest.raises(ParameterError, match=r"unknown option\(s\) \['explain'\]"):
        service.predict_batch_sync("xgb-reg", x, {"explain": True})
    with pytest.raises(ParameterError, match=r"unknown configuration key\(s\) \['batch'\]"):
        service.configure_sync({"batch": 3})
    with pytest.raises(ParameterError, match="model_optimization='openvino'"):
        service.configure_sync({"model_optimization": "openvino"})
    with pytest.raises(ParameterError, match="prediction_cache_ttl=-1"):
        service.configure_sync({"prediction_cache_ttl": -1})


def test_result_cache_hits_and_expires(service) -> None:
    now = [1000.0]
    service._results = InProcessResultCache(60.0, clock=lambda: now[0])
    x, _ = make_data(4, seed=14, task="regression")
    first = service.predict_batch_sync("xgb-reg", x, {"confidence_intervals": True})
    second = service.predict_batch_sync("xgb-reg", x, {"confidence_intervals": True})
    assert first["metadata"]["cache_hit"] is False and second["metadata"]["cache_hit"] is True
    assert second["predictions"] == first["predictions"]
    assert second["confidence_intervals"] == first["confidence_intervals"]
    # another version, other options or one changed value miss
    assert service.predict_batch_sync("xgb-reg:1", x)["metadata"]["cache_hit"] is False
    assert service.predict_batch_sync("xgb-reg", x)["metadata"]["cache_hit"] is False
    y = x.copy()
    y[0, 0] += 1e-3
    assert service.predict_batch_sync("xgb-reg", y)["metadata"]["cache_hit"] is False
    now[0] += 61.0
    third = service.predict_batch_sync("xgb-reg", x, {"confidence_intervals": True})
    assert third["metadata"]["cache_hit"] is False


def test_no_result_cache_with_zero_ttl(service) -> None:
    service.configure_sync({"prediction_cache_ttl": 0, "gpu_enabled": False})
    x, _ = make_data(2, seed=15, task="regression")
    service.predict_batch_sync("xgb-reg", x)
    assert service.predict_batch_sync("xgb-reg", x)["metadata"]["cache_hit"] is False


def test_redis_cache_is_shared_between_services(serving_registry, redis_url) -> None:
    import redis

    registry, _ = serving_registry
    cfg = {"redis_url": redis_url, "prediction_cache_ttl": 30, "gpu_enabled": False}
    a = PredictionService(registry=registry, config=cfg)
    b = PredictionService(registry=registry, config=cfg)
    try:
        x, _ = make_data(3, seed=16, task="classification")
        first = a.predict_batch_sync("lgb-clf", x, {"explain_predictions": True})

        async def other() -> dict:
            try:
                return await b.predict_batch("lgb-clf", x, {"explain_predictions": True})
            finally:
                await b._results.aclose()  # the async client belongs to this event loop

        second = asyncio.run(other())
        assert first["metadata"]["cache_hit"] is False
        assert second["metadata"]["cache_hit"] is True
        assert second["predictions"] == first["predictions"]
        assert second["explanations"] == first["explanations"]
        client = redis.Redis.from_url(redis_url)
        keys = client.keys("mlu:pred:*")
        assert len(keys) == 1 and 0 < client.pttl(keys[0]) <= 30_000
        client.close()
        b.configure_sync({**cfg, "prediction_cache_ttl": 0.2})
        x2 = x + 1.0
        b.predict_batch_sync("lgb-clf", x2)
        assert b.predict_batch_sync("lgb-clf", x2)["metadata"]["cache_hit"] is True
        time.sleep(0.35)
        assert b.predict_batch_sync("lgb-clf", x2)["metadata"]["cache_hit"] is False
    finally:
        a.close_sync()
        b.close_sync()


def test_model_cache_is_lru(service) -> None:
    service.configure_sync({"model_cache_size": 2, "gpu_enabled": False})
    x, _ = make_data(2, seed=17, task="regression")
    service.predict_batch_sync("xgb-reg", x)
    first = service.get_model("xgb-reg")
    service.predict_batch_sync("xgb-clf", x)
    service.predict_batch_sync("xgb-reg", x)  # most recent again
    service.predict_batch_sync("lgb-clf", x)  # evicts xgb-clf
    loaded = [(m["name"], m["version"]) for m in service.loaded_models()]
    assert loaded == [("xgb-reg", 2), ("lgb-clf", 1)]
    assert service.get_model("xgb-reg") is first
    assert first.batcher is not None and not first.batcher.closed


def test_tree_explanations_are_treeshap(service, serving_registry) -> None:
    import xgboost as xgb

    _, handles = serving_registry
    x, _ = make_data(50, seed=18, task="regression")
    out = service.predict_batch_sync("xgb-reg:1", x, ALL)
    booster = handles["xgb-reg"].adapter.model.get_booster()
    contrib = booster.predict(xgb.DMatrix(x), pred_contribs=True)[:, :N_FEATURES]
    for row, ex in zip(contrib, out["explanations"], strict=True):
        order = np.argsort(-np.abs(row), kind="stable")[:5]
        assert ex["top_features"] == [FEATURE_NAMES[i] for i in order]
        np.testing.assert_allclose(ex["impact"], row[order], atol=1e-5)
    importance = out["feature_importance"]
    assert list(importance)[:3] == ["feat_0", "feat_1", "feat_2"] or set(list(importance)[:3]) == {
        "feat_0",
        "feat_1",
        "feat_2",
    }


@pytest.mark.parametrize("name", ["xgb-clf", "xgb-reg:1"])
def test_concurrent_tree_explanations_are_batched_and_exact(service, name) -> None:
    # Concurrent single-row requests share TreeSHAP calls through the explanation batcher; each
    # row still gets exactly the explanation it gets alone (one request of all the rows).
    x, _ = make_data(128, seed=19, task="regression")
    opts = {"explain_predictions": True, "feature_importance": True}
    alone = service.predict_batch_sync(name, x, opts)

    async def coro() -> list[dict]:
        return await asyncio.gather(*(service.predict(name, row, opts) for row in x))

    answers = asyncio.run(coro())
    for i, out in enumerate(answers):
        ex, want = out["explanation"], alone["explanations"][i]
        assert ex["top_features"] == want["top_features"]
        np.testing.assert_allclose(ex["impact"], want["impact"], atol=2e-6)
        assert out["prediction"] == alone["predictions"][i]
        assert out["metadata"]["explanation_method"] == "tree_shap"
        assert len(out["feature_importance"]) == N_FEATURES
    stats = service.get_model(name).explain_batcher.stats()
    assert stats["max_batch_seen"] > 1, "concurrent explanations were never batched"
    assert stats["completed"] == len(x) and stats["failed"] == 0


def test_permutation_explanations_add_up(service) -> None:
    # Shapley values add up to f(x) - E[f(background)]: checks the agnostic explainer end to end
    model = service.get_model("rf-reg")
    explainer = service._explainer(model)
    assert explainer.method == "permutation_shap"
    x, _ = make_data(4, seed=19, task="regression")
    contrib = explainer.contributions(x)
    base = np.mean(model.predict_raw(explainer.background))
    np.testing.assert_allclose(contrib.sum(axis=1), model.predict_raw(x) - base, atol=1e-3)
    out = service.predict_batch_sync("mlp-clf", x, {"explain_predictions": True})
    assert out["metadata"]["explanation_method"] == "permutation_shap"
    assert len(out["explanations"]) == 4


def test_split_conformal_coverage_regression(service) -> None:
    xc, yc = make_data(1000, seed=20, task="regression")
    info = service.calibrate_sync("xgb-reg:1", xc, yc)
    assert info["n_calibration"] == 1000 and info["confidence_level"] == 0.9
    xt, yt = make_data(4000, seed=21, task="regression")
    out = service.predict_batch_sync("xgb-reg:1", xt, {"confidence_intervals": True})
    ci = np.asarray(out["confidence_intervals"])
    covered = np.mean((ci[:, 0] <= yt) & (yt <= ci[:, 1]))
    assert 0.87 <= covered <= 0.94, covered
    assert out["metadata"]["calibration"] == "calibrate"


def test_conformal_prediction_sets_coverage(service) -> None:
    service.configure_sync({"confidence_level": 0.95, "gpu_enabled": False})
    xc, yc = make_data(1000, seed=22, task="classification")
    service.calibrate_sync("lgb-clf", xc, yc)
    xt, yt = make_data(4000, seed=23, task="classification")
    out = service.predict_batch_sync("lgb-clf", xt, {"confidence_intervals": True})
    sets = out["confidence_intervals"]
    covered = np.mean([label in s for label, s in zip(yt, sets, strict=True)])
    assert 0.93 <= covered <= 0.975, covered
    assert out["metadata"]["interval_kind"] == "prediction_set"
    assert 1.0 <= np.mean([len(s) for s in sets]) < 3.0


def test_split_conformal_unit() -> None:
    rng = np.random.default_rng(0)
    pred = np.zeros(999)
    y = rng.standard_normal(999)
    c = SplitConformal("regression", 0.9).fit(pred, y)
    # the 900th smallest |y| of 999 standard normals: close to the 95 % normal quantile
    assert abs(c.quantile - 1.645) < 0.15
    tiny = SplitConformal("regression", 0.99).fit(np.zeros(10), np.ones(10))
    assert np.isinf(tiny.quantile)
    with pytest.raises(ParameterError, match="confidence_level=1.5"):
        SplitConformal("regression", 1.5)


def test_cpu_backends_when_gpu_asked(service, serving_registry) -> None:
    _, handles = serving_registry
    x, _ = make_data(20, seed=24, task="regression")
    service.configure_sync({"gpu_enabled": True, "model_optimization": "onnxruntime"})
    out = service.predict_batch_sync("mlp-clf", x)
    meta = out["metadata"]
    np.testing.assert_allclose(out["probabilities"], handles["mlp-clf"].predict_proba(x), atol=1e-5)
    if _no_cuda():
        assert meta["backend"] == "onnxruntime-cpu" and meta["device"] == "cpu"
        assert "gpu_enabled=True but no CUDA device" in meta["fallback"]
    service.configure_sync({"gpu_enabled": True, "model_optimization": "fp16"})
    meta = service.predict_batch_sync("mlp-clf", x)["metadata"]
    if _no_cuda():
        assert meta["backend"] == "torch" and "fp16' needs CUDA" in meta["fallback"]
    service.configure_sync({"gpu_enabled": True, "model_optimization": "cuda_graphs"})
    out = service.predict_batch_sync("mlp-clf", x)
    np.testing.assert_allclose(out["probabilities"], handles["mlp-clf"].predict_proba(x), atol=1e-5)
    if _no_cuda():
        assert out["metadata"]["backend"] == "torch"
        assert "cuda_graphs' needs CUDA" in out["metadata"]["fallback"]
    meta = service.predict_batch_sync("xgb-clf", x)["metadata"]
    assert "'cuda_graphs' applies to PyTorch models only (xgboost)" in meta["fallback"]
    service.configure_sync({"gpu_enabled": False, "model_optimization": None})
    meta = service.predict_batch_sync("mlp-clf", x)["metadata"]
    assert meta["backend"] == "torch" and meta["device"] == "cpu" and "fallback" not in meta


def test_unbatched_and_large_batches(service, serving_registry) -> None:
    _, handles = serving_registry
    service.configure_sync({"dynamic_batching": False, "gpu_enabled": False})
    x, _ = make_data(300, seed=25, task="regression")
    out = service.predict_batch_sync("xgb-clf", x)
    assert out["metadata"]["dynamic_batching"] is False
    assert out["predictions"] == handles["xgb-clf"].predict(x).tolist()


def test_metrics_are_exported(service) -> None:
    x, _ = make_data(3, seed=26, task="regression")
    service.predict_sync("xgb-clf", x[0])
    threads = [threading.Thread(target=service.predict_sync, args=("xgb-clf", r)) for r in x]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with pytest.raises(ModelInputError):
        service.predict_batch_sync("xgb-clf", x[:, :3])
    text = render().decode()
    for name in (
        'ml_model_inference_duration_seconds_bucket{le="0.005",model="xgb-clf",version="1"}',
        'ml_model_prediction_count_total{cache="miss",model="xgb-clf",version="1"}',
        'ml_serving_queue_time_seconds_count{model="xgb-clf"}',
        'ml_serving_batch_size_count{model="xgb-clf"}',
        'ml_serving_requests_total{model="xgb-clf",outcome="bad_input"}',
        'ml_model_accuracy_score{model="xgb-clf",version="1"}',
        'ml_model_memory_usage_bytes{model="xgb-clf",version="1"}',
        "ml_serving_models_loaded",
    ):
        assert name in text, name


def test_freeze_gc_moves_a_loaded_models_objects_out_of_full_collections(
    serving_registry,
) -> None:
    import gc

    registry, _ = serving_registry
    gc.collect()
    gc.freeze()  # as ml-utilities serve does at start-up
    try:
        plain = PredictionService(registry=registry, config={"gpu_enabled": False})
        frozen_before = gc.get_freeze_count()
        plain.get_model("xgb-reg:1")
        # off by default (the process is not the service's): nothing more is frozen
        assert gc.get_freeze_count() <= frozen_before
        plain.close_sync()
        svc = PredictionService(registry=registry, config={"gpu_enabled": False}, freeze_gc=True)
        try:
            model = svc.get_model("xgb-clf")
            # the load's survivors are frozen: a full collection no longer walks them (frozen
            # objects live in the permanent generation, which gc.get_objects leaves out)
            # (the count itself may drop: the unfreeze-collect-freeze also frees garbage that
            # the start-up freeze had kept, such as the closed service's model)
            assert gc.get_freeze_count() > 0
            tracked = {id(o) for o in gc.get_objects()}
            assert id(model) not in tracked and id(vars(model)) not in tracked
            assert model.name == "xgb-clf"
            x, _ = make_data(2, seed=27, task="regression")
            assert len(svc.predict_batch_sync("xgb-clf", x)["predictions"]) == 2
        finally:
            svc.close_sync()
    finally:
        gc.unfreeze()
