"""Tracks for the emotion use case of tests/test_use_cases.py, made with the synthesis of
tests/pipeline/emotion_support.py (arousal in the audio, valence in the lyrics)."""

from __future__ import annotations

import sys
from pathlib import Path

_PIPELINE_TESTS = str(Path(__file__).resolve().parent / "pipeline")


def _quadrant(p: dict) -> str:
    if p["high_arousal"]:
        return "happy" if p["positive"] else "angry"
    return "calm" if p["positive"] else "sad"


def emotion_tracks(root: Path, n_train: int = 48, n_test: int = 16):
    """``(music_files, lyrics_data, emotion_annotations, (test files, test lyrics, test
    labels))``: WAV paths by track id, lyrics by id, quadrant labels (a Series by id)."""
    import pandas as pd
    import soundfile as sf

    if _PIPELINE_TESTS not in sys.path:
        sys.path.insert(0, _PIPELINE_TESTS)
    from emotion_support import SR, lyrics, synth_clip, track_plan

    plan = track_plan(n_train + n_test, seed=11)
    files, texts, labels = {}, {}, {}
    for i, p in enumerate(plan):
        tid = f"t{i:03d}"
        clip = synth_clip(p["major"], p["high_arousal"], p["high_arousal"], p["tonic"], p["seed"])
        path = root / f"{tid}.wav"
        sf.write(path, clip, SR)
        files[tid], texts[tid], labels[tid] = (
            str(path),
            lyrics(p["positive"], p["seed"]),
            _quadrant(p),
        )
    ids = list(files)
    train, test = ids[:n_train], ids[n_train:]
    return (
        {t: files[t] for t in train},
        {t: texts[t] for t in train},
        pd.Series({t: labels[t] for t in train}),
        ({t: files[t] for t in test}, {t: texts[t] for t in test}, [labels[t] for t in test]),
    )
