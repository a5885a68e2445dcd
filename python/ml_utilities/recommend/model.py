"""The trained recommender: candidates from the generators, ranked by the ranker."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from ..exceptions import ParameterError
from .generators import Generators, Interactions
from .lambdamart import LambdaMARTRanker

__all__ = ["RecommendationModel", "feature_frame"]


class RecommendationModel:
    """A trained recommender: ``recommend(user_id, k)`` and ``report``."""

    def __init__(
        self,
        ranker: Any,
        gens: Generators | Interactions,
        user_ids: np.ndarray,
        item_ids: np.ndarray,
        side: dict[str, Any],
        n_candidates: int,
        report: dict[str, Any],
        graph: Any = None,
        generator_names: tuple[str, ...] | None = None,
    ) -> None:
        self.ranker = ranker
        #: the optional generators the ranker was trained with (None: all of them)
        self.generator_names = generator_names
        #: (user index, friend index) of the user graph's edges, or None
        self.graph = graph
        self._generators = gens if isinstance(gens, Generators) else None
        self._interactions = None if isinstance(gens, Generators) else gens
        self.user_ids = user_ids
        self.item_ids = item_ids
        self._user_index = {_plain(u): i for i, u in enumerate(user_ids)}
        self.side = side
        self.n_candidates = n_candidates
        self.report = report
        self._lock = threading.Lock()

    @property
    def generators(self) -> Generators:
        """The candidate generators; the serving ones (from every interaction) are computed at
        the first recommendation, not inside the training budget."""
        if self._generators is None:
            with self._lock:
                if self._generators is None:
                    self._generators = Generators(
                        self._interactions,
                        graph=self.graph,
                        only=self.generator_names,
                        music=self.side.get("music"),
                        item_ids=self.item_ids,
                    )
        return self._generators

    def _candidates(self, users: np.ndarray) -> tuple[list[np.ndarray], Any]:
        cands = self.generators.candidates(users, self.n_candidates)
        # the music table reaches the ranker through the content generator's features only
        # (its raw columns let the ranker memorise items: docs/automl.md, "Cold start")
        side = {**self.side, "music": None}
        frame = feature_frame(
            self.generators.features(users, cands), side, self.item_ids, self.user_ids
        )
        return cands, frame

    def _rank(
        self, users: np.ndarray, k: int, prepared: tuple[list[np.ndarray], Any] | None = None
    ) -> dict[int, np.ndarray]:
        cands, frame = prepared if prepared is not None else self._candidates(users)
        scores = self._scores(frame)
        out: dict[int, np.ndarray] = {}
        pos = 0
        for u, c in zip(users, cands, strict=True):
            s = scores[pos : pos + len(c)]
            out[int(u)] = c[np.argsort(-s, kind="stable")[:k]]
            pos += len(c)
        return out

    def _scores(self, frame: Any) -> np.ndarray:
        """The ranker's score of each row of ``frame`` (higher first)."""
        if self.ranker is None:  # the early answer: the generators' agreement
            return np.asarray(frame["mean_z"].to_numpy(), dtype=np.float64)
        if isinstance(self.ranker, LambdaMARTRanker):
            return np.asarray(self.ranker.predict(frame), dtype=np.float64)
        return np.asarray(
            self.ranker.adapter.predict_raw(self.ranker._features(frame)), dtype=np.float64
        )

    def recommend(self, user_id: Any, k: int = 10) -> list[Any]:
        """The ``k`` best items for ``user_id`` that the user has not listened to yet.

        An unknown user gets the most popular items.
        """
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ParameterError(f"k={k!r}: expected an integer >= 1")
        u = self._user_index.get(_plain(user_id))
        if u is None:
            top = np.argsort(-self.generators.popularity, kind="stable")[:k]
            return [_plain(v) for v in self.item_ids[top]]
        return [_plain(v) for v in self.item_ids[self._rank(np.array([u]), k)[u]]]

    # -- serving ---------------------------------------------------------------------------------
    def user_index(self, user_id: Any) -> int | None:
        """The row of ``user_id`` in the interactions, or None for a user never seen."""
        return self._user_index.get(_plain(user_id))

    def recommend_scored(
        self, user_id: Any, k: int = 10, exclude: Any = ()
    ) -> list[dict[str, Any]]:
        """:meth:`recommend` with each item's ranker score and the generator that proposed it:
        ``[{"item", "score", "generator"}, ...]``, best first, without the items of
        ``exclude`` (item ids, e.g. played since the generators were built). The order is
        :meth:`recommend`'s, with the excluded items left out.

        ``generator`` is the candidate generator (:meth:`Generators.candidate_sources`) that
        ranks the item best among the user's unseen items; an unknown user's items are
        ``"popularity"``'s, scored by their listeners."""
        return self.recommend_scored_many([user_id], k, {user_id: exclude})[0]

    def recommend_scored_many(
        self, user_ids: Any, k: int = 10, exclude: dict[Any, Any] | None = None
    ) -> list[list[dict[str, Any]]]:
        """:meth:`recommend_scored` of each of ``user_ids`` (one ranker call for all the known
        ones), ``exclude`` mapping a user id to the item ids to leave out."""
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ParameterError(f"k={k!r}: expected an integer >= 1")
        exclude = exclude or {}
        item_index = self._item_index()
        gens = self.generators
        ids = [_plain(u) for u in user_ids]
        drops = [
            {item_index[v] for v in map(_plain, exclude.get(u, ())) if v in item_index} for u in ids
        ]
        out: list[list[dict[str, Any]]] = [[] for _ in ids]
        known = [(j, self._user_index[u]) for j, u in enumerate(ids) if u in self._user_index]
        popular: np.ndarray | None = None  # the items by listeners, sorted once per call
        for j, u in enumerate(ids):
            if u not in self._user_index:
                if popular is None:
                    popular = np.argsort(-gens.popularity, kind="stable")
                top = [int(i) for i in popular[: k + len(drops[j])] if int(i) not in drops[j]][:k]
                out[j] = [
                    {
                        "item": _plain(self.item_ids[i]),
                        "score": float(gens.popularity[i]),
                        "generator": "popularity",
                    }
                    for i in top
                ]
        if not known:
            return out
        users = np.array([u for _, u in known], dtype=np.int64)
        cands, frame = self._candidates(users)
        scores = self._scores(frame)
        picked: list[tuple[np.ndarray, np.ndarray]] = []
        pos = 0
        for (j, _), c in zip(known, cands, strict=True):
            s = scores[pos : pos + len(c)]
            pos += len(c)
            order = np.argsort(-s, kind="stable")
            keep = np.array([o for o in order if int(c[o]) not in drops[j]][:k], dtype=np.int64)
            picked.append((c[keep], s[keep]))
        proposers = self._proposers(users, [items for items, _ in picked])
        for (j, _), (items, s), names in zip(known, picked, proposers, strict=True):
            out[j] = [
                {"item": _plain(self.item_ids[i]), "score": float(v), "generator": g}
                for i, v, g in zip(items, s, names, strict=True)
            ]
        return out

    def _item_index(self) -> dict[Any, int]:
        index = getattr(self, "_item_index_cache", None)
        if index is None:
            index = {_plain(v): i for i, v in enumerate(self.item_ids)}
            self._item_index_cache = index
        return index

    def _proposers(self, users: np.ndarray, items: list[np.ndarray]) -> list[list[str]]:
        """For each user and each of its ``items`` (indices), the candidate generator ranking
        the item best among the user's unseen scored items, within that generator's share of
        the candidates (ties: the first in :meth:`Generators.candidate_sources`)."""
        gens = self.generators
        best = [np.full(len(it), np.inf) for it in items]
        names = [np.full(len(it), "ranker", dtype=object) for it in items]
        for name, quota in gens.candidate_sources(self.n_candidates).items():
            rows = gens.masked(name, users)
            for r, it in enumerate(items):
                cols = gens.col_of[np.asarray(it, dtype=np.int64)]
                ok = cols >= 0
                if not ok.any():
                    continue
                row = rows[r]
                vals = row[cols[ok]]
                rank = (row[None, :] > vals[:, None]).sum(axis=1).astype(np.float64)
                rank[~np.isfinite(vals)] = np.inf
                idx = np.flatnonzero(ok)
                better = (rank < quota) & (rank < best[r][idx])
                best[r][idx[better]] = rank[better]
                names[r][idx[better]] = name
        return [list(n) for n in names]

    def with_interactions(self, rows: Any) -> RecommendationModel:
        """A new model whose generators also count ``rows`` (``(user_id, item_id, weight)``
        triples, e.g. plays reported after training): the same ranker, side tables, user graph
        and generator set, no retraining. A pair already in the history adds its weight (play
        counts add up); users and items never seen are appended. The generators are built at
        the new model's first recommendation (or by :attr:`generators`)."""
        if self._interactions is None:
            raise ParameterError(
                "this model ranks the evaluation split's generators; update the served model "
                "(the one train_recommendation_model returns)"
            )
        inter = self._interactions
        user_ids = list(self.user_ids)
        item_ids = list(self.item_ids)
        uidx = dict(self._user_index)
        iidx = dict(self._item_index())
        new_u, new_i, new_w = [], [], []
        for user, item, weight in rows:
            w = float(weight)
            if not np.isfinite(w) or w <= 0:
                raise ParameterError(f"interaction weight {weight!r}: expected a number > 0")
            user, item = _plain(user), _plain(item)
            if user not in uidx:
                uidx[user] = len(user_ids)
                user_ids.append(user)
            if item not in iidx:
                iidx[item] = len(item_ids)
                item_ids.append(item)
            new_u.append(uidx[user])
            new_i.append(iidx[item])
            new_w.append(w)
        n_u, n_i = len(user_ids), len(item_ids)
        users = np.concatenate([inter.users, np.asarray(new_u, dtype=np.int64)])
        items = np.concatenate([inter.items, np.asarray(new_i, dtype=np.int64)])
        weights = np.concatenate([inter.weights, np.asarray(new_w, dtype=np.float64)])
        # one row per (user, item), weights summed
        key = users.astype(np.int64) * n_i + items
        uniq, first, inv = np.unique(key, return_index=True, return_inverse=True)
        summed = np.bincount(inv, weights=weights, minlength=len(uniq))
        merged = Interactions(users[first], items[first], summed, n_u, n_i)
        return RecommendationModel(
            self.ranker,
            merged,
            _id_array(user_ids, self.user_ids),
            _id_array(item_ids, self.item_ids),
            self.side,
            self.n_candidates,
            self.report,
            self.graph,
            self.generator_names,
        )


