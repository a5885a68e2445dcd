"""Synthetic music for the similarity tests: melodies over chords, re-rendered like a score.

A piece is a seeded note list (a melody in a major or minor key over a bass and a triad, one
note every 0.25-0.5 s); :func:`render` plays it at any transposition, tempo and timbre, as a
MIDI file re-rendered with another instrument would be.
"""

from __future__ import annotations

import numpy as np

SR = 22050


def piece(seed: int, seconds: float = 24.0) -> list[tuple[float, float, int, int]]:
    """``(start, duration, melody MIDI note, chord root MIDI note)`` events of a piece."""
    rng = np.random.default_rng(seed)
    tonic = int(rng.integers(55, 67))
    scale = np.array([0, 2, 4, 5, 7, 9, 11] if rng.random() < 0.5 else [0, 2, 3, 5, 7, 8, 10])
    degrees = np.concatenate([scale - 12, scale, scale + 12])
    t, pos, events = 0.0, 7, []
    chord = tonic - 12
    while t < seconds:
        dur = float(rng.choice([0.25, 0.375, 0.5]))
        pos = int(np.clip(pos + rng.integers(-3, 4), 0, len(degrees) - 1))
        if int(t / 2.0) != int((t - dur) / 2.0) or not events:
            chord = tonic - 12 + int(rng.choice(scale))
        events.append((t, dur, tonic + int(degrees[pos]), chord))
        t += dur
    return events


def _tone(f: float, n: int, timbre: int) -> np.ndarray:
    t = np.arange(n) / SR
    weights = [(1.0, 0.5, 0.3, 0.2), (1.0, 0.05, 0.4, 0.02), (1.0, 0.8, 0.6, 0.5)][timbre % 3]
    y = sum(w * np.sin(2 * np.pi * f * (h + 1) * t) for h, w in enumerate(weights))
    env = np.minimum(1.0, np.minimum(t / 0.01, (n / SR - t) / 0.03))
    return y * np.clip(env, 0, 1) * np.exp(-t * (1.5 if timbre != 1 else 0.3))


def render(
    events: list[tuple[float, float, int, int]],
    *,
    transpose: int = 0,
    tempo: float = 1.0,
    timbre: int = 0,
    start: float = 0.0,
    end: float | None = None,
) -> np.ndarray:
    """The events from ``start`` to ``end`` (score seconds), ``transpose`` semitones up, played
    ``tempo`` times as fast, in one of three timbres; float32 at :data:`SR`."""
    chosen = [e for e in events if e[0] >= start and (end is None or e[0] < end)]
    total = (chosen[-1][0] + chosen[-1][1] - start) / tempo + 0.1
    y = np.zeros(int(total * SR) + 1)
    for t0, dur, note, root in chosen:
        a = int((t0 - start) / tempo * SR)
        n = int(dur / tempo * SR)
        hz = lambda m: 440.0 * 2 ** ((m + transpose - 69) / 12)  # noqa: E731
        y[a : a + n] += 0.5 * _tone(hz(note), n, timbre)
        for interval in (0, 4, 7):
            y[a : a + n] += 0.15 * _tone(hz(root + interval), n, timbre + 1)
    return (0.5 * y / np.max(np.abs(y))).astype(np.float32)
