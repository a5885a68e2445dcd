"""Recommender parts: EASE/DLAE, RP3beta and item-kNN against direct computations, candidates,
the LambdaMART ranker, and no leakage of held-out interactions into candidates or features."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import scipy.sparse as sp
from recommend_support import listening

from ml_utilities.automl import AutoMLHelper
from ml_utilities.exceptions import ParameterError
from ml_utilities.recommend import lambdamart
from ml_utilities.recommend import train as rec
from ml_utilities.recommend.generators import (
    USER_EASE_DROPOUT,
    USER_EASE_LAMBDA,
    Generators,
    Interactions,
    ease_weights,
    item_knn_scores,
    play_rank_weights,
    rp3beta_weights,
)
from ml_utilities.recommend.lambdamart import LambdaMARTRanker


def _binary(seed=0, n_users=30, n_items=12, density=0.35):
    rng = np.random.default_rng(seed)
    x = (rng.random((n_users, n_items)) < density).astype(np.float64)
    x[0, :] = 1.0  # every item has a listener
    return x


@pytest.mark.parametrize(("lam", "dropout"), [(5.0, 0.0), (2.0, 0.6)])
def test_ease_weights_equal_a_ridge_regression_of_each_item_on_the_others(lam, dropout):
    x = _binary()
    b = ease_weights(x, lam, dropout)
    g = x.T @ x
    penalty = lam + dropout / (1 - dropout) * np.diag(g)
    for j in range(x.shape[1]):
        o = [i for i in range(x.shape[1]) if i != j]
        direct = np.linalg.solve(g[np.ix_(o, o)] + np.diag(penalty[o]), x[:, o].T @ x[:, j])
        np.testing.assert_allclose(b[o, j], direct, rtol=1e-9, atol=1e-12)
        assert b[j, j] == 0.0
    np.testing.assert_array_equal(ease_weights(sp.csr_matrix(x), lam, dropout), b)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"lam": 0.0}, "lam=0.0"), ({"lam": True}, "lam=True"), ({"dropout": 1.0}, "dropout=1.0")],
)
def test_ease_weights_bad_values_are_named(kwargs, match):
    args = {"lam": 1.0, "dropout": 0.0} | kwargs
    with pytest.raises(ParameterError, match=match):
        ease_weights(_binary(), **args)
    with pytest.raises(ParameterError, match="shape"):
        ease_weights(np.ones(5), 1.0)


def test_rp3beta_weights_follow_the_random_walk_formula():
    x = _binary(1)
    alpha, beta = 0.8, 0.3
    w = rp3beta_weights(sp.csr_matrix(x), alpha, beta)
    listeners, items = x.sum(axis=0), x.sum(axis=1)
    direct = np.zeros_like(w, dtype=np.float64)
    for i in range(x.shape[1]):
        for j in range(x.shape[1]):
            if i != j:
                walk = (x[:, i] / listeners[i]) ** alpha * (x[:, j] / items) ** alpha
                direct[i, j] = walk.sum() / listeners[j] ** beta
    np.testing.assert_allclose(w, direct, rtol=1e-5)
    cols = np.array([1, 4, 7])
    sub = rp3beta_weights(sp.csr_matrix(x), alpha, beta, cols=cols)
    assert sub.shape == (3, 3)


def test_item_knn_scores_are_sums_of_cosine_similarities():
    x = _binary(2)
    s = item_knn_scores(sp.csr_matrix(x))
    norm = np.sqrt(x.sum(axis=0))
    cos = (x.T @ x) / np.outer(norm, norm)
    np.testing.assert_allclose(s, x @ cos, rtol=1e-5)
    cols = np.array([0, 5])
    np.testing.assert_allclose(item_knn_scores(sp.csr_matrix(x), cols), (x @ cos)[:, cols], 1e-5)


def _interactions(seed=0, n_users=40, n_items=60):
    rng = np.random.default_rng(seed)
    u, i = np.nonzero(rng.random((n_users, n_items)) < 0.2)
    return Interactions(u, i, rng.integers(1, 100, len(u)).astype(float), n_users, n_items)


def test_candidates_are_unseen_scored_items_and_features_align():
    inter = _interactions()
    gens = Generators(inter)
    users = np.arange(inter.n_users)
    cands = gens.candidates(users, 15)
    seen = inter.matrix().tolil().rows
    for u, c in zip(users, cands, strict=True):
        assert 0 < len(c) <= 15
        assert np.all(np.diff(c) > 0)  # sorted, no duplicates
        assert not set(c.tolist()) & set(seen[u])
        assert np.all(gens.col_of[c] >= 0)
    cols = gens.features(users, cands)
    n = sum(len(c) for c in cands)
    assert all(len(v) == n for v in cols.values())
    j = 7
    start = sum(len(c) for c in cands[:j])
    item = cands[j][0]
    own = gens.ease[j, gens.col_of[cands[j]]]
    assert cols["ease_z"][start] == pytest.approx((own[0] - own.mean()) / own.std(), rel=1e-5)
    assert cols["ease_rank"][start] == np.sum(own > own[0])
    # the gaps: against the user's 11th and 101st best scores over every scored item (seen
    # ones included), in the user's deviations; against the item's 21st best over all users
    row = np.sort(gens.ease[j])[::-1]
    for k in (10, 100):
        want = (own[0] - row[min(k, len(row) - 1)]) / gens.ease[j].std()
        assert cols[f"ease_gap{k}"][start] == pytest.approx(want, rel=1e-4, abs=1e-5)
    column = gens.ease[:, gens.col_of[item]]
    want = (own[0] - np.sort(column)[::-1][min(20, len(column) - 1)]) / column.std()
    assert cols["ease_item_gap"][start] == pytest.approx(want, rel=1e-4, abs=1e-5)
    assert not any(name.endswith("_rel") for name in cols)
    assert not any(name.endswith("_score") for name in cols)  # raw scores drift with history
    assert cols["item_listeners"][start] == np.sum(inter.items == item)
    # an item with a single listener is not scored, so it is never a candidate
    lone = Interactions(
        np.r_[inter.users, 0],
        np.r_[inter.items, inter.n_items],
        np.r_[inter.weights, 1.0],
        inter.n_users,
        inter.n_items + 1,
    )
    g2 = Generators(lone)
    assert g2.col_of[inter.n_items] == -1
    assert all(inter.n_items not in c for c in g2.candidates(users, 15))
    with pytest.raises(ParameterError, match="candidates"):
        g2.features(users[1:2], [np.array([inter.n_items])])


def test_generators_use_only_the_history_they_are_given():
    """Scores, candidates and features of a history do not move when interactions outside
    it (held-out items) change: the generators see nothing but their argument."""
    inter = _interactions(3)
    held = rec.holdout_split(inter, 0.2, 0)
    history = inter.subset(~held)
    a = Generators(history)
    other = Interactions(
        np.r_[history.users, inter.users[held]],
        np.r_[history.items, (inter.items[held] + 1) % inter.n_items],
        np.r_[history.weights, inter.weights[held]],
        inter.n_users,
        inter.n_items,
    )
    b = Generators(history)
    users = np.arange(inter.n_users)
    for name in a.scores:
        np.testing.assert_array_equal(a.scores[name], b.scores[name])
    assert [c.tolist() for c in a.candidates(users, 10)] == [
        c.tolist() for c in b.candidates(users, 10)
    ]
    # and a history that does contain the held-out pairs scores differently
    assert not np.array_equal(Generators(other).scores["itemknn"], a.scores["itemknn"])


def test_play_rank_weights_follow_each_users_play_counts_with_ties_sharing():
    # user 0: plays 50, 10, 10, 3 -> 1, 3/4, 3/4, 1/4; user 1: one item -> 1; user 2 none
    inter = Interactions(
        np.array([0, 0, 0, 0, 1]),
        np.array([4, 1, 2, 0, 3]),
        np.array([10.0, 50.0, 10.0, 3.0, 7.0]),
        3,
        5,
    )
    w = play_rank_weights(inter).toarray()
    np.testing.assert_allclose(w[0], [0.25, 1.0, 0.75, 0.0, 0.75])
    np.testing.assert_allclose(w[1], [0.0, 0.0, 0.0, 1.0, 0.0])
    assert not w[2].any()
    # without play counts (all equal) the weights are the binary matrix
    flat = _interactions(5)
    flat.weights = np.ones_like(flat.weights)
    np.testing.assert_array_equal(play_rank_weights(flat).toarray(), flat.matrix().toarray())


def test_weighted_and_user_side_generators_match_direct_computations():
    inter = _interactions(6)
    gens = Generators(inter)
    r = inter.matrix().toarray().astype(np.float64)
    w = play_rank_weights(inter).toarray().astype(np.float64)
    cols = gens.cols
    # user-side EASE: each user's row regressed on the other users' rows
    bu = ease_weights(r.T, USER_EASE_LAMBDA, USER_EASE_DROPOUT)
    np.testing.assert_allclose(gens.scores["user_ease"], (bu.T @ r)[:, cols], rtol=1e-4, atol=1e-5)
    # EASE and the second RP3beta take the play-rank weights as the user's profile
    assert len(cols) <= 2500  # every scored item is in EASE here
    b = ease_weights(w[:, cols], 50.0, 0.6)
    np.testing.assert_allclose(gens.scores["ease"], w[:, cols] @ b, rtol=1e-4, atol=1e-5)
    wr = rp3beta_weights(sp.csr_matrix(r[:, cols]))
    np.testing.assert_allclose(gens.scores["rp3_plays"], w[:, cols] @ wr, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(gens.scores["rp3"], r[:, cols] @ wr, rtol=1e-4, atol=1e-6)
    assert {"svd", "svd_plays"} <= set(gens.scores)
    assert not np.allclose(gens.scores["svd"], gens.scores["svd_plays"])
    # the agreement features summarise the per-generator ranks and z-scores
    users = np.arange(inter.n_users)
    f = gens.features(users, gens.candidates(users, 12))
    ranks = np.stack([f[f"{n}_rank"] for n in gens.scores], axis=1)
    zs = np.stack([f[f"{n}_z"] for n in gens.scores], axis=1)
    np.testing.assert_allclose(f["mean_rank"], ranks.mean(axis=1), rtol=1e-6)
    np.testing.assert_array_equal(f["min_rank"], ranks.min(axis=1))
    np.testing.assert_allclose(f["max_z"], zs.max(axis=1), rtol=1e-6)


def test_train_recommender_never_builds_generators_from_held_out_pairs(monkeypatch):
    data = listening(seed=4, n_users=50, n_items=70, per_user=12)
    seen_histories: list[set[tuple[int, int]]] = []
    real = rec.Generators

    class Recording(real):
        def __init__(self, inter, graph=None, **kw):
            seen_histories.append(set(zip(inter.users.tolist(), inter.items.tolist(), strict=True)))
            super().__init__(inter, graph=graph, **kw)

    monkeypatch.setattr(rec, "Generators", Recording)
    model = AutoMLHelper().train_recommendation_model_sync(
        interaction_data=data, task_config={"time_budget_seconds": 20, "n_candidates": 15}
    )
    _, u = np.unique(data.userID, return_inverse=True)
    _, i = np.unique(data.artistID, return_inverse=True)
    inter = Interactions(u, i, data.weight.to_numpy(float), u.max() + 1, i.max() + 1)
    test = rec.holdout_split(inter, 0.2, 0)
    held = set(zip(u[test].tolist(), i[test].tolist(), strict=True))
    assert len(seen_histories) == rec.RANKER_SPLITS + 1  # ranker rows, then evaluation
    for history in seen_histories:
        assert not history & held
    # the ranker's histories also lack their own targets: each is smaller than train
    train = set(zip(u[~test].tolist(), i[~test].tolist(), strict=True))
    assert seen_histories[-1] == train
    assert all(h < train for h in seen_histories[:-1])
    assert model.report["ranker"]["rounds"] >= 1


def test_generators_run_with_one_blas_thread_in_every_loaded_blas(monkeypatch):
    """The generators' inverses run with one BLAS thread (a 2-thread OpenBLAS was 4x slower on
    the loaded 2-core machine), SciPy's own OpenBLAS included: threadpoolctl limits only the
    libraries loaded when the limit starts."""
    import pandas as pd
    from threadpoolctl import threadpool_info

    threads: list[list[int]] = []
    real = rec.Generators

    class Recording(real):
        def __init__(self, inter, graph=None, **kw):
            super().__init__(inter, graph=graph, **kw)
            threads.append([i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"])

    monkeypatch.setattr(rec, "Generators", Recording)
    rng = np.random.default_rng(5)
    rows = [(u, int(i), 1) for u in range(30) for i in rng.choice(40, 10, replace=False)]
    data = pd.DataFrame(rows, columns=["userID", "artistID", "weight"])
    AutoMLHelper().train_recommendation_model_sync(
        interaction_data=data, task_config={"time_budget_seconds": 20, "n_candidates": 10}
    )
    assert threads and all(t and set(t) == {1} for t in threads), threads


def _ranking_rows(seed: int = 0, noise_columns: int = 1):
    """Ranking rows of 120 users x 20 items: a ``signal`` column that decides the labels, and
    ``noise_columns`` columns of noise (``noise``, ``noise2``, ...)."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    n_users, per = 120, 20
    signal = rng.normal(size=n_users * per)
    columns = {"user_id": np.repeat(np.arange(n_users), per), "signal": signal}
    for j in range(noise_columns):
        columns["noise" if j == 0 else f"noise{j + 1}"] = rng.normal(size=n_users * per)
    frame = pd.DataFrame(columns)
    labels = (signal + 0.3 * rng.normal(size=len(signal)) > 1.0).astype(float)
    return frame, labels, signal


