"""Gradual rollouts in one process: the registry's split (compare and set), the service's
assignment by request key, the judge's promotion and rollbacks, shadow mode, and the lifecycle
manager's validation and performance tests."""

from __future__ import annotations

import time

import numpy as np
import pytest

from ml_utilities.exceptions import ParameterError
from ml_utilities.models.errors import DeploymentRefusedError, ModelNotFoundError

pytest.importorskip("xgboost")
pytest.importorskip("sqlalchemy")


def _reset(registry, name: str) -> None:
    row = registry.get_rollout(name)
    if row is not None and row.running:
        registry.rollback_rollout(name, "test reset")
    registry.set_alias(name, "champion", 1)


@pytest.fixture
def service(lifecycle_models):
    from ml_utilities.serving import PredictionService

    registry, _, _ = lifecycle_models
    svc = PredictionService(
        registry=registry, config={"gpu_enabled": False, "prediction_cache_ttl": 0}
    )
    yield svc
    svc.close_sync()
    for name in ("genre", "genre-bad"):
        _reset(registry, name)


def _drive(service, name, x, until, timeout_s=40.0, keys=200, labels=None):
    """Send requests (user keys cycling over ``keys``) until ``until(row)`` or the timeout;
    returns (rollout row, answers [(key, row index, metadata, prediction)])."""
    answers = []
    deadline = time.monotonic() + timeout_s
    i = 0
    while time.monotonic() < deadline:
        j = i % len(x)
        out = service.predict_batch_sync(name, x[j : j + 1], request_key=f"user{i % keys}")
        answers.append((f"user{i % keys}", j, out["metadata"], out["predictions"][0]))
        if labels is not None and "request_id" in out["metadata"]:
            service.record_outcome_sync(out["metadata"]["request_id"], labels[j])
        i += 1
        if i % 10 == 0:
            row = service.rollouts.refresh(name)
            if until(row):
                return row, answers
    return service.rollouts.refresh(name), answers


def test_registry_rollout_compare_and_set(lifecycle_models):
    registry, _, _ = lifecycle_models
    _reset(registry, "genre")
    with pytest.raises(ParameterError, match="increasing percentages"):
        registry.start_rollout("genre", 2, steps=[50, 25, 100])
    with pytest.raises(ParameterError, match="last step is 100"):
        registry.start_rollout("genre", 2, steps=[5, 50])
    with pytest.raises(ParameterError, match="window_s"):
        registry.start_rollout("genre", 2, window_s=0)
    with pytest.raises(ParameterError, match="mode"):
        registry.start_rollout("genre", 2, mode="blue-green")
    with pytest.raises(ParameterError, match="already the 'champion'"):
        registry.start_rollout("genre", 1)
    with pytest.raises(ModelNotFoundError):
        registry.start_rollout("genre", 99)
    row = registry.start_rollout("genre", 2, steps=[10, 100], window_s=5)
    assert (row.champion, row.challenger, row.weight, row.revision) == (1, 2, 0.1, 1)
    assert registry.aliases("genre")["challenger"] == 2
    with pytest.raises(ParameterError, match="already running"):
        registry.start_rollout("genre", 2)
    # two judges of one step: only the first change lands
    first = registry.advance_rollout("genre", row.revision)
    assert first is not None and first.step_percent == 100 and first.weight == 1.0
    assert registry.advance_rollout("genre", row.revision) is None
    assert registry.aliases("genre")["champion"] == 1  # not promoted before its last step
    done = registry.advance_rollout("genre", first.revision, detail="held")
    assert done.status == "promoted" and not done.running
    assert registry.aliases("genre")["champion"] == 2
    assert "challenger" not in registry.aliases("genre")  # it is the champion now
    assert [e["event"] for e in done.events] == ["start", "step", "promoted"]
    assert registry.rollback_rollout("genre", "nothing runs") is None
    _reset(registry, "genre")
    registry.start_rollout("genre", 2)
    back = registry.rollback_rollout("genre", "by hand")
    assert back.status == "rolled_back" and back.reason == "by hand" and back.weight == 0.0
    assert registry.aliases("genre") == {"champion": 1}


