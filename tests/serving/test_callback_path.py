"""The predict route's callback path (``PredictionService.submit_json`` over
``DynamicBatcher.submit_callback``: no task, future or coroutine per request), the per-model answer
template of ``LoadedModel.encode``, and the direct XGBoost call of the native backend: each gives
what the path it shortcuts gives (documents, metrics, errors, predictions)."""

from __future__ import annotations

import asyncio
import json
import math
import threading

import numpy as np
import orjson
import pytest
from serving_support import N_FEATURES, blocked_service, make_data

from ml_utilities.exceptions import ParameterError
from ml_utilities.serving import Overloaded, PredictionService, RequestTimeoutError
from ml_utilities.serving import loaded as loaded_module
from ml_utilities.serving.batching import DynamicBatcher
from ml_utilities.serving.metrics import REGISTRY
from ml_utilities.serving.routes import start_predict


def _sample(name: str, labels: dict[str, str]) -> float:
    value = REGISTRY.get_sample_value(name, labels)
    return 0.0 if value is None else value


def _without_timing(doc: dict) -> dict:
    doc = json.loads(json.dumps(doc))
    doc["metadata"].pop("inference_time_ms")
    return doc


@pytest.fixture
def direct_service(serving_registry):
    registry, _ = serving_registry
    svc = PredictionService(
        registry=registry,
        config={
            "gpu_enabled": False,
            "prediction_cache_ttl": 0,
            "batch_size": 16,
            "max_queue_delay_us": 2000,
        },
    )
    yield svc
    svc.close_sync()


async def _nowait(svc: PredictionService, model: str, doc: object) -> tuple[object, object]:
    """``submit_json``'s outcome for one request: ``(payload, err)``."""
    fut = asyncio.get_running_loop().create_future()
    taken = svc.submit_json(model, doc, lambda p, e: fut.set_result((p, e)))
    assert taken
    return await fut


@pytest.mark.parametrize("model", ["xgb-clf", "xgb-reg", "mlp-clf"])
def test_callback_path_answers_as_predict_json(direct_service, model) -> None:
    svc = direct_service
    x, _ = make_data(40, seed=60, task="regression")

    async def main() -> tuple[list, list]:
        await svc.predict_batch(model, x[:1])  # loaded
        fast = await asyncio.gather(*(_nowait(svc, model, {"features": [r.tolist()]}) for r in x))
        slow = await asyncio.gather(
            *(svc.predict_json(model, {"features": [r.tolist()]}) for r in x)
        )
        return fast, slow

    fast, slow = asyncio.run(main())
    assert all(err is None and isinstance(payload, bytes) for payload, err in fast)
    for (payload, _), want in zip(fast, slow, strict=True):
        got, exp = _without_timing(orjson.loads(payload)), _without_timing(orjson.loads(want))
        np.testing.assert_allclose(
            got.pop("probabilities", [0.0]), exp.pop("probabilities", [0.0]), atol=2e-6
        )
        assert got == exp


def test_callback_path_counts_the_metrics_of_predict_json(direct_service) -> None:
    svc = direct_service
    x, _ = make_data(24, seed=61, task="regression")
    labels = {"model": "xgb-clf", "version": "1"}
    names = [
        ("ml_model_inference_duration_seconds_count", labels),
        ("ml_model_prediction_count_total", {**labels, "cache": "miss"}),
        ("ml_serving_requests_total", {"model": "xgb-clf", "outcome": "ok"}),
        ("ml_serving_queue_time_seconds_count", {"model": "xgb-clf"}),
    ]

    async def main() -> None:
        await svc.predict_batch("xgb-clf", x[:1])
        before = [_sample(n, lb) for n, lb in names]
        await asyncio.gather(*(_nowait(svc, "xgb-clf", {"features": [r.tolist()]}) for r in x))
        middle = [_sample(n, lb) for n, lb in names]
        await asyncio.gather(*(svc.predict_json("xgb-clf", {"features": [r.tolist()]}) for r in x))
        after = [_sample(n, lb) for n, lb in names]
        assert [m - b for m, b in zip(middle, before, strict=True)] == [24] * 4
        assert [a - m for a, m in zip(after, middle, strict=True)] == [24] * 4

    asyncio.run(main())


