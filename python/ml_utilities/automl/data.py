"""Tabular inputs for AutoML: column encoding, metrics, folds and feature engineering.

:class:`ColumnEncoder` turns a pandas DataFrame of named, mixed-type columns (or a numeric
array) into one float32 matrix: numbers as they are, booleans as 0/1, categories and strings as
integer codes (unseen or missing values as NaN), datetimes as seconds. The families then
one-hot the categorical columns where they need to (linear models, k-NN, SVM, networks).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..exceptions import ParameterError
from ..recommend.metrics import ranking_metric

__all__ = ["ColumnEncoder", "FeatureEngineering", "Metric", "make_folds", "make_metric"]


class ColumnEncoder:
    """DataFrame or array -> float32 matrix ``(n, n_columns)``, NaN for missing values."""

    def __init__(
        self,
        columns: list[str],
        kinds: list[str],
        categories: dict[str, list[Any]],
        from_frame: bool,
    ) -> None:
        self.columns = columns
        self.kinds = kinds  # "numeric", "categorical", "datetime"
        self.categories = categories
        self.from_frame = from_frame
        self._index = {c: {v: i for i, v in enumerate(cats)} for c, cats in categories.items()}

    @property
    def categorical_indices(self) -> list[int]:
        return [i for i, k in enumerate(self.kinds) if k == "categorical"]

    @classmethod
    def fit(cls, features: Any, *, drop: tuple[str, ...] = ()) -> ColumnEncoder:
        import pandas as pd

        if isinstance(features, pd.DataFrame):
            if features.shape[1] == 0 or len(features) == 0:
                raise ParameterError(f"features has shape {features.shape}: no rows or columns")
            columns: list[str] = []
            kinds: list[str] = []
            cats: dict[str, list[Any]] = {}
            for col in features.columns:
                if col in drop:
                    continue
                name = str(col)
                if name in columns:
                    raise ParameterError(f"features has the column name {name!r} twice")
                s = features[col]
                columns.append(name)
                if pd.api.types.is_bool_dtype(s) or pd.api.types.is_numeric_dtype(s):
                    kinds.append("numeric")
                elif pd.api.types.is_datetime64_any_dtype(s):
                    kinds.append("datetime")
                else:
                    kinds.append("categorical")
                    values = s.dropna().unique().tolist()
                    try:
                        values = sorted(values)
                    except TypeError:
                        values = sorted(values, key=str)
                    cats[name] = [_plain(v) for v in values]
            if not columns:
                raise ParameterError("features has no column left to learn from")
            return cls(columns, kinds, cats, True)
        arr = _as_array(features)
        names = [f"feature_{i}" for i in range(arr.shape[1])]
        return cls(names, ["numeric"] * arr.shape[1], {}, False)

    def transform(self, features: Any) -> np.ndarray:
        import pandas as pd

        if isinstance(features, pd.DataFrame):
            missing = [c for c in self.columns if c not in features.columns.astype(str)]
            if missing:
                raise ParameterError(
                    f"features lacks the column(s) {missing} the model was trained on"
                )
            frame = features.set_axis(features.columns.astype(str), axis=1)
            out = np.empty((len(frame), len(self.columns)), dtype=np.float32)
            for j, (col, kind) in enumerate(zip(self.columns, self.kinds, strict=True)):
                s = frame[col]
                if kind == "numeric":
                    try:
                        out[:, j] = pd.to_numeric(s, errors="raise").to_numpy(
                            dtype=np.float64, na_value=np.nan
                        )
                    except (ValueError, TypeError):
                        raise ParameterError(
                            f"column {col!r} was numeric in training but holds {s.dtype} values"
                        ) from None
                elif kind == "datetime":
                    ts = pd.to_datetime(s)
                    vals = ts.astype("int64").to_numpy().astype(np.float64) / 1e9
                    vals[ts.isna().to_numpy()] = np.nan
                    out[:, j] = vals
                else:
                    index = self._index[col]
                    out[:, j] = [index.get(_plain(v), np.nan) for v in s.tolist()]
            return out
        if self.from_frame:
            arr = _as_array(features)
        else:
            arr = _as_array(features)
        if arr.shape[1] != len(self.columns):
            raise ParameterError(
                f"features has {arr.shape[1]} columns: the model was trained on "
                f"{len(self.columns)} ({self.columns[:5]}...)"
            )
        return arr

    def spec(self) -> dict[str, Any]:
        return {
            "columns": self.columns,
            "kinds": self.kinds,
            "categories": self.categories,
            "from_frame": self.from_frame,
        }

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> ColumnEncoder:
        return cls(spec["columns"], spec["kinds"], spec["categories"], spec["from_frame"])


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return value


def _as_array(features: Any) -> np.ndarray:
    if features is None:
        raise ParameterError("features is None: expected a DataFrame or an array (n, n_features)")
    arr = np.asarray(features)
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.bool_)
    ):
        raise ParameterError(
            f"features has dtype {arr.dtype}: pass a pandas DataFrame for non-numeric columns"
        )
    if arr.ndim != 2:
        raise ParameterError(f"features has shape {arr.shape}: expected (n_samples, n_features)")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ParameterError(f"features has shape {arr.shape}: no rows or columns")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    if np.isinf(arr).any():
        raise ParameterError("features holds infinite values (NaN is read as missing, inf is not)")
    return arr


# -- metrics -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Metric:
    """A metric on raw predictions: probabilities, values or ranking scores.

    ``score`` is always "higher is better" (losses negated); ``value`` is the metric as people
    quote it.
    """

    name: str
    greater_is_better: bool
    fn: Callable[..., float]
    k: int | None = None

    def value(self, y: np.ndarray, raw: np.ndarray, groups: np.ndarray | None = None) -> float:
        if groups is not None:
            return float(self.fn(y, raw, groups))
        return float(self.fn(y, raw))

    def score(self, y: np.ndarray, raw: np.ndarray, groups: np.ndarray | None = None) -> float:
        v = self.value(y, raw, groups)
        return v if self.greater_is_better else -v

    def to_value(self, score: float) -> float:
        return score if self.greater_is_better else -score


def make_metric(name: str, k: int | None, n_classes: int | None) -> Metric:
    from sklearn import metrics as skm

    def _probs(raw: np.ndarray) -> np.ndarray:
        p = np.clip(np.asarray(raw, dtype=np.float64), 1e-15, 1.0)
        return p / p.sum(axis=1, keepdims=True)

    labels = None if n_classes is None else np.arange(n_classes)
    table: dict[str, tuple[bool, Callable[..., float]]] = {
        "accuracy": (True, lambda y, r: skm.accuracy_score(y, np.argmax(r, axis=1))),
        "balanced_accuracy": (
            True,
            lambda y, r: skm.balanced_accuracy_score(y, np.argmax(r, axis=1)),
        ),
        "f1_weighted": (
            True,
            lambda y, r: skm.f1_score(
                y, np.argmax(r, axis=1), average="weighted", labels=labels, zero_division=0
            ),
        ),
        "f1_macro": (
            True,
            lambda y, r: skm.f1_score(
                y, np.argmax(r, axis=1), average="macro", labels=labels, zero_division=0
            ),
        ),
        "roc_auc": (True, lambda y, r: _roc_auc(y, _probs(r), labels)),
        "log_loss": (False, lambda y, r: skm.log_loss(y, _probs(r), labels=labels)),
        "r2": (True, lambda y, r: skm.r2_score(y, r)),
        "rmse": (False, lambda y, r: float(np.sqrt(np.mean((np.asarray(r) - y) ** 2)))),
        "mae": (False, lambda y, r: float(np.mean(np.abs(np.asarray(r) - y)))),
        "ndcg": (True, lambda y, r, g: ranking_metric("ndcg", y, r, g, k or 10)),
        "recall": (True, lambda y, r, g: ranking_metric("recall", y, r, g, k or 10)),
        "map": (True, lambda y, r, g: ranking_metric("map", y, r, g, k or 10)),
    }
    greater, fn = table[name]
    return Metric(name if k is None else f"{name}@{k}", greater, fn, k)


def _roc_auc(y: np.ndarray, p: np.ndarray, labels: np.ndarray | None) -> float:
    from sklearn import metrics as skm

    if p.shape[1] == 2:
        return float(skm.roc_auc_score(y, p[:, 1]))
    return float(skm.roc_auc_score(y, p, multi_class="ovr", average="weighted", labels=labels))


# -- folds -------------------------------------------------------------------------------------
def make_folds(
    task: str, y: np.ndarray, n_folds: int, seed: int, groups: np.ndarray | None = None
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified K-fold (classification), K-fold (regression), group K-fold (ranking)."""
    from sklearn.model_selection import GroupKFold, KFold, StratifiedKFold

    n = len(y)
    if task == "recommendation":
        assert groups is not None
        n_groups = np.unique(groups).size
        if n_groups < n_folds:
            raise ParameterError(
                f"cv_folds={n_folds} needs at least {n_folds} groups (users); got {n_groups}"
            )
        rng = np.random.default_rng(seed)
        uniq = np.unique(groups)
        perm = {g: i for i, g in enumerate(rng.permutation(uniq))}
        shuffled = np.array([perm[g] for g in groups])
        return list(GroupKFold(n_splits=n_folds).split(np.zeros(n), y, shuffled))
    if n < 2 * n_folds:
        raise ParameterError(f"cv_folds={n_folds} needs at least {2 * n_folds} rows; got {n}")
    if task == "classification":
        counts = np.bincount(y)
        if counts.min() < n_folds:
            rare = int(np.argmin(counts))
            raise ParameterError(
                f"class index {rare} has {counts.min()} rows, fewer than cv_folds={n_folds}; "
                "lower cv_folds or give more rows of that class"
            )
        splitter = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
        return list(splitter.split(np.zeros(n), y))
    return list(KFold(n_splits=n_folds, shuffle=True, random_state=seed).split(np.zeros(n)))


