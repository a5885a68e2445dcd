"""Audio-level augmentations: the plagiarised versions a similarity model must see through.

Each function takes mono float32 samples at ``sr`` and returns new samples (never in place).
:func:`augmented_views` draws random chains of them, for ``train_siamese_network(augmented=)``.

- :func:`varispeed`: resampled playback, pitch and tempo together (``2 ** (semitones / 12)``
  faster), as a sped-up or slowed-down record; pure tempo changes are made in feature space
  during training.
- :func:`gain`, :func:`add_noise` (white, at an SNR), :func:`equalise` (low and high shelves),
  :func:`reencode` (lossy Ogg Vorbis at the lowest quality, decoded back), :func:`excerpt`,
  :func:`mix` (buried under other material).
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from ..exceptions import ParameterError

__all__ = [
    "add_noise",
    "augmented_views",
    "equalise",
    "excerpt",
    "gain",
    "mix",
    "reencode",
    "varispeed",
]


def _mono(y: Any) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1 or y.dtype.kind != "f":
        raise ParameterError(f"expected mono float samples, got shape {y.shape} dtype {y.dtype}")
    if y.size == 0 or not np.isfinite(y).all():
        raise ParameterError("samples are empty or hold NaN or infinite values")
    return y.astype(np.float32, copy=False)


def varispeed(y: Any, sr: float, semitones: float) -> np.ndarray:
    """Play ``semitones`` higher and ``2 ** (semitones / 12)`` times as fast."""
    from ..audio import resample

    y = _mono(y)
    if not -12 <= semitones <= 12:
        raise ParameterError(f"semitones={semitones!r} must be within one octave")
    factor = 2.0 ** (semitones / 12.0)
    return resample(y, orig_sr=sr * factor, target_sr=sr).astype(np.float32)


def gain(y: Any, db: float) -> np.ndarray:
    return (_mono(y) * np.float32(10 ** (db / 20))).astype(np.float32)


def add_noise(y: Any, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """White noise at ``snr_db`` below the signal's power."""
    y = _mono(y)
    power = float(np.mean(y.astype(np.float64) ** 2)) or 1e-12
    noise = rng.normal(0.0, np.sqrt(power / 10 ** (snr_db / 10)), y.size)
    return (y + noise).astype(np.float32)


def equalise(y: Any, sr: float, low_db: float, high_db: float) -> np.ndarray:
    """Shelving EQ: ``low_db`` below 250 Hz, ``high_db`` above 4 kHz (first-order splits)."""
    from scipy import signal

    y = _mono(y).astype(np.float64)
    lo = signal.sosfilt(signal.butter(2, 250, "low", fs=sr, output="sos"), y)
    hi = signal.sosfilt(signal.butter(2, min(4000, 0.45 * sr), "high", fs=sr, output="sos"), y)
    out = y + (10 ** (low_db / 20) - 1) * lo + (10 ** (high_db / 20) - 1) * hi
    return out.astype(np.float32)


def reencode(y: Any, sr: float) -> np.ndarray:
    """Through Ogg Vorbis at its lowest quality and back."""
    import soundfile as sf

    y = _mono(y)
    buf = io.BytesIO()
    sf.write(buf, np.clip(y, -1, 1), int(sr), format="OGG", subtype="VORBIS", compression_level=1.0)
    buf.seek(0)
    out, _ = sf.read(buf, dtype="float32")
    out = out if out.ndim == 1 else out.mean(axis=1)
    return _fit(out, y.size)


def _fit(y: np.ndarray, n: int) -> np.ndarray:
    return np.pad(y, (0, max(0, n - y.size)))[:n].astype(np.float32)


def excerpt(y: Any, sr: float, start: float, duration: float) -> np.ndarray:
    y = _mono(y)
    a = int(round(start * sr))
    b = a + int(round(duration * sr))
    if not (0 <= a < y.size) or duration <= 0:
        raise ParameterError(
            f"excerpt of {duration} s at {start} s is outside a clip of {y.size / sr:.2f} s"
        )
    return y[a : min(b, y.size)].copy()


def mix(y: Any, other: Any, level_db: float) -> np.ndarray:
    """``y`` with ``other`` (looped or cut to its length) at ``level_db`` relative power."""
    y, other = _mono(y), _mono(other)
    reps = -(-y.size // other.size)
    o = np.tile(other, reps)[: y.size].astype(np.float64)
    py = float(np.mean(y.astype(np.float64) ** 2)) or 1e-12
    po = float(np.mean(o**2)) or 1e-12
    o *= np.sqrt(py / po * 10 ** (level_db / 10))
    return (y + o).astype(np.float32)


def augmented_views(
    y: Any,
    sr: float,
    n: int = 4,
    *,
    seed: int = 0,
    others: list[np.ndarray] | None = None,
) -> list[np.ndarray]:
    """``n`` random plagiarised versions of ``y``: each a varispeed of up to 3 semitones (never
    0), then two or three of gain, noise (15-30 dB SNR), EQ (+-9 dB shelves), re-encoding and,
    with ``others`` given, a mix under one of them (-3 to -9 dB)."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ParameterError(f"n={n!r} must be a positive integer")
    rng = np.random.default_rng(seed)
    y = _mono(y)
    views = []
    for _ in range(n):
        st = float(rng.choice([-3, -2, -1, 1, 2, 3]))
        v = varispeed(y, sr, st)
        steps = ["gain", "noise", "eq", "reencode"] + (["mix"] if others else [])
        for step in rng.choice(steps, size=int(rng.integers(2, 4)), replace=False):
            if step == "gain":
                v = gain(v, float(rng.uniform(-12, 6)))
            elif step == "noise":
                v = add_noise(v, float(rng.uniform(15, 30)), rng)
            elif step == "eq":
                v = equalise(v, sr, float(rng.uniform(-9, 9)), float(rng.uniform(-9, 9)))
            elif step == "reencode":
                v = reencode(v, sr)
            else:
                assert others is not None
                v = mix(v, others[int(rng.integers(0, len(others)))], float(rng.uniform(-9, -3)))
        views.append(v)
    return views
