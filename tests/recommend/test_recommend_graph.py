"""The recommender's user graph (``task_config['user_graph']``): the friends generators against
direct computations, no held-out interaction of anyone (friends included) in any feature, the
graph's validation, and the graph at serving time."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from recommend_support import listening

from ml_utilities.automl import AutoMLHelper
from ml_utilities.exceptions import ParameterError
from ml_utilities.recommend import train as rec
from ml_utilities.recommend.generators import Generators, Interactions, play_rank_weights


def _inter(seed=0, n_users=12, n_items=15, per_user=6):
    rng = np.random.default_rng(seed)
    u, i, w = [], [], []
    for uu in range(n_users):
        items = rng.choice(n_items, per_user, replace=False)
        u += [uu] * per_user
        i += items.tolist()
        w += rng.integers(1, 50, per_user).tolist()
    return Interactions(np.array(u), np.array(i), np.array(w, float), n_users, n_items)


def test_friends_generators_and_features_match_a_direct_computation():
    inter = _inter()
    src = np.array([0, 0, 0, 1, 2, 5, 5, 3])
    dst = np.array([1, 2, 3, 0, 0, 6, 5, 3])  # (5, 5) and (3, 3): self-loops, ignored
    gens = Generators(inter, graph=(src, dst))
    r = inter.matrix().toarray()
    r[r > 0] = 1.0
    pw = play_rank_weights(inter).toarray()
    cols = gens.cols
    friends = {
        u: sorted({int(d) for s, d in zip(src, dst, strict=True) if s == u and d != u})
        for u in range(inter.n_users)
    }
    norm = np.sqrt(r.sum(axis=1))
    for u, fs in friends.items():
        mean = pw[fs].mean(axis=0) if fs else np.zeros(inter.n_items)
        np.testing.assert_allclose(gens.scores["friends"][u], mean[cols], rtol=1e-6, atol=1e-7)
        cos = [r[u] @ r[f] / (norm[u] * norm[f]) for f in fs]
        direct = sum((c * r[f] for c, f in zip(cos, fs, strict=True)), np.zeros(inter.n_items))
        np.testing.assert_allclose(
            gens.scores["friends_cos"][u], direct[cols], rtol=1e-5, atol=1e-6
        )
        have = r[fs].sum(axis=0) if fs else np.zeros(inter.n_items)
        np.testing.assert_array_equal(gens.friend_count[u], have[cols])
    a = np.zeros((inter.n_users, inter.n_users))
    for uu, fs in friends.items():
        a[uu, fs] = 1.0
    paths = a @ a
    np.fill_diagonal(paths, 0.0)
    w2 = np.log1p(paths)
    w2 = w2 / np.maximum(w2.sum(axis=1, keepdims=True), 1e-9)
    np.testing.assert_allclose(gens.scores["friends2"], (w2 @ pw)[:, cols], rtol=1e-5, atol=1e-6)
    assert gens.scores["friends2"][1].any()  # user 1 reaches 2 and 3 through user 0
    users = np.array([0, 5, 7])
    cands = gens.candidates(users, 8)
    f = gens.features(users, cands)
    for uu, it, h, share, nf in zip(
        f["user_index"],
        f["item_index"],
        f["friends_have"],
        f["friends_share"],
        f["user_friends"],
        strict=True,
    ):
        fs = friends[int(uu)]
        assert h == r[fs, it].sum() if fs else h == 0
        assert share == pytest.approx(h / max(len(fs), 1))
        assert nf == len(fs)
    base = r[:, f["item_index"]].sum(axis=0) / inter.n_users
    np.testing.assert_allclose(f["friends_lift"], f["friends_share"] / base, rtol=1e-5)
    assert "friends_rank" in f and "friends_cos_z" in f
    # without a graph nothing social is computed
    plain = Generators(inter)
    assert "friends" not in plain.scores and "friends_have" not in plain.features(users, cands)


def _listening():
    return listening(seed=3, n_users=40, n_items=60, per_user=10)


def _graph(n_users=40, seed=1):
    rng = np.random.default_rng(seed)
    edges = {(int(a), int(b)) for a, b in rng.integers(0, n_users, (160, 2)) if a != b}
    edges |= {(b, a) for a, b in edges}
    return pd.DataFrame(sorted(edges), columns=["userID", "friendID"])


def _recorded_features(monkeypatch, data, graph):
    """Every feature table the generators make while training (ranker rows and evaluation)."""
    seen: list[dict[str, np.ndarray]] = []
    real = rec.Generators

    class Recording(real):
        def features(self, users, cands):
            out = super().features(users, cands)
            seen.append(out)
            return out

    monkeypatch.setattr(rec, "Generators", Recording)
    model = AutoMLHelper().train_recommendation_model_sync(
        interaction_data=data,
        task_config={"time_budget_seconds": 20, "n_candidates": 15, "user_graph": graph},
    )
    monkeypatch.setattr(rec, "Generators", real)
    return seen, model


def test_held_out_interactions_of_friends_never_reach_the_features(monkeypatch):
    """Two data sets that differ only in the held-out artists of some users (their friends'
    items): every feature made during training must be the same. A version that took the
    friends' profiles from all interactions would see the difference."""
    a = _listening()
    graph = _graph()
    _, u = np.unique(a.userID, return_inverse=True)
    _, i = np.unique(a.artistID, return_inverse=True)
    inter = Interactions(u, i, a.weight.to_numpy(float), u.max() + 1, i.max() + 1)
    held = rec.holdout_split(inter, 0.2, 0)
    b = a.copy()
    # the held-out artists of users 0-19 become artists nobody else has (new ids sort last,
    # every old artist keeps its index: the other users still have each of them)
    change = held & (a.userID.to_numpy() < 20)
    b.loc[change, "artistID"] = 1000 + np.arange(int(change.sum()))
    assert set(a.artistID[~change]) == set(a.artistID)
    fa, _ = _recorded_features(monkeypatch, a, graph)
    fb, model = _recorded_features(monkeypatch, b, graph)
    assert len(fa) == len(fb) == rec.RANKER_SPLITS + 1
    for x, y in zip(fa, fb, strict=True):
        assert x.keys() == y.keys() and "friends_have" in x
        for key in x:
            np.testing.assert_array_equal(x[key], y[key], err_msg=key)
    # the check is sensitive: with every interaction (the leak) the friends' counts differ
    edges = (graph.userID.to_numpy(), graph.friendID.to_numpy())  # ids 0-39 are the indices
    _, ib = np.unique(b.artistID, return_inverse=True)
    leak_a = Generators(inter, graph=edges)
    leak_b = Generators(
        Interactions(u, ib, inter.weights, inter.n_users, ib.max() + 1), graph=edges
    )
    na = leak_a.friend_count.shape[1]
    assert not np.array_equal(
        leak_a.friend_count[:, : min(na, leak_b.friend_count.shape[1])],
        leak_b.friend_count[:, : min(na, leak_b.friend_count.shape[1])],
    )
    assert model.report["user_graph"]["edges_used"] == len(graph)