@pytest.mark.parametrize(
    "doc",
    [
        {"features": [[0.5] * (N_FEATURES - 1) + [math.nan]]},
        {"features": [[0.5] * (N_FEATURES - 1) + ["0.5"]]},
        {"features": [[0.5] * (N_FEATURES - 1) + [1e39]]},
        {"features": [[0.5] * (N_FEATURES - 1)]},
        {"features": [[0.5] * N_FEATURES] * 2},
        {"features": [[0.5] * N_FEATURES], "options": {"explain_predictions": True}},
        {"features": [[0.5] * N_FEATURES], "version": 1},
        [[0.5] * N_FEATURES],
    ],
    ids=[
        "nan",
        "string",
        "float32-overflow",
        "short-row",
        "two-rows",
        "options",
        "version",
        "list",
    ],
)
def test_callback_path_declines_what_predict_json_declines(direct_service, doc) -> None:
    svc = direct_service
    calls: list = []

    async def main() -> tuple[bool, object]:
        await svc.predict_batch("xgb-clf", np.zeros((1, N_FEATURES), np.float32))
        taken = svc.submit_json("xgb-clf", doc, lambda p, e: calls.append((p, e)))
        return taken, await svc.predict_json("xgb-clf", doc)

    assert asyncio.run(main()) == (False, None)
    assert calls == []


@pytest.mark.parametrize(
    "config",
    [{}, {"dynamic_batching": False}, {"dynamic_batching": False, "prediction_cache_ttl": 0}],
    ids=["cache", "cache-no-batching", "no-batching"],
)
def test_callback_path_with_a_result_cache_or_without_batching(serving_registry, config):
    # the in-process result cache and calls without the batcher take the callback path too:
    # the answers are predict_batch's, a repeated row is a cache hit, the cache is filled
    registry, _ = serving_registry
    svc = PredictionService(registry=registry, config={"gpu_enabled": False, **config})
    cached = svc.config.prediction_cache_ttl > 0
    x, _ = make_data(6, seed=41, task="classification")
    try:
        svc.get_model("xgb-clf")

        async def main() -> None:
            hits = _sample("ml_serving_cache_requests_total", {"result": "hit"})
            for row in x:
                body = orjson.dumps({"features": [row.tolist()]})
                answer = asyncio.get_running_loop().create_future()
                taken = start_predict(
                    svc, "xgb-clf", body, lambda p, e, a=answer: a.set_result((p, e))
                )
                assert taken
                payload, err = await answer
                assert err is None
                doc = _without_timing(orjson.loads(payload))
                assert doc["metadata"].pop("cache_hit") is False
                expected = _without_timing(await svc.predict_batch("xgb-clf", row[None]))
                # filled by the fast path where there is a cache
                assert expected["metadata"].pop("cache_hit") is cached
                assert doc == expected
                if cached:  # the same row again: answered from the cache, without the model
                    again = await _nowait(svc, "xgb-clf", {"features": [row.tolist()]})
                    assert again[1] is None and orjson.loads(again[0])["metadata"]["cache_hit"]
            got = _sample("ml_serving_cache_requests_total", {"result": "hit"}) - hits
            assert got == (2 * len(x) if cached else 0)

        asyncio.run(main())
    finally:
        svc.close_sync()


