"""Benchmarks compare ml_utilities with its peer in the same run and print the ratios.

Run: python -m pytest benchmarks --benchmark-enable -q
Each group holds a "peer" and an "ours" benchmark; the summary prints peer/ours medians.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
AUDIO = ROOT.parent / "shared" / "audio" / "Kevin_MacLeod_-_Vibe_Ace.ogg"


def pytest_collection_modifyitems(config, items):
    # pyproject's addopts disables benchmarks for the test suite; --benchmark-enable turns
    # them back on (pytest-benchmark keeps the last of the two flags).
    if not config.getoption("benchmark_enable", default=False):
        for item in items:
            item.add_marker(pytest.mark.skip(reason="benchmarks need --benchmark-enable"))


@pytest.fixture(scope="session")
def clip30() -> np.ndarray:
    """30 s of real music at 22,050 Hz (synthetic noise-plus-tones where the clip is absent)."""
    sr = 22050
    if AUDIO.is_file():
        import soundfile as sf

        y, file_sr = sf.read(AUDIO, dtype="float32")
        if y.ndim > 1:
            y = y.mean(axis=1, dtype=np.float32)
        if file_sr == sr and y.size >= 30 * sr:
            return np.ascontiguousarray(y[: 30 * sr])
    t = np.arange(30 * sr) / sr
    rng = np.random.default_rng(0)
    y = 0.3 * np.sin(2 * np.pi * 220 * t) + 0.1 * rng.standard_normal(t.size)
    return y.astype(np.float32)


@pytest.fixture(scope="session")
def long10min(clip30) -> np.ndarray:
    return np.ascontiguousarray(np.tile(clip30, 20))


@pytest.fixture(scope="session")
def batch64(clip30) -> np.ndarray:
    rng = np.random.default_rng(1)
    return np.stack([np.roll(clip30, int(s)) for s in rng.integers(0, clip30.size, 64)])


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    session = getattr(config, "_benchmarksession", None)
    if session is None or not session.benchmarks:
        return
    groups: dict[str, dict[str, float]] = {}
    for bench in session.benchmarks:
        if not bench.stats:
            continue
        side = "ours" if "ours" in bench.name else "peer"
        groups.setdefault(bench.group or bench.name, {})[side] = bench.stats.median
    terminalreporter.section("speed-up against the peer (median peer / median ours)")
    for group, sides in sorted(groups.items()):
        if "ours" in sides and "peer" in sides:
            terminalreporter.write_line(
                f"{group:45s} peer {sides['peer'] * 1e3:10.2f} ms"
                f"   ours {sides['ours'] * 1e3:10.2f} ms"
                f"   x{sides['peer'] / sides['ours']:.1f}"
            )
