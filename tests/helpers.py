"""Helpers shared by the test modules (imported as ``helpers``: a conftest cannot be imported
reliably once several folders have their own)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

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


def chirp(sr: int = 22050, seconds: float = 3.0, dtype=np.float32) -> np.ndarray:
    """A logarithmic sweep 100 Hz -> 8 kHz with a little noise: exercises every band."""
    t = np.arange(int(sr * seconds)) / sr
    f0, f1 = 100.0, 8000.0
    k = np.log(f1 / f0) / seconds
    phase = 2 * np.pi * f0 * (np.exp(k * t) - 1) / k
    noise = np.random.default_rng(0).standard_normal(t.size) * 1e-3
    return (0.5 * np.sin(phase) + noise).astype(dtype)