def test_split_is_stable_per_user_and_answers_are_their_versions(lifecycle_models, service):
    registry, _, split = lifecycle_models
    from lifecycle_support import gtzan_or_synthetic

    x = gtzan_or_synthetic()[0][:64]
    registry.start_rollout("genre", 2, steps=[50, 100], window_s=3600)
    own = {v: registry.load("genre", v).predict(x) for v in (1, 2)}
    seen: dict[str, set[int]] = {}
    for _rep in range(3):
        for u in range(120):
            j = u % len(x)
            out = service.predict_batch_sync("genre", x[j : j + 1], request_key=f"u{u}")
            v = out["metadata"]["registry_version"]
            seen.setdefault(f"u{u}", set()).add(v)
            assert out["predictions"][0] == own[v][j], (u, v)
            assert out["metadata"]["rollout"]["role"] == ("challenger" if v == 2 else "champion")
    assert all(len(vs) == 1 for vs in seen.values()), "a user saw two versions"
    share = sum(1 for vs in seen.values() if vs == {2}) / len(seen)
    assert 0.35 < share < 0.65, share
    # an explicit version number is never split
    out = service.predict_batch_sync("genre", x[:1], version=1, request_key="u1")
    assert out["metadata"]["registry_version"] == 1 and "rollout" not in out["metadata"]
    # a second service (another worker) assigns every user the same way
    from ml_utilities.serving import PredictionService

    other = PredictionService(registry=registry, config={"gpu_enabled": False})
    try:
        for u in range(0, 120, 7):
            out = other.predict_batch_sync("genre@champion", x[:1], request_key=f"u{u}")
            assert {out["metadata"]["registry_version"]} == seen[f"u{u}"]
    finally:
        other.close_sync()


def test_good_challenger_goes_to_100_and_is_promoted(lifecycle_models, service, genre_data):
    registry, _, split = lifecycle_models
    x, y, _, _ = genre_data
    test_x, test_y = x[split["test"]], y[split["test"]]
    registry.start_rollout(
        "genre", 2, steps=[20, 60, 100], window_s=0.5, criteria={"min_requests": 8}
    )
    own = {v: registry.load("genre", v).predict(test_x) for v in (1, 2)}
    row, answers = _drive(service, "genre", test_x, lambda r: not r.running, labels=test_y)
    assert row.status == "promoted", row.events
    assert registry.aliases("genre")["champion"] == 2
    assert [e["event"] for e in row.events][-1] == "promoted"
    assert sum(e["event"] == "step" for e in row.events) == 2
    for _, j, meta, pred in answers:
        assert pred == own[meta["registry_version"]][j]
    # after the switch every plain request is the new champion's
    out = service.predict_batch_sync("genre@champion", test_x[:1], request_key="user1")
    assert out["metadata"]["registry_version"] == 2


def test_failing_challenger_is_rolled_back_and_loses_no_request(lifecycle_models, service):
    registry, _, split = lifecycle_models
    from lifecycle_support import gtzan_or_synthetic

    x = gtzan_or_synthetic()[0][:50]
    registry.start_rollout("genre-bad", 2, steps=[50, 100], window_s=60)
    t0 = time.monotonic()
    row, answers = _drive(service, "genre-bad", x, lambda r: not r.running, timeout_s=30)
    assert row.status == "rolled_back", row
    assert time.monotonic() - t0 < 30  # well within one step window
    assert "error rate" in row.reason
    own = registry.load("genre-bad", 1).predict(x)
    # every request was answered, by the champion, with the champion's own prediction
    assert answers and all(m["registry_version"] == 1 for _, _, m, _ in answers)
    assert all(p == own[j] for _, j, _, p in answers)


def test_rows_bad_for_every_version_are_no_challenger_failure(lifecycle_models, service):
    """NaN rows are refused by both versions: the client's fault, not the challenger's. A
    challenger refusing rows the champion answers is its failure (the 12-feature v2)."""
    from lifecycle_support import gtzan_or_synthetic

    from ml_utilities.serving import ModelInputError

    registry, _, _ = lifecycle_models
    x = gtzan_or_synthetic()[0][:40].copy()
    bad = x.copy()
    bad[:, 3] = np.nan
    registry.start_rollout(
        "genre-bad", 3, steps=[50, 100], window_s=3600, criteria={"min_requests": 5}
    )
    for i in range(40):
        with pytest.raises(ModelInputError, match="NaN"):
            service.predict_batch_sync("genre-bad", bad[i : i + 1], request_key=f"user{i}")
    stats = service.rollout_status_sync("genre-bad")["stats"]
    assert stats["challenger"]["errors"] == 0 and stats["champion"]["errors"] == 0, stats
    assert service.rollouts.refresh("genre-bad").running
    registry.rollback_rollout("genre-bad", "test")
    registry.start_rollout(
        "genre-bad", 2, steps=[50, 100], window_s=3600, criteria={"min_requests": 1000}
    )
    service.rollouts.refresh("genre-bad")  # as the judge does within its tick
    for i in range(60):
        out = service.predict_batch_sync("genre-bad", x[i % 40 : i % 40 + 1], request_key=f"u{i}")
        assert out["metadata"]["registry_version"] == 1  # the champion answers every one
    stats = service.rollout_status_sync("genre-bad")["stats"]
    assert stats["challenger"]["errors"] == stats["challenger"]["requests"] > 0, stats
    assert stats["champion"]["errors"] == 0, stats