def _train_on_a_clock(monkeypatch, ranker, *, left_after_fit=None, passed_at_call=None):
    """Patch ``lightgbm.train`` to record each call's ``num_boost_round`` (the list returned)
    and move ``ranker``'s deadline: to ``left_after_fit`` seconds from now after every fit
    returns, or into the past just before call number ``passed_at_call`` (1-based) trains."""
    import lightgbm

    real_train = lightgbm.train
    calls = []

    def train(*args, **kwargs):
        calls.append(kwargs["num_boost_round"])
        if passed_at_call is not None and len(calls) == passed_at_call:
            ranker.deadline = time.monotonic() - 1
        booster = real_train(*args, **kwargs)
        if left_after_fit is not None:
            ranker.deadline = time.monotonic() + left_after_fit
        return booster

    monkeypatch.setattr(lightgbm, "train", train)
    return calls


def test_lambdamart_ranker_learns_an_ordering_and_checks_its_input():
    frame, labels, signal = _ranking_rows()
    frame["genre"] = np.random.default_rng(1).choice(["rock", "jazz"], len(frame))
    ranker = LambdaMARTRanker(seed=0).fit(frame, labels)
    scores = ranker.predict(frame)
    assert np.corrcoef(scores, signal)[0, 1] > 0.8
    assert ranker.feature_importance_["signal"] > ranker.feature_importance_["noise"]
    assert ranker.report["rounds"] >= 1
    with pytest.raises(ParameterError, match="sorted"):
        LambdaMARTRanker().fit(frame.iloc[::-1], labels[::-1])
    with pytest.raises(ParameterError, match="labels"):
        LambdaMARTRanker().fit(frame, -labels - 1)
    with pytest.raises(ParameterError, match="'signal'"):
        ranker.predict(frame.drop(columns=["signal"]))
    with pytest.raises(ParameterError, match="not fitted"):
        LambdaMARTRanker().predict(frame)


