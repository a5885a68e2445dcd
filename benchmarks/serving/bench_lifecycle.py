"""What the lifecycle costs the serving path: the live drift monitor and a running rollout.

    flock /tmp/mlu-bench.lock python benchmarks/serving/bench_lifecycle.py --requests 30000

An XGBoost genre classifier trained on the GTZAN feature table (``../shared/data``; synthetic
rows of the same shape where it is absent) is served in-process by a PredictionService with
the dynamic batcher and no result cache. 64 coroutines send ``--requests`` one-row requests of
held-out rows, with a user id as request key, in four modes:

- ``plain``: nothing watched, no rollout (the baseline);
- ``monitor``: the live drift monitor on (window 500, scored every 250 rows on its thread);
- ``two versions``: the control of the rollout, without one: each caller picks version 1 or
  2 by the same hash of its user id, by hand (so two models and two batchers share the
  traffic, with half-size batches each: the cost of serving two versions at all);
- ``rollout 50%``: a canary rollout of the second version at 50% (split, per-version stats,
  outcome log, judged every 0.25 s);
- ``monitor + rollout``.

The modes run interleaved for ``--rounds`` rounds (so that a change of the machine's load
falls on all of them), and each reports its median rows/s over the rounds, its ratio to the
baseline's (the rollout's also to ``two versions``), p50/p99 latency, and CPU time per request
(``time.process_time``: every thread of this process, the monitor's and the judge's included).
Goal: the monitor costs at most 5% of the throughput. Every answer is compared with its
version's own prediction for its row.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from ml_utilities.serving.rollout import assign_share

GTZAN = Path(__file__).resolve().parents[3] / "shared" / "data" / "gtzan-features-5genre"
CLIENTS = 64
XGB = {
    "framework": "xgboost",
    "task": "classification",
    "hyperparameters": {"n_estimators": 100, "max_depth": 6, "n_jobs": 1},
}


def _data() -> tuple[np.ndarray, np.ndarray, list[str], str]:
    csv = GTZAN / "features_3_sec.csv"
    if csv.is_file():
        import pandas as pd

        frame = pd.read_csv(csv)
        y = frame.pop("label").to_numpy().astype(str)
        num = frame.select_dtypes("number")
        return num.to_numpy(np.float32), y, [str(c) for c in num.columns], "gtzan"
    rng = np.random.default_rng(0)
    centers = rng.normal(0, 1.5, (5, 53))
    idx = rng.integers(0, 5, 5000)
    x = (centers[idx] + rng.normal(0, 1, (5000, 53))).astype(np.float32)
    return x, np.array(list("abcde"))[idx], [f"f{i}" for i in range(53)], "synthetic"


def _setup(root: Path) -> tuple[Any, np.ndarray, dict[int, np.ndarray]]:
    from ml_utilities.models import ModelManager, ModelRegistry

    x, y, names, source = _data()
    order = np.random.default_rng(1).permutation(len(x))
    x, y = x[order], y[order]
    cut = int(len(x) * 0.7)
    registry = ModelRegistry(f"sqlite:///{root / 'registry.db'}", root / "artifacts")
    manager = ModelManager(registry)
    for seed, aliases in ((0, ["champion"]), (1, [])):
        h = manager.train_model_sync(x[:cut], y[:cut], {**XGB, "name": "genre", "seed": seed})
        registry.register(h, metadata={"feature_names": names}, aliases=aliases)
    rows = x[cut:]
    own = {v: registry.load("genre", v).predict(rows) for v in (1, 2)}
    print(f"data: {source}, {len(x)} rows x {x.shape[1]} features; {len(rows)} query rows")
    return registry, rows, own


async def _drive(
    service: Any, rows: np.ndarray, n: int, own: dict[int, np.ndarray], by_hand: bool = False
) -> dict:
    lat = np.empty(n)
    wrong = 0
    nxt = 0

    async def client() -> None:
        nonlocal nxt, wrong
        while nxt < n:
            i = nxt
            nxt += 1
            j = i % len(rows)
            t0 = time.perf_counter()
            user = f"user{i % 1000}"
            if by_hand:
                version = 2 if assign_share("genre", user) < 0.5 else 1
                out = await service.predict_batch("genre", rows[j : j + 1], version=version)
            else:
                out = await service.predict_batch("genre", rows[j : j + 1], request_key=user)
            lat[i] = time.perf_counter() - t0
            v = out["metadata"]["registry_version"]
            wrong += out["predictions"][0] != own[v][j]

    cpu0, t0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(client() for _ in range(CLIENTS)))
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    return {
        "rows_s": n / wall,
        "p50_ms": float(np.percentile(lat, 50) * 1e3),
        "p99_ms": float(np.percentile(lat, 99) * 1e3),
        "cpu_us": cpu / n * 1e6,
        "wrong": int(wrong),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--requests", type=int, default=30000)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--out", type=Path, default=None, help="also write the table here")
    args = p.parse_args(argv)
    from ml_utilities.serving import PredictionService

    with tempfile.TemporaryDirectory() as tmp:
        registry, rows, own = _setup(Path(tmp))
        modes = ["plain", "monitor", "two versions", "rollout 50%", "monitor + rollout"]
        results: dict[str, list[dict]] = {m: [] for m in modes}
        for r in range(args.rounds):
            for mode in modes:
                service = PredictionService(
                    registry=registry, config={"gpu_enabled": False, "prediction_cache_ttl": 0}
                )
                if "monitor" in mode:
                    service.monitor_sync("genre", window=500, step=250)
                if "rollout" in mode:
                    registry.start_rollout("genre", 2, steps=[50, 100], window_s=3600, criteria={})
                try:
                    hand = mode == "two versions"
                    asyncio.run(_drive(service, rows, 500, own, hand))  # warm-up: loads
                    res = asyncio.run(_drive(service, rows, args.requests, own, hand))
                    if "monitor" in mode:
                        st = service.drift_status_sync("genre", flush=True)
                        res["monitored_rows"] = st["rows_seen"]
                        res["dropped_rows"] = st["rows_dropped"]
                        res["sampled"] = st["rows_seen"] / max(1, st["rows_submitted"])
                finally:
                    service.close_sync()
                    if "rollout" in mode:
                        registry.rollback_rollout("genre", "benchmark round done")
                results[mode].append(res)
                print(f"round {r + 1} {mode:18s} {res['rows_s']:8.0f} rows/s", flush=True)
        registry.dispose()
    base = statistics.median(x["rows_s"] for x in results["plain"])
    load = os.getloadavg()
    lines = [
        f"{args.requests} one-row requests x {args.rounds} rounds, {CLIENTS} callers, "
        f"load average at the end {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
        "",
        "| mode | rows/s (median) | vs plain | p50 ms | p99 ms | CPU us/request | wrong |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    control = statistics.median(x["rows_s"] for x in results["two versions"])
    for mode in modes:
        rs = results[mode]
        med = statistics.median(x["rows_s"] for x in rs)
        ratio = f"{med / base:.3f}"
        if "rollout" in mode:
            ratio += f" ({med / control:.3f} of two versions)"
        lines.append(
            f"| {mode} | {med:.0f} | {ratio} | "
            f"{statistics.median(x['p50_ms'] for x in rs):.2f} | "
            f"{statistics.median(x['p99_ms'] for x in rs):.2f} | "
            f"{statistics.median(x['cpu_us'] for x in rs):.0f} | "
            f"{sum(x['wrong'] for x in rs)} |"
        )
    dropped = sum(x.get("dropped_rows", 0) for m in modes for x in results[m])
    sampled = [x["sampled"] for m in modes for x in results[m] if "sampled" in x]
    lines.append("")
    lines.append(
        f"rows dropped by the monitor's queue: {dropped}; share of the rows the monitor scored "
        f"(its 2% CPU budget): {min(sampled):.4f} to {max(sampled):.4f}"
    )
    text = "\n".join(lines)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n")
    wrong = sum(x["wrong"] for m in modes for x in results[m])
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
