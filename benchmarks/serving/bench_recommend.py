"""Latency of a served recommender: ``ml-utilities serve --recommender`` under 64 connections.

    flock /tmp/mlu-bench.lock python benchmarks/serving/bench_recommend.py --seconds 10

A recommender is trained on Last.fm (``../shared/data/lastfm-hetrec2011``: 1,892 users, 17,632
artists; ``--budget`` seconds of AutoML's ``train_recommendation_model``), registered with
``deploy_recommendation_system`` in a temporary registry, and served by ``ml-utilities serve
--recommender lastfm`` in its own process pinned to ``--server-cpu``. wrk (pinned to
``--client-cpu``) keeps 64 connections each with one ``POST /v1/recommenders/lastfm:recommend``
(``{"user_id": u, "k": 10}``) in flight, cycling through every user in a shuffled order plus 5%
unknown users, for ``--seconds`` after a warm-up run. Two servers:

- ``cached``: the default (answers computed ahead for every known user, then cached per user);
- ``computed``: ``--recommender-cache-ttl 0``: each request ranks its user's candidates.

The peer is the offline model itself, in this process: ``model.recommend(user, 10)`` for the
same users one after another (what serving without this layer costs per request). Printed:
requests/s, p50/p99 as wrk measures them, the ratio of each server's throughput to the offline
calls', and a correctness pass (every known user once, over HTTP, compared with
``model.recommend``). Goal (issue 22): p99 <= 20 ms at 64 connections.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_http import _free_port, _pin, wrk  # noqa: E402

LASTFM = HERE.parents[1].parent / "shared" / "data" / "lastfm-hetrec2011"


def train(budget: float) -> tuple[Any, Any]:
    import pandas as pd

    from ml_utilities.automl import AutoMLHelper

    data = pd.read_csv(LASTFM / "user_artists.dat", sep="\t")
    t0 = time.perf_counter()
    model = AutoMLHelper().train_recommendation_model_sync(
        interaction_data=data, task_config={"time_budget_seconds": budget}
    )
    print(f"trained in {time.perf_counter() - t0:.0f} s: {model.report.get('evaluation')}")
    return data, model


def serve(reg: Any, cpu: int | None, ttl: float | None) -> tuple[subprocess.Popen, str]:
    import httpx

    port = _free_port()
    cmd = [
        *_pin(cpu),
        sys.executable,
        "-m",
        "ml_utilities.serving.cli",
        "serve",
        "--port",
        str(port),
        "--registry-url",
        reg.url,
        "--artifact-root",
        str(reg.store.url),
        "--recommender",
        "lastfm",
    ]
    if ttl is not None:
        cmd += ["--recommender-cache-ttl", str(ttl)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/ready", timeout=2).status_code == 200:
                return proc, base
        except httpx.TransportError:
            time.sleep(0.5)
    proc.terminate()
    raise RuntimeError("the server did not start")


def check(base: str, model: Any, users: list[int]) -> tuple[int, int]:
    import httpx

    bad = 0
    with httpx.Client(base_url=base, timeout=60) as client:
        for u in users:
            r = client.post("/v1/recommenders/lastfm:recommend", json={"user_id": u, "k": 10})
            items = [e["item"] for e in r.json()["items"]] if r.status_code == 200 else None
            bad += items != model.recommend(u, 10)
    return bad, len(users)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--warmup", type=float, default=2.0)
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--budget", type=float, default=60.0, help="training budget (seconds)")
    p.add_argument("--server-cpu", type=int, default=0)
    p.add_argument("--client-cpu", type=int, default=1 if (os.cpu_count() or 1) > 1 else 0)
    p.add_argument("--offline-users", type=int, default=300)
    args = p.parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install -y wrk)", file=sys.stderr)
        return 2
    if not (LASTFM / "user_artists.dat").is_file():
        print(f"the Last.fm data is not in {LASTFM}", file=sys.stderr)
        return 2
    from ml_utilities.models import ModelRegistry
    from ml_utilities.serving import deploy_recommendation_system_sync

    data, model = train(args.budget)
    users = [int(u) for u in np.unique(data.userID)]
    rng = np.random.default_rng(0)
    order = rng.permutation(users).tolist()
    order += [10_000_000 + i for i in range(len(order) // 20)]  # unknown users: popularity
    rng.shuffle(order)
    # the peer: the offline model, one user after another
    model.recommend(users[0], 10)
    sample = order[: args.offline_users]
    t0 = time.perf_counter()
    for u in sample:
        model.recommend(u, 10)
    offline_rps = len(sample) / (time.perf_counter() - t0)
    print(f"offline model.recommend: {offline_rps:.0f} calls/s ({1000 / offline_rps:.2f} ms)")
    results = []
    with tempfile.TemporaryDirectory() as d:
        reg = ModelRegistry(f"sqlite:///{d}/registry.db", f"{d}/artifacts")
        out = deploy_recommendation_system_sync(model, name="lastfm", registry=reg)
        out["service"].close()
        bodies = Path(d) / "bodies.jsonl"
        bodies.write_text("".join(json.dumps({"user_id": u, "k": 10}) + "\n" for u in order))
        for mode, ttl in (("cached", None), ("computed", 0.0)):
            t0 = time.perf_counter()
            proc, base = serve(reg, args.server_cpu, ttl)
            ready = time.perf_counter() - t0
            try:
                url = base + "/v1/recommenders/lastfm:recommend"
                wrk(url, bodies, args.warmup, args.connections, args.client_cpu)
                load0 = os.getloadavg()[0]
                res = wrk(url, bodies, args.seconds, args.connections, args.client_cpu, 7)
                load1 = os.getloadavg()[0]
                bad, checked = check(base, model, users[:: max(1, len(users) // 400)])
            finally:
                proc.terminate()
                proc.wait(30)
            rps = res["requests"] / (res["duration_us"] / 1e6)
            errors = sum(res[k] for k in ("connect", "read", "write", "status", "timeout"))
            results.append(
                {
                    "mode": mode,
                    "ready_s": ready,
                    "rps": rps,
                    "p50_ms": res["p50_us"] / 1000,
                    "p99_ms": res["p99_us"] / 1000,
                    "errors": errors,
                    "mismatched": bad,
                    "checked": checked,
                    "load": (load0, load1),
                }
            )
            r = results[-1]
            print(
                f"{mode}: ready in {ready:.0f} s, {rps:.0f} req/s ({rps / offline_rps:.1f}x the "
                f"offline calls), p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms, errors "
                f"{errors}, mismatched {bad}/{checked}, load {load0:.1f} -> {load1:.1f}",
                flush=True,
            )
        reg.dispose()
    print(
        "\n| server | req/s | x offline | p50 ms | p99 ms | wrk errors | mismatched |\n"
        "| --- | --- | --- | --- | --- | --- | --- |\n"
        + "".join(
            f"| {r['mode']} | {r['rps']:.0f} | {r['rps'] / offline_rps:.1f} | "
            f"{r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['errors']} | "
            f"{r['mismatched']}/{r['checked']} |\n"
            for r in results
        )
    )
    return 1 if any(r["errors"] or r["mismatched"] for r in results) else 0


if __name__ == "__main__":
    raise SystemExit(main())
