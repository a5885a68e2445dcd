"""The HTTP app: the ASGI app of ``create_app`` through httpx's ASGI transport, called directly
(mounted under a root path, its lifespan) and on a real uvicorn over loopback; and two worker
processes of ``ml-utilities serve`` sharing a Redis cache."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
from serving_support import N_FEATURES, make_data, wait_ready

from ml_utilities.serving import PredictionService
from ml_utilities.serving.app import create_app


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def app(serving_registry):
    registry, _ = serving_registry
    service = PredictionService(registry=registry, config={"gpu_enabled": False})
    yield create_app(service)
    service.close_sync()


def test_routes_over_asgi(app, serving_registry) -> None:
    _, handles = serving_registry
    x, _ = make_data(6, seed=30, task="regression")

    async def main() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            r = await client.post(
                "/v1/models/xgb-clf:predict",
                json={"features": x.tolist(), "options": {"explain_predictions": True}},
            )
            assert r.status_code == 200, r.text
            body = r.json()
            assert body["predictions"] == handles["xgb-clf"].predict(x).tolist()
            assert len(body["explanations"]) == 6
            assert body["metadata"]["batch_size"] == 6

            r = await client.post(
                "/v1/models/xgb-reg@champion:predict", json={"instances": x[:2].tolist()}
            )
            assert r.status_code == 200 and r.json()["metadata"]["model_version"] == "2.0.1"

            r = await client.post("/v1/models/unknown:predict", json={"features": x.tolist()})
            assert r.status_code == 404
            assert r.json() == {
                "error": "ModelNotFoundError",
                "detail": "no registered model named 'unknown'",
            }

            r = await client.post(
                "/v1/models/xgb-clf:predict", json={"features": x[:, :5].tolist()}
            )
            assert r.status_code == 422
            assert "expects 12 features per row" in r.json()["detail"]

            row = ", ".join(["0.5"] * (N_FEATURES - 1))
            r = await client.post(
                "/v1/models/xgb-clf:predict",
                content=f'{{"features": [[{row}, NaN]]}}',
                headers={"content-type": "application/json"},
            )
            assert r.status_code == 422
            assert "non-finite" in r.json()["detail"] and "row 0, feature 11" in r.json()["detail"]

            r = await client.post(
                "/v1/models/xgb-clf:predict", json={"features": [[None] * N_FEATURES]}
            )
            assert r.status_code == 400 and r.json()["error"] == "FeatureValueError"
            assert "row 0, feature 0 (feat_0) = None is null" in r.json()["detail"]

            r = await client.post("/v1/models/xgb-clf:predict", json={"rows": []})
            assert r.status_code == 400 and "unknown field(s) ['rows']" in r.json()["detail"]

            r = await client.post(
                "/v1/models/xgb-clf:predict",
                json={"features": x.tolist(), "options": {"shap": True}},
            )
            assert r.status_code == 400

            r = await client.get("/v1/models/xgb-clf:predict")
            assert r.status_code == 405 and r.headers["allow"] == "POST"
            r = await client.post("/v1/models/xgb-clf:predict", content=b"{not json")
            assert r.status_code == 400 and "not JSON" in r.json()["detail"]
            r = await client.post("/v1/models/xgb-clf:predict", json={"options": {}})
            assert r.status_code == 422 and "no 'features'" in r.json()["detail"]

            assert (await client.get("/health")).json() == {"status": "ok"}
            assert (await client.get("/ready")).status_code == 200
            models = (await client.get("/v1/models")).json()["models"]
            assert {m["name"] for m in models} >= {"xgb-clf", "xgb-reg"}
            metrics = (await client.get("/metrics")).text
            assert "ml_model_inference_duration_seconds_bucket" in metrics
            # a model name that is not a loaded model's is counted under one label
            assert 'ml_serving_requests_total{model="_unknown",outcome="not_found"}' in metrics
            assert 'model="unknown"' not in metrics

    asyncio.run(main())


@contextlib.contextmanager
def _uvicorn(app, lifespan: str) -> Iterator[int]:
    """``app`` under a real uvicorn on a loopback port (yielded), from a thread."""
    # uvicorn is not a dependency of the package: users may serve create_app's app with it
    uvicorn = pytest.importorskip("uvicorn")
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan=lifespan)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        for _ in range(500):
            if server.started:
                break
            time.sleep(0.02)
        assert server.started
        yield port
    finally:
        server.should_exit = True
        thread.join(30)
    assert not thread.is_alive()


def test_real_uvicorn_on_loopback(app, serving_registry) -> None:
    _, handles = serving_registry
    with _uvicorn(app, lifespan="off") as port:
        x, _ = make_data(200, seed=31, task="regression")
        expected = handles["mlp-clf"].predict_proba(x)

        async def main() -> list[dict]:
            limits = httpx.Limits(max_connections=64)
            async with httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=30
            ) as client:

                async def one(row: np.ndarray) -> dict:
                    r = await client.post(
                        "/v1/models/mlp-clf:predict", json={"features": [row.tolist()]}
                    )
                    assert r.status_code == 200, r.text
                    return r.json()

                return await asyncio.gather(*(one(row) for row in x))

        answers = asyncio.run(main())
        for out, want in zip(answers, expected, strict=True):
            np.testing.assert_allclose(out["probabilities"][0], want, atol=2e-6)
        stats = app.service.get_model("mlp-clf").batcher.stats()
        assert stats["max_batch_seen"] > 1


def test_cli_serve_says_where_it_listens_and_what_it_serves(serving_registry, tmp_path) -> None:
    import argparse

    from ml_utilities.serving.cli import add_serve_command, startup_lines

    registry, _ = serving_registry
    parser = argparse.ArgumentParser()
    add_serve_command(parser.add_subparsers())
    args = parser.parse_args(
        ["serve", "--port", "8123", "--registry-url", registry.url, "--artifact-root",
         str(registry.store.url), "--workers", "2"]
    )  # fmt: skip
    lines = startup_lines(args)
    assert lines[0] == "ml-utilities serve: http://127.0.0.1:8123 (2 workers)"
    assert "POST http://127.0.0.1:8123/v1/models/{name}:predict" in lines[1]
    assert "http://127.0.0.1:8123/metrics" in lines[2]
    assert (
        registry.url in lines[3]
        and "xgb-reg (champion v2)" in lines[3]
        and "xgb-clf (v1)" in lines[3]
    )
    # an empty registry says so; one that cannot be opened says why
    empty = parser.parse_args(
        ["serve", "--registry-url", f"sqlite:///{tmp_path / 'empty.db'}", "--artifact-root",
         str(tmp_path / "artifacts")]
    )  # fmt: skip
    assert startup_lines(empty)[-1].endswith("none registered yet")
    broken = parser.parse_args(["serve", "--registry-url", "nosuchdb://x"])
    assert "cannot list its models" in startup_lines(broken)[-1]


def test_cli_serve_two_workers_share_redis(serving_registry, redis_url, tmp_path) -> None:
    import redis

    registry, handles = serving_registry
    port = _free_port()
    env = dict(os.environ, ML_UTILITIES_HOME=str(tmp_path / "home"))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ml_utilities.serving.cli",
            "serve",
            "--port",
            str(port),
            "--workers",
            "2",
            "--registry-url",
            registry.url,
            "--artifact-root",
            str(registry.store.url),
            "--redis-url",
            redis_url,
            "--config",
            '{"gpu_enabled": false}',
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_ready(proc, base, 60)
        x, _ = make_data(4, seed=32, task="regression")
        hits = []
        with httpx.Client(base_url=base, timeout=30) as client:
            for _ in range(6):  # new connections: both workers answer over the run
                r = client.post(
                    "/v1/models/xgb-clf:predict",
                    json={"features": x.tolist()},
                    headers={"connection": "close"},
                )
                assert r.status_code == 200, r.text
                body = r.json()
                assert body["predictions"] == handles["xgb-clf"].predict(x).tolist()
                hits.append(body["metadata"]["cache_hit"])
        assert hits[0] is False and all(hits[1:])
        client = redis.Redis.from_url(redis_url)
        assert len(client.keys("mlu:pred:*")) == 1
        client.close()
    finally:
        proc.terminate()
        proc.wait(20)
        proc.stdout.close()


def test_error_statuses_of_the_predict_route() -> None:
    # A service whose predict_batch raises what the batcher raises under load: each maps to
    # its status, with the reason; anything else is a plain 500 from the server.
    from ml_utilities.serving import Overloaded, RequestTimeoutError

    class Failing:
        """Raises from the fast path (predict_json) or, when that declines, predict_batch."""

        def __init__(self) -> None:
            self.error: Exception = Overloaded("queue full")
            self.fast = False

        async def predict_json(self, name: str, doc: dict) -> bytes | None:
            assert name == "m" and doc == {"features": [[1.0]]}
            if self.fast:
                raise self.error
            return None

        async def predict_batch(self, **kwargs: object) -> dict:
            assert kwargs["model_name"] == "m" and kwargs["features"] == [[1.0]]
            raise self.error

    service = Failing()
    app = create_app(service, close_service=False)

    async def status(err: Exception, fast: bool) -> httpx.Response:
        service.error, service.fast = err, fast
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.post("/v1/models/m:predict", json={"features": [[1.0]]})

    for fast in (False, True):
        r = asyncio.run(status(Overloaded("queue full"), fast))
        assert r.status_code == 503 and r.headers["retry-after"] == "1"
        assert r.json() == {"error": "Overloaded", "detail": "queue full"}
        r = asyncio.run(status(RequestTimeoutError("too slow"), fast))
        assert r.status_code == 504 and r.json()["error"] == "RequestTimeoutError"
        r = asyncio.run(status(KeyError("bug"), fast))
        assert r.status_code == 500
        assert r.text == "Internal Server Error"  # answered by the app, as by the front end
        assert r.headers["content-type"] == "text/plain; charset=utf-8"


def test_the_asgi_app_under_uvicorn_with_its_lifespan(serving_registry) -> None:
    """``create_app(service)`` under uvicorn (what ``--server uvicorn`` ran, before the front
    end served every route): the routes answer, and the lifespan shutdown closes the service."""
    registry, handles = serving_registry
    service = PredictionService(registry=registry, config={"gpu_enabled": False})
    with _uvicorn(create_app(service), lifespan="on") as port:
        x, _ = make_data(3, seed=33, task="regression")
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            r = client.post("/v1/models/xgb-clf:predict", json={"features": x.tolist()})
            assert r.status_code == 200, r.text
            assert r.json()["predictions"] == handles["xgb-clf"].predict(x).tolist()
            assert r.headers["server"] == "uvicorn"
            assert client.get("/health").json() == {"status": "ok"}
            assert client.get("/ready").json() == {"status": "ready"}
            head = client.head("/health")  # uvicorn leaves the body out
            assert head.status_code == 200 and head.headers["content-length"] == "15"
            assert head.content == b""
            missing = client.get("/nope")
            assert missing.status_code == 404 and missing.json() == {"detail": "Not Found"}
        assert [m["name"] for m in service.loaded_models()] == ["xgb-clf"]
    assert service.loaded_models() == []  # closed by the lifespan shutdown
    service.close_sync()


class _Recording:
    """A service that records its requests and its close."""

    def __init__(self) -> None:
        self.docs: list[object] = []
        self.closed = 0

    async def predict_json(self, name: str, doc: object) -> bytes:
        self.docs.append((name, doc))
        return b'{"ok":true}'

    def loaded_models(self) -> list[dict]:
        return [{"name": "m"}]

    async def close(self) -> None:
        self.closed += 1


def _call(app, scope: dict, messages: list[dict]) -> list[dict]:
    """The messages ``app`` sends for ``scope``, given the ``messages`` it receives."""
    sent: list[dict] = []

    async def receive() -> dict:
        return messages.pop(0)

    async def send(message: dict) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent


def _get(app, path: str, root_path: str = "", method: str = "GET") -> tuple[int, bytes]:
    scope = {"type": "http", "method": method, "path": path, "root_path": root_path}
    start, body = _call(app, scope, [{"type": "http.request", "body": b""}])
    assert start["type"] == "http.response.start" and body["type"] == "http.response.body"
    headers = dict(start["headers"])
    assert headers[b"content-length"] == b"%d" % len(body["body"])
    return start["status"], body["body"]


def test_the_asgi_app_mounted_under_a_root_path() -> None:
    app = create_app(_Recording())
    # root_path in path (uvicorn's --root-path, Starlette's Mount) or not (httpx's transport)
    for path in ("/ml/health", "/health"):
        assert _get(app, path, "/ml") == (200, b'{"status":"ok"}'), path
    assert _get(app, "/ml/v1/models", "/ml") == (200, b'{"models":[{"name":"m"}]}')
    assert _get(app, "/mlx/health", "/ml") == (404, b'{"detail":"Not Found"}')
    assert _get(app, "/ml", "/ml") == (404, b'{"detail":"Not Found"}')
    assert _get(app, "/ml/health", "/ml", "POST")[0] == 405


def test_the_asgi_app_reads_the_whole_body_and_its_lifespan_closes_the_service() -> None:
    service = _Recording()
    app = create_app(service)
    scope = {"type": "http", "method": "POST", "path": "/v1/models/m:predict"}
    parts = [b'{"features"', b": [[1.5, ", b"2]]}"]
    messages = [{"type": "http.request", "body": p, "more_body": True} for p in parts]
    messages.append({"type": "http.request", "body": b""})
    start, body = _call(app, scope, messages)
    assert start["status"] == 200 and body["body"] == b'{"ok":true}'
    assert service.docs == [("m", {"features": [[1.5, 2]]})]
    # a client that goes away before its body: nothing is answered, nothing predicted
    assert _call(app, scope, [{"type": "http.disconnect"}]) == []
    assert len(service.docs) == 1
    # a WebSocket is refused
    assert _call(app, {"type": "websocket", "path": "/health"}, []) == [
        {"type": "websocket.close", "code": 1000}
    ]
    lifespan = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent = _call(app, {"type": "lifespan"}, list(lifespan))
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert service.closed == 1
    kept = _Recording()
    _call(create_app(kept, close_service=False), {"type": "lifespan"}, list(lifespan))
    assert kept.closed == 0
