"""In-process benchmark of the PredictionService (no HTTP): 64 concurrent callers, one row each.

    flock /tmp/mlu-bench.lock python benchmarks/serving/bench_inprocess.py --requests 6000

For XGBoost (and the MLP unless ``--models xgb``), each mode serves ``--requests`` single-row
requests from 64 callers and reports rows/s (wall), p50/p99 latency and CPU time per request
(``time.process_time``: every thread of this process, so other load on a shared machine does
not count):

- ``model, 1 call/row``: the backend's own predict function called once per row in a loop, no
  service (the floor of one-row-at-a-time prediction);
- ``service, no batching``: ``await service.predict`` from 64 coroutines with
  ``dynamic_batching=False`` (one model call per request, in a worker thread);
- ``service, batching``: the same with the dynamic batcher;
- ``service, batching, 64 threads``: ``service.predict_sync`` from 64 threads.

Every answer is compared with the model's own prediction for its row; ``--explain`` adds the
XGBoost cases with TreeSHAP explanations.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import CLIENTS, query_rows, train_models  # noqa: E402


def _service(reg: Any, batching: bool) -> Any:
    from ml_utilities.serving import PredictionService

    return PredictionService(
        registry=reg,
        config={
            "prediction_cache_ttl": 0,
            "gpu_enabled": False,
            "batch_size": 64,
            "max_queue_delay_us": 1000,
            "dynamic_batching": batching,
        },
    )


def _stats(
    n: int, wall: float, cpu: float, lat: list[float], mismatched: int, **extra: Any
) -> dict[str, Any]:
    ms = np.asarray(lat) * 1000
    return {
        "rows_per_s": n / wall,
        "cpu_us": cpu / n * 1e6,
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
        "mismatched": mismatched,
        **extra,
    }


def _check(answers: dict[int, Any], expected: np.ndarray, n: int) -> int:
    rows = len(expected)
    bad = sum(1 for i, p in answers.items() if not np.allclose(p, expected[i % rows], atol=1e-5))
    return bad + (n - len(answers))


def run_model_floor(reg: Any, model: str, rows: np.ndarray, n: int, expected: np.ndarray) -> dict:
    svc = _service(reg, False)
    fn = svc.get_model(model).predict_raw
    answers: dict[int, Any] = {}
    lat = []
    for i in range(200):
        fn(rows[i : i + 1])
    c0, t0 = time.process_time(), time.perf_counter()
    for i in range(n):
        s = time.perf_counter()
        answers[i] = fn(rows[i % len(rows)][None])[0]
        lat.append(time.perf_counter() - s)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    svc.close_sync()
    return _stats(n, wall, cpu, lat, _check(answers, expected, n))


def run_async(
    reg: Any,
    model: str,
    rows: np.ndarray,
    n: int,
    expected: np.ndarray,
    batching: bool,
    options: dict[str, bool],
) -> dict:
    svc = _service(reg, batching)

    async def go(count: int, answers: dict[int, Any], lat: list[float]) -> None:
        todo = iter(range(count))

        async def worker() -> None:
            for i in todo:
                s = time.perf_counter()
                out = await svc.predict(model, rows[i % len(rows)], options)
                lat.append(time.perf_counter() - s)
                answers[i] = out["probabilities"]

        await asyncio.gather(*(worker() for _ in range(CLIENTS)))

    asyncio.run(go(min(n, 640), {}, []))  # warm-up: loads the model, first batches
    answers: dict[int, Any] = {}
    lat: list[float] = []
    c0, t0 = time.process_time(), time.perf_counter()
    asyncio.run(go(n, answers, lat))
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    m = svc.get_model(model)
    extra = {"max_batch": None if m.batcher is None else m.batcher.stats()["max_batch_seen"]}
    svc.close_sync()
    return _stats(n, wall, cpu, lat, _check(answers, expected, n), **extra)


def run_threads(reg: Any, model: str, rows: np.ndarray, n: int, expected: np.ndarray) -> dict:
    svc = _service(reg, True)
    answers: dict[int, Any] = {}
    lat: list[float] = []

    def one(i: int) -> None:
        s = time.perf_counter()
        out = svc.predict_sync(model, rows[i % len(rows)])
        lat.append(time.perf_counter() - s)
        answers[i] = out["probabilities"]

    with ThreadPoolExecutor(CLIENTS) as pool:
        list(pool.map(one, range(min(n, 640))))
        answers.clear()
        lat.clear()
        c0, t0 = time.process_time(), time.perf_counter()
        list(pool.map(one, range(n)))
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    extra = {"max_batch": svc.get_model(model).batcher.stats()["max_batch_seen"]}
    svc.close_sync()
    return _stats(n, wall, cpu, lat, _check(answers, expected, n), **extra)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--requests", type=int, default=6000, help="requests per mode")
    p.add_argument("--models", default="xgb,mlp")
    p.add_argument("--explain", action="store_true", help="add XGBoost with TreeSHAP")
    p.add_argument("--out", default=None, help="write the Markdown table here")
    p.add_argument("--workdir", default=None, help="keep the trained models here, to reuse")
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(1)  # as ml-utilities serve does
    rows = query_rows()
    results: list[tuple[str, str, dict]] = []
    with tempfile.TemporaryDirectory() as d:
        root = Path(args.workdir) if args.workdir else Path(d)
        root.mkdir(parents=True, exist_ok=True)
        reg, handles = train_models(root)
        try:
            for model in args.models.split(","):
                expected = handles[model].predict_proba(rows)
                n = args.requests
                k = max(n // 10, 640)
                ex = {"explain_predictions": True}
                modes: list[tuple[str, str, int, bool, dict[str, bool]]] = [
                    ("model, 1 call/row", "floor", n, False, {}),
                    ("service, no batching", "async", n, False, {}),
                    ("service, batching", "async", n, True, {}),
                    ("service, batching, 64 threads", "threads", n, True, {}),
                ]
                if args.explain and model == "xgb":
                    modes += [
                        ("service + TreeSHAP, no batching", "async", k, False, ex),
                        ("service + TreeSHAP, batching", "async", k, True, ex),
                    ]
                for label, kind, count, batching, options in modes:
                    if kind == "floor":
                        r = run_model_floor(reg, model, rows, count, expected)
                    elif kind == "threads":
                        r = run_threads(reg, model, rows, count, expected)
                    else:
                        r = run_async(reg, model, rows, count, expected, batching, options)
                    results.append((model, label, r))
                    print(
                        f"{model} {label}: {r['rows_per_s']:.0f} rows/s, {r['cpu_us']:.0f} us "
                        f"CPU/request, p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms, "
                        f"mismatched {r['mismatched']}",
                        flush=True,
                    )
        finally:
            reg.dispose()
    load = os.getloadavg()
    lines = [
        f"In-process, {CLIENTS} concurrent callers, one row per request, {args.requests} "
        f"requests per mode; {os.cpu_count()} CPUs, load average {load[0]:.1f} / {load[1]:.1f} "
        "at the end (a machine shared with other jobs).",
        "",
        "| model | mode | rows/s | CPU / request (us) | p50 (ms) | p99 (ms) | mismatched |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for model, label, r in results:
        lines.append(
            f"| {model} | {label} | {r['rows_per_s']:.0f} | {r['cpu_us']:.0f} | "
            f"{r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['mismatched']} |"
        )
    text = "\n".join(lines)
    print("\n" + text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 1 if any(r["mismatched"] for _, _, r in results) else 0


if __name__ == "__main__":
    raise SystemExit(main())
