"""HTTP load benchmark of ``ml-utilities serve`` with a compiled load generator (wrk).

    flock /tmp/mlu-bench.lock python benchmarks/serving/bench_http.py --seconds 10 \
        --out /tmp/serving-http.md

For each case (XGBoost and an MLP, dynamic batching on and off, XGBoost with TreeSHAP
explanations), the server runs alone in its own process (one worker, result cache off), pinned
with ``taskset`` to ``--server-cpu``; ``wrk`` runs pinned to ``--client-cpu`` with
``--connections`` (64) keep-alive connections, each with one request of one row in flight, for
a fixed duration after a warm-up run. The server is ``ml-utilities serve`` with its default
HTTP/1.1 server; ``--server uvicorn`` serves the same routes as the ASGI app (``create_app``)
under ``uvicorn --factory ml_utilities.serving.cli:build_app_from_env``, for comparison.
Reported: requests/s, p50 and p99 latency as wrk measures them, the server process's CPU time
per request (``/proc/<pid>/stat``, so other load on a shared machine does not count), the time
its threads spent runnable but waiting for a CPU (``/proc/<pid>/task/*/schedstat``: what other
work on the shared core took), and the load average at the start and end of the measured run.

Correctness is a separate pass per case: 64 concurrent clients send each of the 2048 rows once,
and every answer is compared with the model's own prediction for its row (``predict_proba``,
atol 1e-5). Any mismatched, missing or non-200 answer, and any wrk error (non-2xx, timeout,
socket error), is counted and reported; ``--strict`` makes them fail the run.

``--result-cache`` runs the servers as ``ml-utilities serve`` does by default, with the
in-process result cache on (one hour), and sends 200,000 distinct rows, the measured run
starting past those of the warm-up, so that hits are rare (their count is reported, from the
server's ``ml_serving_cache_requests_total``); the correctness pass then checks cached answers.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import CLIENTS, query_rows, train_models  # noqa: E402

HERE = Path(__file__).resolve().parent
LUA = HERE / "post_rows.lua"
#: (model, dynamic batching, explanations)
CASES = [
    ("xgb", False, False),
    ("xgb", True, False),
    ("mlp", False, False),
    ("mlp", True, False),
    ("xgb", False, True),
    ("xgb", True, True),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _runqueue_wait_seconds(pid: int) -> float:
    """Seconds the threads of process ``pid`` have spent runnable but waiting for a CPU
    (``/proc/<pid>/task/*/schedstat``): what other work on a shared core took from it."""
    total = 0
    for path in Path(f"/proc/{pid}/task").glob("*/schedstat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            total += int(path.read_text().split()[1])
    return total / 1e9


def _pin(cpu: int | None, nice: int = 0) -> list[str]:
    prefix = ["nice", "-n", str(nice)] if nice else []
    if cpu is None or shutil.which("taskset") is None:
        return prefix
    return [*prefix, "taskset", "-c", str(cpu)]


class Server:
    """``ml-utilities serve`` in a subprocess."""

    def __init__(
        self,
        reg: Any,
        batching: bool,
        cpu: int | None,
        launcher: str | None = None,
        result_cache: bool = False,
        server: str | None = None,
        nice: int = 0,
        max_queue_delay_us: int = 1000,
    ) -> None:
        import httpx

        self.port = _free_port()
        cfg: dict[str, Any] = {} if result_cache else {"prediction_cache_ttl": 0}
        cfg |= {
            "gpu_enabled": False,
            "batch_size": 64,
            "max_queue_delay_us": max_queue_delay_us,
        }
        env = None
        if server == "uvicorn":  # the ASGI app (create_app) of the same service under uvicorn
            from ml_utilities.config import serve_handoff

            if not batching:
                cfg["dynamic_batching"] = False
            env = {**os.environ, **serve_handoff(cfg, reg.url, str(reg.store.url))}
            cmd = [
                *_pin(cpu, nice),
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                "ml_utilities.serving.cli:build_app_from_env",
                "--port",
                str(self.port),
                "--log-level",
                "warning",
                "--no-access-log",
            ]
        else:
            cmd = [
                *_pin(cpu, nice),
                sys.executable,
                *([launcher] if launcher else ["-m", "ml_utilities.serving.cli"]),
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
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
        )
        self.base = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.base + "/ready", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("the server did not start")

    def cpu_seconds(self) -> float:
        return _cpu_seconds(self.proc.pid)

    def runqueue_wait_seconds(self) -> float:
        return _runqueue_wait_seconds(self.proc.pid)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


def wrk(
    url: str,
    bodies: Path,
    seconds: float,
    connections: int,
    cpu: int | None,
    start: int = 0,
    nice: int = 0,
) -> dict[str, Any]:
    """One wrk run (one thread, ``connections`` connections) sending the bodies from line
    ``start`` on; wrk's summary as a dict."""
    cmd = [
        *_pin(cpu, nice),
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "-s",
        str(LUA),
        url,
        "--",
        str(bodies),
        str(start),
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    line = [ln for ln in out.splitlines() if ln.startswith("{")][-1]
    return json.loads(line)


async def correctness(
    base: str, model: str, rows: np.ndarray, expected: np.ndarray, options: dict[str, bool]
) -> dict[str, Any]:
    """Each row once from ``CLIENTS`` concurrent clients; counts the wrong or missing answers."""
    import httpx

    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
    todo = iter(range(len(rows)))
    got: dict[int, np.ndarray] = {}
    failures: list[str] = []
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:

        async def worker() -> None:
            for i in todo:
                r = await client.post(
                    f"/v1/models/{model}:predict",
                    json={"features": [rows[i].tolist()], "options": options},
                )
                if r.status_code != 200:
                    failures.append(f"row {i}: HTTP {r.status_code} {r.text[:200]}")
                    continue
                body = r.json()
                got[i] = np.asarray(body["probabilities"][0])
                if options.get("explain_predictions") and not body["explanations"]:
                    failures.append(f"row {i}: no explanation")

        await asyncio.gather(*(worker() for _ in range(CLIENTS)))
        models = (await client.get("/v1/models")).json()["models"]
    mismatched = [i for i, p in got.items() if not np.allclose(p, expected[i], atol=1e-5)]
    batcher = next((m["batcher"] for m in models if m["name"] == model), None)
    return {
        "checked": len(rows),
        "answered": len(got),
        "mismatched": len(mismatched),
        "failures": failures[:5] + [f"row {i}: wrong answer" for i in mismatched[:5]],
        "max_batch_seen": None if batcher is None else batcher["max_batch_seen"],
    }


def _cache_lookups(base: str) -> dict[str, float]:
    """The server's result-cache lookups so far, by result (hit/miss)."""
    import httpx

    out = {"hit": 0.0, "miss": 0.0}
    for line in httpx.get(base + "/metrics", timeout=10).text.splitlines():
        if line.startswith("ml_serving_cache_requests_total{"):
            for key in out:
                if f'result="{key}"' in line:
                    out[key] = float(line.rsplit(" ", 1)[1])
    return out


#: distinct rows sent with ``--result-cache``, and the first of the measured run
CACHE_ROWS = 200_000
CACHE_MEASURED_START = 50_000


def run_case(
    reg: Any,
    handles: dict[str, Any],
    case: tuple[str, bool, bool],
    args: argparse.Namespace,
    tmp: Path,
) -> dict[str, Any]:
    model, batching, explain = case
    rows = query_rows(CACHE_ROWS if args.result_cache else 2048)
    options = {"explain_predictions": explain}
    bodies = tmp / f"{model}-{explain}.jsonl"
    if not bodies.exists():
        bodies.write_text(
            "".join(json.dumps({"features": [r.tolist()], "options": options}) + "\n" for r in rows)
        )
    start = CACHE_MEASURED_START if args.result_cache else 0
    server = Server(
        reg,
        batching,
        args.server_cpu,
        args.launcher,
        args.result_cache,
        args.server,
        args.nice,
        args.max_queue_delay_us,
    )
    try:
        url = f"{server.base}/v1/models/{model}:predict"
        import httpx

        # load the model (and build the explainer) before anything is timed
        first = json.loads(bodies.read_text().split("\n", 1)[0])
        httpx.post(url, json=first, timeout=120).raise_for_status()
        wrk(url, bodies, args.warmup, args.connections, args.client_cpu, nice=args.nice)
        lookups0 = _cache_lookups(server.base)
        load0 = os.getloadavg()[0]
        cpu0 = server.cpu_seconds()
        wait0 = server.runqueue_wait_seconds()
        res = wrk(url, bodies, args.seconds, args.connections, args.client_cpu, start, args.nice)
        cpu = server.cpu_seconds() - cpu0
        wait = server.runqueue_wait_seconds() - wait0
        load1 = os.getloadavg()[0]
        lookups = _cache_lookups(server.base)
        check_rows = rows[:2048]  # with the cache on, the warm-up sent them: answered from it
        check = asyncio.run(
            correctness(
                server.base, model, check_rows, handles[model].predict_proba(check_rows), options
            )
        )
    finally:
        server.stop()
    seconds = res["duration_us"] / 1e6
    errors = res["connect"] + res["read"] + res["write"] + res["status"] + res["timeout"]
    return {
        "model": model,
        "batching": batching,
        "explanations": explain,
        "requests": res["requests"],
        "throughput": res["requests"] / seconds,
        "p50_ms": res["p50_us"] / 1000,
        "p99_ms": res["p99_us"] / 1000,
        "cpu_us_per_request": cpu / max(res["requests"], 1) * 1e6,
        "server_cpu_s": cpu,
        "runqueue_wait_s": wait,
        "load": (load0, load1),
        "wrk_errors": errors,
        "checked": check["checked"],
        "mismatched": check["mismatched"] + (check["checked"] - check["answered"]),
        "failures": check["failures"],
        "max_batch_seen": check["max_batch_seen"],
        "cache_hits": lookups["hit"] - lookups0["hit"],
        "cache_misses": lookups["miss"] - lookups0["miss"],
    }


def table(results: list[dict[str, Any]], args: argparse.Namespace) -> str:
    load = os.getloadavg()
    lines = [
        f"wrk, {args.connections} connections (one request of one row in flight each), "
        f"{args.seconds:g} s per run after {args.warmup:g} s of warm-up; server pinned to CPU "
        f"{args.server_cpu}, wrk to CPU {args.client_cpu}"
        + (f", both at nice {args.nice}" if args.nice else "")
        + f"; batch_size 64, max_queue_delay_us {args.max_queue_delay_us}"
        + f"; server: {args.server or 'the default of ml-utilities serve (frontend)'}; "
        f"{os.cpu_count()} CPUs, load average "
        f"{load[0]:.1f} / {load[1]:.1f} at the end (a machine shared with other jobs); result "
        + (
            f"cache on ({CACHE_ROWS:,} distinct rows)."
            if args.result_cache
            else "cache off (2,048 rows in turn)."
        ),
        "",
        "| model | explanations | dynamic batching | requests/s | p50 (ms) | p99 (ms) "
        "| server CPU / request (us) | speed-up | wrk errors | mismatched / checked "
        "| cache hits / lookups | server CPU / run-queue wait (s) | load average |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    base = {(r["model"], r["explanations"]): r["throughput"] for r in results if not r["batching"]}
    for r in results:
        ref = base.get((r["model"], r["explanations"]))
        ratio = f"{r['throughput'] / ref:.2f}x" if ref and r["batching"] else ""
        lines.append(
            f"| {r['model']} | {'on' if r['explanations'] else 'off'} | "
            f"{'on' if r['batching'] else 'off'} | {r['throughput']:.0f} | {r['p50_ms']:.2f} | "
            f"{r['p99_ms']:.2f} | {r['cpu_us_per_request']:.0f} | {ratio} | {r['wrk_errors']} | "
            f"{r['mismatched']} / {r['checked']} | "
            f"{r['cache_hits']:.0f} / {r['cache_hits'] + r['cache_misses']:.0f} | "
            f"{r['server_cpu_s']:.1f} / {r['runqueue_wait_s']:.1f} | "
            f"{r['load'][0]:.1f} -> {r['load'][1]:.1f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=10.0, help="measured seconds per run")
    p.add_argument("--warmup", type=float, default=2.0, help="warm-up seconds per run")
    p.add_argument("--connections", type=int, default=CLIENTS)
    p.add_argument("--server-cpu", type=int, default=0)
    p.add_argument("--client-cpu", type=int, default=1 if (os.cpu_count() or 1) > 1 else 0)
    p.add_argument("--models", default="xgb,mlp", help="comma-separated subset of xgb,mlp")
    p.add_argument("--no-explanations", action="store_true", help="skip the TreeSHAP cases")
    p.add_argument("--out", default=None, help="write the Markdown table here")
    p.add_argument("--workdir", default=None, help="keep the trained models here, to reuse")
    p.add_argument(
        "--launcher",
        default=None,
        help="a Python script run as the server instead of -m ml_utilities.serving.cli "
        "(to measure another checkout, for before/after comparisons)",
    )
    p.add_argument(
        "--result-cache",
        action="store_true",
        help="run the servers with the default in-process result cache, on distinct rows",
    )
    p.add_argument(
        "--server",
        choices=("frontend", "uvicorn"),
        default=None,
        help="frontend (default: ml-utilities serve, the package's HTTP/1.1 server) or uvicorn "
        "(the same routes as the ASGI app, create_app, under uvicorn --factory)",
    )
    p.add_argument(
        "--nice",
        type=int,
        default=0,
        help="run the server and wrk at this nice value (e.g. -10: ahead of other work on a "
        "shared machine, closer to dedicated cores; needs root)",
    )
    p.add_argument(
        "--max-queue-delay-us",
        type=int,
        default=1000,
        help="the servers' max_queue_delay_us (how long a batch may wait to fill; default 1000)",
    )
    p.add_argument("--strict", action="store_true", help="exit 1 on any error or mismatch")
    args = p.parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install -y wrk)", file=sys.stderr)
        return 2
    wanted = set(args.models.split(","))
    cases = [c for c in CASES if c[0] in wanted and not (c[2] and args.no_explanations)]
    results = []
    with tempfile.TemporaryDirectory() as d:
        root = Path(args.workdir) if args.workdir else Path(d)
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(d)
        reg, handles = train_models(root)
        try:
            for case in cases:
                r = run_case(reg, handles, case, args, tmp)
                results.append(r)
                print(
                    f"{r['model']} batching={r['batching']} explain={r['explanations']}: "
                    f"{r['throughput']:.0f} req/s, p50 {r['p50_ms']:.2f} ms, p99 "
                    f"{r['p99_ms']:.2f} ms, {r['cpu_us_per_request']:.0f} us CPU/request, "
                    f"wrk errors {r['wrk_errors']}, mismatched {r['mismatched']}/{r['checked']}, "
                    f"cache hits {r['cache_hits']:.0f}/{r['cache_hits'] + r['cache_misses']:.0f}, "
                    f"server CPU {r['server_cpu_s']:.1f} s, run-queue wait "
                    f"{r['runqueue_wait_s']:.1f} s, load {r['load'][0]:.1f} -> {r['load'][1]:.1f}"
                    + (f" {r['failures']}" if r["failures"] else ""),
                    flush=True,
                )
        finally:
            reg.dispose()
    text = table(results, args)
    print("\n" + text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    bad = any(r["wrk_errors"] or r["mismatched"] for r in results)
    return 1 if (bad and args.strict) else 0


if __name__ == "__main__":
    raise SystemExit(main())