def test_callback_path_without_batching_reports_model_errors(serving_registry):
    registry, _ = serving_registry
    svc = PredictionService(
        registry=registry,
        config={"gpu_enabled": False, "dynamic_batching": False, "prediction_cache_ttl": 0},
    )
    try:
        model = svc.get_model("xgb-reg")

        def broken(x):
            raise RuntimeError("the model failed")

        model.predict_raw = broken
        before = _sample("ml_serving_requests_total", {"model": "xgb-reg", "outcome": "error"})

        async def main() -> tuple[object, object]:
            return await _nowait(svc, "xgb-reg", {"features": [[0.5] * N_FEATURES]})

        payload, err = asyncio.run(main())
        assert payload is None and isinstance(err, RuntimeError)
        after = _sample("ml_serving_requests_total", {"model": "xgb-reg", "outcome": "error"})
        assert after - before == 1
    finally:
        svc.close_sync()


def test_callback_path_overload_and_timeouts(serving_registry) -> None:
    svc, release, entered = blocked_service(serving_registry[0])
    row = {"features": [[0.5] * N_FEATURES]}

    def count(outcome: str) -> float:
        return _sample("ml_serving_requests_total", {"model": "xgb-reg", "outcome": outcome})

    async def main() -> None:
        timeouts, overloads = count("timeout"), count("overloaded")
        running = asyncio.ensure_future(_nowait(svc, "xgb-reg", row))
        while not entered.is_set():
            await asyncio.sleep(0.005)
        queued = asyncio.ensure_future(_nowait(svc, "xgb-reg", row))
        await asyncio.sleep(0.01)
        with pytest.raises(Overloaded, match="queue is full"):  # refused at submission
            svc.submit_json("xgb-reg", row, lambda p, e: None)
        assert count("overloaded") - overloads == 1
        for pending in (running, queued):  # past the deadline: running, and never run
            payload, err = await pending
            assert payload is None and isinstance(err, RequestTimeoutError)
        assert count("timeout") - timeouts == 2
        release.set()

    try:
        asyncio.run(main())
    finally:
        release.set()
        svc.close_sync()


# ------------------------------------------------------------------------------ batcher
def test_submit_callback_values_failures_and_a_failing_callback() -> None:
    def model(x: np.ndarray) -> np.ndarray:
        if (x < 0).any():
            raise ArithmeticError("negative input")
        return x[:, :1] * 2

    def encode(tokens, out):  # noqa: ANN001
        return [f"{tag}:{out[i, 0]:g}" for i, (_, tag) in enumerate(tokens)]

    async def main(b: DynamicBatcher) -> None:
        loop = asyncio.get_running_loop()
        reported: list[dict] = []
        loop.set_exception_handler(lambda _, context: reported.append(context))
        got: dict[str, object] = {}
        done = asyncio.Event()

        def callback(tag: str):  # noqa: ANN202
            def on_answer(value, err) -> None:  # noqa: ANN001
                assert threading.current_thread() is threading.main_thread()
                if tag == "boom":
                    raise LookupError("this callback fails")
                got[tag] = err if err is not None else value
                if len(got) == 4:
                    done.set()

            return on_answer

        for tag, row in (("a", [1.0, 0.0]), ("boom", [2.0, 0.0]), ("b", [3.0, 0.0])):
            assert isinstance(b.submit_callback(row, tag, callback(tag)), int)
        await asyncio.sleep(0.2)  # one batch: a callback that raises does not stop the others
        b.submit_callback([-1.0, 0.0], "c", callback("c"))
        b.submit_callback([1.0, 0.0], "d", callback("d"))
        await asyncio.wait_for(done.wait(), 30)
        assert got["a"] == "a:2" and got["b"] == "b:6"
        assert isinstance(got["c"], ArithmeticError) and got["c"] is got["d"]  # one batch
        assert [type(c["exception"]) for c in reported] == [LookupError]
        with pytest.raises(ParameterError, match="row value 1 is nan"):
            b.submit_callback([1.0, math.nan], "e", callback("e"))

    with DynamicBatcher(model, 2, max_batch_size=4, max_queue_delay_us=50_000, encode=encode) as b:
        asyncio.run(main(b))