def test_lambdamart_refits_on_every_user_when_time_allows():
    frame, labels, _ = _ranking_rows()
    ranker = LambdaMARTRanker(seed=0, deadline=time.monotonic() + 600).fit(frame, labels)
    assert ranker.report["final_model"] == "refit"
    assert ranker.booster_.current_iteration() == ranker.n_rounds_ >= 40


def test_lambdamart_keeps_the_validated_model_when_the_refit_cannot_finish(monkeypatch):
    """When the first fit leaves less time than a refit on every user takes, a refit cut short
    would be a worse model than the early-stopping one: that one is kept, cut at its best
    round, and no refit starts."""
    frame, labels, signal = _ranking_rows()
    ranker = LambdaMARTRanker(seed=0, deadline=time.monotonic() + 600)
    # what the first fit leaves
    calls = _train_on_a_clock(monkeypatch, ranker, left_after_fit=1e-3)
    ranker.fit(frame, labels)
    assert len(calls) == 1
    assert ranker.report["final_model"] == "validated"
    assert ranker.booster_.current_iteration() == ranker.n_rounds_ >= 1
    assert np.corrcoef(ranker.predict(frame), signal)[0, 1] > 0.8


def test_lambdamart_keeps_the_validated_model_when_the_refit_is_stopped(monkeypatch):
    """The refit estimated to fit but stopped by the deadline all the same (here: the clock
    jumps past it once the first fit is done): the validated model is kept, not the cut refit."""
    frame, labels, _ = _ranking_rows()
    ranker = LambdaMARTRanker(seed=0, deadline=time.monotonic() + 600)
    # the refit: its deadline has passed
    calls = _train_on_a_clock(monkeypatch, ranker, passed_at_call=2)
    ranker.fit(frame, labels)
    assert len(calls) == 2
    assert ranker.report["final_model"] == "validated"
    assert ranker.booster_.current_iteration() == ranker.n_rounds_ >= 1


