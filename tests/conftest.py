"""Shared fixtures: the real clips in ../shared/audio and synthetic signals; a temporary home.

No test writes to the real home folder: before any test module is imported, ``HOME`` and
``ML_UTILITIES_HOME`` point at a folder made for this session (removed at its end), so the
defaults under ``~`` (the registry, Optuna's studies, caches) land there, for this process and
every subprocess it starts. Tests that need a home of their own still set one.

Hypothesis draws the same examples on every run (derandomized, no example database), so a
red CI reproduces here and a green run here is the run CI makes; ``MLU_HYPOTHESIS=explore``
draws fresh examples to look for new failures (the long searches live in ``benchmarks/``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from helpers import AUDIO_DIR, CLIPS
from hypothesis import settings
from servers import postgres_server, postgres_url, redis_server, redis_url  # noqa: F401

settings.register_profile("repeatable", derandomize=True, database=None)
settings.register_profile("explore", database=None)
settings.load_profile("explore" if os.environ.get("MLU_HYPOTHESIS") == "explore" else "repeatable")

_TEST_HOME = tempfile.mkdtemp(prefix="mlu-test-home-")
os.environ["HOME"] = _TEST_HOME
os.environ["ML_UTILITIES_HOME"] = os.path.join(_TEST_HOME, ".ml_utilities")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(_TEST_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def audio_dir() -> Path:
    if not AUDIO_DIR.is_dir():
        pytest.skip(f"real audio not found at {AUDIO_DIR} (the shared data folder is absent)")
    return AUDIO_DIR


@pytest.fixture(scope="session")
def clip_cache(audio_dir: Path) -> dict[str, tuple[np.ndarray, int]]:
    """Decoded clips at their native rate, mono float32, loaded once per session."""
    import soundfile as sf

    cache: dict[str, tuple[np.ndarray, int]] = {}
    for name in CLIPS:
        data, sr = sf.read(audio_dir / name, dtype="float32", always_2d=True)
        cache[name] = (np.ascontiguousarray(data.mean(axis=1, dtype=np.float32)), sr)
    return cache


@pytest.fixture(scope="session")
def rng() -> np.random.Generator:
    return np.random.default_rng(20261128)
