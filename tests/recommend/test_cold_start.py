"""Audio content in the recommender: the content generator against a direct computation, items
without interactions (new releases) recommended by audio similarity, the cold-start protocol
on synthetic clustered features (and on GTZAN's real features where ``shared/data`` has them),
the warm pipeline unchanged without ``music_features``, and bad tables named."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from recommend_support import listening

from ml_utilities.automl import AutoMLHelper
from ml_utilities.exceptions import ParameterError
from ml_utilities.recommend import content
from ml_utilities.recommend.generators import (
    Generators,
    Interactions,
    content_sources,
    play_rank_weights,
)
from ml_utilities.recommend.model import RecommendationModel

GTZAN = (
    Path(__file__).resolve().parents[2].parent
    / "shared"
    / "data"
    / "gtzan-features-5genre"
    / "features_3_sec.csv"
)


def _clusters(seed: int, n_items: int = 240, n_groups: int = 6, dim: int = 12):
    """Items in ``n_groups`` clusters of 12-d features (centres 2 standard deviations apart)."""
    rng = np.random.default_rng(seed)
    group = rng.integers(0, n_groups, n_items)
    x = 2.0 * rng.normal(size=(n_groups, dim))[group] + rng.normal(size=(n_items, dim))
    return group, pd.DataFrame(x, columns=[f"f{j}" for j in range(dim)])


def _inter(data: pd.DataFrame, n_items: int) -> Interactions:
    _, u = np.unique(data.userID, return_inverse=True)
    return Interactions(
        u, data.artistID.to_numpy(), data.weight.to_numpy(float), u.max() + 1, n_items
    )


def _train(music, data, **cfg):
    config = {"time_budget_seconds": 20, "n_candidates": 20, "seed": 0} | cfg
    return AutoMLHelper().train_recommendation_model_sync(
        music_features=music, interaction_data=data, task_config=config
    )


def test_content_scores_are_the_cosine_to_the_play_rank_weighted_profile():
    group, feats = _clusters(0, n_items=40)
    feats.iloc[3, 2] = np.nan  # filled with the column's median
    feats["flat"] = 1.0  # constant: dropped
    data = content.taste_listening(group, 12, 0, items_per_user=(3, 8))
    inter = _inter(data, 40)
    items, z = content.item_vectors(feats, np.arange(40))
    assert items.tolist() == list(range(40)) and z.shape == (40, 12)
    raw = feats.drop(columns="flat").to_numpy()
    med = np.nanmedian(raw, axis=0)
    q75, q25 = np.nanpercentile(raw, [75, 25], axis=0)
    want = np.clip((np.where(np.isnan(raw), med, raw) - med) / ((q75 - q25) / 1.349), -5, 5)
    np.testing.assert_allclose(z, want, rtol=1e-5, atol=1e-5)
    gens = Generators(inter, music=feats, item_ids=np.arange(40))
    w = play_rank_weights(inter).toarray()
    for u in range(inter.n_users):
        profile = w[u] @ want / w[u].sum()
        cos = want @ profile / np.linalg.norm(want, axis=1) / np.linalg.norm(profile)
        np.testing.assert_allclose(gens.scores["content"][u], cos, rtol=1e-4, atol=1e-5)


def test_items_without_interactions_are_candidates_with_content_features_only():
    group, feats = _clusters(1, n_items=120)
    data = content.taste_listening(group, 60, 1, items_per_user=(6, 15))
    new = np.setdiff1d(np.arange(120), data.artistID)
    assert len(new) > 0
    inter = _inter(data, 120)
    gens = Generators(inter, music=feats, item_ids=np.arange(120))
    assert gens.wide and set(new) <= set(gens.cols.tolist())
    assert set(gens.candidate_sources(20)) >= {"content", "content_new"}
    users = np.arange(inter.n_users)
    cands = gens.candidates(users, 20)
    assert any(set(c.tolist()) & set(new.tolist()) for c in cands)
    assert 20 <= max(len(c) for c in cands) <= 20 + sum(content_sources(20).values())
    cols = gens.features(users, cands)
    cold = np.isin(cols["item_index"], new)
    assert np.all(cols["item_cold"][cold] == 1) and np.all(cols["item_listeners"][cold] == 0)
    assert np.all(np.isnan(cols["ease_z"][cold])) and np.all(np.isnan(cols["svd_gap10"][cold]))
    assert np.all(np.isfinite(cols["content_z"])) and np.all(np.isfinite(cols["mean_rank"]))
    assert not np.isnan(cols["ease_z"][~cold & (cols["item_listeners"] >= 2)]).any()
    # masked() spans every column of ``cols``: the others' scores are -inf on the new items
    wide = gens.masked("ease", users[:3])
    assert wide.shape == (3, len(gens.cols)) and np.all(wide[:, gens.col_of[new]] == -np.inf)


def test_music_keeps_the_warm_candidates_and_features():
    """With a music table of the listened items only, the core's candidates and every warm
    generator's features are those of the pipeline without music; the content generator
    only adds candidates and columns."""
    data = listening(4, 50, 70, 12)
    inter = _inter(data, 70)
    rng = np.random.default_rng(0)
    feats = pd.DataFrame(rng.normal(size=(70, 5)), columns=list("abcde"))
    plain = Generators(inter)
    both = Generators(inter, music=feats, item_ids=np.arange(70))
    users = np.arange(inter.n_users)
    c0, c1 = plain.candidates(users, 15), both.candidates(users, 15)
    assert all(set(a.tolist()) <= set(b.tolist()) for a, b in zip(c0, c1, strict=True))
    f0, f1 = plain.features(users, c0), both.features(users, c0)
    for name in plain.scores:
        for key in ("rank", "z", "gap10", "item_gap"):
            np.testing.assert_array_equal(f0[f"{name}_{key}"], f1[f"{name}_{key}"])
    assert "content_z" in f1 and "content_z" not in f0 and "item_cold" not in f0


def test_warm_pipeline_without_music_is_unchanged():
    """The expectation was computed before the content generator existed (same data, seed
    and budget): candidates and recommendations must not move without music_features."""
    data = listening(11, 60, 90, 12)
    _, u = np.unique(data.userID, return_inverse=True)
    _, i = np.unique(data.artistID, return_inverse=True)
    inter = Interactions(u, i, data.weight.to_numpy(float), u.max() + 1, i.max() + 1)
    gens = Generators(inter)
    cands = gens.candidates(np.arange(inter.n_users), 20)
    digest = hashlib.sha256(json.dumps([c.tolist() for c in cands]).encode()).hexdigest()[:16]
    assert digest == "d2a7bfb92fe4a174"
    model = _train(None, data, n_candidates=15, seed=3)
    assert "content" not in model.report and "content" not in model.generators.scores
    assert {u: model.recommend(u, 5) for u in range(5)} == {
        0: [21, 3, 70, 87, 25],
        1: [55, 59, 16, 2, 61],
        2: [51, 28, 65, 36, 25],
        3: [30, 19, 76, 3, 72],
        4: [21, 87, 75, 10, 53],
    }


def test_content_without_signal_is_left_out():
    """Noise as music_features: the content generator's AUC on the training data is about 0.5,
    below CONTENT_MIN_AUC, so the model is the one without music_features."""
    data = listening(11, 60, 90, 12)
    noise = pd.DataFrame(np.random.default_rng(1).normal(size=(90, 8)))
    noise.columns = [f"n{j}" for j in range(8)]
    model = _train(noise, data, n_candidates=15, seed=3)
    info = model.report["content"]
    assert info["used"] is False and 0.4 < info["auc"] < 0.55
    assert model.side["music"] is None and "content" not in model.generators.scores
    assert model.recommend(0, 5) == [21, 3, 70, 87, 25]  # as without music_features


@pytest.fixture(scope="module")
def synthetic_cold_start():
    group, feats = _clusters(0)
    data = content.taste_listening(group, 150, 0, items_per_user=(8, 25))
    train, held, cold = content.cold_start_split(data, feats, 0.2, 0)
    model = _train(feats, train, evaluate=False)
    return group, feats, train, held, cold, model


def test_new_items_reach_the_users_whose_taste_matches_them(synthetic_cold_start):
    group, feats, train, held, cold, model = synthetic_cold_start
    assert set(cold.tolist()) <= set(model.item_ids.tolist())  # in the catalogue, unplayed
    assert not set(cold.tolist()) & set(train.artistID.tolist())
    assert model.report["content"]["items_without_interactions"] >= len(cold)
    assert model.report["content"]["cold_groups"] > 0
    assert model.report["content"]["used"] is True and model.report["content"]["auc"] > 0.6
    matched = recommended = 0
    for user, rows in train.groupby("userID"):
        recs = [r for r in model.recommend(user, 10) if r in set(cold.tolist())]
        recommended += len(recs)
        taste = np.bincount(group[rows.artistID], minlength=group.max() + 1)
        matched += sum(taste[group[r]] > 0 for r in recs)
    assert recommended >= 50  # new releases are recommended...
    assert matched / recommended >= 0.9  # ...to users who play their cluster


def test_cold_start_beats_random_and_popularity_on_synthetic_clusters(synthetic_cold_start):
    _, _, _, held, cold, model = synthetic_cold_start
    r = content.cold_start_scores(model, held, cold, k=10, seed=0)
    only = r["cold_only"]
    assert r["n_users"] > 100 and r["n_cold_items"] == len(cold)
    assert only["model"]["ndcg@10"] > 1.5 * only["random"]["ndcg@10"]
    assert only["model"]["ndcg@10"] > 1.5 * only["popularity"]["ndcg@10"]
    assert only["content"]["ndcg@10"] > 1.5 * only["random"]["ndcg@10"]
    assert r["catalogue"]["popularity"]["ndcg@10"] == 0.0  # it cannot rank new items
    assert r["catalogue"]["model"]["ndcg@10"] > 0.0 and r["cold_share_of_top"] > 0.0


def test_serving_model_is_rebuilt_from_its_plain_attributes(synthetic_cold_start):
    *_, model = synthetic_cold_start
    again = RecommendationModel(
        model.ranker,
        model._interactions,
        model.user_ids,
        model.item_ids,
        {"music": model.side["music"].copy(), "user": None},
        model.n_candidates,
        {},
        model.graph,
        model.generator_names,
    )
    assert "content" in again.generators.scores
    for user in (0, 5, 17):
        assert again.recommend(user, 10) == model.recommend(user, 10)


@pytest.mark.skipif(not GTZAN.is_file(), reason=f"{GTZAN} is absent (shared/data)")
def test_cold_start_on_gtzan_audio_features():
    feats, genre = _gtzan_tracks(GTZAN)
    data = content.taste_listening(genre, 200, 0, items_per_user=(10, 40))
    train, held, cold = content.cold_start_split(data, feats, 0.2, 0)
    model = _train(feats, train, evaluate=False)
    r = content.cold_start_scores(model, held, cold, k=10, seed=0)
    only = r["cold_only"]
    assert only["content"]["ndcg@10"] > 1.5 * only["random"]["ndcg@10"]
    assert only["model"]["ndcg@10"] > 1.5 * only["random"]["ndcg@10"]


def _gtzan_tracks(path: Path) -> tuple[pd.DataFrame, np.ndarray]:
    """GTZAN's 3-second rows averaged into pseudo-tracks (the table has no track column; its
    rows run clip by clip, ten per clip, so each genre's rows are cut into blocks of 9 or 10
    where consecutive rows differ most); the same as ``benchmarks/automl/bench_cold_start.py``."""
    d = pd.read_csv(path)
    labels = d["label"].to_numpy()
    x = d.drop(columns="label")
    z = ((x - x.mean()) / x.std()).to_numpy()
    track = np.empty(len(d), dtype=np.int64)
    t = 0
    for lab in pd.unique(labels):
        idx = np.flatnonzero(labels == lab)
        jump = np.r_[np.linalg.norm(z[idx[1:]] - z[idx[:-1]], axis=1), 0.0]
        start = 0
        for end in _cuts(jump, len(idx), int(round(len(idx) / 10))):
            track[idx[start:end]] = t
            t, start = t + 1, end
    return x.groupby(track).mean(), pd.Series(labels).groupby(track).first().to_numpy()


def _cuts(jump: np.ndarray, n: int, m: int) -> list[int]:
    """Ends of ``m`` blocks of 9 or 10 of ``n`` rows with the largest jumps at the cuts."""
    best = np.full((m + 1, n + 1), -np.inf)
    best[0, 0] = 0.0
    back = np.zeros((m + 1, n + 1), dtype=np.int64)
    for b in range(1, m + 1):
        for e in range(9 * b, min(10 * b, n) + 1):
            for size in (9, 10):
                s = e - size
                if s >= 0 and best[b - 1, s] > -np.inf:
                    v = best[b - 1, s] + (jump[e - 1] if e < n else 0.0)
                    if v > best[b, e]:
                        best[b, e], back[b, e] = v, s
    ends, e = [], n
    for b in range(m, 0, -1):
        ends.append(e)
        e = back[b, e]
    return ends[::-1]


@pytest.mark.parametrize(
    ("music", "match"),
    [
        (pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [np.nan] * 3}), r"\['b'\] have no value"),
        (
            pd.DataFrame({"a": [1.0, 2.0]}, index=["0", "1"]),
            "index has dtype .* item ids have dtype int",
        ),
        (pd.DataFrame({"a": [1.0, 2.0, 3.0]}, index=[0, 1, 1]), "duplicate item id"),
        (pd.DataFrame({"a": [1.0, 2.0]}, index=[500, 501]), "shares no id"),
        (pd.DataFrame({"a": [1.0, np.inf]}), r"\['a'\] have infinite values"),
        (pd.DataFrame({"name": ["x", "y"]}), "no numeric column"),
        (np.ones((3, 2)), "must be a pandas DataFrame"),
    ],
)
def test_bad_music_features_are_named(music, match):
    with pytest.raises(ParameterError, match=match):
        _train(music, listening(0, 20, 30, 5))
