"""The serving benchmarks under pytest (only with ``--benchmark-enable``; on a shared machine
under the benchmark lock):

    flock /tmp/mlu-bench.lock python -m pytest benchmarks/serving -o addopts="" \
        --benchmark-enable -q -s

- ``test_in_process``: :mod:`bench_inprocess` (64 coroutines and 64 threads calling the
  service, batched and not, against the model called once per row), no HTTP.
- ``test_http_wrk``: :mod:`bench_http` (``ml-utilities serve`` pinned to one CPU, ``wrk``
  pinned to another, 64 connections, XGBoost and an MLP, batching on and off, TreeSHAP on),
  skipped with a reason where ``wrk`` is not installed (``apt-get install -y wrk``).

Both fail on any lost, failed or mismatched answer. ``MLU_BENCH_SERVING_SECONDS`` sets the
seconds per wrk run (default 10), ``MLU_BENCH_SERVING_REQUESTS`` the in-process requests per
mode (default 6000), ``MLU_BENCH_SERVING_OUT=prefix`` writes ``prefix-inprocess.md`` and
``prefix-http.md``.
"""

from __future__ import annotations

import os
import shutil

import bench_http
import bench_inprocess
import pytest

OUT = os.environ.get("MLU_BENCH_SERVING_OUT")


def test_in_process() -> None:
    argv = ["--requests", os.environ.get("MLU_BENCH_SERVING_REQUESTS", "6000"), "--explain"]
    if OUT:
        argv += ["--out", f"{OUT}-inprocess.md"]
    assert bench_inprocess.main(argv) == 0, "lost or mismatched answers"


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")
def test_http_wrk() -> None:
    argv = ["--seconds", os.environ.get("MLU_BENCH_SERVING_SECONDS", "10"), "--strict"]
    if OUT:
        argv += ["--out", f"{OUT}-http.md"]
    assert bench_http.main(argv) == 0, "wrk errors, or lost or mismatched answers"
