"""Served recommenders: registered in safe formats and loaded back identical, answers equal to
the offline model's, the per-user cache, history updates (logged, excluded at once, rebuilt
exactly), several workers and a restart agreeing through the registry's log, a new champion
swapped in, the HTTP routes, and the recommendation metrics."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("lightgbm")
pytest.importorskip("sqlalchemy")
pytest.importorskip("prometheus_client")

from ml_utilities.exceptions import ParameterError  # noqa: E402
from ml_utilities.models.errors import ModelNotFoundError  # noqa: E402

LASTFM = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "lastfm-hetrec2011"


def _listening(seed: int, n_users: int, n_items: int, per_user: int):
    """Users with tastes: each draws most items from one of 4 item groups (so the generators
    have structure to find), play counts 1-299, seeded."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        group = u % 4
        own = np.arange(group, n_items, 4)
        picks = set(rng.choice(own, per_user - 3, replace=False).tolist())
        picks |= set(rng.choice(n_items, 3, replace=False).tolist())
        rows += [(u, int(i), int(rng.integers(1, 300))) for i in sorted(picks)]
    return pd.DataFrame(rows, columns=["userID", "artistID", "weight"])


@pytest.fixture(scope="module")
def trained():
    from ml_utilities.automl import AutoMLHelper

    data = _listening(seed=3, n_users=80, n_items=96, per_user=14)
    model = AutoMLHelper().train_recommendation_model_sync(
        interaction_data=data, task_config={"time_budget_seconds": 20, "n_candidates": 20}
    )
    return data, model


@pytest.fixture
def registry(tmp_path):
    from ml_utilities.models import ModelRegistry

    reg = ModelRegistry(f"sqlite:///{tmp_path / 'registry.db'}", tmp_path / "artifacts")
    yield reg
    reg.dispose()


def _items(answer):
    return [entry["item"] for entry in answer["items"]]


def test_registered_recommender_loads_back_identical_and_without_pickle(trained, registry):
    from ml_utilities.recommend.store import to_handle

    data, model = trained
    mv = registry.register(to_handle(model, "recs"), aliases=["champion"])
    assert (mv.framework, mv.task) == ("recommender", "ranking")
    assert mv.metrics["model_ndcg@10"] == model.report["evaluation"]["model"]["ndcg@10"]
    handle = registry.load("recs", "champion")
    loaded = handle.adapter.model
    assert loaded is not model
    for u in sorted(set(data.userID)):
        assert loaded.recommend(u, 10) == model.recommend(u, 10), u
    assert loaded.recommend(10_000, 5) == model.recommend(10_000, 5)  # unknown: popularity
    with pytest.raises(ParameterError, match="recommend\\(user_id, k\\)"):
        handle.adapter.predict_raw(np.zeros((1, 1)))
    with pytest.raises(ParameterError, match="train_recommendation_model"):
        handle.adapter.fit(None, None, None, None, patience=1)


def test_saved_files_hold_no_pickle(trained, tmp_path):
    from ml_utilities.recommend.store import save_recommender

    _, model = trained
    folder = tmp_path / "rec"
    folder.mkdir()
    save_recommender(model, folder)
    names = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert "interactions.npz" in names and "recommender.json" in names
    assert any(n.startswith("ranker/booster") for n in names)
    with np.load(folder / "interactions.npz", allow_pickle=False) as arrays:
        assert arrays["user_ids"].dtype.kind in "iU"
    for name in names:
        assert not (folder / name).read_bytes().startswith(b"\x80"), name  # no pickle stream


def test_served_answers_equal_the_offline_model_with_scores_and_generators(trained, registry):
    from ml_utilities.serving import deploy_recommendation_system_sync

    data, model = trained
    out = deploy_recommendation_system_sync(model, name="recs", registry=registry)
    rs = out["service"]
    try:
        assert out["version"] == 1 and registry.aliases("recs") == {"champion": 1}
        rs.serve("recs", wait_warm=True)
        for u in sorted(set(data.userID)):
            answer = rs.recommend_sync("recs", u, 10)
            assert _items(answer) == model.recommend(u, 10), u
            scores = [e["score"] for e in answer["items"]]
            assert scores == sorted(scores, reverse=True)
            assert {e["generator"] for e in answer["items"]} <= {
                "itemknn",
                "ease",
                "userknn",
                "svd",
                "popularity",
                "content",
                "friends",
                "ranker",
            }
            assert answer["metadata"]["cache_hit"]  # warmed at serve()
            assert answer["metadata"]["known_user"]
        # one user, k=3: the first three of the same ranking; asked again, from the cache
        first = rs.recommend_sync("recs", 7, 3)
        assert _items(first) == model.recommend(7, 10)[:3] and not first["metadata"]["cache_hit"]
        again = rs.recommend_sync("recs", 7, 3)
        assert again["metadata"]["cache_hit"] and _items(again) == _items(first)
        unknown = rs.recommend_sync("recs", "someone-new", 4)
        assert _items(unknown) == model.recommend("someone-new", 4)
        assert {e["generator"] for e in unknown["items"]} == {"popularity"}
        with pytest.raises(ParameterError, match="k=0"):
            rs.recommend_sync("recs", 7, 0)
        with pytest.raises(ParameterError, match="user_id=1.5"):
            rs.recommend_sync("recs", 1.5, 3)
        with pytest.raises(ModelNotFoundError):
            rs.recommend_sync("no-such-model", 7, 3)
    finally:
        rs.close()


