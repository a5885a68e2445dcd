"""Live drift from the audio itself (issue 20): a model trained on the summary features of clean
clips, served and monitored; the features of more clean clips raise no alarm, the features of the
same kind of music through another channel (band-limited, noisy, re-encoded: what a new
microphone, a phone line or a low-bitrate source gives) raise one within 300 rows."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("xgboost")
pytest.importorskip("scipy")

from similarity_support import SR, piece, render  # noqa: E402

XGB = {
    "framework": "xgboost",
    "task": "classification",
    "hyperparameters": {"n_estimators": 30, "max_depth": 3, "n_jobs": 1},
}


def _clips(seeds: range, degrade: bool) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """4 s clips of synthetic pieces in three timbres (the label), optionally through another
    channel."""
    from ml_utilities.similarity import augment

    rng = np.random.default_rng(seeds.start)
    clips, labels = {}, []
    for s in seeds:
        timbre = s % 3
        start = float(rng.uniform(0, 16))
        y = render(piece(s % 97, seconds=24), timbre=timbre, start=start, end=start + 4)
        if degrade:
            y = augment.equalise(y, SR, -18.0, -24.0)
            y = augment.add_noise(y, 12.0, rng)
            y = augment.reencode(y, SR)
        clips[f"clip{s}"] = y
        labels.append(timbre)
    return clips, np.asarray(labels)


def _features(clips: dict[str, np.ndarray]) -> np.ndarray:
    from ml_utilities.features import FeatureExtractor

    table = FeatureExtractor().extract_audio_features_sync(clips)
    assert not table.errors
    return np.asarray(table.values, dtype=np.float64)


@pytest.fixture(scope="module")
def audio_model(tmp_path_factory):
    from ml_utilities.models import ModelManager, ModelRegistry

    train, y = _clips(range(0, 240), degrade=False)
    x = _features(train)
    root = tmp_path_factory.mktemp("audio-drift")
    registry = ModelRegistry(f"sqlite:///{root / 'registry.db'}", root / "artifacts")
    handle = ModelManager(registry).train_model_sync(x, y, {**XGB, "name": "timbre"})
    registry.register(handle, aliases=["champion"])
    calm = _features(_clips(range(1000, 1300), degrade=False)[0])
    shifted = _features(_clips(range(2000, 2300), degrade=True)[0])
    yield registry, calm, shifted
    registry.dispose()


def test_clean_audio_is_calm_and_another_channel_alarms(audio_model):
    from ml_utilities.serving import PredictionService

    registry, calm, shifted = audio_model
    service = PredictionService(
        registry=registry, config={"gpu_enabled": False, "prediction_cache_ttl": 0}
    )
    try:
        service.monitor_sync("timbre", window=300, step=100, cpu_share=1.0)
        for i in range(0, len(calm), 25):
            service.predict_batch_sync("timbre", calm[i : i + 25])
        quiet = service.drift_status_sync("timbre", flush=True)
        assert quiet["rows_seen"] == len(calm)
        assert not quiet["alarm"] and quiet["score"] < 0.3, quiet["last"]
        rows = 0
        while rows < len(shifted):
            service.predict_batch_sync("timbre", shifted[rows : rows + 50])
            rows += 50
            if service.drift_status_sync("timbre", flush=True)["alarm"]:
                break
        status = service.drift_status_sync("timbre")
        assert status["alarm"], f"no alarm after {rows} rows of degraded audio: {status['last']}"
        assert status["score"] > 0.3
    finally:
        service.close_sync()