def test_less_accurate_challenger_is_rolled_back_on_outcomes(lifecycle_models, service, genre_data):
    registry, _, split = lifecycle_models
    x, y, _, _ = genre_data
    test_x, test_y = x[split["test"]], y[split["test"]]
    registry.start_rollout("genre-bad", 3, steps=[50, 100], window_s=60)
    row, _ = _drive(
        service, "genre-bad", test_x, lambda r: not r.running, timeout_s=40, labels=test_y
    )
    assert row.status == "rolled_back", row
    assert "accuracy" in row.reason and "outcomes" in row.reason
    with pytest.raises(ParameterError, match="unknown"):
        service.record_outcome_sync("no-such-request", "rock")


def test_slow_challenger_is_rolled_back(lifecycle_models, genre_data):
    from ml_utilities.serving import PredictionService

    registry, _, split = lifecycle_models
    x = genre_data[0][:40]
    service = PredictionService(
        registry=registry,
        config={"gpu_enabled": False, "prediction_cache_ttl": 0, "dynamic_batching": False},
    )
    try:
        slow = service.get_model("genre", 2)
        fast_fn = slow.batch_fn

        def sleepy(rows):
            time.sleep(0.03)
            return fast_fn(rows)

        slow.batch_fn = sleepy
        registry.start_rollout("genre", 2, steps=[50, 100], window_s=8)
        row, _ = _drive(service, "genre", x, lambda r: not r.running, timeout_s=40)
        assert row.status == "rolled_back", row
        assert "p99 latency" in row.reason
        # judged at the end of its first window, over all of it: not promoted on the way
        assert [e["event"] for e in row.events] == ["start", "rolled_back"]
    finally:
        service.close_sync()
        _reset(registry, "genre")


def test_shadow_rollout_answers_with_the_champion_and_judges_the_challenger(
    lifecycle_models, service, genre_data
):
    registry, _, split = lifecycle_models
    x = genre_data[0][:40]
    registry.start_rollout(
        "genre", 2, steps=[100], window_s=0.5, mode="shadow", criteria={"min_requests": 10}
    )
    row, answers = _drive(service, "genre", x, lambda r: not r.running, timeout_s=30)
    assert row.status == "shadow_passed", row
    assert all(m["registry_version"] == 1 for _, _, m, _ in answers)
    assert all(m["rollout"]["mode"] == "shadow" for _, _, m, _ in answers[:5])
    assert registry.aliases("genre")["champion"] == 1  # a shadow never promotes


def test_restarted_service_resumes_the_split(lifecycle_models, genre_data):
    from ml_utilities.serving import PredictionService

    registry, _, _ = lifecycle_models
    x = genre_data[0][:1]
    registry.start_rollout("genre", 2, steps=[30, 100], window_s=3600)
    first = PredictionService(registry=registry, config={"gpu_enabled": False})
    before = {
        u: first.predict_batch_sync("genre", x, request_key=u)["metadata"]["registry_version"]
        for u in (f"k{i}" for i in range(40))
    }
    first.close_sync()
    second = PredictionService(registry=registry, config={"gpu_enabled": False})
    try:
        for u, v in before.items():
            meta = second.predict_batch_sync("genre", x, request_key=u)["metadata"]
            assert meta["registry_version"] == v
            assert meta["rollout"]["step_percent"] == 30
    finally:
        second.close_sync()
        _reset(registry, "genre")


# -- the lifecycle manager's checks ------------------------------------------------------------
@pytest.fixture
def lifecycle(lifecycle_models, service):
    from ml_utilities.lifecycle import ModelLifecycleManager

    _, manager, _ = lifecycle_models
    return ModelLifecycleManager(manager, service=service)


def test_validate_refuses_an_incompatible_or_worse_challenger(lifecycle):
    with pytest.raises(DeploymentRefusedError, match=r"input shape \[41\] != champion's \[53\]"):
        lifecycle.validate_model_sync("genre-bad", 2)
    with pytest.raises(DeploymentRefusedError, match=r"accuracy 0\.\d+ on \d+ held-out rows"):
        lifecycle.validate_model_sync("genre-bad", 3)
    report = lifecycle.validate_model_sync("genre", 2)
    assert report["passed"] and report["checks"]["signature"]["compatible"]
    metric = report["checks"]["metric"]
    assert metric["candidate"]["value"] >= metric["champion"]["value"] - 0.01


