"""The recommender keeps its budget: optional generators dropped when their share is spent,
a ranker split dropped when it would not fit, and an early answer rather than an error."""

from __future__ import annotations

import time

import numpy as np
import pytest
from recommend_support import listening

from ml_utilities.automl import AutoMLHelper
from ml_utilities.recommend import train as rec
from ml_utilities.recommend.generators import CORE, OPTIONAL, Generators, Interactions


def _inter(seed=0, n_users=80, n_items=120, per_user=15):
    data = listening(seed, n_users, n_items, per_user)
    _, u = np.unique(data.userID, return_inverse=True)
    _, i = np.unique(data.artistID, return_inverse=True)
    return Interactions(u, i, data.weight.to_numpy(float), u.max() + 1, i.max() + 1)


def test_optional_generators_stop_at_the_deadline_and_only_repeats_a_set():
    inter = _inter()
    full = Generators(inter)
    assert full.names == OPTIONAL
    light = Generators(inter, deadline=time.monotonic() - 1.0)
    assert light.names == ()
    assert set(light.scores) == {c for c in CORE if c in full.scores}
    for name in light.scores:  # the core is the same whatever else is computed
        assert np.array_equal(light.scores[name], full.scores[name])
    again = Generators(inter, only=("rp3", "ials"), deadline=time.monotonic() - 1.0)
    assert again.names == ("ials", "rp3")  # only= wins over the deadline, in OPTIONAL's order
    assert {"rp3", "rp3_plays", "ials"} <= set(again.scores)
    assert "ials_bin" not in again.scores and "user_ease" not in again.scores
    users = np.arange(10)
    cands = light.candidates(users, 20)
    cols = light.features(users, cands)
    assert "ials_rank" not in cols and "ease_rank" in cols and "mean_z" in cols


def test_a_split_that_would_not_fit_is_dropped(monkeypatch):
    monkeypatch.setattr(rec, "SET_GROWTH", 1e9)  # any later set "would not fit"
    model = AutoMLHelper().train_recommendation_model_sync(
        interaction_data=listening(1, 60, 80, 12),
        task_config={"time_budget_seconds": 30, "n_candidates": 15},
    )
    assert model.report["ranker_splits"] == 1
    assert model.report["evaluation"]["model"]["ndcg@10"] >= 0


def test_a_budget_spent_on_preparation_gives_an_early_answer():
    data = listening(2, 120, 150, 15)
    budget = 0.05  # less than one generator set: the ranker gets no time at all
    t = time.monotonic()
    model = AutoMLHelper().train_recommendation_model_sync(
        interaction_data=data, task_config={"time_budget_seconds": budget, "n_candidates": 20}
    )
    r = model.report
    assert r["ranker"]["early_answer"] is True and model.ranker is None
    assert r["generators"]["optional"] == []  # the first set's share was spent on the core
    assert r["ranker_splits"] == 1
    ev = r["evaluation"]
    assert ev["model"]["ndcg@10"] > 0
    # it still recommends unseen items, with the same generators as in training
    user = data.userID.iloc[0]
    recs = model.recommend(user, k=5)
    assert len(recs) == 5 and not set(recs) & set(data.artistID[data.userID == user])
    assert model.generators.names == ()
    assert time.monotonic() - t < 30


@pytest.mark.parametrize("names", [(), ("ials", "social")])
def test_serving_generators_follow_the_trained_set(names):
    from ml_utilities.recommend.model import RecommendationModel

    inter = _inter(3)
    m = RecommendationModel(
        None,
        inter,
        np.arange(80),
        np.arange(120),
        {"music": None, "user": None},
        20,
        {},
        None,
        names,
    )
    assert m.generators.names == tuple(n for n in OPTIONAL if n in names)