def test_update_user_excludes_at_once_then_rebuilds_exactly(trained, registry):
    from ml_utilities.serving import RecommenderService, deploy_recommendation_system_sync

    data, model = trained
    rs = RecommenderService(registry, refresh_s=3600, poll_s=0.05)
    deploy_recommendation_system_sync(model, name="recs", registry=registry)
    other = RecommenderService(registry, refresh_s=3600, poll_s=0.05)  # a second worker
    try:
        before = rs.recommend_sync("recs", 5, 10)
        played = _items(before)[:2]
        other_before = other.recommend_sync("recs", 5, 10)
        assert _items(other_before) == _items(before)
        logged = rs.update_user_sync("recs", 5, [played[0], {"item": played[1], "weight": 30}])
        assert logged["logged"] == 2
        now = rs.recommend_sync("recs", 5, 10)
        assert not now["metadata"]["cache_hit"] and now["metadata"]["excluded_recent"] == 2
        assert not set(played) & set(_items(now))
        assert _items(now)[: 10 - 2] == [i for i in _items(before) if i not in played][:8]
        # the other worker reads the log within its poll interval
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            seen = other.recommend_sync("recs", 5, 10)
            if not set(played) & set(_items(seen)):
                break
            time.sleep(0.05)
        assert not set(played) & set(_items(seen))
        # a new user and a new item: logged, served by popularity until the rebuild
        rs.update_user_sync("recs", "newcomer", [(played[0], 3.0), ("brand-new-item", 2)])
        status = rs.refresh_sync("recs")
        assert status["pending_interactions"] == 0 and status["users"] == model.user_ids.size + 1
        expected = model.with_interactions(
            [
                (5, played[0], 1.0),
                (5, played[1], 30.0),
                ("newcomer", played[0], 3.0),
                ("newcomer", "brand-new-item", 2.0),
            ]
        )
        for u in (5, "newcomer", 11, 40):
            assert _items(rs.recommend_sync("recs", u, 10)) == expected.recommend(u, 10), u
        # a restarted worker applies the logged updates at load
        restarted = RecommenderService(registry)
        try:
            for u in (5, "newcomer", 11):
                assert _items(restarted.recommend_sync("recs", u, 10)) == expected.recommend(u, 10)
        finally:
            restarted.close()
        for bad, match in (
            ([], "empty"),
            ("abc", "expected a list"),
            ([(1, -2.0)], "weight=-2.0"),
            ([{"item": 1, "plays": 2}], "keys 'item' and 'weight'"),
            ([[1.5, 1]], "item=1.5"),
        ):
            with pytest.raises(ParameterError, match=match):
                rs.update_user_sync("recs", 5, bad)
    finally:
        rs.close()
        other.close()


