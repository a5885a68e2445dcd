"""Feature engineering: polynomial and interaction terms, temporal features, embeddings and
per-user vectors from listening histories."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.preprocessing import PolynomialFeatures

from ml_utilities.pipeline import FeatureBuilder, ParameterError, PolynomialExpansion, user_features
from ml_utilities.pipeline.features import interaction_embeddings, temporal_user_features


def test_polynomial_expansion_matches_sklearn_at_degree_two(rng):
    x = rng.normal(size=(20, 4))
    ours = PolynomialExpansion(2, 2).fit(x)
    ref = PolynomialFeatures(2, include_bias=False).fit(x)
    a, b = ours.transform(x), ref.transform(x)
    assert a.shape == b.shape == (20, 14)
    # the same columns, in another order
    np.testing.assert_allclose(np.sort(a, axis=1), np.sort(b, axis=1))
    names = ours.get_feature_names_out(["a", "b", "c", "d"])
    assert list(names[:6]) == ["a", "b", "c", "d", "a^2", "b^2"] and "a b" in names


def test_polynomial_orders_are_independent(rng):
    x = rng.normal(size=(5, 3))
    cubes = PolynomialExpansion(degree=3, interaction_depth=1).fit_transform(x)
    np.testing.assert_allclose(cubes, np.hstack([x, x**2, x**3]))
    three = PolynomialExpansion(degree=1, interaction_depth=3).fit_transform(x)
    assert three.shape == (5, 3 + 3 + 1)
    np.testing.assert_allclose(three[:, -1], x[:, 0] * x[:, 1] * x[:, 2])
    with pytest.raises(ParameterError, match="max_output_features=10"):
        PolynomialExpansion(2, 2, max_output_features=10).fit(rng.normal(size=(3, 6)))
    with pytest.raises(ParameterError, match="degree=0"):
        PolynomialExpansion(0, 1).fit(x)


def test_temporal_user_features_exact():
    t0 = pd.Timestamp("2024-03-04 17:00")  # a Monday
    ts = pd.Series(
        [
            t0,
            t0 + pd.Timedelta("10min"),
            t0 + pd.Timedelta("2h"),  # 2 sessions
            t0 + pd.Timedelta("5D 3h"),
        ]
    )  # Saturday 20:00: a third
    users = pd.Series([1, 1, 1, 2])
    ref = pd.Timestamp("2024-03-10")
    out = temporal_user_features(users, ts, reference=ref, session_gap_minutes=30)
    assert out.loc[1, "sessions"] == 2 and out.loc[2, "sessions"] == 1
    assert out.loc[1, "events_per_session"] == 1.5
    assert out.loc[1, "evening_share"] == pytest.approx(1 / 3)  # 19:00 only; 17:00s are not
    assert out.loc[2, "weekend_share"] == 1.0 and out.loc[1, "weekend_share"] == 0.0
    assert out.loc[1, "recency_days"] == pytest.approx((ref - ts[2]).total_seconds() / 86400)
    # epoch milliseconds (Last.fm's tagging timestamps) give the same result
    ms = pd.Series(ts.astype("int64") // 10**6)
    pd.testing.assert_frame_equal(
        temporal_user_features(users, ms, reference=ref), out, check_exact=False
    )


@pytest.mark.parametrize("method", ["svd", "als"])
def test_embeddings_group_users_with_the_same_taste(method):
    # users 0-2 listen to artists 0-4, users 3-5 to artists 5-9
    rows = [(u, a) for u in range(3) for a in range(5)] + [
        (u, a) for u in range(3, 6) for a in range(5, 10)
    ]
    frame = pd.DataFrame(rows, columns=["u", "i"])
    u_ids, u_vecs, i_ids, i_vecs = interaction_embeddings(
        frame["u"], frame["i"], n_components=2, method=method
    )
    assert list(u_ids) == list(range(6)) and u_vecs.shape == (6, 2) and i_vecs.shape == (10, 2)

    def cos(a, b):
        return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))

    assert cos(u_vecs[0], u_vecs[1]) > 0.99 and abs(cos(u_vecs[0], u_vecs[4])) < 0.2
    assert cos(i_vecs[0], i_vecs[4]) > 0.99 and abs(cos(i_vecs[0], i_vecs[9])) < 0.2
    with pytest.raises(ParameterError, match="method='nmf'"):
        interaction_embeddings(frame["u"], frame["i"], method="nmf")


def test_feature_builder_learns_from_training_rows_only(listening):
    train, new = listening.iloc[:400], listening.iloc[400:].copy()
    new.loc[new.index[0], "user_id"] = 999  # a user never seen in fit
    fb = FeatureBuilder(
        timestamp_columns=["timestamp"],
        user_column="user_id",
        item_column="artist_id",
        weight_column="plays",
        n_components=4,
        categorical_columns=["user_id", "artist_id"],
    ).fit(train)
    out = fb.transform(new)
    assert "timestamp" not in out and "timestamp_hour" in out and "user_emb_3" in out
    assert out["user_id"].dtype == object
    assert (out.loc[new.index[0], [f"user_emb_{j}" for j in range(4)]] == 0).all()
    # the per-user aggregates are those of the training rows, whatever rows are transformed
    agg = temporal_user_features(
        train["user_id"], train["timestamp"], reference=train["timestamp"].max()
    )
    u = int(new["user_id"].iloc[1])
    assert out["user_timestamp_sessions"].iloc[1] == agg.loc[u, "sessions"]
    assert list(fb.get_feature_names_out()) == list(out.columns)


def test_user_features_by_hand():
    h = pd.DataFrame(
        {"user_id": [1, 1, 1, 2], "artist_id": [10, 11, 11, 10], "weight": [6, 1, 1, 4]}
    )
    out = user_features(h, n_components=0)
    assert list(out.index) == [1, 2] and out.index.name == "user_id"
    assert out.loc[1, "n_items"] == 2 and out.loc[1, "n_events"] == 3
    assert out.loc[1, "total_weight"] == 8 and out.loc[1, "top_item_share"] == 0.75
    p = np.array([0.75, 0.25])
    assert out.loc[1, "diversity"] == pytest.approx(-(p * np.log(p)).sum() / math.log(2))
    assert out.loc[2, "diversity"] == 0.0
    with pytest.raises(ParameterError, match="item_column"):
        user_features(h.drop(columns="artist_id"))
    with pytest.raises(ParameterError, match="empty"):
        user_features(h.iloc[:0])


def test_user_features_with_time_and_embeddings(listening):
    out = user_features(listening, weight_column="plays", n_components=4, embedding_method="als")
    assert len(out) == listening["user_id"].nunique()
    assert {"sessions", "evening_share", "recency_days", "emb_3"} <= set(out.columns)
    assert np.isfinite(out.to_numpy()).all()


def test_user_features_on_lastfm(lastfm):
    raw = lastfm["raw"]
    out = user_features(raw, user_column="userID", item_column="artistID", weight_column="weight")
    assert len(out) == raw["userID"].nunique()
    assert (out["n_items"] == raw.groupby("userID").size()).all()
    assert np.isfinite(out.to_numpy()).all() and out.shape[1] == 6 + 8