def _id_array(ids: list[Any], like: np.ndarray) -> np.ndarray:
    """``ids`` as an array of ``like``'s kind where they all fit it, else of objects."""
    if like.dtype.kind in "iu" and all(isinstance(v, int) for v in ids):
        return np.asarray(ids, dtype=np.int64)
    out = np.empty(len(ids), dtype=object)
    out[:] = ids
    return out


def _plain(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def feature_frame(
    cols: dict[str, np.ndarray], side: dict[str, Any], item_ids: np.ndarray, user_ids: np.ndarray
) -> Any:
    """The ranker's rows: the generators' feature columns ``cols`` (``user_index`` renamed
    ``user_id``, ``item_index`` dropped), then the rows of ``side['music']`` (by item) and
    ``side['user']`` (by user) with the prefixes ``music_`` and ``user_``, NaN where missing."""
    import pandas as pd

    frame = pd.DataFrame({k: v for k, v in cols.items() if k != "item_index"})
    frame = frame.rename(columns={"user_index": "user_id"})
    for key, ids, idx in (
        ("music", item_ids, cols["item_index"]),
        ("user", user_ids, cols["user_index"]),
    ):
        table = side.get(key)
        if table is not None:
            aligned = table.reindex(ids[idx])
            aligned.index = frame.index
            frame = pd.concat([frame, aligned.add_prefix(f"{key}_")], axis=1)
    return frame
