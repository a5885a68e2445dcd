"""Feature engineering: temporal features from timestamps, user/item embeddings from
interactions, polynomial and interaction terms.

Everything that learns is a scikit-learn transformer fitted on training rows only
(:class:`FeatureBuilder`, :class:`PolynomialExpansion`), so inside cross-validation nothing of a
validation fold reaches the features. The helpers they fit, and :func:`user_features` (per-user
vectors from listening histories), live in :mod:`ml_utilities.features.listening` and are
re-exported here.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from ..features.listening import (
    _hours,
    _lookup,
    interaction_embeddings,
    temporal_row_features,
    temporal_user_features,
    to_datetime,
    user_features,
)
from .errors import ParameterError

__all__ = [
    "FeatureBuilder",
    "PolynomialExpansion",
    "interaction_embeddings",
    "temporal_row_features",
    "temporal_user_features",
    "to_datetime",
    "user_features",
]


class FeatureBuilder(TransformerMixin, BaseEstimator):
    """Temporal and embedding features on a DataFrame, learned from the training rows only.

    Parameters
    ----------
    timestamp_columns : list of str
        Columns of event times (datetimes, epoch seconds or milliseconds). Each is replaced by
        :func:`temporal_row_features` (prefixed by its name); with ``user_column`` each user
        also gets :func:`temporal_user_features` learned in ``fit`` (prefix ``user_``).
    user_column, item_column, weight_column : str or None
        Interaction columns. With ``n_components > 0`` and both ids, user and item embeddings
        (:func:`interaction_embeddings`) fitted on the training rows are added as
        ``user_emb_*`` and ``item_emb_*``; ids never seen in ``fit`` get zeros.
    n_components : int
        Embedding size (0: no embeddings).
    embedding_method : {"svd", "als"}
        Truncated SVD or implicit ALS (:func:`interaction_embeddings`).
    categorical_columns : list of str
        Columns turned into strings so the encoders treat them as categories (ids, codes).
    drop_columns : list of str
        Columns removed before anything else.
    session_gap_minutes, evening_hours : see :func:`temporal_user_features`.
    seed : int
    """

    def __init__(
        self,
        timestamp_columns: Sequence[str] = (),
        user_column: str | None = None,
        item_column: str | None = None,
        weight_column: str | None = None,
        n_components: int = 0,
        embedding_method: str = "svd",
        categorical_columns: Sequence[str] = (),
        drop_columns: Sequence[str] = (),
        session_gap_minutes: float = 30.0,
        evening_hours: tuple[int, int] = (18, 24),
        seed: int = 0,
    ) -> None:
        self.timestamp_columns = timestamp_columns
        self.user_column = user_column
        self.item_column = item_column
        self.weight_column = weight_column
        self.n_components = n_components
        self.embedding_method = embedding_method
        self.categorical_columns = categorical_columns
        self.drop_columns = drop_columns
        self.session_gap_minutes = session_gap_minutes
        self.evening_hours = evening_hours
        self.seed = seed

    def fit(self, X: pd.DataFrame, y: Any = None) -> FeatureBuilder:  # noqa: N803 - sklearn API
        if not isinstance(X, pd.DataFrame):
            raise ParameterError(f"FeatureBuilder needs a DataFrame, got {type(X).__name__}")
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.n_features_in_ = X.shape[1]
        hours = _hours(tuple(self.evening_hours))
        for col in [*self.timestamp_columns, self.user_column, self.item_column]:
            if col is not None and col not in X.columns:
                raise ParameterError(f"column {col!r} is not in the data ({list(X.columns)[:20]})")
        self.reference_times_ = {}
        self.user_temporal_ = {}
        for col in self.timestamp_columns:
            t = to_datetime(X[col])
            ref = t.max()
            self.reference_times_[col] = ref.isoformat()
            if self.user_column is not None:
                agg = temporal_user_features(
                    X[self.user_column],
                    X[col],
                    reference=ref,
                    session_gap_minutes=self.session_gap_minutes,
                    evening_hours=hours,
                )
                self.user_temporal_[col] = (
                    np.asarray(agg.index),
                    list(agg.columns),
                    agg.to_numpy(np.float64),
                )
        self.embeddings_ = None
        if self.n_components and self.user_column and self.item_column:
            w = X[self.weight_column] if self.weight_column else None
            self.embeddings_ = interaction_embeddings(
                X[self.user_column],
                X[self.item_column],
                w,
                n_components=int(self.n_components),
                seed=self.seed,
            )
        self.feature_names_out_ = np.asarray(self._transform(X.head(2)).columns, dtype=object)
        return self

    def _transform(self, X: pd.DataFrame) -> pd.DataFrame:
        hours = _hours(tuple(self.evening_hours))
        out = X.drop(columns=[c for c in self.drop_columns if c in X.columns])
        parts = []
        for col in self.timestamp_columns:
            ref = pd.Timestamp(self.reference_times_[col])
            parts.append(
                temporal_row_features(X[col], reference=ref, evening_hours=hours, prefix=col)
            )
            if col in self.user_temporal_:
                ids, names, values = self.user_temporal_[col]
                vecs = _lookup(ids, values, X[self.user_column])
                parts.append(
                    pd.DataFrame(vecs, index=X.index, columns=[f"user_{col}_{n}" for n in names])
                )
            out = out.drop(columns=[col], errors="ignore")
        if self.embeddings_ is not None:
            u_ids, u_vecs, i_ids, i_vecs = self.embeddings_
            k = u_vecs.shape[1]
            parts.append(
                pd.DataFrame(
                    _lookup(u_ids, u_vecs, X[self.user_column]),
                    index=X.index,
                    columns=[f"user_emb_{j}" for j in range(k)],
                )
            )
            parts.append(
                pd.DataFrame(
                    _lookup(i_ids, i_vecs, X[self.item_column]),
                    index=X.index,
                    columns=[f"item_emb_{j}" for j in range(k)],
                )
            )
        for col in self.categorical_columns:
            if col in out.columns:
                out[col] = out[col].astype(str).where(out[col].notna(), None).astype(object)
        # any other datetime column: seconds since the epoch, so nothing is left unencoded
        for col in out.columns:
            if pd.api.types.is_datetime64_any_dtype(out[col]):
                out[col] = to_datetime(out[col]).astype("int64") / 1e9
        return pd.concat([out, *parts], axis=1) if parts else out

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:  # noqa: N803 - sklearn API
        check_is_fitted(self, "feature_names_out_")
        if not isinstance(X, pd.DataFrame):
            raise ParameterError(f"FeatureBuilder needs a DataFrame, got {type(X).__name__}")
        missing = [c for c in self.feature_names_in_ if c not in X.columns]
        if missing:
            raise ParameterError(f"the data lacks column(s) {missing} seen in fit")
        return self._transform(X[list(self.feature_names_in_)])

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        check_is_fitted(self, "feature_names_out_")
        return self.feature_names_out_


class PolynomialExpansion(TransformerMixin, BaseEstimator):
    """Powers and interaction terms of numeric features.

    Output: the inputs; each input raised to the powers ``2..degree``; the products of every
    combination of ``2..interaction_depth`` distinct inputs. With ``degree=2,
    interaction_depth=2`` this is :class:`sklearn.preprocessing.PolynomialFeatures` (degree 2,
    no bias); unlike it, the two orders are set independently (``degree=3,
    interaction_depth=2`` adds cubes but no three-way products).

    Parameters
    ----------
    degree : int >= 1
    interaction_depth : int >= 1
    max_output_features : int
        Refuse (with the count) an expansion wider than this, rather than exhaust memory.
    """

    def __init__(
        self, degree: int = 2, interaction_depth: int = 2, max_output_features: int = 20_000
    ) -> None:
        self.degree = degree
        self.interaction_depth = interaction_depth
        self.max_output_features = max_output_features

    def fit(self, X: Any, y: Any = None) -> PolynomialExpansion:  # noqa: N803 - sklearn API
        for name in ("degree", "interaction_depth"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ParameterError(f"{name}={v!r}: expected an integer >= 1")
        n = np.asarray(X).shape[1]
        self.n_features_in_ = n
        self.combinations_ = [
            c
            for k in range(2, self.interaction_depth + 1)
            for c in itertools.combinations(range(n), k)
        ]
        n_out = n * self.degree + len(self.combinations_)
        if n_out > self.max_output_features:
            raise ParameterError(
                f"polynomial_degree={self.degree}, interaction_depth={self.interaction_depth} "
                f"on {n} features gives {n_out} features (> max_output_features="
                f"{self.max_output_features}); lower them or select features first"
            )
        names = getattr(X, "columns", None)
        self.input_names_ = (
            [str(c) for c in names] if names is not None else [f"x{i}" for i in range(n)]
        )
        return self

    def transform(self, X: Any) -> np.ndarray:  # noqa: N803 - sklearn API
        check_is_fitted(self, "combinations_")
        x = np.asarray(X, dtype=np.float64)
        if x.shape[1] != self.n_features_in_:
            raise ParameterError(f"expected {self.n_features_in_} features, got {x.shape[1]}")
        blocks = [x] + [x**p for p in range(2, self.degree + 1)]
        if self.combinations_:
            inter = np.empty((x.shape[0], len(self.combinations_)), dtype=np.float64)
            for j, combo in enumerate(self.combinations_):
                inter[:, j] = np.prod(x[:, combo], axis=1)
            blocks.append(inter)
        return np.hstack(blocks)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        check_is_fitted(self, "combinations_")
        base = list(input_features) if input_features is not None else self.input_names_
        names = list(base)
        names += [f"{b}^{p}" for p in range(2, self.degree + 1) for b in base]
        names += [" ".join(base[i] for i in combo) for combo in self.combinations_]
        return np.asarray(names, dtype=object)