@pytest.mark.parametrize(
    ("graph", "match"),
    [
        (pd.DataFrame({"userID": [0], "friendID": [1], "x": [2]}), "3 columns"),
        (pd.DataFrame({"userID": [0], "buddy": [1]}), r"unknown: \['buddy'\]"),
        (np.zeros((4, 3), dtype=int), r"shape \(4, 3\)"),
        (np.zeros(4, dtype=int), r"shape \(4,\)"),
        ("friends.dat", "is a str"),
        (pd.DataFrame({"userID": [0, None], "friendID": [1, 2]}), "missing id"),
    ],
)
def test_bad_user_graphs_are_named(graph, match):
    with pytest.raises(ParameterError, match=match) as err:
        AutoMLHelper().train_recommendation_model_sync(
            interaction_data=_listening(),
            task_config={"time_budget_seconds": 20, "user_graph": graph},
        )
    assert isinstance(err.value, ValueError)


def test_graph_is_kept_for_serving_and_unknown_users_are_counted():
    data = _listening()
    graph = _graph()
    extra = pd.DataFrame({"userID": [0, 777, 3], "friendID": [555, 1, 3]})  # unknown; self-loop
    headerless = pd.concat([graph, extra], ignore_index=True)
    headerless.columns = [0, 1]  # as read_csv(header=None) gives
    model = AutoMLHelper().train_recommendation_model_sync(
        interaction_data=data,
        task_config={"time_budget_seconds": 20, "n_candidates": 15, "user_graph": headerless},
    )
    rep = model.report["user_graph"]
    assert rep["edges"] == len(graph) + 3 and rep["edges_unknown_users"] == 2
    assert rep["edges_used"] == len(graph)
    # serving: the generators come from every interaction and the same graph
    gens = model.generators
    assert gens.friends is not None and gens.friends.nnz == len(graph)
    r = np.zeros((40, len(model.item_ids)))
    r[
        np.searchsorted(model.user_ids, data.userID), np.searchsorted(model.item_ids, data.artistID)
    ] = 1.0
    a = np.zeros((40, 40))
    a[graph.userID, graph.friendID] = 1.0
    np.testing.assert_array_equal(gens.friend_count, (a @ r)[:, gens.cols])
    recs = model.recommend(0, k=5)
    assert len(recs) == 5 and not set(recs) & set(data.artistID[data.userID == 0])
    # the serving features carry the friends' columns the ranker was trained on
    users = np.array([0])
    feats = gens.features(users, gens.candidates(users, 15))
    assert {"friends_have", "friends_share", "friends_rank"} <= set(feats)
