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
                        self._interactions, graph=self.graph, only=self.generator_names
                    )
        return self._generators

    def _candidates(self, users: np.ndarray) -> tuple[list[np.ndarray], Any]:
        cands = self.generators.candidates(users, self.n_candidates)
        frame = feature_frame(
            self.generators.features(users, cands), self.side, self.item_ids, self.user_ids
        )
        return cands, frame

    def _rank(
        self, users: np.ndarray, k: int, prepared: tuple[list[np.ndarray], Any] | None = None
    ) -> dict[int, np.ndarray]:
        cands, frame = prepared if prepared is not None else self._candidates(users)
        if self.ranker is None:  # the early answer: the generators' agreement
            scores = frame["mean_z"].to_numpy()
        elif isinstance(self.ranker, LambdaMARTRanker):
            scores = self.ranker.predict(frame)
        else:
            scores = self.ranker.adapter.predict_raw(self.ranker._features(frame))
        out: dict[int, np.ndarray] = {}
        pos = 0
        for u, c in zip(users, cands, strict=True):
            s = scores[pos : pos + len(c)]
            out[int(u)] = c[np.argsort(-s, kind="stable")[:k]]
            pos += len(c)
        return out

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
