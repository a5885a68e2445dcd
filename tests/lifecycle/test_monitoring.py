"""Live drift monitoring in the prediction service and the lifecycle loop on real data: no alarm
on held-out rows of the training distribution, an alarm within 1,000 rows of a genre the model
never saw, and retraining (a subprocess) registered as the challenger, then validated and rolled
out; the specification's ModelLifecycleManager example as written."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

pytest.importorskip("xgboost")
pytest.importorskip("sklearn")

XGB = {
    "framework": "xgboost",
    "task": "classification",
    "hyperparameters": {"n_estimators": 30, "max_depth": 4, "n_jobs": 1},
}


@pytest.fixture(scope="module")
def four_genres(tmp_path_factory, genre_data):
    """A registry with ``genre4`` v1 (champion): trained on four genres, classical held out."""
    from ml_utilities.models import ModelManager, ModelRegistry

    x, y, names, source = genre_data
    unseen = "classical" if source == "gtzan" else "classical"
    seen = y != unseen
    xs, ys = x[seen], y[seen]
    cut = int(len(xs) * 0.6)
    root = tmp_path_factory.mktemp("monitoring-registry")
    registry = ModelRegistry(f"sqlite:///{root / 'registry.db'}", root / "artifacts")
    manager = ModelManager(registry)
    handle = manager.train_model_sync(xs[:cut], ys[:cut], {**XGB, "name": "genre4"})
    registry.register(handle, metadata={"feature_names": names}, aliases=["champion"])
    yield {
        "registry": registry,
        "manager": manager,
        "held_out": xs[cut:],
        "held_out_y": ys[cut:],
        "train": (xs[:cut], ys[:cut]),
        "unseen": x[~seen],
        "root": root,
    }
    registry.dispose()


@pytest.fixture
def service(four_genres):
    from ml_utilities.serving import PredictionService

    svc = PredictionService(
        registry=four_genres["registry"], config={"gpu_enabled": False, "prediction_cache_ttl": 0}
    )
    yield svc
    svc.close_sync()


def _stream(service, name, rows, batch=25):
    for i in range(0, len(rows), batch):
        service.predict_batch_sync(name, rows[i : i + batch])


def test_no_alarm_on_held_out_rows_then_an_alarm_within_1000_rows_of_an_unseen_genre(
    four_genres, service
):
    # every row scored (cpu_share=1): the delay is counted in rows of the stream itself
    status = service.monitor_sync("genre4", window=300, step=100, cpu_share=1.0)
    assert status["reference_version"] == 1 and status["rows_seen"] == 0
    held = four_genres["held_out"]
    rng = np.random.default_rng(0)
    stream = held[rng.permutation(len(held))][:1500]
    _stream(service, "genre4", stream)
    calm = service.drift_status_sync("genre4", flush=True)
    assert calm["rows_seen"] == len(stream)
    assert not calm["alarm"], calm["last"]
    assert len(calm["history"]) >= 10
    assert max(s for _, s in calm["history"]) < 0.3, calm["history"]
    # the genre the model never saw arrives
    unseen = four_genres["unseen"][rng.permutation(len(four_genres["unseen"]))]
    seen_rows = 0
    while seen_rows < 1000:
        _stream(service, "genre4", unseen[seen_rows : seen_rows + 50], batch=50)
        seen_rows += 50
        if service.drift_status_sync("genre4", flush=True)["alarm"]:
            break
    shifted = service.drift_status_sync("genre4")
    assert shifted["alarm"], f"no alarm after {seen_rows} rows: {shifted['last']}"
    assert seen_rows <= 1000 and shifted["score"] > 0.3
    from ml_utilities.serving.metrics import render

    text = render().decode()
    assert 'ml_model_drift_alarm{model="genre4"} 1.0' in text
    with pytest.raises(ValueError, match="not monitored"):
        service.drift_status_sync("nosuch")


def test_monitor_retrains_on_drift_and_the_challenger_takes_the_deploy_path(
    four_genres, service, tmp_path
):
    from ml_utilities.lifecycle import ModelLifecycleManager

    x_train, y_train = four_genres["train"]
    held, held_y = four_genres["held_out"], four_genres["held_out_y"]
    # the fresh data: the same genres, louder (rms features as a 2x gain gives them)
    gain = held.copy()
    gain[:, 2] *= 2.0  # rms_mean
    gain[:, 3] *= 4.0  # rms_var
    fresh = tmp_path / "fresh.npz"
    np.savez(fresh, x=np.concatenate([x_train, gain]), y=np.concatenate([y_train, held_y]))
    lifecycle = ModelLifecycleManager(
        four_genres["manager"],
        service=service,
        config={
            "drift": {"window": 300, "step": 100, "patience": 2, "cpu_share": 1.0},
            "retraining": {"data": str(fresh)},
        },
    )
    first = lifecycle.monitor_model_sync("genre4")
    assert first["drift_score"] == 0.0 and first["job"] is None  # nothing seen yet
    _stream(service, "genre4", gain[:900])
    report = lifecycle.monitor_model_sync("genre4")
    assert report["drift_score"] > 0.3 and report["alarm"], report["metrics"]["drift"]
    job = report["job"]
    assert job is not None, "drift past 0.3 with the alarm on did not retrain"
    result = job.wait(timeout=240)
    registry = four_genres["registry"]
    assert registry.aliases("genre4")["challenger"] == result["version"] == 2
    mv = registry.get_version("genre4", 2)
    assert mv.metadata["retrained_from"] == 1 and mv.metadata["reference_fingerprint"]
    # while it trained, the service kept answering (the job is another process)
    assert service.predict_batch_sync("genre4", held[:3])["metadata"]["registry_version"] == 1
    out = lifecycle.deploy_model_sync(
        "genre4",
        2,
        {
            "validation": {"max_metric_drop": 0.05},
            "performance": {"requests": 20},
            "rollout": {"window_s": 3600},
        },
    )
    assert out["validation"]["passed"] and out["rollout"]["status"] == "running"
    # the HTML report: reference against the live window, the drift over time, the rollout
    page = lifecycle.write_report_sync("genre4", tmp_path / "report.html")
    text = page.read_text()
    assert "genre4" in text and "rms_mean" in text and "challenger" in text
    registry.rollback_rollout("genre4", "test done")


def test_the_specification_example_runs_as_written(four_genres, tmp_path):
    """The specification's ModelLifecycleManager: register_model(model, metadata),
    deploy_model(model_name, version, deployment_config), monitor_model(model_name)."""
    from ml_utilities.lifecycle import ModelLifecycleManager
    from ml_utilities.models import ModelManager, ModelRegistry

    registry = ModelRegistry(f"sqlite:///{tmp_path / 'spec.db'}", tmp_path / "artifacts")
    manager = ModelManager(registry)
    x, y = four_genres["train"]
    lifecycle = ModelLifecycleManager(manager, config={"drift": {"window": 200, "step": 100}})

    async def main():
        model = await manager.train_model(x[:800], y[:800], {**XGB, "name": "spec-genre"})
        mv = await lifecycle.register_model(model, {"owner": "tests"})
        first = await lifecycle.deploy_model(model.name, mv.version, {})
        better = await manager.train_model(x, y, {**XGB, "name": "spec-genre", "seed": 3})
        mv2 = await lifecycle.register_model(better, {"owner": "tests"})
        second = await lifecycle.deploy_model(
            better.name, mv2.version, {"rollout": {"window_s": 3600}}
        )
        await lifecycle.service.predict_batch(model.name, x[:250])
        monitored = await lifecycle.monitor_model(model.name)
        return mv, first, second, monitored

    try:
        mv, first, second, monitored = asyncio.run(main())
    finally:
        lifecycle.service.close_sync()
    assert mv.version == 1 and mv.metadata["reference_rows"] > 0
    assert first["rollout"]["status"] == "promoted"  # the first version becomes champion
    assert second["rollout"]["status"] == "running" and second["rollout"]["challenger"] == 2
    assert 0.0 <= monitored["drift_score"] <= 1.0 and monitored["job"] is None
    assert monitored["metrics"]["rollout"]["challenger"] == 2
    registry.dispose()


def test_the_monitor_keeps_to_its_cpu_share_by_sampling_rows(four_genres, service):
    """At a rate the scoring cannot follow within its share of a core, the worker monitors a
    random sample of the rows: fewer rows scored, the score still sees a real shift."""
    import time

    status = service.monitor_sync("genre4", window=300, step=100, cpu_share=0.1)
    assert status["sample_fraction"] == 1.0
    monitor = service._monitors["genre4"]
    monitor.interval_s = 0.05
    held = four_genres["held_out"]
    louder = held.copy()
    louder[:, 2] *= 2.0
    louder[:, 3] *= 4.0
    deadline = time.monotonic() + 25
    while time.monotonic() < deadline:
        _stream(service, "genre4", louder[:400], batch=40)
        st = service.drift_status_sync("genre4")
        if st["rows_sampled_out"] > 0 and st["alarm"]:
            break
    assert 0 < st["sample_fraction"] < 1.0 and st["rows_sampled_out"] > 0, st
    assert st["rows_seen"] + st["rows_sampled_out"] <= st["rows_submitted"]
    assert st["alarm"] and st["score"] > 0.3, st["history"]
