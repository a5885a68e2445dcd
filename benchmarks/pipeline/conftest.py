"""Fixtures of the pipeline benchmarks: the test suite's PostgreSQL server (tests/servers.py)."""

from __future__ import annotations

import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parents[2] / "tests"
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from servers import postgres_server  # noqa: E402, F401
