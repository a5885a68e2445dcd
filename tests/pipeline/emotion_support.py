"""Synthetic DEAM-like and PMEmo-like emotion datasets for tests/pipeline/test_emotion.py.

Each track's arousal is in its audio only (fast, loud pulses vs slow, soft ones) and its
valence in its lyrics only (positive vs negative words); the mode (major/minor triads) and the
key vary independently of both, so a model must use both modalities to find the quadrant."""

from __future__ import annotations

from pathlib import Path

import numpy as np

SR = 22050
SECONDS = 2.5
POSITIVE = ["love", "happy", "sunshine", "smile", "joy", "wonderful", "beautiful", "laugh"]
NEGATIVE = ["sad", "tears", "lonely", "broken", "pain", "cry", "hurt", "grief"]
FILLER = [
    "walking down the road tonight",
    "the city lights are on",
    "we talk about the time",
    "i see you by the door",
    "the train goes by the river",
    "another morning in the town",
]


def synth_clip(major: bool, fast: bool, loud: bool, tonic: int, seed: int) -> np.ndarray:
    """A triad (major or minor, with two harmonics) struck on every beat of a pulse (150 or
    70 BPM, jittered), with a noise click, at a loud or soft level."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(SR * SECONDS)) / SR
    f0 = 220.0 * 2 ** (tonic / 12)
    y = np.zeros_like(t)
    for semis in (0, 4 if major else 3, 7, 12):
        f = f0 * 2 ** (semis / 12)
        for h, amp in ((1, 1.0), (2, 0.4), (3, 0.2)):
            y += amp * np.sin(2 * np.pi * f * h * t + rng.uniform(0, 2 * np.pi))
    period = 60.0 / ((150.0 if fast else 70.0) * rng.uniform(0.95, 1.05))
    since = t % period
    y = 0.15 * y * np.exp(-since / period * (8 if fast else 4))
    y += 0.3 * rng.normal(size=t.size) * np.exp(-since * 60)
    return (y / np.max(np.abs(y)) * (0.7 if loud else 0.08)).astype(np.float32)


def lyrics(positive: bool, seed: int) -> str:
    rng = np.random.default_rng(seed)
    words = POSITIVE if positive else NEGATIVE
    lines = [f"{rng.choice(FILLER)} {rng.choice(words)}" for _ in range(4)]
    chorus = f"oh {rng.choice(words)} and {rng.choice(words)}"
    return "\n".join([lines[0], chorus, lines[1], lines[2], chorus, lines[3]])


def track_plan(n: int, seed: int) -> list[dict]:
    """``n`` tracks with balanced arousal x valence x mode and a random key."""
    rng = np.random.default_rng(seed)
    plan = []
    for i in range(n):
        plan.append(
            {
                "high_arousal": bool(i % 2),
                "positive": bool((i // 2) % 2),
                "major": bool((i // 4) % 2),
                "tonic": int(rng.integers(0, 12)),
                "seed": seed * 1000 + i,
            }
        )
    return plan


def write_deam(root: Path, plan: list[dict]) -> dict[str, dict]:
    """DEAM's layout: averaged annotations (1-9, spaces after the commas), MEMD_audio/<id>.wav,
    and a lyrics folder of <id>.txt. Returns {id: plan entry}."""
    import soundfile as sf

    (root / "annotations").mkdir(parents=True)
    (root / "MEMD_audio").mkdir()
    (root / "lyrics").mkdir()
    rng = np.random.default_rng(1)
    rows = ["song_id, valence_mean, valence_std, arousal_mean, arousal_std"]
    out = {}
    for k, p in enumerate(plan):
        sid = str(10 + 3 * k)
        v = 5 + (1 if p["positive"] else -1) * rng.uniform(0.8, 3)
        a = 5 + (1 if p["high_arousal"] else -1) * rng.uniform(0.8, 3)
        rows.append(f"{sid}, {v:.2f}, 0.9, {a:.2f}, 1.1")
        clip = synth_clip(p["major"], p["high_arousal"], p["high_arousal"], p["tonic"], p["seed"])
        sf.write(root / "MEMD_audio" / f"{sid}.wav", clip, SR)
        (root / "lyrics" / f"{sid}.txt").write_text(lyrics(p["positive"], p["seed"]))
        out[sid] = p
    (root / "annotations" / "static_annotations_averaged_songs_1_2000.csv").write_text(
        "\n".join(rows) + "\n"
    )
    return out


def write_pmemo(root: Path, plan: list[dict]) -> dict[str, dict]:
    """PMEmo's layout: annotations/static_annotations.csv (0-1), chorus/<id>.wav and
    lyrics/<id>.lrc with time and metadata tags."""
    import soundfile as sf

    for sub in ("annotations", "chorus", "lyrics"):
        (root / sub).mkdir(parents=True)
    rng = np.random.default_rng(2)
    rows = ["musicId,Arousal(mean),Valence(mean)"]
    out = {}
    for k, p in enumerate(plan):
        mid = str(1000 + k)
        v = 0.5 + (1 if p["positive"] else -1) * rng.uniform(0.1, 0.4)
        a = 0.5 + (1 if p["high_arousal"] else -1) * rng.uniform(0.1, 0.4)
        rows.append(f"{mid},{a:.3f},{v:.3f}")
        clip = synth_clip(p["major"], p["high_arousal"], p["high_arousal"], p["tonic"], p["seed"])
        sf.write(root / "chorus" / f"{mid}.wav", clip, SR)
        text = lyrics(p["positive"], p["seed"])
        lrc = ["[ti:Synthetic]", "[ar:Test]", "[offset:0]"] + [
            f"[00:{2 * i:02d}.50]{line}" for i, line in enumerate(text.splitlines())
        ]
        (root / "lyrics" / f"{mid}.lrc").write_text("\n".join(lrc) + "\n")
        out[mid] = p
    (root / "annotations" / "static_annotations.csv").write_text("\n".join(rows) + "\n")
    return out
