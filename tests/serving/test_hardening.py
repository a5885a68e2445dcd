"""The serving side of the hardening issue: metric labels that clients cannot grow, half-closed
connections answered, deadlines for slow clients, a cap on connections, and JSON errors (never
a plain-text 500) for deeply nested bodies, values that are not numbers and damaged models."""

from __future__ import annotations

import asyncio
import json
import secrets
import select
import socket
import time

import httpx
import numpy as np
import pytest
from serving_support import FEATURE_NAMES, N_FEATURES, Responses, Running, make_data, post

from ml_utilities.config import ConfigError, Settings, get_settings, reload_settings
from ml_utilities.exceptions import ParameterError
from ml_utilities.serving import FeatureValueError, ModelInputError, PredictionService
from ml_utilities.serving.app import create_app
from ml_utilities.serving.frontend import FrontEnd
from ml_utilities.serving.metrics import render
from ml_utilities.serving.request import UNKNOWN_MODEL


def _value(text: str, line_prefix: str) -> float:
    for line in text.splitlines():
        if line.startswith(line_prefix):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def _random_names(n: int) -> list[str]:
    names = [f"ghost-{secrets.token_hex(6)}" for _ in range(n)]
    # versions and aliases of a model that exists are names a client chooses too
    names[::10] = [f"xgb-clf@{secrets.token_hex(4)}" for _ in names[::10]]
    names[1::10] = [f"xgb-clf@{1000 + i}" for i in range(len(names[1::10]))]
    return names


# ------------------------------------------------------------------------------ metric labels
def test_random_model_names_keep_the_metrics_bounded(served) -> None:
    service = served.front.service
    row = {"features": [[0.5] * N_FEATURES]}
    with httpx.Client(base_url=served.base, timeout=30) as client:
        assert client.post("/v1/models/xgb-clf:predict", json=row).status_code == 200
        for name in _random_names(20):  # every label these requests make exists from here
            assert client.post(f"/v1/models/{name}:predict", json=row).status_code == 404
        before = client.get("/metrics").text
        names = _random_names(1000)
        for name in names:
            r = client.post(f"/v1/models/{name}:predict", json=row)
            assert r.status_code == 404 and r.json()["error"] == "ModelNotFoundError"
        after = client.get("/metrics").text
    # 1000 new names: not one new line (only the counts' digits change)
    assert len(after.splitlines()) == len(before.splitlines())
    assert abs(len(after) - len(before)) < 200, (len(before), len(after))
    assert not any(name in after for name in names)
    unknown = f'ml_serving_requests_total{{model="{UNKNOWN_MODEL}",outcome="not_found"}}'
    assert _value(after, unknown) - _value(before, unknown) == 800  # the ghost-... names
    # a bad version or alias of a loaded model is counted under that model's name
    known = 'ml_serving_requests_total{model="xgb-clf",outcome="not_found"}'
    assert _value(after, known) - _value(before, known) == 200
    assert service._loading == {}  # nothing kept per version number tried


def test_random_model_names_through_the_asgi_app(service) -> None:
    app = create_app(service, close_service=False)
    row = {"features": [[0.5] * N_FEATURES]}

    async def main() -> tuple[str, str, list[str]]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            for name in _random_names(20):
                await client.post(f"/v1/models/{name}:predict", json=row)
            before = (await client.get("/metrics")).text
            names = _random_names(400)
            for name in names:
                r = await client.post(f"/v1/models/{name}:predict", json=row)
                assert r.status_code == 404
            return before, (await client.get("/metrics")).text, names

    before, after, names = asyncio.run(main())
    assert len(after.splitlines()) == len(before.splitlines())
    assert not any(name in after for name in names)
    # and through the service's own API
    for name in names[:50]:
        with pytest.raises(LookupError):
            service.predict_batch_sync(name, np.zeros((1, N_FEATURES), np.float32))
    assert len(render().decode().splitlines()) == len(after.splitlines())


