"""The JSON fast path of the predict route (``PredictionService.predict_json``) and the batcher's
token API under it: the same documents as ``predict_batch``, metrics counted once per batch, and
every request it cannot serve handed to ``predict_batch`` with its error."""

from __future__ import annotations

import asyncio
import json
import math
import time

import httpx
import numpy as np
import orjson
import pytest
from serving_support import N_FEATURES, blocked_service, make_data

from ml_utilities.exceptions import ParameterError
from ml_utilities.serving import PredictionService
from ml_utilities.serving.app import create_app
from ml_utilities.serving.batching import DynamicBatcher
from ml_utilities.serving.metrics import REGISTRY


def _sample(name: str, labels: dict[str, str]) -> float:
    value = REGISTRY.get_sample_value(name, labels)
    return 0.0 if value is None else value


def _without_timing(doc: dict) -> dict:
    doc = json.loads(json.dumps(doc))  # tuples -> lists, as over HTTP
    doc["metadata"].pop("inference_time_ms")
    return doc


@pytest.fixture(params=[True, False], ids=["batching", "no-batching"])
def fast_service(request, serving_registry):
    registry, _ = serving_registry
    svc = PredictionService(
        registry=registry,
        config={
            "gpu_enabled": False,
            "prediction_cache_ttl": 0,
            "dynamic_batching": request.param,
            "batch_size": 16,
            "max_queue_delay_us": 2000,
        },
    )
    yield svc
    svc.close_sync()


@pytest.mark.parametrize("model", ["xgb-clf", "xgb-reg", "mlp-clf"])
def test_fast_path_answers_as_predict_batch(fast_service, serving_registry, model) -> None:
    _, handles = serving_registry
    x, _ = make_data(40, seed=50, task="regression")
    svc = fast_service

    async def main() -> tuple[list[bytes | None], list[dict]]:
        await svc.predict_batch(model, x[:1])  # loads the model: the fast path needs it loaded
        fast = await asyncio.gather(
            *(svc.predict_json(model, {"features": [row.tolist()]}) for row in x)
        )
        slow = [await svc.predict_batch(model, row[None]) for row in x]
        return list(fast), slow

    fast, slow = asyncio.run(main())
    assert all(isinstance(f, bytes) for f in fast)
    for f, s in zip(fast, slow, strict=True):
        got, want = _without_timing(orjson.loads(f)), _without_timing(s)
        # a float32 network's outputs move in the last bits with the batch it runs in
        np.testing.assert_allclose(
            got.pop("probabilities", [0.0]), want.pop("probabilities", [0.0]), atol=2e-6
        )
        assert got == want
    docs = [orjson.loads(f) for f in fast]
    handle = handles["xgb-reg@2" if model == "xgb-reg" else model]  # the latest version
    np.testing.assert_allclose(
        np.asarray([d["predictions"][0] for d in docs], dtype=np.float64)
        if model == "xgb-reg"
        else np.zeros(1),
        handle.predict(x) if model == "xgb-reg" else np.zeros(1),
        rtol=1e-6,
    )
    if model != "xgb-reg":
        assert [d["predictions"][0] for d in docs] == handle.predict(x).tolist()
    meta = docs[0]["metadata"]
    assert meta["dynamic_batching"] is (svc.config.dynamic_batching)
    assert meta["batch_size"] == 1 and meta["cache_hit"] is False
    assert meta["inference_time_ms"] >= 0
    if svc.config.dynamic_batching:
        assert svc.get_model(model).batcher.stats()["max_batch_seen"] > 1


