"""HTTP load benchmark of the prediction service over loopback.

Run (only with ``--benchmark-enable``; on a shared machine under the benchmark lock):

    flock /tmp/mlu-bench.lock python -m pytest benchmarks/serving -o addopts="" \
        --benchmark-enable -q -s

For an XGBoost model (32 features, 3 classes, 200 rounds of depth 6) and an MLP (32 -> 256 ->
128 -> 3), ``ml-utilities serve`` runs in its own process (one uvicorn worker, result cache off)
and a bounded asyncio + httpx load generator keeps 64 requests of one row each in flight for
``MLU_BENCH_SERVING_SECONDS`` seconds (default 8, after 1 s of warm-up). Each configuration runs
with the dynamic batcher and without it (one model call per request, in a thread), and XGBoost
also with TreeSHAP explanations on. Every response is checked against the model's own
prediction for its row: a lost or mismatched response fails the benchmark.
``MLU_BENCH_SERVING_OUT=path.md`` writes the table.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

CLIENTS = 64
N_FEATURES = 32
SECONDS = float(os.environ.get("MLU_BENCH_SERVING_SECONDS", "8"))
RESULTS: list[dict] = []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    from ml_utilities.models import ModelManager, ModelRegistry

    root = tmp_path_factory.mktemp("bench-serving")
    reg = ModelRegistry(f"sqlite:///{root / 'registry.db'}", root / "artifacts")
    manager = ModelManager(reg)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4000, N_FEATURES)).astype(np.float32)
    y = np.digitize(x[:, 0] + x[:, 1] * x[:, 2] + 0.3 * rng.standard_normal(4000), [-0.5, 0.5])
    handles = {
        "xgb": manager.train_model_sync(
            x,
            y,
            {
                "framework": "xgboost",
                "name": "xgb",
                "early_stopping_patience": 0,
                "hyperparameters": {"n_estimators": 200, "max_depth": 6},
            },
        ),
        "mlp": manager.train_model_sync(
            x,
            y,
            {
                "framework": "pytorch",
                "architecture": "mlp",
                "name": "mlp",
                "hyperparameters": {"hidden_sizes": [256, 128], "epochs": 5},
            },
        ),
    }
    for h in handles.values():
        reg.register(h)
    yield reg, handles
    reg.dispose()


class Server:
    def __init__(self, reg, batching: bool) -> None:  # noqa: ANN001
        self.port = _free_port()
        cfg = {
            "prediction_cache_ttl": 0,
            "gpu_enabled": False,
            "batch_size": 64,
            "max_queue_delay_us": 1000,
        }
        cmd = [
            sys.executable,
            "-m",
            "ml_utilities.serving.cli",
            "serve",
            "--port",
            str(self.port),
            "--registry-url",
            reg.url,
            "--artifact-root",
            str(reg.store.url),
            "--config",
            json.dumps(cfg),
        ]
        if not batching:
            cmd.append("--no-batching")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.base = f"http://127.0.0.1:{self.port}"
        import httpx

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.base + "/ready", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.2)
        raise RuntimeError("server did not start")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(20)


async def _load(base: str, model: str, rows: np.ndarray, options: dict, seconds: float) -> dict:
    import httpx

    latencies: list[float] = []
    answers: list[tuple[int, list]] = []
    errors: list[str] = []
    counter = iter(range(10**9))
    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
        stop_at = [0.0]
        record = [False]

        async def worker() -> None:
            while time.perf_counter() < stop_at[0]:
                i = next(counter) % len(rows)
                t0 = time.perf_counter()
                r = await client.post(
                    f"/v1/models/{model}:predict",
                    json={"features": [rows[i].tolist()], "options": options},
                )
                dt = time.perf_counter() - t0
                if r.status_code != 200:
                    errors.append(r.text)
                    continue
                if record[0]:
                    latencies.append(dt)
                    answers.append((i, r.json()["probabilities"][0]))

        stop_at[0] = time.perf_counter() + 1.0  # warm-up
        await asyncio.gather(*(worker() for _ in range(CLIENTS)))
        record[0] = True
        start = time.perf_counter()
        stop_at[0] = start + seconds
        await asyncio.gather(*(worker() for _ in range(CLIENTS)))
        elapsed = time.perf_counter() - start
    lat = np.asarray(latencies) * 1000
    return {
        "requests": len(lat),
        "throughput": len(lat) / elapsed,
        "p50_ms": float(np.percentile(lat, 50)),
        "p99_ms": float(np.percentile(lat, 99)),
        "errors": errors,
        "answers": answers,
    }


@pytest.mark.parametrize(
    ("model", "batching", "explain"),
    [
        ("xgb", False, False),
        ("xgb", True, False),
        ("xgb", False, True),
        ("xgb", True, True),
        ("mlp", False, False),
        ("mlp", True, False),
    ],
)
def test_serving_load(registry, model: str, batching: bool, explain: bool) -> None:
    reg, handles = registry
    rows = np.random.default_rng(1).standard_normal((2048, N_FEATURES)).astype(np.float32)
    expected = handles[model].predict_proba(rows)
    options = {"explain_predictions": explain}
    server = Server(reg, batching)
    try:
        res = asyncio.run(_load(server.base, model, rows, options, SECONDS))
    finally:
        server.stop()
    assert not res["errors"], res["errors"][:3]
    got = np.asarray([a for _, a in res["answers"]])
    want = expected[[i for i, _ in res["answers"]]]
    np.testing.assert_allclose(got, want, atol=1e-5)  # zero mismatched responses
    row = {
        "model": model,
        "batching": batching,
        "explanations": explain,
        "requests": res["requests"],
        "throughput": res["throughput"],
        "p50_ms": res["p50_ms"],
        "p99_ms": res["p99_ms"],
    }
    RESULTS.append(row)
    print(
        f"\n{model} batching={batching} explain={explain}: {res['throughput']:.0f} req/s, "
        f"p50 {res['p50_ms']:.2f} ms, p99 {res['p99_ms']:.2f} ms ({res['requests']} requests)"
    )


def teardown_module() -> None:
    if not RESULTS:
        return
    lines = [
        f"{CLIENTS} concurrent clients, one row per request, {SECONDS:g} s per run, loopback, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end.",
        "",
        "| model | explanations | dynamic batching | requests/s | p50 (ms) | p99 (ms) | speed-up |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: |",
    ]
    base = {(r["model"], r["explanations"]): r["throughput"] for r in RESULTS if not r["batching"]}
    for r in RESULTS:
        ref = base.get((r["model"], r["explanations"]))
        ratio = f"{r['throughput'] / ref:.2f}x" if ref and r["batching"] else ""
        lines.append(
            f"| {r['model']} | {'on' if r['explanations'] else 'off'} | "
            f"{'on' if r['batching'] else 'off'} | {r['throughput']:.0f} | {r['p50_ms']:.2f} | "
            f"{r['p99_ms']:.2f} | {ratio} |"
        )
    text = "\n".join(lines)
    print("\n" + text)
    out = os.environ.get("MLU_BENCH_SERVING_OUT")
    if out:
        Path(out).write_text(text + "\n")