def test_ranker_option_is_checked_by_name():
    import pandas as pd

    data = pd.DataFrame({"userID": [0, 0, 1, 1], "artistID": [0, 1, 0, 2]})
    with pytest.raises(ParameterError, match="ranker='catboost'"):
        AutoMLHelper().train_recommendation_model_sync(
            interaction_data=data, task_config={"ranker": "catboost"}
        )
    with pytest.raises(ParameterError, match="register=True needs ranker='automl'"):
        AutoMLHelper().train_recommendation_model_sync(
            interaction_data=data, task_config={"register": True}
        )


# ----- the bagged ranker: fixed rounds, several seeded models averaged, as many as the deadline
# allows, and the recommender training such a bag


def test_bag_of_fixed_round_models_averages_differently_seeded_models():
    frame, labels, signal = _ranking_rows(noise_columns=2)
    ranker = LambdaMARTRanker(seed=3, n_models=3, rounds=15).fit(frame, labels)
    assert ranker.report["final_model"] == "fixed"
    assert ranker.report["models"] == len(ranker.boosters_) == 3
    assert ranker.report["rounds"] == 15
    assert all(b.current_iteration() == 15 for b in ranker.boosters_)
    assert ranker.booster_ is ranker.boosters_[0]
    x = ranker._matrix(frame)
    members = [b.predict(x) for b in ranker.boosters_]
    # each model its own seed (row and feature subsamples), so the members differ
    assert not np.allclose(members[0], members[1])
    assert not np.allclose(members[1], members[2])
    np.testing.assert_allclose(ranker.predict(frame), np.mean(members, axis=0), rtol=1e-12)
    assert np.corrcoef(ranker.predict(frame), signal)[0, 1] > 0.8
    assert sum(ranker.feature_importance_.values()) == pytest.approx(1.0)
    assert ranker.feature_importance_["signal"] > ranker.feature_importance_["noise"]
    # seeded: the same bag again
    again = LambdaMARTRanker(seed=3, n_models=3, rounds=15).fit(frame, labels)
    np.testing.assert_array_equal(again.predict(frame), ranker.predict(frame))
    # a one-model "bag" is its first member
    single = LambdaMARTRanker(seed=3, n_models=1, rounds=15).fit(frame, labels)
    np.testing.assert_array_equal(single.predict(frame), members[0])
    # the members share one binned Dataset: each is the model LightGBM trains on its own
    import lightgbm as lgb

    sizes = np.bincount(frame["user_id"].to_numpy())
    for b, member in enumerate(members):
        params = dict(lambdamart.PARAMS, seed=3 + b, num_threads=1, eval_at=[10])
        alone = lgb.train(params, lgb.Dataset(x, labels, group=sizes), num_boost_round=15)
        np.testing.assert_allclose(alone.predict(x), member, rtol=1e-12, atol=1e-12)