# -- feature engineering -----------------------------------------------------------------------
@dataclass
class FeatureEngineering:
    """Products of the most informative columns, then a selection of columns.

    ``pairs`` are column index pairs whose products are appended (squares when ``a == b``);
    ``keep`` indexes the columns of ``[x, products]`` that the model sees (None: all).
    """

    pairs: list[tuple[int, int]]
    keep: list[int] | None

    def transform(self, x: np.ndarray) -> np.ndarray:
        if self.pairs:
            a = np.array([p[0] for p in self.pairs])
            b = np.array([p[1] for p in self.pairs])
            x = np.concatenate([x, x[:, a] * x[:, b]], axis=1)
        if self.keep is not None:
            x = x[:, self.keep]
        return np.ascontiguousarray(x, dtype=np.float32)

    def n_outputs(self, n_inputs: int) -> int:
        return len(self.keep) if self.keep is not None else n_inputs + len(self.pairs)

    def spec(self) -> dict[str, Any]:
        return {"pairs": [list(p) for p in self.pairs], "keep": self.keep}

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> FeatureEngineering:
        return cls([(int(a), int(b)) for a, b in spec["pairs"]], spec["keep"])

    def source_columns(self, j: int, n_inputs: int) -> tuple[int, ...]:
        """Input columns behind output column ``j`` (two for a product)."""
        full = self.keep[j] if self.keep is not None else j
        if full < n_inputs:
            return (full,)
        a, b = self.pairs[full - n_inputs]
        return (a,) if a == b else (a, b)


