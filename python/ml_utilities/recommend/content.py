"""Audio content in the recommender: the ``music_features`` table (one summary vector per item,
e.g. what ``FeatureExtractor.extract_audio_features`` gives, as a DataFrame indexed by item id)
as a candidate generator, so that items nobody has played yet (new releases) can be recommended
by how they sound, and the cold-start protocol that measures it.

The content generator (:func:`content_scores`, computed by :class:`.generators.Generators`):

1. :func:`item_vectors` standardises the numeric columns robustly: a missing value becomes
   the column's median, each column is centred on its median and scaled by its interquartile
   range / 1.349 (its standard deviation where that is 0), clipped to +-:data:`CLIP`, and
   constant columns are dropped.
2. A user's **content profile** is the weighted mean of the standardised vectors of the items
   the user played that have features, each weighted by its play-count rank
   (:func:`.generators.play_rank_weights`: 1 for the user's most played item).
3. The score of an item is the cosine between the profile and the item's vector, for every
   item with features, those without any interaction included.

:func:`check_music_features` turns a bad table into a ``ParameterError`` that names the
problem. :func:`cold_start_split` and :func:`cold_start_scores` are the cold-start protocol
(``docs/automl.md``, "Cold start"), and :func:`taste_listening` the semi-synthetic listening
it is measured on where a catalogue has audio features but no users.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..exceptions import ParameterError

__all__ = [
    "CLIP",
    "check_music_features",
    "cold_start_scores",
    "cold_start_split",
    "content_auc",
    "content_scores",
    "item_vectors",
    "taste_listening",
]

#: standardised feature values are clipped to +-CLIP (one outlier must not own the cosine)
CLIP = 5.0
_INT_KINDS = "iu"


def _kind(values: Any) -> str:
    kind = np.asarray(values).dtype.kind
    return "i" if kind in _INT_KINDS else kind


def numeric_columns(table: Any) -> list[Any]:
    """The numeric (and boolean) columns of ``table``: those the content generator uses."""
    import pandas as pd

    return [
        c
        for c in table.columns
        if pd.api.types.is_numeric_dtype(table[c]) or pd.api.types.is_bool_dtype(table[c])
    ]


def check_music_features(table: Any, item_ids: np.ndarray) -> dict[str, Any]:
    """Check ``music_features`` against the interactions' item ids; a ``ParameterError``
    names the problem.

    Checked: a pandas DataFrame with a flat index of item ids (no missing or duplicate id, of
    the same kind as the item ids: integers for integers, strings for strings) that shares at
    least one id with ``item_ids``; at least one numeric column; no column entirely missing;
    no infinite value.

    Returns
    -------
    dict
        ``items`` (rows), ``items_with_interactions``, ``items_without_interactions``,
        ``columns`` (numeric columns used), ``ignored_columns`` (not numeric), ``missing_values``
        (cells filled with the column median), ``constant_columns`` (dropped).
    """
    import pandas as pd

    if not isinstance(table, pd.DataFrame):
        raise ParameterError(
            f"music_features is a {type(table).__name__}: expected a pandas DataFrame indexed "
            "by item id, or None"
        )
    index = table.index
    if isinstance(index, pd.MultiIndex):
        raise ParameterError(
            f"music_features has a MultiIndex ({index.nlevels} levels): expected one level of "
            "item ids"
        )
    if len(table) == 0:
        raise ParameterError("music_features has no rows")
    if index.hasnans:
        raise ParameterError(f"music_features index has {int(index.isna().sum())} missing id(s)")
    if not index.is_unique:
        dup = index[index.duplicated()].unique()
        raise ParameterError(
            f"music_features index has {len(dup)} duplicate item id(s) "
            f"(first: {dup[:3].tolist()}): expected one row per item"
        )
    ids = np.asarray(item_ids)
    idx_kind, ids_kind = _kind(index.to_numpy()), _kind(ids)
    if idx_kind != ids_kind:
        raise ParameterError(
            f"music_features index has dtype {index.dtype} (e.g. {index[:3].tolist()}) but "
            f"interaction_data's item ids have dtype {ids.dtype} (e.g. {ids[:3].tolist()}): index "
            "the table by the same item ids (table.set_index(<item column>))"
        )
    known = index.isin(ids)
    if not known.any():
        raise ParameterError(
            f"music_features index (e.g. {index[:3].tolist()}) shares no id with "
            f"interaction_data's item ids (e.g. {ids[:3].tolist()}): index the table by item id"
        )
    cols = numeric_columns(table)
    if not cols:
        raise ParameterError(
            f"music_features has no numeric column (columns: {list(table.columns)[:10]})"
        )
    values = table[cols].to_numpy(dtype=np.float64, na_value=np.nan)
    all_nan = [c for c, bad in zip(cols, np.isnan(values).all(axis=0), strict=True) if bad]
    if all_nan:
        raise ParameterError(f"music_features column(s) {all_nan[:10]} have no value (all NaN)")
    inf = [c for c, bad in zip(cols, np.isinf(values).any(axis=0), strict=True) if bad]
    if inf:
        raise ParameterError(f"music_features column(s) {inf[:10]} have infinite values")
    _, _, info = _standardise(values)
    return {
        "items": len(table),
        "items_with_interactions": int(known.sum()),
        "items_without_interactions": int((~known).sum()),
        "columns": len(cols),
        "ignored_columns": [str(c) for c in table.columns if c not in cols],
        **info,
    }


def _standardise(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Robust standardisation of a (rows, columns) float matrix (see the module docstring):
    the standardised matrix of the kept columns, the kept columns' mask, counts."""
    missing = np.isnan(values)
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: dropped below
            med = np.nanmedian(values, axis=0)
            q75, q25 = np.nanpercentile(values, [75, 25], axis=0)
            std = np.nanstd(values, axis=0)
    scale = (q75 - q25) / 1.349
    scale = np.where(scale > 0, scale, std)
    keep = np.isfinite(med) & np.isfinite(scale) & (scale > 0)
    x = np.where(missing, med[None, :], values)[:, keep]
    z = np.clip((x - med[keep]) / scale[keep], -CLIP, CLIP)
    info = {
        "missing_values": int(missing[:, keep].sum()),
        "constant_columns": int((~keep & np.isfinite(med)).sum()),
    }
    return z.astype(np.float32), keep, info