def test_submit_callback_timeout_of_a_running_batch() -> None:
    release = threading.Event()

    def model(x: np.ndarray) -> np.ndarray:
        release.wait(10)
        return x

    async def main(b: DynamicBatcher) -> None:
        fut = asyncio.get_running_loop().create_future()
        rid = b.submit_callback([1.0], None, lambda v, e: fut.set_result((v, e)), timeout=0.1)
        value, err = await asyncio.wait_for(fut, 10)
        assert value is None and isinstance(err, RequestTimeoutError)
        assert f"request {rid} timed out after 0.1 s" in str(err)
        release.set()
        await asyncio.sleep(0.2)  # the batch's late answer is dropped: fut is already done

    with DynamicBatcher(model, 1, max_queue_delay_us=0) as b:
        try:
            asyncio.run(main(b))
        finally:
            release.set()


# ------------------------------------------------------------------------------ encode
@pytest.mark.parametrize("model", ["xgb-clf", "xgb-reg"])
@pytest.mark.parametrize("codec", ["orjson", "json"])
def test_answer_template_gives_the_bytes_of_the_whole_document(
    direct_service, monkeypatch, model, codec
) -> None:
    if codec == "json":  # the standard library's encoding, as where orjson is not installed
        monkeypatch.setattr(
            loaded_module,
            "_dumps",
            lambda v: json.dumps(v, separators=(",", ":"), ensure_ascii=False).encode(),
        )
    loaded = direct_service.get_model(model)
    loaded._template = None
    out = np.array([[0.1, 0.7, 0.2], [0.5, 0.25, 0.25]], np.float32)
    if model == "xgb-reg":
        out = np.array([[1.5], [-2.25]], np.float32)
    start = 0.0
    answers = loaded.encode([(None, start), (None, start)], out)
    meta = loaded.metadata()
    for i, answer in enumerate(answers):
        took = orjson.loads(answer)["metadata"]["inference_time_ms"]
        doc: dict = {}
        if model == "xgb-clf":
            doc["predictions"] = [loaded.classes[int(np.argmax(out[i]))].item()]
            doc["probabilities"] = [np.round(out[i].astype(np.float64), 7).tolist()]
        else:
            doc["predictions"] = [float(out[i, 0])]
        doc |= {"confidence_intervals": None, "explanations": None, "feature_importance": None}
        doc["metadata"] = {
            **meta,
            "inference_time_ms": took,
            "batch_size": 1,
            "cache_hit": False,
            "dynamic_batching": True,
        }
        assert answer == loaded_module._dumps(doc)
    loaded._template = None  # made again with the codec of the module, for later tests


# ------------------------------------------------------------------------------ backend
@pytest.mark.parametrize("objective", ["multi:softprob", "binary:logistic", "reg:squarederror"])
def test_direct_xgboost_call_gives_inplace_predict(objective) -> None:
    xgb = pytest.importorskip("xgboost")
    from ml_utilities.serving.backends import _dense_predictor

    rng = np.random.default_rng(3)
    x = rng.standard_normal((300, 7)).astype(np.float32)
    y = {
        "multi:softprob": rng.integers(0, 3, 300),
        "binary:logistic": rng.integers(0, 2, 300),
        "reg:squarederror": rng.standard_normal(300),
    }[objective]
    params = {"objective": objective, "nthread": 1}
    if objective.startswith("multi"):
        params["num_class"] = 3
    booster = xgb.train(params, xgb.DMatrix(x, y), 10)
    predict = _dense_predictor(booster)
    assert predict is not None
    read_only = x[:5].copy()
    read_only.flags.writeable = False
    missing = x[:4].copy()
    missing[0, 2] = np.nan
    cases = [x[:1], x[:2], x[:64], x, read_only, missing, x[::2, :], x[:3].astype(np.float64)]
    for data in cases:
        want = booster.inplace_predict(data)
        got = predict(data)
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_array_equal(got, want)
    out = predict(x[:3])
    kept = out.copy()
    predict(x[3:6])  # XGBoost reuses its output buffer: the answer was a copy
    np.testing.assert_array_equal(out, kept)