#: rows mutual information is estimated on at most (a seeded subsample)
MI_ROWS = 1500


def mutual_information(
    x: np.ndarray, y: np.ndarray, task: str, categorical: list[int], seed: int
) -> np.ndarray:
    """Mutual information of each column with the target (NaN filled with the median)."""
    from sklearn.feature_selection import mutual_info_classif, mutual_info_regression

    x = np.array(x, dtype=np.float64, copy=True)
    med = np.nanmedian(np.where(np.isnan(x).all(axis=0), 0.0, x), axis=0)
    rows, cols = np.nonzero(np.isnan(x))
    x[rows, cols] = np.nan_to_num(med[cols])
    mask = np.zeros(x.shape[1], dtype=bool)
    mask[categorical] = True
    rng = np.random.default_rng(seed)
    if len(x) > MI_ROWS:  # a subsample ranks columns well enough and keeps this cheap
        idx = rng.choice(len(x), MI_ROWS, replace=False)
        x, y = x[idx], y[idx]
    fn = mutual_info_classif if task == "classification" else mutual_info_regression
    return np.asarray(fn(x, y, discrete_features=mask, random_state=seed, n_neighbors=3))


def plan_feature_engineering(
    mi: np.ndarray,
    *,
    polynomial: bool,
    interactions: bool,
    keep_fraction: float,
    categorical: list[int],
    top: int = 8,
) -> FeatureEngineering:
    """Products among the ``top`` most informative numeric columns, then keep the best share.

    The kept columns are ranked by the mutual information of their inputs (a product by the
    mean of its two inputs'), so selection never needs the target again.
    """
    n = len(mi)
    numeric = [j for j in np.argsort(-mi, kind="stable") if j not in set(categorical)][:top]
    pairs: list[tuple[int, int]] = []
    if polynomial or interactions:
        for i, a in enumerate(numeric):
            for b in numeric[i:]:
                if a == b and not polynomial:
                    continue
                pairs.append((int(min(a, b)), int(max(a, b))))
    keep = None
    if keep_fraction < 1.0:
        rank = list(mi) + [(mi[a] + mi[b]) / 2 for a, b in pairs]
        m = max(1, int(round(keep_fraction * (n + len(pairs)))))
        keep = sorted(int(j) for j in np.argsort(-np.asarray(rank), kind="stable")[:m])
    return FeatureEngineering(pairs, keep)