# ------------------------------------------------------------------------- half-closed clients
def test_a_half_closed_connection_gets_its_answers(served, serving_registry) -> None:
    _, handles = serving_registry
    x, _ = make_data(2, seed=61, task="regression")
    with socket.create_connection(("127.0.0.1", served.port)) as sock:
        responses = Responses(sock)
        sock.sendall(
            post("/v1/models/xgb-clf:predict", json.dumps({"features": [x[0].tolist()]}).encode())
            + post("/v1/models/xgb-clf:predict", json.dumps({"features": [x[1].tolist()]}).encode())
            + b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n"
        )
        sock.shutdown(socket.SHUT_WR)  # the client is done sending: EOF
        first, second, health = responses.read(3, timeout=30)
        expected = handles["xgb-clf"].predict(x).tolist()
        assert first["status"] == 200 and json.loads(first["body"])["predictions"] == expected[:1]
        assert second["status"] == 200
        assert json.loads(second["body"])["predictions"] == expected[1:]
        assert health["status"] == 200 and health["headers"]["connection"] == "close"
        assert responses.closed()
    # a connection half-closed in the middle of a request is closed without an answer
    with socket.create_connection(("127.0.0.1", served.port)) as sock:
        sock.sendall(b"POST /v1/models/xgb-clf:predict HTTP/1.1\r\nContent-Length: 50\r\n\r\n{")
        sock.shutdown(socket.SHUT_WR)
        assert Responses(sock).closed(timeout=10)


# ----------------------------------------------------------------------------- slow clients
@pytest.fixture
def strict(service):
    """The front end with deadlines of 0.5 s for headers and 0.6 s for bodies."""
    running = Running(
        create_app(service, close_service=False), header_timeout=0.5, body_timeout=0.6
    )
    yield running
    running.shutdown()


def test_a_slow_header_client_is_answered_408_and_closed(strict) -> None:
    closed = 'ml_serving_connections_closed_total{reason="header_timeout"}'
    count = _value(render().decode(), closed)
    with socket.create_connection(("127.0.0.1", strict.port)) as sock:
        responses = Responses(sock)
        start = time.monotonic()
        sock.sendall(b"POST /v1/models/xgb-clf:predict HTTP/1.1\r\n")
        head = b"Host: t\r\nX-Slow: " + b"a" * 100
        for i in range(len(head)):  # one byte every 0.1 s, until the server answers
            if select.select([sock], [], [], 0.1)[0]:
                break
            sock.sendall(head[i : i + 1])
        (r,) = responses.read(timeout=5)
        elapsed = time.monotonic() - start
        assert r["status"] == 408 and r["headers"]["connection"] == "close"
        assert r["headers"]["content-type"] == "application/json"
        doc = json.loads(r["body"])
        assert doc["error"] == "RequestTimeout" and "0.5 s (header_timeout)" in doc["detail"]
        assert responses.closed(timeout=5)
    assert 0.5 <= elapsed < 2.0, elapsed  # the full deadline, then at most two ticks more
    assert _value(render().decode(), closed) == count + 1