def test_fast_path_counts_metrics_once_per_request(fast_service) -> None:
    svc = fast_service
    x, _ = make_data(24, seed=51, task="regression")
    labels = {"model": "xgb-clf", "version": "1"}

    async def main() -> None:
        await svc.predict_batch("xgb-clf", x[:1])
        before = (
            _sample("ml_model_inference_duration_seconds_count", labels),
            _sample("ml_model_prediction_count_total", {**labels, "cache": "miss"}),
            _sample("ml_serving_requests_total", {"model": "xgb-clf", "outcome": "ok"}),
            _sample("ml_serving_queue_time_seconds_count", {"model": "xgb-clf"}),
        )
        out = await asyncio.gather(
            *(svc.predict_json("xgb-clf", {"instances": [row.tolist()]}) for row in x)
        )
        assert all(isinstance(o, bytes) for o in out)
        after = (
            _sample("ml_model_inference_duration_seconds_count", labels),
            _sample("ml_model_prediction_count_total", {**labels, "cache": "miss"}),
            _sample("ml_serving_requests_total", {"model": "xgb-clf", "outcome": "ok"}),
            _sample("ml_serving_queue_time_seconds_count", {"model": "xgb-clf"}),
        )
        assert [a - b for a, b in zip(after, before, strict=True)][:3] == [24, 24, 24]
        queued = after[3] - before[3]
        assert queued == (24 if svc.config.dynamic_batching else 0)

    asyncio.run(main())


@pytest.mark.parametrize(
    "doc",
    [
        {"features": [[0.5] * (N_FEATURES - 1) + [math.nan]]},
        {"features": [[0.5] * (N_FEATURES - 1) + ["0.5"]]},
        {"features": [[0.5] * (N_FEATURES - 1) + [10**400]]},
        {"features": [[0.5] * (N_FEATURES - 1) + [1e39]]},
        {"features": [[0.5] * (N_FEATURES - 1)]},
        {"features": [[0.5] * N_FEATURES] * 2},
        {"features": [[0.5] * N_FEATURES], "options": {"explain_predictions": True}},
        {"features": [[0.5] * N_FEATURES], "options": {"shap": False}},
        {"features": [[0.5] * N_FEATURES], "options": []},
        {"features": [[0.5] * N_FEATURES], "version": 1},
        {"features": [[0.5] * N_FEATURES], "rows": 1},
        [[0.5] * N_FEATURES],
    ],
    ids=[
        "nan",
        "string",
        "huge-int",
        "float32-overflow",
        "short-row",
        "two-rows",
        "options",
        "unknown-option",
        "options-not-a-dict",
        "version",
        "unknown-field",
        "not-an-object",
    ],
)
def test_fast_path_declines_what_it_does_not_serve(fast_service, doc) -> None:
    svc = fast_service

    async def main() -> bytes | None:
        await svc.predict_batch("xgb-clf", np.zeros((1, N_FEATURES), np.float32))
        return await svc.predict_json("xgb-clf", doc)

    assert asyncio.run(main()) is None


def test_fast_path_off_for_an_unloaded_model(serving_registry) -> None:
    registry, _ = serving_registry
    row = [0.5] * N_FEATURES
    svc = PredictionService(
        registry=registry, config={"gpu_enabled": False, "prediction_cache_ttl": 0}
    )
    try:
        assert asyncio.run(svc.predict_json("xgb-clf", {"features": [row]})) is None  # unloaded
        svc.get_model("xgb-clf")
        assert isinstance(asyncio.run(svc.predict_json("xgb-clf", {"features": [row]})), bytes)
    finally:
        svc.close_sync()


def _cache_lookups(result: str) -> float:
    return _sample("ml_serving_cache_requests_total", {"result": result})


@pytest.fixture(params=[True, False], ids=["batching", "no-batching"])
def cached_service(request, serving_registry):
    """A service with the default in-process result cache (one hour)."""
    registry, _ = serving_registry
    svc = PredictionService(
        registry=registry,
        config={
            "gpu_enabled": False,
            "dynamic_batching": request.param,
            "batch_size": 16,
            "max_queue_delay_us": 2000,
        },
    )
    yield svc
    svc.close_sync()