def item_vectors(table: Any, item_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The standardised content vectors of ``item_ids`` (a row per item id; the statistics
    come from the table's rows that are in ``item_ids``).

    Returns
    -------
    (np.ndarray, np.ndarray)
        The item indices (into ``item_ids``) that have features, sorted, and their vectors,
        float32 of shape ``(len(items), columns kept)``.
    """
    import pandas as pd

    cols = numeric_columns(table)
    pos = pd.Index(table.index).get_indexer(pd.Index(item_ids))
    items = np.flatnonzero(pos >= 0)
    if not len(items) or not cols:
        return items, np.zeros((len(items), 0), dtype=np.float32)
    values = table[cols].to_numpy(dtype=np.float64, na_value=np.nan)[pos[items]]
    values[np.isinf(values)] = np.nan
    z, _, _ = _standardise(values)
    return items, z


def content_scores(
    profile_weights: Any, items: np.ndarray, vectors: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Cosine between each user's content profile and every item with features.

    Parameters
    ----------
    profile_weights : scipy.sparse matrix, shape (n_users, n_items)
        Each user's weight on each played item (the play-rank weights).
    items, vectors : np.ndarray
        The items with features (indices) and their standardised vectors (:func:`item_vectors`).

    Returns
    -------
    (np.ndarray, np.ndarray)
        Scores ``(n_users, len(items))`` float32 (0 for a user who played no item with
        features), and whether each user has a profile.
    """
    import scipy.sparse as sp

    w = sp.csr_matrix(profile_weights)[:, items]
    total = np.asarray(w.sum(axis=1)).ravel()
    profile = np.asarray(w @ vectors, dtype=np.float32)
    has = total > 0
    profile[has] /= total[has, None].astype(np.float32)
    norm = np.linalg.norm(profile, axis=1)
    norm[norm == 0] = 1.0
    item_norm = np.linalg.norm(vectors, axis=1)
    item_norm[item_norm == 0] = 1.0
    unit = vectors / item_norm[:, None]
    scores = (profile / norm[:, None]) @ unit.T
    return np.asarray(scores, dtype=np.float32), has


# -- the cold-start protocol -------------------------------------------------------------------


def cold_start_split(
    interactions: Any,
    music_features: Any,
    share: float,
    seed: int,
    user_column: str = "userID",
    item_column: str = "artistID",
) -> tuple[Any, Any, np.ndarray]:
    """Hold out whole items: ``share`` of the items that have features and interactions,
    drawn at random (seeded), lose **all** their interactions.

    Returns
    -------
    (pandas.DataFrame, pandas.DataFrame, np.ndarray)
        The training interactions (without the cold items), the held-out interactions of the
        cold items, and the cold item ids.
    """
    if not 0 < share < 1:
        raise ParameterError(f"share={share!r}: expected a number in (0, 1)")
    ids = np.unique(interactions[item_column].to_numpy())
    candidates = np.intersect1d(ids, np.asarray(music_features.index))
    n = max(1, int(round(share * len(candidates))))
    cold = np.sort(np.random.default_rng(seed).choice(candidates, n, replace=False))
    held = interactions[item_column].isin(cold).to_numpy()
    return interactions[~held], interactions[held], cold


def _ndcg_recall(ranked: list[Any], relevant: set[Any], k: int) -> tuple[float, float]:
    hits = np.array([item in relevant for item in ranked[:k]], dtype=np.float64)
    ideal = min(k, len(relevant))
    disc = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = float(hits @ disc[: len(hits)])
    return dcg / float(disc[:ideal].sum()), float(hits.sum()) / ideal


def cold_start_scores(
    model: Any,
    held_out: Any,
    cold_items: np.ndarray,
    k: int = 10,
    seed: int = 0,
    user_column: str = "userID",
    item_column: str = "artistID",
    random_draws: int = 20,
) -> dict[str, Any]:
    """Cold-start quality of a model trained without the ``cold_items``' interactions, scored
    on ``held_out`` (their interactions), for every known user with a held-out item.

    - ``catalogue``: ``model.recommend(user, k)`` over the whole catalogue; ndcg@k and recall@k
      of the user's held-out cold items (relevance: binary; ideal DCG and the recall's
      denominator over ``min(k, the user's cold items)``), against popularity (the ``k`` most
      listened items of the training data, which hold no cold item: 0 by construction).
    - ``cold_only``: the cold items alone ranked for each user, ndcg@k and recall@k of the
      user's cold items: the ``model`` (its ranker over every cold item, the features as at
      serving), the ``content`` generator alone (cosine to the profile), ``random`` (the mean
      of ``random_draws`` seeded permutations), ``popularity`` (every cold item has 0 listeners:
      the tie keeps the catalogue order, an arbitrary one).

    Users whose every item is cold are unknown to the model and are counted, not scored.
    """
    from .model import feature_frame

    gens = model.generators
    if "content" not in gens.scores:
        raise ParameterError(
            "the model has no content generator (no music_features, or "
            "report['content']['used'] is False)"
        )
    index = {v: i for i, v in enumerate(model.item_ids.tolist())}
    cold_idx = np.array([index[v] for v in np.asarray(cold_items).tolist()], dtype=np.int64)
    truth: dict[Any, set[Any]] = {}
    for u, i in zip(held_out[user_column].tolist(), held_out[item_column].tolist(), strict=True):
        truth.setdefault(u, set()).add(i)
    known = [u for u in truth if model.user_index(u) is not None]
    rng = np.random.default_rng(seed)
    sums = {
        "catalogue": {"model": np.zeros(2), "popularity": np.zeros(2)},
        "cold_only": {n: np.zeros(2) for n in ("model", "content", "random", "popularity")},
    }
    cold_in_top = 0
    order = np.argsort(-gens.popularity, kind="stable")
    top_pop = model.item_ids[order[:k]].tolist()
    users = np.array([model.user_index(u) for u in known], dtype=np.int64)
    cold_ids = model.item_ids[cold_idx].tolist()
    cold_set = set(cold_ids)
    if len(users):
        # the whole catalogue: what recommend() gives, for every user at once
        catalogue = model._rank(users, k)
        cands = [cold_idx for _ in users]
        side = {**model.side, "music": None}  # as RecommendationModel._candidates
        frame = feature_frame(gens.features(users, cands), side, model.item_ids, model.user_ids)
        ranked_model = model._rank(users, k, (cands, frame))
        content = gens.content_of(users, cold_idx)
    for j, u in enumerate(known):
        rel = truth[u]
        recs = model.item_ids[catalogue[int(users[j])]].tolist()
        cold_in_top += sum(1 for r in recs if r in cold_set)
        sums["catalogue"]["model"] += _ndcg_recall(recs, rel, k)
        sums["catalogue"]["popularity"] += _ndcg_recall(top_pop, rel, k)
        cold_only = sums["cold_only"]
        by_model = model.item_ids[ranked_model[int(users[j])]].tolist()
        cold_only["model"] += _ndcg_recall(by_model, rel, k)
        by_content = np.argsort(-content[j], kind="stable")[:k]
        cold_only["content"] += _ndcg_recall([cold_ids[c] for c in by_content], rel, k)
        cold_only["popularity"] += _ndcg_recall(cold_ids[:k], rel, k)
        draws = np.zeros(2)
        for _ in range(random_draws):
            perm = rng.permutation(len(cold_ids))[:k]
            draws += _ndcg_recall([cold_ids[c] for c in perm], rel, k)
        cold_only["random"] += draws / random_draws
    n = max(len(known), 1)
    out: dict[str, Any] = {
        level: {
            name: {f"ndcg@{k}": float(v[0] / n), f"recall@{k}": float(v[1] / n)}
            for name, v in methods.items()
        }
        for level, methods in sums.items()
    }
    out["n_users"] = len(known)
    out["n_unknown_users"] = len(truth) - len(known)
    out["n_cold_items"] = len(cold_idx)
    out["cold_share_of_top"] = cold_in_top / max(k * len(known), 1)
    return out


def taste_listening(
    groups: np.ndarray,
    n_users: int,
    seed: int,
    items_per_user: tuple[int, int] = (10, 40),
    concentration: float = 0.3,
    popularity_exponent: float = 0.8,
    play_exponent: float = 1.8,
) -> Any:
    """Semi-synthetic listening over a real catalogue whose items have a group (a genre) and
    features but no users: each user has a taste over the groups (Dirichlet, ``concentration``
    per group: most users like one or two), an item's chance is ``taste[group] * popularity``
    with a Zipf-like popularity (``rank ** -popularity_exponent`` over a seeded shuffle of the
    catalogue), the number of items uniform in ``items_per_user``, and the play counts Zipf
    distributed (``numpy`` ``zipf(play_exponent)``, capped at 1000). Seeded.

    Returns
    -------
    pandas.DataFrame
        ``userID``, ``artistID`` (the item's position in ``groups``), ``weight`` (plays).
    """
    import pandas as pd

    rng = np.random.default_rng(seed)
    groups = np.asarray(groups)
    labels, g = np.unique(groups, return_inverse=True)
    n_items = len(groups)
    pop = np.empty(n_items)
    pop[rng.permutation(n_items)] = np.arange(1, n_items + 1, dtype=np.float64) ** (
        -popularity_exponent
    )
    rows = []
    lo, hi = items_per_user
    for u in range(n_users):
        taste = rng.dirichlet(np.full(len(labels), concentration))
        p = taste[g] * pop
        p /= p.sum()
        m = min(int(rng.integers(lo, hi + 1)), int(np.count_nonzero(p)))
        items = rng.choice(n_items, m, replace=False, p=p)
        plays = np.minimum(rng.zipf(play_exponent, m), 1000)
        rows.extend((u, int(i), int(w)) for i, w in zip(items, plays, strict=True))
    return pd.DataFrame(rows, columns=["userID", "artistID", "weight"])


def content_auc(
    history: Any, targets: Any, music: Any, item_ids: np.ndarray, max_users: int = 500
) -> float:
    """How well the content generator, fitted on ``history``, ranks each user's ``targets``
    among the items with features the user has not played: the mean over users (at most
    ``max_users``, evenly spaced) of the AUC, 0.5 for content that carries no signal.

    ``history``, ``targets``: :class:`.generators.Interactions` over ``item_ids``.
    """
    from scipy.stats import rankdata

    from .generators import play_rank_weights

    items, vectors = item_vectors(music, np.asarray(item_ids))
    if not len(items) or not vectors.shape[1]:
        return 0.5
    col_of = np.full(len(item_ids), -1, dtype=np.int64)
    col_of[items] = np.arange(len(items))
    users = np.unique(targets.users)
    if len(users) > max_users:
        users = users[np.linspace(0, len(users) - 1, max_users).astype(np.int64)]
    w = play_rank_weights(history)[users]
    scores, has = content_scores(w, items, vectors)
    seen = w.tocsr()
    aucs = []
    order = np.argsort(targets.users, kind="stable")
    t_users, t_items = targets.users[order], targets.items[order]
    for j, u in enumerate(users):
        if not has[j]:
            continue
        lo, hi = np.searchsorted(t_users, [u, u + 1])
        pos = col_of[t_items[lo:hi]]
        pos = pos[pos >= 0]
        mask = np.ones(len(items), dtype=bool)
        played = col_of[seen.indices[seen.indptr[j] : seen.indptr[j + 1]]]
        mask[played[played >= 0]] = False
        n_pos = len(pos)
        n_neg = int(mask.sum()) - n_pos
        if not n_pos or n_neg <= 0:
            continue
        ranks = rankdata(scores[j][mask])
        is_pos = np.zeros(len(items), dtype=bool)
        is_pos[pos] = True
        r_pos = ranks[is_pos[mask]].sum()
        aucs.append((r_pos - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
    return float(np.mean(aucs)) if aucs else 0.5