def test_background_rebuild_and_a_new_champion_are_swapped_in(trained, registry):
    from ml_utilities.recommend.store import to_handle
    from ml_utilities.serving import RecommenderService, deploy_recommendation_system_sync

    data, model = trained
    deploy_recommendation_system_sync(model, name="recs", registry=registry)
    rs = RecommenderService(registry, refresh_s=0.0, poll_s=0.05)
    try:
        rs.serve("recs")
        rs.update_user_sync("recs", 9, [1, 2, 3])
        deadline = time.monotonic() + 30
        while rs.status("recs")["pending_interactions"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert rs.status("recs")["pending_interactions"] == 0
        expected = model.with_interactions([(9, 1, 1.0), (9, 2, 1.0), (9, 3, 1.0)])
        assert _items(rs.recommend_sync("recs", 9, 10)) == expected.recommend(9, 10)
        # a second version as champion (here: the same model retrained on the log, registered
        # after it, so the log is not applied twice)
        registry.register(
            to_handle(expected, "recs"),
            metadata={"interactions_log_id": registry.last_interaction_id("recs")},
            aliases=["champion"],
        )
        deadline = time.monotonic() + 30
        while rs.status("recs")["registry_version"] != 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        answer = rs.recommend_sync("recs", 9, 10)
        assert answer["metadata"]["registry_version"] == 2
        assert _items(answer) == expected.recommend(9, 10)
    finally:
        rs.close()


def test_http_routes_and_recommendation_metrics(trained, registry):
    from ml_utilities.serving import PredictionService, deploy_recommendation_system_sync
    from ml_utilities.serving.metrics import render
    from ml_utilities.serving.routes import handle

    data, model = trained
    service = PredictionService(registry=registry, config={"gpu_enabled": False})
    deploy_recommendation_system_sync(model, name="recs", service=service)

    def call(method, path, doc=None):
        body = b"" if doc is None else json.dumps(doc).encode()
        answer = handle(service, method, path, body)
        if asyncio.iscoroutine(answer):
            answer = asyncio.run(answer)
        status, payload = answer[0], answer[1]
        return status, json.loads(payload) if payload else None

    try:
        status, out = call("POST", "/v1/recommenders/recs:recommend", {"user_id": 3, "k": 5})
        assert status == 200 and _items(out) == model.recommend(3, 5)
        rid = out["metadata"]["request_id"]
        status, scored = call(
            "POST", "/v1/recommenders/recs:outcome", {"request_id": rid, "items": _items(out)[:1]}
        )
        assert status == 200 and scored["ndcg@5"] == pytest.approx(1.0)
        status, logged = call(
            "POST",
            "/v1/recommenders/recs:update_user",
            {"user_id": 3, "interactions": [_items(out)[0]]},
        )
        assert status == 200 and logged["logged"] == 1
        status, out2 = call("POST", "/v1/recommenders/recs:recommend", {"user_id": 3, "k": 5})
        assert _items(out)[0] not in _items(out2)
        status, st = call("GET", "/v1/recommenders/recs")
        assert status == 200 and st["pending_interactions"] == 1 and st["live_ndcg"] == 1.0
        assert 0 < st["coverage"] <= 1 and 0 <= st["popularity_bias"] <= 1
        assert call("POST", "/v1/recommenders/nope:recommend", {"user_id": 3})[0] == 404
        assert call("POST", "/v1/recommenders/recs:recommend", {"k": 3})[0] == 400
        assert call("POST", "/v1/recommenders/recs:recommend", {"user_id": 3, "x": 1})[0] == 400
        assert call("POST", "/v1/recommenders/recs:recommend", {"user_id": 3, "k": -1})[0] == 400
        assert call("GET", "/v1/recommenders/recs:recommend")[0] == 405
        assert call("POST", "/v1/recommenders/recs:nothing", {})[0] == 404
        bad_id = call("POST", "/v1/recommenders/recs:outcome", {"request_id": "x", "items": []})
        assert bad_id[0] == 400
        text = render().decode()
        for name in (
            'ml_recommendation_requests_total{model="recs",outcome="ok"}',
            'ml_recommendation_live_ndcg{model="recs"}',
            'ml_recommendation_coverage{model="recs"}',
            'ml_recommendation_popularity_bias{model="recs"}',
            'ml_recommendation_duration_seconds_count{cache="miss",model="recs"}',
        ):
            assert name in text, name
        # a recommender is not a feature model: its predict route says where to go
        status, err = call("POST", "/v1/models/recs:predict", {"features": [[1.0]]})
        assert status in (400, 422) and "recommend" in err["detail"]
    finally:
        service.close_sync()


@pytest.mark.slow
def test_lastfm_served_answers_equal_offline(registry):
    """Real listening histories (a 400-user part of Last.fm): every served answer is the
    offline model's."""
    if not (LASTFM / "user_artists.dat").is_file():
        pytest.skip(f"the Last.fm data is not in {LASTFM}")
    import pandas as pd

    from ml_utilities.automl import AutoMLHelper
    from ml_utilities.serving import deploy_recommendation_system_sync

    data = pd.read_csv(LASTFM / "user_artists.dat", sep="\t")
    users = np.sort(data.userID.unique())[:400]
    data = data[data.userID.isin(users)]
    model = AutoMLHelper().train_recommendation_model_sync(
        interaction_data=data, task_config={"time_budget_seconds": 40}
    )
    out = deploy_recommendation_system_sync(model, name="lastfm", registry=registry)
    rs = out["service"]
    try:
        rs.serve("lastfm", wait_warm=True)
        for u in users:
            assert _items(rs.recommend_sync("lastfm", int(u), 10)) == model.recommend(int(u), 10), u
    finally:
        rs.close()


def test_a_recommender_ranked_by_automl_round_trips(registry):
    """ranker='automl': the AutoML ranker is stored as its own model folder inside the
    recommender's and encodes the ranker rows itself once loaded."""
    from ml_utilities.automl import AutoMLHelper
    from ml_utilities.recommend.store import to_handle

    data = _listening(seed=5, n_users=60, n_items=80, per_user=12)
    model = AutoMLHelper().train_recommendation_model_sync(
        interaction_data=data,
        task_config={
            "time_budget_seconds": 30,
            "n_candidates": 15,
            "ranker": "automl",
            "max_trials": 2,
            "cv_folds": 2,
        },
    )
    mv = registry.register(to_handle(model, "auto"))
    assert mv.architecture == "automl"
    loaded = registry.load("auto").adapter.model
    for u in sorted(set(data.userID)):
        assert loaded.recommend(u, 10) == model.recommend(u, 10), u