@pytest.mark.parametrize("model", ["xgb-clf", "xgb-reg", "mlp-clf"])
def test_fast_path_with_the_result_cache_answers_as_predict_batch(cached_service, model) -> None:
    svc = cached_service
    x, _ = make_data(8, seed=53, task="regression")

    async def main() -> tuple[list[bytes | None], list[bytes | None], list[dict]]:
        svc.get_model(model)  # the fast path needs the model loaded
        first = list(
            await asyncio.gather(
                *(svc.predict_json(model, {"features": [row.tolist()]}) for row in x[:4])
            )
        )
        for row in x[4:]:  # cached by predict_batch, then asked through the fast path
            await svc.predict_batch(model, row[None])
        again = list(
            await asyncio.gather(
                *(svc.predict_json(model, {"features": [row.tolist()]}) for row in x)
            )
        )
        slow = [await svc.predict_batch(model, row[None]) for row in x]
        return first, again, slow

    hits, misses = _cache_lookups("hit"), _cache_lookups("miss")
    first, again, slow = asyncio.run(main())
    # 4 fast misses, 4 slow misses; then 8 fast hits and 8 slow hits
    assert _cache_lookups("miss") - misses == 8
    assert _cache_lookups("hit") - hits == 16
    assert all(isinstance(b, bytes) for b in first + again)
    for f in first:
        assert orjson.loads(f)["metadata"]["cache_hit"] is False
    for i, (a, s) in enumerate(zip(again, slow, strict=True)):
        got, want = _without_timing(orjson.loads(a)), _without_timing(s)
        assert got["metadata"]["cache_hit"] is True
        assert got == want  # a hit is exactly predict_batch's hit, byte for byte in the values
        if i < 4:  # the miss answered the same document, but for cache_hit
            miss = _without_timing(orjson.loads(first[i]))
            miss["metadata"]["cache_hit"] = True
            assert miss == got


def test_fast_path_cache_entries_expire(serving_registry) -> None:
    registry, _ = serving_registry
    svc = PredictionService(
        registry=registry, config={"gpu_enabled": False, "prediction_cache_ttl": 1.0}
    )
    row = make_data(1, seed=54, task="regression")[0][0].tolist()

    async def ask() -> bool:
        out = await svc.predict_json("xgb-clf", {"features": [row]})
        assert isinstance(out, bytes)
        return bool(orjson.loads(out)["metadata"]["cache_hit"])

    try:
        svc.get_model("xgb-clf")
        assert asyncio.run(ask()) is False
        assert asyncio.run(ask()) is True
        time.sleep(1.1)  # past the TTL: the entry is gone, the model runs again
        assert asyncio.run(ask()) is False
        assert asyncio.run(ask()) is True
        # another model version is another key
        svc.get_model("xgb-reg")
        out = asyncio.run(svc.predict_json("xgb-reg", {"features": [row]}))
        assert orjson.loads(out)["metadata"]["cache_hit"] is False
    finally:
        svc.close_sync()


def test_fast_path_with_the_cache_declines_bad_rows(cached_service) -> None:
    svc = cached_service
    bad = [[0.5] * (N_FEATURES - 1) + [v] for v in (math.nan, math.inf, 1e39, "1", True)]

    async def main() -> list[bytes | None]:
        svc.get_model("xgb-clf")
        return [await svc.predict_json("xgb-clf", {"features": [row]}) for row in bad]

    assert asyncio.run(main()) == [None] * len(bad)  # predict_batch says why
    for row in bad[:2]:
        with pytest.raises(ParameterError, match="non-finite"):
            svc.predict_batch_sync("xgb-clf", [row])


