"""Features of listening histories: per-event and per-user temporal features, user and item
embeddings from the interaction matrix, and the per-user vectors of
``FeatureExtractor.extract_user_features`` (:func:`user_features`).

The pipeline's transformers (:class:`ml_utilities.pipeline.features.FeatureBuilder`) fit the same
helpers on training rows only.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..exceptions import ParameterError

__all__ = [
    "interaction_embeddings",
    "temporal_row_features",
    "temporal_user_features",
    "to_datetime",
    "user_features",
]

logger = logging.getLogger(__name__)

USER_COLUMNS = ("user_id", "userID", "userId", "user")
ITEM_COLUMNS = (
    "artist_id",
    "artistID",
    "item_id",
    "itemID",
    "track_id",
    "trackID",
    "item",
    "artist",
    "track",
)
WEIGHT_COLUMNS = ("weight", "plays", "play_count", "playcount", "count", "listens")


def to_datetime(values: pd.Series) -> pd.Series:
    """Timestamps as UTC-naive datetimes: datetimes as they are, numbers as Unix epochs (seconds,
    or milliseconds above 1e11, as Last.fm's ``timestamp`` columns hold), strings parsed."""
    if pd.api.types.is_datetime64_any_dtype(values):
        out = pd.to_datetime(values)
        if getattr(out.dt, "tz", None) is not None:
            out = out.dt.tz_convert("UTC").dt.tz_localize(None)
        return out
    if pd.api.types.is_numeric_dtype(values):
        v = values.astype(float)
        unit = "ms" if v.abs().max() > 1e11 else "s"
        return pd.to_datetime(v, unit=unit)
    return pd.to_datetime(values, utc=True).dt.tz_localize(None)


def temporal_row_features(
    ts: pd.Series,
    *,
    reference: pd.Timestamp,
    evening_hours: tuple[int, int] = (18, 24),
    prefix: str = "ts",
) -> pd.DataFrame:
    """Per-event features: hour, weekday, weekend, evening flag, days before ``reference``."""
    t = to_datetime(ts)
    lo, hi = evening_hours
    hour = t.dt.hour
    return pd.DataFrame(
        {
            f"{prefix}_hour": hour.astype(float),
            f"{prefix}_hour_sin": np.sin(2 * np.pi * hour / 24.0),
            f"{prefix}_hour_cos": np.cos(2 * np.pi * hour / 24.0),
            f"{prefix}_weekday": t.dt.day_of_week.astype(float),
            f"{prefix}_is_weekend": (t.dt.day_of_week >= 5).astype(float),
            f"{prefix}_is_evening": ((hour >= lo) & (hour < hi)).astype(float),
            f"{prefix}_recency_days": (reference - t).dt.total_seconds() / 86400.0,
        },
        index=ts.index,
    )


def temporal_user_features(
    users: pd.Series,
    ts: pd.Series,
    *,
    reference: pd.Timestamp,
    session_gap_minutes: float = 30.0,
    evening_hours: tuple[int, int] = (18, 24),
) -> pd.DataFrame:
    """Per-user aggregates of event times, one row per user (index: the user ids).

    Columns: ``events``, ``sessions`` (runs of events separated by more than
    ``session_gap_minutes``), ``events_per_session``, ``active_days``, ``evening_share`` (share
    of events in ``evening_hours``), ``weekend_share``, ``mean_hour``, ``recency_days`` (days
    from the last event to ``reference``), ``span_days``.
    """
    t = to_datetime(ts)
    frame = pd.DataFrame({"u": users.to_numpy(), "t": t.to_numpy()}).dropna()
    frame = frame.sort_values(["u", "t"], kind="stable")
    gap = frame.groupby("u", sort=False)["t"].diff().dt.total_seconds() / 60.0
    frame["new_session"] = gap.isna() | (gap > session_gap_minutes)
    hour = frame["t"].dt.hour
    lo, hi = evening_hours
    frame["evening"] = ((hour >= lo) & (hour < hi)).astype(float)
    frame["weekend"] = (frame["t"].dt.day_of_week >= 5).astype(float)
    frame["hour"] = hour.astype(float)
    frame["day"] = frame["t"].dt.floor("D")
    g = frame.groupby("u", sort=True)
    out = pd.DataFrame(
        {
            "events": g.size().astype(float),
            "sessions": g["new_session"].sum().astype(float),
            "active_days": g["day"].nunique().astype(float),
            "evening_share": g["evening"].mean(),
            "weekend_share": g["weekend"].mean(),
            "mean_hour": g["hour"].mean(),
            "recency_days": (reference - g["t"].max()).dt.total_seconds() / 86400.0,
            "span_days": (g["t"].max() - g["t"].min()).dt.total_seconds() / 86400.0,
        }
    )
    out["events_per_session"] = out["events"] / out["sessions"].clip(lower=1)
    out.index.name = None
    return out


def _implicit_als(
    mat: Any, k: int, *, alpha: float, reg: float, iterations: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Implicit-feedback matrix factorisation (Hu, Koren and Volinsky, 2008) by alternating
    least squares: preference 1 where there is an interaction, confidence ``1 + alpha * r``."""
    rng = np.random.default_rng(seed)
    n_users, n_items = mat.shape
    x = rng.normal(scale=0.01, size=(n_users, k))
    y = rng.normal(scale=0.01, size=(n_items, k))
    csr, csc = mat.tocsr(), mat.tocsc()

    def solve(fixed: np.ndarray, m: Any, out: np.ndarray) -> None:
        gram = fixed.T @ fixed + reg * np.eye(k)
        for row in range(out.shape[0]):
            lo, hi = m.indptr[row], m.indptr[row + 1]
            idx, r = m.indices[lo:hi], m.data[lo:hi]
            if len(idx) == 0:
                out[row] = 0.0
                continue
            f = fixed[idx]
            conf = alpha * r  # C - I on the observed entries
            a = gram + (f * conf[:, None]).T @ f
            out[row] = np.linalg.solve(a, (f * (1.0 + conf)[:, None]).sum(axis=0))

    csc_t = csc.T.tocsr()
    for _ in range(iterations):
        solve(y, csr, x)
        solve(x, csc_t, y)
    return x, y


def interaction_embeddings(
    users: pd.Series,
    items: pd.Series,
    weights: pd.Series | None = None,
    *,
    n_components: int = 8,
    method: str = "svd",
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """User and item embeddings from an interaction table.

    The user x item matrix holds ``log1p(weight)`` (or 1 per interaction). ``method="svd"``:
    rows scaled to unit norm so heavy listeners do not dominate, then the truncated SVD
    ``U S V^T`` gives user vectors ``U S`` and item vectors ``V``. ``method="als"``: implicit
    matrix factorisation by alternating least squares (preference 1 for every interaction,
    confidence ``1 + 10 * log1p(weight)``, L2 0.1, 10 iterations).

    Returns
    -------
    user_ids, user_vectors, item_ids, item_vectors : ndarray
        Sorted ids and ``(n, k)`` float32 vectors, ``k = min(n_components, ...)``.
    """
    from scipy import sparse
    from sklearn.decomposition import TruncatedSVD

    if isinstance(n_components, bool) or not isinstance(n_components, int) or n_components < 1:
        raise ParameterError(f"n_components={n_components!r}: expected a positive integer")
    if method not in ("svd", "als"):
        raise ParameterError(f"method={method!r}: expected 'svd' or 'als'")
    mask = users.notna().to_numpy() & items.notna().to_numpy()
    u_codes, u_ids = pd.factorize(users[mask], sort=True)
    i_codes, i_ids = pd.factorize(items[mask], sort=True)
    if weights is None:
        vals = np.ones(len(u_codes))
    else:
        vals = np.log1p(np.clip(pd.to_numeric(weights[mask], errors="coerce").fillna(0), 0, None))
    mat = sparse.csr_matrix(
        (np.asarray(vals, dtype=np.float64), (u_codes, i_codes)), shape=(len(u_ids), len(i_ids))
    )
    mat.sum_duplicates()
    if method == "als":
        k = max(1, min(n_components, min(mat.shape)))
        user_f, item_f = _implicit_als(mat, k, alpha=10.0, reg=0.1, iterations=10, seed=seed)
        return (
            np.asarray(u_ids),
            user_f.astype(np.float32),
            np.asarray(i_ids),
            item_f.astype(np.float32),
        )
    norms = np.sqrt(np.asarray(mat.multiply(mat).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    mat = sparse.diags(1.0 / norms) @ mat
    k = max(1, min(n_components, min(mat.shape) - 1))
    if min(mat.shape) < 2:
        return (
            np.asarray(u_ids),
            np.zeros((len(u_ids), k), np.float32),
            np.asarray(i_ids),
            np.zeros((len(i_ids), k), np.float32),
        )
    svd = TruncatedSVD(n_components=k, algorithm="randomized", random_state=seed)
    user_vecs = svd.fit_transform(mat).astype(np.float32)
    item_vecs = svd.components_.T.astype(np.float32)
    return np.asarray(u_ids), user_vecs, np.asarray(i_ids), item_vecs


def _lookup(ids: np.ndarray, vectors: np.ndarray, keys: pd.Series) -> np.ndarray:
    """Rows of ``vectors`` for ``keys`` (zeros for ids never seen in fit)."""
    index = pd.Index(ids)
    pos = index.get_indexer(keys.to_numpy())
    out = np.zeros((len(keys), vectors.shape[1]), dtype=np.float32)
    hit = pos >= 0
    out[hit] = vectors[pos[hit]]
    return out


def _find(columns: Sequence[str], candidates: Sequence[str]) -> str | None:
    return next((c for c in candidates if c in columns), None)


def _hours(value: Any) -> tuple[int, int]:
    if (
        not isinstance(value, (list, tuple))
        or len(value) != 2
        or not all(isinstance(v, int) and 0 <= v <= 24 for v in value)
        or value[0] >= value[1]
    ):
        raise ParameterError(
            f"evening_hours={value!r}: expected (start, end) hours, 0 <= start < end <= 24"
        )
    return int(value[0]), int(value[1])


def user_features(
    listening_history: pd.DataFrame,
    *,
    user_column: str | None = None,
    item_column: str | None = None,
    weight_column: str | None = None,
    timestamp_column: str | None = None,
    n_components: int = 8,
    embedding_method: str = "svd",
    session_gap_minutes: float = 30.0,
    evening_hours: tuple[int, int] = (18, 24),
    reference_time: Any = None,
    seed: int = 0,
) -> pd.DataFrame:
    """One feature vector per user from a listening history (one row per play or per
    user-item pair with a play count).

    Parameters
    ----------
    listening_history : DataFrame
        Columns named by the arguments below; by default the first present of ``user_id`` /
        ``userID`` / ``user``, ``artist_id`` / ``artistID`` / ``item_id`` / ``track_id``,
        ``weight`` / ``plays`` / ``play_count`` (optional) and ``timestamp`` (optional).
    n_components : int
        Size of the user embedding from the user x item matrix (0: none).
    embedding_method : {"svd", "als"}
        Truncated SVD or implicit ALS (:func:`interaction_embeddings`).
    session_gap_minutes, evening_hours, reference_time :
        Temporal features (with a timestamp column): a gap longer than ``session_gap_minutes``
        starts a new session; the evening share counts events in ``[start, end)`` hours;
        recency is measured to ``reference_time`` (default: the last event in the data).

    Returns
    -------
    DataFrame, index = user ids (sorted)
        ``n_items``, ``n_events``, ``total_weight``, ``mean_weight``, ``top_item_share``,
        ``diversity`` (normalised entropy of the user's plays over items); with timestamps
        ``events``, ``sessions``, ``events_per_session``, ``active_days``, ``evening_share``,
        ``weekend_share``, ``mean_hour``, ``recency_days``, ``span_days``; ``emb_0..k-1``.

    Examples
    --------
    >>> import pandas as pd
    >>> h = pd.DataFrame({"user_id": [1, 1, 2], "artist_id": [10, 11, 10],
    ...                   "weight": [5, 1, 3]})
    >>> user_features(h, n_components=0)["n_items"].tolist()
    [2.0, 1.0]
    """
    if not isinstance(listening_history, pd.DataFrame):
        raise ParameterError(
            f"listening_history must be a DataFrame, got {type(listening_history).__name__}"
        )
    if len(listening_history) == 0:
        raise ParameterError("listening_history is empty")
    cols = list(listening_history.columns)
    user_column = user_column or _find(cols, USER_COLUMNS)
    item_column = item_column or _find(cols, ITEM_COLUMNS)
    if weight_column is None:
        weight_column = _find(cols, WEIGHT_COLUMNS)
    if timestamp_column is None:
        timestamp_column = _find(cols, ("timestamp", "played_at", "time"))
    for what, col in (("user_column", user_column), ("item_column", item_column)):
        if col is None or col not in cols:
            raise ParameterError(f"{what}={col!r} is not a column of the history ({cols})")
    for what, col in (("weight_column", weight_column), ("timestamp_column", timestamp_column)):
        if col is not None and col not in cols:
            raise ParameterError(f"{what}={col!r} is not a column of the history ({cols})")
    h = listening_history
    w = (
        pd.to_numeric(h[weight_column], errors="coerce").fillna(0.0)
        if weight_column
        else pd.Series(1.0, index=h.index)
    )
    frame = pd.DataFrame(
        {
            "u": h[user_column].to_numpy(),
            "i": h[item_column].to_numpy(),
            "w": w.to_numpy(dtype=float),
        }
    )
    per_item = frame.groupby(["u", "i"], sort=True)["w"].sum().reset_index()
    g = per_item.groupby("u", sort=True)["w"]
    total = g.sum()
    n_items = per_item.groupby("u", sort=True).size().astype(float)

    def entropy(v: pd.Series) -> float:
        p = v.to_numpy(dtype=float)
        s = p.sum()
        if s <= 0 or len(p) < 2:
            return 0.0
        p = p[p > 0] / s
        return float(-(p * np.log(p)).sum() / math.log(len(v)))

    out = pd.DataFrame(
        {
            "n_items": n_items,
            "n_events": frame.groupby("u", sort=True).size().astype(float),
            "total_weight": total.astype(float),
            "mean_weight": g.mean().astype(float),
            "top_item_share": (g.max() / total.where(total > 0)).fillna(0.0),
            "diversity": g.apply(entropy),
        }
    )
    if timestamp_column is not None:
        t = to_datetime(h[timestamp_column])
        ref = pd.Timestamp(reference_time) if reference_time is not None else t.max()
        temporal = temporal_user_features(
            h[user_column],
            h[timestamp_column],
            reference=ref,
            session_gap_minutes=session_gap_minutes,
            evening_hours=_hours(tuple(evening_hours)),
        )
        out = out.join(temporal, how="left")
    if n_components:
        u_ids, u_vecs, _, _ = interaction_embeddings(
            h[user_column],
            h[item_column],
            h[weight_column] if weight_column else None,
            n_components=n_components,
            seed=seed,
        )
        emb = pd.DataFrame(
            u_vecs, index=u_ids, columns=[f"emb_{j}" for j in range(u_vecs.shape[1])]
        )
        out = out.join(emb, how="left")
    out.index.name = user_column
    return out