def test_performance_tests_measure_the_serving_path_and_refuse_past_the_sla(lifecycle):
    report = lifecycle.run_performance_tests_sync(
        "genre", 2, {"batch_sizes": [1, 16], "requests": 40}
    )
    for bs in ("1", "16"):
        b = report["batches"][bs]
        assert 0 < b["p50_ms"] <= b["p99_ms"] and b["rows_per_s"] > 0
    assert report["memory_mb"] > 0
    with pytest.raises(DeploymentRefusedError, match=r"batch 1: p99 [\d.]+ ms > 1e-06 ms"):
        lifecycle.run_performance_tests_sync("genre", 2, {"batch_sizes": [1], "max_p99_ms": 1e-6})


def test_deploy_records_a_refusal_and_starts_a_rollout(lifecycle, lifecycle_models):
    registry, _, _ = lifecycle_models
    with pytest.raises(DeploymentRefusedError):
        lifecycle.deploy_model_sync("genre-bad", 3)
    refused = registry.list_deployments("genre-bad")[-1]
    assert refused.status == "refused" and "accuracy" in refused.reason
    out = lifecycle.deploy_model_sync(
        "genre", 2, {"performance": {"requests": 20}, "rollout": {"window_s": 3600}}
    )
    assert out["rollout"]["status"] == "running" and out["rollout"]["challenger"] == 2
    assert registry.list_deployments("genre")[-1].status == "deployed"
    with pytest.raises(ParameterError, match="unknown deployment_config"):
        lifecycle.deploy_model_sync("genre", 2, {"canary": True})


def test_register_model_stores_a_fingerprinted_reference(lifecycle, lifecycle_models, genre_data):
    registry, manager, _ = lifecycle_models
    x, y, names, _ = genre_data
    handle = manager.train_model_sync(x[:600], y[:600], {**_xgb(), "name": "genre-ref"})
    mv = lifecycle.register_model_sync(
        handle, {"feature_names": names}, reference_data=(x[:300], y[:300])
    )
    assert mv.metadata["reference_rows"] == 300
    loaded = registry.load("genre-ref", mv.version)
    assert loaded.reference_fingerprint == mv.metadata["reference_fingerprint"]
    np.testing.assert_array_equal(loaded.reference["x"], x[:300])
    assert loaded.reference["predictions"].shape == (300,)
    assert lifecycle.increment_version_sync("genre-ref") == mv.version + 1


def _xgb():
    from lifecycle_support import XGB

    return dict(XGB)


def test_rollouts_on_postgresql_agree_across_services(postgres_url, genre_data):
    """The split's state in PostgreSQL: two services (two workers) assign each user the same
    version, and a step changes once however many judges try (row lock, compare and set)."""
    from concurrent.futures import ThreadPoolExecutor

    from ml_utilities.models import ModelManager, ModelRegistry
    from ml_utilities.serving import PredictionService

    x, y, names, _ = genre_data
    registry = ModelRegistry(postgres_url, genre_data_root(postgres_url))
    manager = ModelManager(registry)
    for seed, aliases in ((0, ["champion"]), (1, [])):
        h = manager.train_model_sync(x[:800], y[:800], {**_xgb(), "name": "pg-genre", "seed": seed})
        registry.register(h, metadata={"feature_names": names}, aliases=aliases)
    row = registry.start_rollout("pg-genre", 2, steps=[25, 50, 100], window_s=3600)
    with ThreadPoolExecutor(8) as pool:
        results = list(
            pool.map(lambda _: registry.advance_rollout("pg-genre", row.revision), range(8))
        )
    assert sum(r is not None for r in results) == 1
    assert registry.get_rollout("pg-genre").step_percent == 50
    worker_registries = [ModelRegistry(postgres_url, registry.store.url) for _ in range(2)]
    services = [
        PredictionService(registry=r, config={"gpu_enabled": False}) for r in worker_registries
    ]
    try:
        for u in range(40):
            seen = {
                s.predict_batch_sync("pg-genre", x[:1], request_key=f"pg{u}")["metadata"][
                    "registry_version"
                ]
                for s in services
            }
            assert len(seen) == 1, u
    finally:
        for s in services:
            s.close_sync()
        for r in [*worker_registries, registry]:
            r.dispose()


def genre_data_root(url: str):
    import tempfile
    from pathlib import Path

    return Path(tempfile.mkdtemp(prefix="pg-artifacts-"))