def test_http_errors_through_the_fast_route(serving_registry) -> None:
    registry, handles = serving_registry
    svc = PredictionService(
        registry=registry, config={"gpu_enabled": False, "prediction_cache_ttl": 0}
    )
    app = create_app(svc, close_service=False)
    x, _ = make_data(3, seed=52, task="regression")

    async def main() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            r = await client.post("/v1/models/xgb-clf:predict", json={"features": [x[0].tolist()]})
            assert r.status_code == 200, r.text
            assert r.json()["predictions"] == handles["xgb-clf"].predict(x[:1]).tolist()
            r = await client.post("/v1/models/xgb-clf:predict", json={"features": [x[1].tolist()]})
            assert r.headers["content-length"] == str(len(r.content))
            row = ", ".join(["0.5"] * (N_FEATURES - 1))
            r = await client.post(
                "/v1/models/xgb-clf:predict",
                content=f'{{"features": [[{row}, Infinity]]}}',
                headers={"content-type": "application/json"},
            )
            assert r.status_code == 422
            assert "row 0, feature 11" in r.json()["detail"]
            r = await client.post(
                "/v1/models/xgb-clf:predict", json={"features": [x[0, :5].tolist()]}
            )
            assert r.status_code == 422 and "expects 12 features" in r.json()["detail"]

    try:
        asyncio.run(main())
    finally:
        svc.close_sync()


def test_overload_and_timeout_through_the_fast_path(serving_registry) -> None:
    svc, release, entered = blocked_service(serving_registry[0])
    row = {"features": [[0.5] * N_FEATURES]}

    async def main() -> None:
        from ml_utilities.serving import Overloaded, RequestTimeoutError

        running = asyncio.ensure_future(svc.predict_json("xgb-reg", row))
        while not entered.is_set():
            await asyncio.sleep(0.005)
        queued = asyncio.ensure_future(svc.predict_json("xgb-reg", row))
        await asyncio.sleep(0.01)
        with pytest.raises(Overloaded, match="queue is full"):
            await svc.predict_json("xgb-reg", row)
        with pytest.raises(RequestTimeoutError):
            await running  # its batch runs past the deadline
        with pytest.raises(RequestTimeoutError):
            await queued  # never ran
        release.set()

    try:
        asyncio.run(main())
    finally:
        release.set()
        svc.close_sync()


# ------------------------------------------------------------------------------ token API
def test_submit_token_hands_each_batch_to_on_batch_once() -> None:
    w = np.arange(6, dtype=np.float32).reshape(3, 2)
    from ml_utilities._native import core

    seen: list[tuple[list, np.ndarray, np.ndarray, list]] = []

    def on_batch(tokens, out, queue_us, failed):  # noqa: ANN001
        seen.append((list(tokens), out.copy(), queue_us.copy(), list(failed)))

    native = core.serving.DynamicBatcher(
        lambda x: x @ w, 3, max_batch_size=4, max_queue_delay_us=200_000, on_batch=on_batch
    )
    rows = [[1.0, 2.0, 3.0], (4, 5, 6), np.array([7, 8, 9], np.float32), [0.0, 0.5, 1]]
    ids = [native.submit_token(r, f"t{i}") for i, r in enumerate(rows)]
    native.close(True)
    assert len(set(ids)) == 4
    assert len(seen) == 1
    tokens, out, queue_us, failed = seen[0]
    assert tokens == ["t0", "t1", "t2", "t3"] and failed == []
    np.testing.assert_allclose(out, np.asarray(rows, np.float32) @ w)
    assert out.dtype == np.float32 and queue_us.dtype == np.int64 and (queue_us >= 0).all()


def test_submit_token_refuses_bad_rows_naming_the_value() -> None:
    with DynamicBatcher(lambda x: x, 3) as b:
        native = b._native
        with pytest.raises(ParameterError, match=r"row value 2 is nan: expected a finite"):
            native.submit_token([1.0, 2.0, math.nan], None)
        with pytest.raises(ParameterError, match=r"row value 1 is 'x': expected a number"):
            native.submit_token([1.0, "x", 3.0], None)
        with pytest.raises(ParameterError, match=r"row value 0 is 1e\+39"):
            native.submit_token([1e39, 2.0, 3.0], None)
        with pytest.raises(ParameterError, match=r"too large for float32"):
            native.submit_token([10**400, 2.0, 3.0], None)
        with pytest.raises(ParameterError, match="a row has 2 values; this batcher expects"):
            native.submit_token([1.0, 2.0], None)
        with pytest.raises(ParameterError, match=r"got shape \(1, 3\)"):
            native.submit_token(np.zeros((1, 3), np.float32), None)
        with pytest.raises(ParameterError, match=r"timeout=-1: expected seconds >= 0"):
            native.submit_token([1.0, 2.0, 3.0], None, -1)
        assert b.stats()["submitted"] == 0