def test_bag_follows_early_stopping_rounds_by_default():
    frame, labels, _ = _ranking_rows(noise_columns=2)
    ranker = LambdaMARTRanker(seed=0, n_models=2, deadline=time.monotonic() + 600)
    ranker.fit(frame, labels)
    assert ranker.report["final_model"] == "refit"
    assert ranker.report["models"] == 2
    assert all(b.current_iteration() == ranker.n_rounds_ for b in ranker.boosters_)


def test_bag_adds_no_model_that_cannot_end_before_the_deadline(monkeypatch):
    """After the first model, the clock says the next one would end past the deadline: the
    bag stops there and the ranker is the first model alone."""
    frame, labels, signal = _ranking_rows(noise_columns=2)
    ranker = LambdaMARTRanker(seed=0, n_models=4, rounds=30, deadline=time.monotonic() + 600)
    # less than a model takes
    calls = _train_on_a_clock(monkeypatch, ranker, left_after_fit=1e-4)
    ranker.fit(frame, labels)
    assert calls == [30]
    assert ranker.report["models"] == 1
    assert ranker.report["final_model"] == "fixed"
    assert np.corrcoef(ranker.predict(frame), signal)[0, 1] > 0.8


def test_bag_drops_a_model_the_deadline_stops(monkeypatch):
    """The second model was expected to fit but the clock jumps past the deadline while it
    trains: it is cut short, so it is dropped and no further model starts."""
    frame, labels, _ = _ranking_rows(noise_columns=2)
    ranker = LambdaMARTRanker(seed=0, n_models=4, rounds=10, deadline=time.monotonic() + 600)
    calls = _train_on_a_clock(monkeypatch, ranker, passed_at_call=2)
    ranker.fit(frame, labels)
    assert len(calls) == 2
    assert ranker.report["models"] == 1
    assert ranker.boosters_ == [ranker.booster_]
    assert ranker.booster_.current_iteration() == 10