def test_a_slow_body_is_answered_408_and_an_idle_keep_alive_is_not(strict) -> None:
    row = json.dumps({"features": [[0.5] * N_FEATURES]}).encode()
    with socket.create_connection(("127.0.0.1", strict.port)) as sock:
        responses = Responses(sock)
        sock.sendall(post("/v1/models/xgb-clf:predict", row))
        assert responses.read()[0]["status"] == 200
        time.sleep(0.9)  # idle between requests: not a slow request
        sock.sendall(post("/v1/models/xgb-clf:predict", row))
        assert responses.read()[0]["status"] == 200
        start = time.monotonic()
        sock.sendall(post("/v1/models/xgb-clf:predict", row)[: -len(row) // 2])
        (r,) = responses.read(timeout=5)
        elapsed = time.monotonic() - start
        assert r["status"] == 408
        assert json.loads(r["body"])["detail"].endswith("within 0.6 s (body_timeout)")
        assert responses.closed(timeout=5)
    assert 0.6 <= elapsed < 2.0, elapsed


# ---------------------------------------------------------------------------- connection cap
def test_connections_over_the_cap_are_refused_at_once(service) -> None:
    running = Running(create_app(service, close_service=False), max_connections=3)
    refused = 'ml_serving_connections_closed_total{reason="limit"}'
    count = _value(render().decode(), refused)
    socks = [socket.create_connection(("127.0.0.1", running.port)) for _ in range(3)]
    try:
        for sock in socks:  # each one served (so held by the front end)
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n")
            assert Responses(sock).read()[0]["status"] == 200
        assert len(running.front.connections) == 3
        for _ in range(2):
            start = time.monotonic()
            with socket.create_connection(("127.0.0.1", running.port)) as extra:
                responses = Responses(extra)
                (r,) = responses.read(timeout=5)
                assert r["status"] == 503 and r["headers"]["retry-after"] == "1"
                assert json.loads(r["body"])["error"] == "TooManyConnections"
                assert responses.closed(timeout=5)
            assert time.monotonic() - start < 2.0
        assert len(running.front.connections) == 3
        assert _value(render().decode(), refused) == count + 2
        socks.pop().close()  # a place frees: a new connection is served again
        deadline = time.monotonic() + 10
        while len(running.front.connections) > 2:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        with httpx.Client(base_url=running.base, timeout=10) as client:
            assert client.get("/health").status_code == 200
    finally:
        for sock in socks:
            sock.close()
        running.shutdown()


def test_front_end_deadlines_and_cap_are_settings() -> None:
    env = {
        "ML_UTILITIES_HTTP_HEADER_TIMEOUT": "2.5",
        "ML_UTILITIES_HTTP_BODY_TIMEOUT": "7",
        "ML_UTILITIES_HTTP_MAX_CONNECTIONS": "12",
    }
    s = Settings.from_env(env)
    assert (s.http_header_timeout, s.http_body_timeout, s.http_max_connections) == (2.5, 7.0, 12)
    defaults = Settings.from_env({})
    assert (defaults.http_header_timeout, defaults.http_body_timeout) == (10.0, 30.0)
    assert defaults.http_max_connections == 1000
    for name, bad in (
        ("ML_UTILITIES_HTTP_HEADER_TIMEOUT", "0"),
        ("ML_UTILITIES_HTTP_BODY_TIMEOUT", "inf"),
        ("ML_UTILITIES_HTTP_MAX_CONNECTIONS", "0"),
    ):
        with pytest.raises(ConfigError, match=f"{name}.*{bad}"):
            Settings.from_env({name: bad})
    previous = get_settings()
    try:
        reload_settings(env)
        front = FrontEnd(None)
        assert (front.header_timeout, front.body_timeout, front.max_connections) == (2.5, 7.0, 12)
        front = FrontEnd(None, header_timeout=1, body_timeout=3, max_connections=5)
        assert (front.header_timeout, front.body_timeout, front.max_connections) == (1.0, 3.0, 5)
    finally:
        reload_settings()
        assert get_settings() == previous
    for bad in (
        {"header_timeout": 0},
        {"body_timeout": float("nan")},
        {"max_connections": 0},
        {"max_connections": 2.5},
        {"max_connections": True},
    ):
        with pytest.raises(ParameterError, match=f"{next(iter(bad))}="):
            FrontEnd(None, **bad)


# ------------------------------------------------------------------------------ JSON answers
DEEP = 20_000
NESTED_BODIES = {
    # the standard library's parser (orjson's fallback, which reads NaN) recursed to a 500
    "nested with NaN": b'{"features": ' + b"[" * DEEP + b"NaN" + b"]" * DEEP + b"}",
    "nested, not JSON": b"[" * DEEP + b"x",
    "nested list": b"[" * DEEP + b"]" * DEEP,
    "nested features": b'{"features": ' + b"[" * DEEP + b"0.5" + b"]" * DEEP + b"}",
}


def _check_error(status: int, doc: dict, low: int = 400, high: int = 499) -> None:
    assert low <= status <= high, (status, doc)
    assert set(doc) == {"error", "detail"} and doc["detail"]


def test_deeply_nested_bodies_get_a_json_400(served) -> None:
    app = served.front.app

    async def through_asgi() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return [
                await client.post("/v1/models/xgb-clf:predict", content=body)
                for body in NESTED_BODIES.values()
            ]

    asgi = asyncio.run_coroutine_threadsafe(through_asgi(), served.loop).result(60)
    with httpx.Client(base_url=served.base, timeout=60) as client:
        direct = [
            client.post("/v1/models/xgb-clf:predict", content=body)
            for body in NESTED_BODIES.values()
        ]
        assert client.get("/health").status_code == 200  # and the server is fine
    for what, a, d in zip(NESTED_BODIES, asgi, direct, strict=True):
        assert (a.status_code, a.content) == (d.status_code, d.content), what
        assert d.headers["content-type"] == "application/json", what
        _check_error(d.status_code, d.json())
    assert direct[0].status_code == 400 and direct[1].status_code == 400
    assert "nests arrays or objects too deeply" in direct[0].json()["detail"]


BAD_ROWS = [
    # (row index, feature index, the bad value) in a two-row request
    (0, 11, "1.5"),
    (1, 0, True),
    (0, 3, False),
    (1, 5, None),
    (0, 7, "nan"),
    (1, 2, {"v": 1}),
]


def _rows(r: int, c: int, value) -> list[list]:
    rows = [[0.5] * N_FEATURES, [0.25] * N_FEATURES]
    rows[r][c] = value
    return rows


def test_strings_and_booleans_are_refused_as_numbers(served) -> None:
    with httpx.Client(base_url=served.base, timeout=30) as client:
        for r, c, value in BAD_ROWS:
            for rows in (_rows(r, c, value), _rows(r, c, value)[r : r + 1]):  # 2 rows; 1 row
                row = r if len(rows) == 2 else 0
                answer = client.post("/v1/models/xgb-clf:predict", json={"features": rows})
                assert answer.status_code == 400, (value, answer.text)
                doc = answer.json()
                assert doc["error"] == "FeatureValueError"
                assert f"row {row}, feature {c} ({FEATURE_NAMES[c]}) = {value!r}" in doc["detail"]
        # numbers still go through, ints included
        ok = client.post("/v1/models/xgb-clf:predict", json={"features": [[1] * N_FEATURES]})
        assert ok.status_code == 200


def test_strings_and_booleans_are_refused_by_the_asgi_app_and_the_service(service) -> None:
    app = create_app(service, close_service=False)

    async def main() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return [
                await client.post(
                    "/v1/models/xgb-reg:predict", json={"instances": _rows(r, c, value)}
                )
                for r, c, value in BAD_ROWS
            ]

    for (r, c, value), answer in zip(BAD_ROWS, asyncio.run(main()), strict=True):
        assert answer.status_code == 400 and answer.json()["error"] == "FeatureValueError"
        assert f"row {r}, feature {c} (feat_{c}) = {value!r}" in answer.json()["detail"]
    with pytest.raises(FeatureValueError, match=r"row 1, feature 4 \(feat_4\) = '1\.5' is a st"):
        service.predict_batch_sync("xgb-reg", _rows(1, 4, "1.5"))
    with pytest.raises(FeatureValueError, match=r"row 0, feature 2 \(feat_2\) = True is a boolean"):
        service.predict_sync("xgb-reg", _rows(0, 2, True)[0])
    with pytest.raises(FeatureValueError, match=r"row 0, feature 0 \(feat_0\) = '1\.5' is a st"):
        service.predict_batch_sync("xgb-reg", np.array([["1.5"] * N_FEATURES]))
    with pytest.raises(FeatureValueError, match="is a boolean"):
        service.predict_batch_sync("xgb-reg", np.ones((2, N_FEATURES), dtype=bool))
    assert issubclass(FeatureValueError, ModelInputError)  # callers catching it still do
    huge = [[10**400] + [0.5] * (N_FEATURES - 1)]  # a number, too large even for a float64
    with pytest.raises(ModelInputError, match="not a numeric array"):
        service.predict_batch_sync("xgb-reg", huge)
    body = ('{"features": [[' + "9" * 400 + ", 0.5" * (N_FEATURES - 1) + "]]}").encode()

    async def huge_over_http() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.post("/v1/models/xgb-reg:predict", content=body)

    r = asyncio.run(huge_over_http())
    assert r.status_code == 422 and r.json()["error"] == "ModelInputError", r.text
    x, _ = make_data(2, seed=62, task="regression")
    assert len(service.predict_batch_sync("xgb-reg", x.astype(np.float64))["predictions"]) == 2
    assert len(service.predict_batch_sync("xgb-reg", x.astype(np.int32))["predictions"]) == 2


def test_a_tampered_model_gets_a_json_500_naming_it(tmp_path) -> None:
    from ml_utilities.models import ModelManager, ModelRegistry

    registry = ModelRegistry(f"sqlite:///{tmp_path / 'registry.db'}", tmp_path / "artifacts")
    try:
        x, y = make_data(200, seed=63, task="regression")
        handle = ModelManager(registry).train_model_sync(
            x,
            y,
            {
                "framework": "xgboost",
                "task": "regression",
                "name": "tampered",
                "hyperparameters": {"n_estimators": 5, "n_jobs": 1},
            },
        )
        registry.register(handle)
        files = sorted(p for p in (tmp_path / "artifacts").rglob("*") if p.is_file())
        victim = next(p for p in files if p.name != "MANIFEST.sha256.json")
        victim.write_bytes(victim.read_bytes() + b"\x00")
        service = PredictionService(registry=registry, config={"gpu_enabled": False})
        running = Running(create_app(service))
        try:
            with httpx.Client(base_url=running.base, timeout=30) as client:
                r = client.post("/v1/models/tampered:predict", json={"features": x[:1].tolist()})
                metrics = client.get("/metrics").text
        finally:
            running.shutdown()
    finally:
        registry.dispose()
    assert r.status_code == 500 and r.headers["content-type"] == "application/json"
    doc = r.json()
    _check_error(r.status_code, doc, 500, 500)
    assert doc["error"] == "ArtifactIntegrityError"
    assert "model 'tampered' cannot be loaded" in doc["detail"]
    assert "integrity check (sha256)" in doc["detail"]
    assert str(tmp_path) not in doc["detail"]  # the server's paths stay in its log
    assert f'ml_serving_requests_total{{model="{UNKNOWN_MODEL}",outcome="error"}}' in metrics
