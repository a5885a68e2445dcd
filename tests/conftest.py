"""Shared fixtures: the real clips in ../shared/audio and synthetic signals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
AUDIO_DIR = ROOT.parent / "shared" / "audio"
DATA_DIR = ROOT.parent / "shared" / "data"

CLIPS = sorted(p.name for p in AUDIO_DIR.glob("*.ogg")) if AUDIO_DIR.is_dir() else []


def relative_error(actual: np.ndarray, expected: np.ndarray) -> float:
    """Relative Frobenius error ||a - e|| / ||e|| (0 when both are zero)."""
    actual = np.asarray(actual, dtype=np.complex128 if np.iscomplexobj(actual) else np.float64)
    expected = np.asarray(expected, dtype=actual.dtype)
    denom = np.linalg.norm(expected)
    num = np.linalg.norm(actual - expected)
    if denom == 0:
        return float(num)
    return float(num / denom)


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


def chirp(sr: int = 22050, seconds: float = 3.0, dtype=np.float32) -> np.ndarray:
    """A logarithmic sweep 100 Hz -> 8 kHz with a little noise: exercises every band."""
    t = np.arange(int(sr * seconds)) / sr
    f0, f1 = 100.0, 8000.0
    k = np.log(f1 / f0) / seconds
    phase = 2 * np.pi * f0 * (np.exp(k * t) - 1) / k
    noise = np.random.default_rng(0).standard_normal(t.size) * 1e-3
    return (0.5 * np.sin(phase) + noise).astype(dtype)