def test_first_fixed_round_model_cut_by_the_deadline_is_kept_alone(monkeypatch):
    frame, labels, _ = _ranking_rows(noise_columns=2)
    ranker = LambdaMARTRanker(seed=0, n_models=3, rounds=50, deadline=time.monotonic() - 1)
    ranker.fit(frame, labels)
    assert ranker.report["final_model"] == "cut short"
    assert ranker.report["models"] == 1
    assert ranker.report["rounds"] == ranker.booster_.current_iteration() < 50


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_models": 0}, "n_models=0"),
        ({"n_models": True}, "n_models=True"),
        ({"rounds": 0}, "rounds=0"),
        ({"rounds": 2.5}, "rounds=2.5"),
    ],
)
def test_bag_options_are_checked_by_name(kwargs, match):
    frame, labels, _ = _ranking_rows(noise_columns=2)
    with pytest.raises(ParameterError, match=match):
        LambdaMARTRanker(**kwargs).fit(frame, labels)


def test_recommender_trains_the_bagged_ranker():
    data = listening(seed=7, n_users=60, n_items=80, per_user=12)
    model = AutoMLHelper().train_recommendation_model_sync(
        interaction_data=data, task_config={"time_budget_seconds": 60, "n_candidates": 15}
    )
    report = model.report["ranker"]
    assert report["final_model"] == "fixed"
    assert report["rounds"] == rec.RANKER_ROUNDS
    assert report["models"] == rec.RANKER_MODELS
    # fixed rounds have no validation users: no validation score, and no NaN in the report
    assert report["valid_ndcg"] is None
    json.dumps(model.report, allow_nan=False)
    assert isinstance(model.ranker, LambdaMARTRanker)
    assert len(model.ranker.boosters_) == rec.RANKER_MODELS
    assert model.report["training_time_s"] <= 60 * 1.05
    assert len(model.recommend(int(data.userID.iloc[0]), k=5)) == 5
