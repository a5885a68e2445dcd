"""The HTTP/1.1 front end (``ml_utilities.serving.frontend``) on a loopback port, with real
clients: httpx, and raw sockets whose answers are read with httptools' response parser."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import numpy as np
import pytest
from serving_support import N_FEATURES, Responses, Running, make_data, post, wait_ready

from ml_utilities.exceptions import ParameterError
from ml_utilities.serving import PredictionService
from ml_utilities.serving.app import create_app
from ml_utilities.serving.frontend import FrontEnd

CLIENTS = 64


CHUNKED_HEAD = (
    b"POST /v1/models/xgb-clf:predict HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
)


def row_body(row: np.ndarray) -> bytes:
    return json.dumps({"features": [row.tolist()]}).encode()


def _metric(text: str, prefix: str) -> float:
    for line in text.splitlines():
        if line.startswith(prefix):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_every_answer_is_its_rows_under_64_concurrent_clients(served, serving_registry) -> None:
    _, handles = serving_registry
    x, _ = make_data(640, seed=41, task="regression")
    models = ["xgb-clf", "mlp-clf", "xgb-reg"]
    # load the models first, so that the rows take the batched fast path
    for name in models:
        r = httpx.post(
            f"{served.base}/v1/models/{name}:predict", json={"features": [x[0].tolist()]}
        )
        assert r.status_code == 200, r.text
    before = httpx.get(served.base + "/metrics").text
    jobs = [(i, models[i % 3]) for i in range(len(x))]

    async def main() -> dict[int, dict]:
        limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
        todo = iter(jobs)
        got: dict[int, dict] = {}
        async with httpx.AsyncClient(base_url=served.base, limits=limits, timeout=60) as client:

            async def worker() -> None:
                for i, name in todo:
                    r = await client.post(
                        f"/v1/models/{name}:predict", json={"features": [x[i].tolist()]}
                    )
                    assert r.status_code == 200, r.text
                    assert r.headers["content-type"] == "application/json"
                    got[i] = r.json()

            await asyncio.gather(*(worker() for _ in range(CLIENTS)))
        return got

    got = asyncio.run(main())
    assert sorted(got) == list(range(len(x)))
    for i, name in jobs:
        row = x[i : i + 1]
        body = got[i]
        assert body["metadata"]["model_name"] == name
        if name == "xgb-reg":  # the latest version: v2
            want = handles["xgb-reg@2"].predict(row)
            np.testing.assert_allclose(body["predictions"], want, rtol=1e-5, atol=1e-6)
        else:
            assert body["predictions"] == handles[name].predict(row).tolist(), i
            np.testing.assert_allclose(
                body["probabilities"], handles[name].predict_proba(row), atol=2e-6
            )
    after = httpx.get(served.base + "/metrics").text
    for name in models:  # the same metrics as the ASGI route, once per request
        key = f'ml_serving_requests_total{{model="{name}",outcome="ok"}}'
        assert _metric(after, key) - _metric(before, key) == sum(n == name for _, n in jobs)
    stats = served.front.service.get_model("xgb-clf").batcher.stats()
    assert stats["max_batch_seen"] > 1  # the rows of concurrent requests shared model calls


def test_keep_alive_and_pipelining_answer_in_order(served, serving_registry) -> None:
    _, handles = serving_registry
    x, _ = make_data(8, seed=42, task="regression")
    want = handles["xgb-clf"].predict_proba(x)
    with socket.create_connection(("127.0.0.1", served.port)) as sock:
        responses = Responses(sock)
        for i in range(3):  # one after the other on one connection
            sock.sendall(post("/v1/models/xgb-clf:predict", row_body(x[i])))
            (r,) = responses.read()
            assert r["status"] == 200 and "connection" not in r["headers"]
            np.testing.assert_allclose(
                json.loads(r["body"])["probabilities"][0], want[i], atol=2e-6
            )
        # pipelined: eight requests in one write, predict and other routes mixed
        batch = [post("/v1/models/xgb-clf:predict", row_body(x[i])) for i in range(3, 8)]
        batch.insert(1, b"GET /health HTTP/1.1\r\nHost: test\r\n\r\n")
        batch.insert(3, post("/v1/models/unknown:predict", row_body(x[0])))
        batch.insert(5, b"GET /v1/models HTTP/1.1\r\nHost: test\r\n\r\n")
        sock.sendall(b"".join(batch))
        out = responses.read(len(batch))
        assert json.loads(out[1]["body"]) == {"status": "ok"}
        assert out[3]["status"] == 404
        assert "models" in json.loads(out[5]["body"])
        answers = [json.loads(r["body"]) for i, r in enumerate(out) if i not in (1, 3, 5)]
        for i, body in zip(range(3, 8), answers, strict=True):
            np.testing.assert_allclose(body["probabilities"][0], want[i], atol=2e-6)
        # the connection is still open
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: test\r\n\r\n")
        assert responses.read()[0]["status"] == 200


def test_chunked_request_bodies(served, serving_registry) -> None:
    _, handles = serving_registry
    x, _ = make_data(2, seed=43, task="regression")
    want = handles["xgb-clf"].predict_proba(x)
    body = row_body(x[0])
    with socket.create_connection(("127.0.0.1", served.port)) as sock:
        responses = Responses(sock)
        sock.sendall(CHUNKED_HEAD)
        for start in range(0, len(body), 37):  # several chunks, in separate writes
            part = body[start : start + 37]
            sock.sendall(b"%x\r\n%s\r\n" % (len(part), part))
            time.sleep(0.005)
        sock.sendall(b"0\r\n\r\n")
        (r,) = responses.read()
        assert r["status"] == 200
        np.testing.assert_allclose(json.loads(r["body"])["probabilities"][0], want[0], atol=2e-6)

    def chunks():  # httpx sends an iterator's body chunked
        data = row_body(x[1])
        yield data[:10]
        yield data[10:]

    r = httpx.post(served.base + "/v1/models/xgb-clf:predict", content=chunks())
    assert r.status_code == 200
    np.testing.assert_allclose(r.json()["probabilities"][0], want[1], atol=2e-6)


def test_connection_close_and_http_1_0(served) -> None:
    x, _ = make_data(1, seed=44, task="regression")
    cases = [
        (b"1.1", b"Connection: close\r\n", True),
        (b"1.0", b"", True),
        (b"1.0", b"Connection: keep-alive\r\n", False),
        (b"1.1", b"", False),
    ]
    for version, extra, closes in cases:
        with socket.create_connection(("127.0.0.1", served.port)) as sock:
            responses = Responses(sock)
            sock.sendall(post("/v1/models/xgb-clf:predict", row_body(x[0]), extra, version))
            (r,) = responses.read()
            assert r["status"] == 200, (version, extra)
            assert (r["headers"].get("connection") == "close") is closes
            if version == b"1.0" and not closes:  # an HTTP/1.0 client needs to be told
                assert r["headers"]["connection"] == "keep-alive"
            if closes:
                assert responses.closed()
            else:  # still serving
                sock.sendall(b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n")
                assert responses.read()[0]["status"] == 200
    with socket.create_connection(("127.0.0.1", served.port)) as sock:  # a route other than predict
        responses = Responses(sock)
        sock.sendall(b"GET /health HTTP/1.0\r\n\r\n")
        (r,) = responses.read()
        assert r["status"] == 200 and json.loads(r["body"]) == {"status": "ok"}
        assert responses.closed()


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GARBAGE\r\n\r\n",
        b"POST /v1/models/xgb-clf:predict HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
        b"GET / HTTP/9.9.9\r\n\r\n",
        b"POST /v1/models/xgb-clf:predict HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ],
)
def test_malformed_requests_are_answered_400_and_closed(served, request_bytes) -> None:
    with socket.create_connection(("127.0.0.1", served.port)) as sock:
        responses = Responses(sock)
        # a good request first: answered, then the 400, then the connection closes
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n" + request_bytes)
        ok, bad = responses.read(2)
        assert ok["status"] == 200
        assert bad["status"] == 400 and bad["headers"]["connection"] == "close"
        assert bad["headers"]["content-type"] == "application/json"
        assert json.loads(bad["body"])["error"] == "BadRequest"
        assert "malformed HTTP request" in json.loads(bad["body"])["detail"]
        assert responses.closed()


def test_oversized_heads_and_upgrades(served) -> None:
    with socket.create_connection(("127.0.0.1", served.port)) as sock:
        responses = Responses(sock)
        sock.sendall(b"GET /health HTTP/1.1\r\nX-Big: " + b"a" * 70_000 + b"\r\n\r\n")
        (r,) = responses.read()
        assert r["status"] == 431 and json.loads(r["body"])["error"] == "HeadersTooLarge"
        assert responses.closed()
    with socket.create_connection(("127.0.0.1", served.port)) as sock:
        responses = Responses(sock)  # no protocol switch: answered, then closed
        sock.sendall(
            b"GET /health HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
        )
        (r,) = responses.read()
        assert r["status"] == 200 and r["headers"]["connection"] == "close"
        assert responses.closed()


def test_oversized_bodies_are_answered_413(serving_registry) -> None:
    registry, _ = serving_registry
    service = PredictionService(registry=registry, config={"gpu_enabled": False})
    running = Running(create_app(service), max_body_size=1000)
    try:
        x, _ = make_data(1, seed=45, task="regression")
        r = httpx.post(
            running.base + "/v1/models/xgb-clf:predict", json={"features": [x[0].tolist()]}
        )
        assert r.status_code == 200  # under the limit
        with socket.create_connection(("127.0.0.1", running.port)) as sock:
            responses = Responses(sock)  # refused from its Content-Length, body unsent
            sock.sendall(
                b"POST /v1/models/xgb-clf:predict HTTP/1.1\r\nHost: t\r\n"
                b"Content-Length: 5000\r\n\r\n"
            )
            (r,) = responses.read()
            assert r["status"] == 413 and r["headers"]["connection"] == "close"
            doc = json.loads(r["body"])
            assert doc["error"] == "PayloadTooLarge"
            assert "5000 bytes" in doc["detail"] and "1000" in doc["detail"]
            assert responses.closed()
        with socket.create_connection(("127.0.0.1", running.port)) as sock:
            responses = Responses(sock)  # chunked: refused once past the limit
            chunk = b"200\r\n" + b" " * 512 + b"\r\n"
            sock.sendall(CHUNKED_HEAD + chunk * 3)
            (r,) = responses.read()
            assert r["status"] == 413 and json.loads(r["body"])["error"] == "PayloadTooLarge"
            assert responses.closed()
    finally:
        running.shutdown()


ERROR_BODIES = [
    ("unknown", {"features": [[0.5] * N_FEATURES]}),
    ("xgb-clf", {"features": [[0.5] * 5]}),
    ("xgb-clf", {"features": [[None] * N_FEATURES]}),
    ("xgb-clf", {"rows": []}),
    ("xgb-clf", {"options": {}}),
    ("xgb-clf", {"features": [[0.5] * N_FEATURES], "options": {"shap": True}}),
    ("xgb-clf", {"features": [[0.5] * N_FEATURES], "version": 7}),
    ("xgb-reg@nope", {"features": [[0.5] * N_FEATURES]}),
    ("xgb-clf", "not json"),
    ("xgb-clf", "nan row"),
]


def _raw(doc) -> bytes:
    if doc == "not json":
        return b"{not json"
    if doc == "nan row":
        return ('{"features": [[' + ", ".join(["0.5"] * (N_FEATURES - 1)) + ", NaN]]}").encode()
    return json.dumps(doc).encode()


def test_errors_and_answers_are_those_of_the_asgi_app(served) -> None:
    app = served.front.app
    x, _ = make_data(3, seed=46, task="regression")
    requests = [
        *ERROR_BODIES,
        ("xgb-clf", {"features": x.tolist()}),
        ("mlp-clf", {"features": [x[0].tolist()]}),
    ]
    requests.append(
        ("xgb-clf", {"features": [x[1].tolist()], "options": {"confidence_intervals": True}})
    )

    async def through_asgi() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return [
                await client.post(f"/v1/models/{name}:predict", content=_raw(doc))
                for name, doc in requests
            ]

    # the ASGI app runs on the front end's loop, where the service's batchers answer
    asgi = asyncio.run_coroutine_threadsafe(through_asgi(), served.loop).result(120)
    with httpx.Client(base_url=served.base, timeout=60) as client:
        direct = [
            client.post(f"/v1/models/{name}:predict", content=_raw(doc)) for name, doc in requests
        ]
    statuses = [r.status_code for r in direct]
    assert statuses[: len(ERROR_BODIES)] == [404, 422, 400, 400, 422, 400, 404, 404, 400, 422]
    for (name, doc), a, d in zip(requests, asgi, direct, strict=True):
        assert d.status_code == a.status_code, (name, doc, d.text, a.text)
        assert d.headers["content-type"] == a.headers["content-type"] == "application/json"
        da, dd = a.json(), d.json()
        if a.status_code == 200:  # the same document, but for its timing
            for body in (da, dd):
                for key in ("inference_time_ms", "batch_size", "cache_hit", "dynamic_batching"):
                    body["metadata"].pop(key, None)
        assert dd == da, (name, doc)
    nan = direct[len(ERROR_BODIES) - 1].json()["detail"]
    assert "row 0, feature 11" in nan
    assert "expects 12 features per row" in direct[1].json()["detail"]


@pytest.mark.parametrize("raised", ["ArithmeticError", "ParameterError", "BatchError"])
def test_failed_batches_are_answered_as_by_the_asgi_app(serving_registry, raised) -> None:
    """A batch that fails answers its requests as the ASGI route does, through the callback
    path (no result cache): an unexpected exception is a plain 500, a ParameterError goes to
    predict_batch (which says why), a service error is its JSON document; each is counted."""
    from ml_utilities.serving.errors import BatchError

    registry, _ = serving_registry
    service = PredictionService(
        registry=registry, config={"gpu_enabled": False, "prediction_cache_ttl": 0}
    )
    model = service.get_model("xgb-clf")
    working = model.predict_raw
    errors = {
        "ArithmeticError": ArithmeticError("the model failed"),
        "ParameterError": ParameterError("the model refused its input"),
        "BatchError": BatchError("the batch went wrong"),
    }

    def failing(x: np.ndarray) -> np.ndarray:
        raise errors[raised]

    model.predict_raw = failing
    app = create_app(service)
    running = Running(app)
    body = row_body(np.full(N_FEATURES, 0.5, np.float32))
    outcome = {"ArithmeticError": "error", "ParameterError": "bad_input", "BatchError": "error"}

    async def through_asgi() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.post("/v1/models/xgb-clf:predict", content=body)

    try:
        key = f'ml_serving_requests_total{{model="xgb-clf",outcome="{outcome[raised]}"}}'
        before = _metric(httpx.get(running.base + "/metrics").text, key)
        direct = httpx.post(running.base + "/v1/models/xgb-clf:predict", content=body, timeout=60)
        after = _metric(httpx.get(running.base + "/metrics").text, key)
        assert after - before == 1
        asgi = asyncio.run_coroutine_threadsafe(through_asgi(), running.loop).result(60)
        if raised == "ArithmeticError":  # not a service error: a plain 500 from both
            for r in (direct, asgi):
                assert r.status_code == 500
                assert r.text == "Internal Server Error"
                assert r.headers["content-type"] == "text/plain; charset=utf-8"
        else:
            assert (
                direct.status_code == asgi.status_code == {"ParameterError": 400}.get(raised, 500)
            )
            assert (
                direct.json()
                == asgi.json()
                == {
                    "error": raised,
                    "detail": str(errors[raised]),
                }
            )
        # the connection and the service go on: a working model answers
        model.predict_raw = working
        ok = httpx.post(running.base + "/v1/models/xgb-clf:predict", content=body, timeout=60)
        assert ok.status_code == 200, ok.text
    finally:
        running.shutdown()


def test_other_routes_and_decoded_paths(served, serving_registry) -> None:
    _, handles = serving_registry
    x, _ = make_data(1, seed=47, task="regression")
    with httpx.Client(base_url=served.base, timeout=60) as client:
        assert client.get("/health").json() == {"status": "ok"}
        ready = client.get("/ready")
        assert ready.status_code == 200 and ready.json() == {"status": "ready"}
        client.post("/v1/models/xgb-clf:predict", json={"features": x.tolist()})
        metrics = client.get("/metrics")
        assert metrics.headers["content-type"].startswith("text/plain; version=0.0.4")
        assert "ml_model_inference_duration_seconds_bucket" in metrics.text
        assert {m["name"] for m in client.get("/v1/models").json()["models"]} >= {"xgb-clf"}
        missing = client.get("/no/such/route")
        assert missing.status_code == 404 and missing.json() == {"detail": "Not Found"}
        r = client.get("/v1/models/xgb-clf:predict")
        assert r.status_code == 405 and r.headers["allow"] == "POST"
        # a percent-encoded path and a query string are decoded (then answered in a task)
        for path in ("/v1/models/xgb%2Dclf:predict", "/v1/models/xgb-clf:predict?trace=1"):
            r = client.post(path, json={"features": x.tolist()})
            assert r.status_code == 200, (path, r.text)
            assert r.json()["predictions"] == handles["xgb-clf"].predict(x).tolist()
        # Expect: 100-continue is answered before the body is sent
    with socket.create_connection(("127.0.0.1", served.port)) as sock:
        body = row_body(x[0])
        sock.sendall(
            b"POST /v1/models/xgb-clf:predict HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body)
        )
        sock.settimeout(30)
        assert sock.recv(1024) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(body)
        (r,) = Responses(sock).read()
        assert r["status"] == 200


class SlowService:
    """Answers each predict request once ``release`` is called; records the shutdown."""

    def __init__(self) -> None:
        self.entered = 0
        self.gate: asyncio.Event | None = None
        self.connections_at_close: int | None = None
        self.front: FrontEnd | None = None

    async def predict_json(self, name: str, doc: dict) -> bytes:
        if self.gate is None:
            self.gate = asyncio.Event()
        self.entered += 1
        await self.gate.wait()
        return json.dumps({"row": doc["features"][0][0]}).encode()

    def release(self) -> None:
        assert self.gate is not None
        self.gate.set()

    async def close(self) -> None:
        self.connections_at_close = len(self.front.connections)


def test_shutdown_answers_the_requests_in_flight() -> None:
    service = SlowService()
    app = create_app(service)
    running = Running(app)
    service.front = running.front
    socks = [socket.create_connection(("127.0.0.1", running.port)) for _ in range(8)]
    idle = socket.create_connection(("127.0.0.1", running.port))
    try:
        idle_responses = Responses(idle)
        idle.sendall(b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n")
        assert idle_responses.read()[0]["status"] == 200
        for i, sock in enumerate(socks):
            sock.sendall(post("/v1/models/m:predict", json.dumps({"features": [[i]]}).encode()))
        deadline = time.monotonic() + 60
        while service.entered < len(socks):
            assert time.monotonic() < deadline
            time.sleep(0.01)
        running.call(running.front.request_shutdown)
        assert idle_responses.closed()  # an idle connection is closed at once
        while True:  # and no new connection is accepted
            try:
                socket.create_connection(("127.0.0.1", running.port), timeout=5).close()
            except OSError:
                break
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert service.connections_at_close is None  # the service is not closed yet
        running.call(service.release)
        for i, sock in enumerate(socks):
            responses = Responses(sock)
            (r,) = responses.read()
            assert r["status"] == 200 and json.loads(r["body"]) == {"row": i}
            assert r["headers"]["connection"] == "close"
            assert responses.closed()
        running.thread.join(60)
        assert not running.thread.is_alive()
        assert service.connections_at_close == 0  # closed once every answer was written
    finally:
        for sock in [*socks, idle]:
            sock.close()
        running.shutdown()


def test_front_end_options_are_checked() -> None:
    for bad in ({"max_body_size": 0}, {"keep_alive_timeout": -1}, {"graceful_timeout": "x"}):
        with pytest.raises(ParameterError, match=next(iter(bad))):
            FrontEnd(None, **bad)
    assert issubclass(ParameterError, ValueError)


def test_cli_serve_front_end(serving_registry, tmp_path) -> None:
    """``ml-utilities serve``: the front end, in its own process (the ASGI app under uvicorn is
    checked in test_app.py)."""
    registry, handles = serving_registry
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [
        sys.executable,
        "-m",
        "ml_utilities.serving.cli",
        "serve",
        "--port",
        str(port),
        "--registry-url",
        registry.url,
        "--artifact-root",
        str(registry.store.url),
        "--config",
        '{"gpu_enabled": false}',
    ]
    env = dict(os.environ, ML_UTILITIES_HOME=str(tmp_path / "home"))
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_ready(proc, base, 90)
        x, _ = make_data(3, seed=48, task="regression")
        r = httpx.post(
            base + "/v1/models/xgb-clf:predict", json={"features": x.tolist()}, timeout=60
        )
        assert r.status_code == 200, r.text
        assert r.json()["predictions"] == handles["xgb-clf"].predict(x).tolist()
        assert r.headers["server"] == "ml-utilities"  # the package's front end answers
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        proc.stdout.close()


# every route but predict's, as (method, path); the front end and the ASGI app must answer each
# with the same status, headers and bytes
ROUTES = [
    ("GET", "/health"),
    ("GET", "/ready"),
    ("GET", "/v1/models"),
    ("GET", "/metrics"),
    ("GET", "/no/such/route"),
    ("GET", "/health/"),
    ("GET", "/v1/models/:predict"),
    ("GET", "/v1/models/a/b:predict"),
    ("POST", "/health"),
    ("DELETE", "/v1/models"),
    ("PUT", "/metrics"),
    ("GET", "/v1/models/xgb-clf:predict"),
    ("HEAD", "/v1/models/xgb-clf:predict"),
    ("GET", "/health?verbose=1"),
    ("GET", "/heal%74h"),
    ("HEAD", "/health"),
    ("HEAD", "/v1/models"),
]


def _metric_names(text: str) -> list[str]:
    return [line.rsplit(" ", 1)[0] for line in text.splitlines()]


def test_the_front_end_and_the_asgi_app_answer_every_route_alike(served) -> None:
    app = served.front.app
    x, _ = make_data(1, seed=49, task="regression")
    # a loaded model, so that /v1/models lists one with its counters
    r = httpx.post(served.base + "/v1/models/xgb-clf:predict", json={"features": x.tolist()})
    assert r.status_code == 200

    async def through_asgi() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return [await client.request(method, path) for method, path in ROUTES]

    asgi = asyncio.run_coroutine_threadsafe(through_asgi(), served.loop).result(60)
    with httpx.Client(base_url=served.base, timeout=60) as client:
        direct = [client.request(method, path) for method, path in ROUTES]
    assert [r.status_code for r in direct] == [
        *(200, 200, 200, 200),
        *(404, 404, 404, 404),
        *(405, 405, 405, 405, 405),
        *(200, 200, 200, 200),
    ]
    for (method, path), a, d in zip(ROUTES, asgi, direct, strict=True):
        what = (method, path)
        assert d.status_code == a.status_code, what
        for name in ("content-type", "content-length", "allow", "retry-after"):
            if (method, path, name) != ("GET", "/metrics", "content-length"):
                assert d.headers.get(name) == a.headers.get(name), (what, name)
        if (method, path) == ("GET", "/metrics"):  # its counters move: the same metrics
            assert d.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
            assert _metric_names(d.text) == _metric_names(a.text)
        elif method == "HEAD":  # the head of the GET answer, no body
            assert d.content == b"" and int(d.headers["content-length"]) > 0, what
        else:
            assert d.content == a.content, what
    assert direct[0].content == b'{"status":"ok"}'
    assert direct[4].json() == {"detail": "Not Found"}
    assert direct[8].json() == {"detail": "Method Not Allowed"}
    assert direct[8].headers["allow"] == "GET, HEAD"
    assert direct[11].headers["allow"] == "POST"
    assert direct[-1].headers["content-length"] == str(len(direct[2].content))


class _Transport:
    """What the protocol writes, without a socket."""

    def __init__(self) -> None:
        self.data = b""
        self.closed = False

    def write(self, data: bytes) -> None:
        self.data += data

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


class _NotCalled:
    """Has the attributes of create_app's app, but must not be called: the front end answers
    from the routes itself."""

    def __init__(self, service) -> None:
        self.service = service
        self.close_service = False

    async def __call__(self, scope, receive, send) -> None:
        raise AssertionError("the front end called the ASGI app")


def test_simple_routes_are_answered_within_the_read_without_the_asgi_app(service) -> None:
    from ml_utilities.serving.frontend import _Protocol

    requests = [
        b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n",
        b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n",
        b"GET /v1/models HTTP/1.1\r\nHost: t\r\n\r\n",
        b"GET /nope HTTP/1.1\r\nHost: t\r\n\r\n",
        b"POST /health HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\n{}",
        b"GET /v1/models/m:predict HTTP/1.1\r\nHost: t\r\n\r\n",
    ]

    async def main() -> tuple[bytes, bytes]:
        front = FrontEnd(_NotCalled(service))
        front.loop = asyncio.get_running_loop()
        front.date_header = b"date: now\r\nserver: ml-utilities\r\n"
        answers = []
        for data in (b"".join(requests), b"HEAD /health HTTP/1.1\r\nHost: t\r\n\r\n"):
            conn = _Protocol(front)
            transport = _Transport()
            conn.connection_made(transport)
            conn.data_received(data)
            # every answer written before data_received returns: no task, no loop iteration
            assert conn.task is None and not conn.busy and not conn.queue
            assert not transport.closed
            answers.append(transport.data)
        return answers[0], answers[1]

    data, head = asyncio.run(main())

    class Fake:
        def recv(self, n: int) -> bytes:
            return b""

        def settimeout(self, t: float) -> None:
            pass

    responses = Responses(Fake())
    responses.parser.feed_data(data)
    out = responses.done
    assert [r["status"] for r in out] == [200, 200, 200, 404, 405, 405]
    assert out[0]["body"] == b'{"status":"ok"}'
    assert out[1]["headers"]["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert b"ml_serving_requests_total" in out[1]["body"]
    assert json.loads(out[2]["body"]) == {"models": []}
    assert json.loads(out[3]["body"]) == {"detail": "Not Found"}
    assert out[4]["headers"]["allow"] == "GET, HEAD"
    assert out[5]["headers"]["allow"] == "POST"
    assert head.startswith(b"HTTP/1.1 200 OK\r\n") and head.endswith(b"\r\n\r\n")
    assert b"content-length: 15\r\n" in head  # the length of the GET answer, with no body


def test_thousands_of_pipelined_requests_behind_a_prediction(served) -> None:
    """Requests answered at once, queued behind a prediction, are answered one after the other
    when it is (not by recursion, which a long pipeline would exhaust)."""
    n = 3000
    x, _ = make_data(1, seed=50, task="regression")
    with socket.create_connection(("127.0.0.1", served.port)) as sock:
        responses = Responses(sock)
        sock.sendall(
            post("/v1/models/xgb-clf:predict", row_body(x[0]))
            + b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n" * n
        )
        out = responses.read(n + 1)
        assert out[0]["status"] == 200 and "predictions" in json.loads(out[0]["body"])
        assert all(r["status"] == 200 and r["body"] == b'{"status":"ok"}' for r in out[1:])
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n")  # and it still serves
        assert responses.read()[0]["status"] == 200