def test_submit_async_encode_hook_and_failures() -> None:
    def encode(tokens, out):  # noqa: ANN001
        if any(tag == "boom" for _, tag in tokens):
            raise LookupError("cannot encode this batch")
        return [
            out[i] if tag is None else f"{tag}:{out[i, 0]:g}" for i, (_, tag) in enumerate(tokens)
        ]

    def model(x: np.ndarray) -> np.ndarray:
        if (x < 0).any():
            raise ArithmeticError("negative input")
        return x[:, :1] * 2

    async def main(b: DynamicBatcher) -> None:
        got = await asyncio.gather(
            b.submit_async([1.0, 0.0], "a"),
            b.submit_async([2.0, 0.0], "b"),
            b.predict_async(np.array([3.0, 0.0], np.float32)),
        )
        assert got[:2] == ["a:2", "b:4"]
        np.testing.assert_allclose(got[2], [6.0])
        results = await asyncio.gather(
            b.submit_async([1.0, 0.0], "c"),
            b.submit_async([-1.0, 0.0], "d"),
            return_exceptions=True,
        )
        # one batch: the model's exception fails both of its requests
        assert all(isinstance(r, ArithmeticError) for r in results)
        # an encode hook that fails fails its batch's requests (none is left waiting)
        results = await asyncio.gather(
            b.submit_async([1.0, 0.0], "boom"),
            b.submit_async([2.0, 0.0], "e"),
            return_exceptions=True,
        )
        assert all(isinstance(r, LookupError) for r in results)

    with DynamicBatcher(model, 2, max_batch_size=4, max_queue_delay_us=50_000, encode=encode) as b:
        asyncio.run(main(b))
        assert b.stats()["failed"] == 2


@pytest.mark.parametrize("n", [0, 3, 200])
def test_observe_many_matches_one_observe_per_value(n) -> None:
    from prometheus_client import CollectorRegistry, Histogram, generate_latest

    from ml_utilities.serving.metrics import observe_many

    values = np.random.default_rng(n).exponential(0.01, n)
    values[: n // 4] = 0.005  # on a bucket bound: counted in that bucket, as observe() does
    texts = []
    for bulk in (False, True):
        registry = CollectorRegistry()
        hist = Histogram("t", "test", ["m"], buckets=(0.001, 0.005, 0.02), registry=registry)
        child = hist.labels("a")
        if bulk:
            observe_many(child, values)
        else:
            for v in values:
                child.observe(float(v))
        texts.append(
            [ln for ln in generate_latest(registry).decode().splitlines() if "_created" not in ln]
        )
    sums = [float(next(ln for ln in t if ln.startswith("t_sum")).split()[-1]) for t in texts]
    assert sums[1] == pytest.approx(sums[0], rel=1e-12, abs=1e-15)  # summed in another order
    assert [ln for ln in texts[0] if not ln.startswith("t_sum")] == [
        ln for ln in texts[1] if not ln.startswith("t_sum")
    ]
    assert f't_count{{m="a"}} {float(n)}' in texts[1]


def test_kept_key_prefix_gives_the_full_key() -> None:
    from ml_utilities.serving.cache import features_key, key_hasher, result_key

    opts = {"explain_predictions": False, "top_k": 5}
    rows = np.arange(2 * N_FEATURES, dtype=np.float32).reshape(2, 1, N_FEATURES)
    hasher = key_hasher("m", 3, opts, rows[0])
    keys = [features_key(hasher, r) for r in rows]
    assert keys == [result_key("m", 3, opts, r) for r in rows]  # the state is copied, not used
    assert keys[0] != keys[1]
    assert result_key("m", 4, opts, rows[0]) != keys[0]  # another version, another key
