"""Drift detection: live rows (and predictions) against a reference sample, as one score in [0, 1].

:class:`DriftDetector` compares a window of live rows with the reference it was built from and
returns a :class:`DriftReport`; :class:`DriftMonitor` keeps a sliding window of live rows (a
bounded ring buffer), scores it every ``step`` rows and raises an alarm with hysteresis.

What is measured (SciPy and scikit-learn do the statistics; nothing here is a hand-rolled test):

- per feature: the population stability index (:func:`population_stability_index`, 10
  reference-quantile bins), the two-sample Kolmogorov-Smirnov test (:func:`scipy.stats.ks_2samp`:
  statistic D, the largest gap between the two empirical CDFs, and its p-value) and the
  Wasserstein distance (:func:`scipy.stats.wasserstein_distance`) divided by the reference's
  interquartile range (its standard deviation where the IQR is 0), so it is unit-free;
- all features together: a classifier two-sample test. The live rows and an equal-size seeded
  draw of reference rows are told apart by a logistic regression (scikit-learn) on the
  reference-standardised features and their squares (so a change of spread is seen as well as a
  change of mean), 3-fold cross-validated with identical rows kept in one fold; the out-of-fold
  scores give the ROC AUC and its one-sided p-value (:func:`scipy.stats.mannwhitneyu`:
  U / (n1 n2) is the AUC);
- the predictions, where the detector has reference predictions and the call gives live ones:
  float predictions (one column, or one per output) by KS and PSI like a feature; integer, boolean
  or text predictions are class labels, compared by their class frequencies (chi-square test of
  the 2 x classes table, :func:`scipy.stats.chi2_contingency`; the total variation distance, i.e.
  the share of predictions that would have to change class to restore the reference mix; PSI).

The drift score
---------------
``score = max(classifier, features, prediction)``, each term an effect size in [0, 1] that
counts only when its test is significant at ``alpha`` (0 otherwise), so a window without drift
scores 0 almost always, whatever its size:

- ``classifier`` = 2 * AUC - 1 of the classifier test (its Gini; 0: live rows cannot be told from
  reference rows, 1: they are perfectly separable), if its p-value < ``alpha``;
- ``features`` = the largest KS statistic D among the features whose KS p-value is below
  ``alpha / n_features`` (Bonferroni);
- ``prediction`` = the KS D of the predictions (largest over outputs, Bonferroni over outputs) or,
  for labels, the total variation distance of the class frequencies, if significant at ``alpha``.

**What 0.3 (the default threshold) means**: the live rows are told apart from reference rows
with a cross-validated ROC AUC of 0.65 (a random live row looks "more live" than a random
reference row 65% of the time), or one feature's distribution (or the predictions') has moved so
far that at some value the share of rows below it differs by 30 percentage points, or 30% of the
predicted labels would have to change class to restore the reference mix. Measured on windows of
500 rows of 30 independent standard-normal features: a mean shift of 0.75 standard deviations in
one feature (or 0.5 in three), or one feature's spread doubled (or 1.5 times on three), scores
about 0.3; a shift of 0.5 standard deviations in one feature about 0.2. Windows of 500 rows
without drift score exactly 0 in 94% of windows and at most 0.14 over 400 windows of GTZAN genre
features and 400 of Gaussian data (``benchmarks/bench_drift.py``; ``tests/monitoring`` asserts
it on 200 of each). ``drifted`` is ``score > threshold``.

Cost: one :meth:`DriftDetector.score` of 500 rows x 30 features against 5,000 reference rows
takes about 0.07 s on one core (one BLAS/OpenMP thread; 0.12 s with GTZAN's 53 features), most
of it the per-feature statistics (KS, Wasserstein, PSI), 0.015 s the classifier test.

Why not Evidently or alibi-detect (both evaluated on paper, neither installed)
-----------------------------------------------------------------------------
- Evidently (Apache-2.0) computes the same per-column tests (KS, chi-square, PSI, Wasserstein)
  on pandas frames, but is a batch report tool: its reports are HTML-first (plotly) with a JSON
  export, it has no streaming monitor object, and it pulls a large dependency tree (plotly,
  statsmodels, nltk, pydantic, a web UI stack: litestar, uvicorn, watchdog, typer, rich,
  telemetry, dynaconf, cryptography, fsspec, pyarrow, ...) for statistics SciPy already has.
- alibi-detect is licensed under the Business Source License 1.1 since 0.11 (not open source for
  production use) and its core install still requires ``numpy<2`` (this project runs NumPy 2),
  with opencv-python, Pillow, matplotlib and more. TensorFlow was a pinned core requirement
  (``<2.6`` in 2021) until it became an optional extra in 0.10, but its learned detectors
  (classifier, MMD, LSDD) still need TensorFlow or PyTorch. Its KS/Chi2 detectors are the SciPy
  tests we call directly.

A low-layer unit: NumPy, SciPy and scikit-learn only (imported when first used, so importing
this module is cheap), and :mod:`ml_utilities.exceptions`.
"""

from __future__ import annotations

import hashlib
import math
import numbers
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..exceptions import ParameterError

__all__ = [
    "MIN_ROWS",
    "DriftDetector",
    "DriftMonitor",
    "DriftReport",
    "FeatureDrift",
    "PredictionDrift",
    "population_stability_index",
]

#: the fewest rows a reference or a scored window may have (the 3-fold classifier test needs a
#: few rows of each class in every fold; below ten rows no test has power at alpha = 0.01)
MIN_ROWS = 10
#: how many features a report lists in ``top_features``
TOP_FEATURES = 5
#: how many (time, score) pairs a monitor keeps in ``history``
HISTORY = 1000
#: folds of the classifier two-sample test
_CV_FOLDS = 3
#: standardised values are clipped to +-this before squaring (one wild row cannot dominate)
_Z_CLIP = 8.0


# ------------------------------------------------------------------------------------------------
# population stability index (numpy only; the pipeline's validation imports it from here)


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float | np.floating):
        return bool(np.isnan(value))
    if isinstance(value, np.datetime64 | np.timedelta64):
        return bool(np.isnat(value))
    # pandas' NA and NaT, without importing pandas
    return type(value).__name__ in ("NAType", "NaTType")


def _psi_values(values: Any) -> tuple[np.ndarray, bool]:
    """(values without missing ones, numeric?) with the dtype rules of ``pandas.Series``:
    numbers and booleans are numeric, text, categories, dates and mixed objects are not."""
    if isinstance(values, str | bytes):
        values = [values]
    elif isinstance(values, Mapping):  # pandas reads a dict's values
        values = list(values.values())
    elif not hasattr(values, "dtype"):
        values = list(values) if isinstance(values, Iterable) else [values]
    dtype = getattr(values, "dtype", None)
    if dtype is not None:
        if np.ndim(values) > 1:
            raise ParameterError(f"values of shape {np.shape(values)}: expected one dimension")
        numeric = getattr(dtype, "kind", "O") in "biufc"
        if isinstance(dtype, np.dtype):
            arr = np.asarray(values).ravel()
            if arr.dtype.kind in "fc":
                arr = arr[~np.isnan(arr)]
            elif arr.dtype.kind in "mM":
                arr = arr[~np.isnat(arr)]
            elif arr.dtype.kind == "O":
                arr = arr[~np.fromiter(map(_is_missing, arr), bool, arr.size)]
        else:  # a pandas extension array (nullable integers, categories, strings, ...)
            arr = np.asarray(values, dtype=object).ravel()
            arr = arr[~np.fromiter(map(_is_missing, arr), bool, arr.size)]
        return arr, numeric
    items = values
    kept = [v for v in items if not _is_missing(v)]
    arr = np.empty(len(kept), dtype=object)
    arr[:] = kept
    is_bool = [isinstance(v, bool | np.bool_) for v in kept]
    real = [isinstance(v, numbers.Real) and not b for v, b in zip(kept, is_bool, strict=True)]
    # pandas infers bool (numeric) for all-boolean lists, but object for booleans with missing
    # values; int64/float64 for real numbers, with or without missing values
    numeric = (all(is_bool) and len(kept) == len(items)) or all(real)
    return arr, numeric


def population_stability_index(reference: Any, current: Any, bins: int = 10) -> float:
    """PSI of ``current`` against ``reference``: numbers in the reference's quantile bins,
    anything else by category. 0 means the same distribution; above 0.2 is a shift that
    practitioners usually act on.

    ``sum((q - p) * ln(q / p))`` over the bins (shares clipped at 1e-6); missing values (None,
    NaN, NaT) are left out and either side empty gives NaN. The bins are the ``bins``-quantiles
    of the reference (duplicates merged, the outer edges open); values are numeric when both
    sides are numbers or booleans (the dtype rules of ``pandas.Series``), otherwise each distinct
    ``str(value)`` is a category.
    """
    ref, ref_numeric = _psi_values(reference)
    cur, cur_numeric = _psi_values(current)
    if len(ref) == 0 or len(cur) == 0:
        return float("nan")
    if ref_numeric and cur_numeric:
        ref = np.asarray(ref, dtype=float)
        cur = np.asarray(cur, dtype=float)
        edges = np.unique(np.quantile(ref, np.linspace(0, 1, bins + 1)))
        if len(edges) < 2:
            edges = np.array([-np.inf, np.inf])
        edges[0], edges[-1] = -np.inf, np.inf
        p = np.histogram(ref, edges)[0].astype(float)
        q = np.histogram(cur, edges)[0].astype(float)
    else:
        ref_s, cur_s = ref.astype(str), cur.astype(str)
        cats = np.union1d(ref_s, cur_s)
        p = np.zeros(len(cats))
        q = np.zeros(len(cats))
        u, c = np.unique(ref_s, return_counts=True)
        p[np.searchsorted(cats, u)] = c
        u, c = np.unique(cur_s, return_counts=True)
        q[np.searchsorted(cats, u)] = c
    p = np.clip(p / p.sum(), 1e-6, None)
    q = np.clip(q / q.sum(), 1e-6, None)
    return float(np.sum((q - p) * np.log(q / p)))


# ------------------------------------------------------------------------------------------------
# reports


def _json_float(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


@dataclass(frozen=True)
class FeatureDrift:
    """One feature (or one prediction output) of a window against the reference.

    ``wasserstein`` is the Wasserstein distance divided by the reference's IQR (its standard
    deviation where the IQR is 0); ``drifted``: the KS p-value is below the Bonferroni-corrected
    ``alpha``."""

    name: str
    ks_statistic: float
    ks_pvalue: float
    psi: float
    wasserstein: float
    drifted: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ks_statistic": _json_float(self.ks_statistic),
            "ks_pvalue": _json_float(self.ks_pvalue),
            "psi": _json_float(self.psi),
            "wasserstein": _json_float(self.wasserstein),
            "drifted": bool(self.drifted),
        }


@dataclass(frozen=True)
class PredictionDrift:
    """The predictions of a window against the reference predictions.

    ``kind`` is ``"continuous"`` (float predictions: ``statistic`` is the KS D and ``pvalue`` its
    p-value, of the most drifted output; ``outputs`` has every output) or ``"labels"``
    (``statistic`` is the total variation distance of the class frequencies, ``pvalue`` the
    chi-square test's; the shares are per class). ``psi`` is the largest PSI over outputs."""

    kind: str
    statistic: float
    pvalue: float
    psi: float
    drifted: bool
    outputs: tuple[FeatureDrift, ...] = ()
    reference_shares: dict[str, float] = field(default_factory=dict)
    live_shares: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "statistic": _json_float(self.statistic),
            "pvalue": _json_float(self.pvalue),
            "psi": _json_float(self.psi),
            "drifted": bool(self.drifted),
            "outputs": [o.to_dict() for o in self.outputs],
            "reference_shares": {k: float(v) for k, v in self.reference_shares.items()},
            "live_shares": {k: float(v) for k, v in self.live_shares.items()},
        }


@dataclass(frozen=True)
class DriftReport:
    """The result of one :meth:`DriftDetector.score`.

    ``score`` in [0, 1] is ``max(components.values())`` (see the module docstring for what it
    means); ``drifted`` is ``score > threshold``. ``components``: ``classifier`` (2 * AUC - 1 of
    the classifier test, 0 unless significant), ``features`` (the largest significant per-feature
    KS D) and ``prediction`` (0 without predictions). ``features`` lists every feature, most
    drifted first (by KS statistic); ``top_features`` is its head."""

    score: float
    drifted: bool
    threshold: float
    n_rows: int
    n_reference: int
    components: dict[str, float]
    classifier_auc: float
    classifier_pvalue: float
    features: tuple[FeatureDrift, ...]
    prediction: PredictionDrift | None = None

    @property
    def top_features(self) -> tuple[FeatureDrift, ...]:
        """The most drifted features (at most five), with their statistics."""
        return self.features[:TOP_FEATURES]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-safe values (non-finite numbers become None)."""
        return {
            "score": float(self.score),
            "drifted": bool(self.drifted),
            "threshold": float(self.threshold),
            "n_rows": int(self.n_rows),
            "n_reference": int(self.n_reference),
            "components": {k: float(v) for k, v in self.components.items()},
            "classifier_auc": _json_float(self.classifier_auc),
            "classifier_pvalue": _json_float(self.classifier_pvalue),
            "top_features": [f.to_dict() for f in self.top_features],
            "features": [f.to_dict() for f in self.features],
            "prediction": None if self.prediction is None else self.prediction.to_dict(),
        }


# ------------------------------------------------------------------------------------------------
# the detector


def _check_fraction(name: str, value: Any, *, low_open: bool = True) -> float:
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if ok and (0 < value < 1 if low_open else 0 <= value < 1):
        return float(value)
    bound = "0 < x < 1" if low_open else "0 <= x < 1"
    raise ParameterError(f"{name}={value!r}: expected a number {bound}")


def _check_int(name: str, value: Any, low: int) -> int:
    if isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= low:
        return int(value)
    raise ParameterError(f"{name}={value!r}: expected an integer >= {low}")


def _rows_with(mask: np.ndarray) -> str:
    rows = np.flatnonzero(mask)
    more = f" and {len(rows) - 5} more" if len(rows) > 5 else ""
    return f"{rows[:5].tolist()}{more}"


def _as_labels(pred: np.ndarray, name: str) -> np.ndarray:
    if pred.dtype.kind == "f":
        if not np.all(np.isfinite(pred)) or not np.all(pred == np.round(pred)):
            raise ParameterError(
                f"{name}: float values that are not whole numbers; the reference predictions "
                "are class labels"
            )
        pred = pred.astype(np.int64)
    if pred.dtype.kind == "O":
        missing = np.fromiter(map(_is_missing, pred), bool, pred.size)
        if missing.any():
            raise ParameterError(
                f"{name} has missing labels (None/NaN) in row(s) {_rows_with(missing)}"
            )
    return pred.astype(str)


class DriftDetector:
    """Scores windows of live rows (and predictions) against a reference sample.

    Parameters
    ----------
    reference_X : array-like of shape (n_rows, n_features)
        Rows of the training distribution (numbers, no NaN/inf; at least ``MIN_ROWS`` rows). A
        DataFrame's column names become ``feature_names``.
    reference_pred : array-like, optional
        The model's predictions for ``reference_X`` (or for other rows of the same
        distribution; any length >= ``MIN_ROWS``): floats, shape (n,) or (n, n_outputs), are
        continuous; integers, booleans or text, shape (n,), are class labels.
    feature_names : sequence of str, optional
        One unique name per column (default ``x0``, ``x1``, ...).
    threshold : float
        ``drifted`` is ``score > threshold`` (0.3: see the module docstring).
    alpha : float
        Significance level of each test family (features are Bonferroni-corrected).
    seed : int
        Seeds the reference subsample and the classifier test; a score depends only on the
        seed, the reference and the window, so equal calls give equal reports.
    max_reference_rows : int
        A larger reference (and its predictions) is subsampled to this many rows, seeded.

    Raises
    ------
    ParameterError
        For a bad shape, NaN/inf values, too few rows or an out-of-range option, naming it.
    """

    def __init__(
        self,
        reference_X: Any,
        reference_pred: Any = None,
        *,
        feature_names: Sequence[str] | None = None,
        threshold: float = 0.3,
        alpha: float = 0.01,
        seed: int = 0,
        max_reference_rows: int = 5000,
    ) -> None:
        self.threshold = _check_fraction("threshold", threshold)
        self.alpha = _check_fraction("alpha", alpha)
        if not isinstance(seed, numbers.Integral) or isinstance(seed, bool) or seed < 0:
            raise ParameterError(f"seed={seed!r}: expected a non-negative integer")
        self.seed = int(seed)
        self.max_reference_rows = _check_int("max_reference_rows", max_reference_rows, MIN_ROWS)
        columns = getattr(reference_X, "columns", None)
        if feature_names is None and columns is not None:
            feature_names = [str(c) for c in columns]
        ref = self._matrix(reference_X, "reference_X", None)
        if ref.shape[0] < MIN_ROWS:
            raise ParameterError(
                f"reference_X has {ref.shape[0]} row(s); expected at least {MIN_ROWS}"
            )
        d = ref.shape[1]
        if feature_names is None:
            names = tuple(f"x{j}" for j in range(d))
        else:
            if isinstance(feature_names, str):
                raise ParameterError(f"feature_names={feature_names!r}: expected a sequence")
            names = tuple(str(n) for n in feature_names)
            if len(names) != d:
                raise ParameterError(
                    f"feature_names has {len(names)} name(s); reference_X has {d} column(s)"
                )
            if len(set(names)) != d:
                dup = sorted({n for n in names if names.count(n) > 1})
                raise ParameterError(f"feature_names: duplicated name(s) {dup}")
        self.feature_names = names
        self.n_features = d
        rng = np.random.default_rng(self.seed)
        if ref.shape[0] > self.max_reference_rows:
            keep = np.sort(rng.choice(ref.shape[0], self.max_reference_rows, replace=False))
            ref = ref[keep]
        self._ref = np.ascontiguousarray(ref)
        self.n_reference = ref.shape[0]
        # standardisation of the classifier test, and the Wasserstein scale, from the reference
        self._mean = ref.mean(axis=0)
        std = ref.std(axis=0)
        self._std = np.where(std > 0, std, 1.0)
        q1, q3 = np.percentile(ref, [25, 75], axis=0)
        scale = np.where(q3 - q1 > 0, q3 - q1, std)
        self._w_scale = np.where(scale > 0, scale, 1.0)

        self.prediction_kind: str | None = None
        self._ref_pred: np.ndarray | None = None
        if reference_pred is not None:
            pred = np.asarray(reference_pred)
            if pred.ndim == 0 or pred.shape[0] < MIN_ROWS:
                raise ParameterError(
                    f"reference_pred has shape {pred.shape}; expected at least {MIN_ROWS} rows"
                )
            if pred.dtype.kind == "f":
                self.prediction_kind = "continuous"
                pred = self._matrix(pred, "reference_pred", None, allow_1d=True)
            elif pred.dtype.kind in "biuOUS":
                if pred.ndim != 1:
                    raise ParameterError(
                        f"reference_pred of labels has shape {pred.shape}; expected (n,)"
                    )
                self.prediction_kind = "labels"
                pred = _as_labels(pred, "reference_pred")
            else:
                raise ParameterError(
                    f"reference_pred has dtype {pred.dtype}; expected floats (continuous "
                    "predictions) or integers, booleans or text (class labels)"
                )
            if pred.shape[0] > self.max_reference_rows:
                keep = np.sort(rng.choice(pred.shape[0], self.max_reference_rows, replace=False))
                pred = pred[keep]
            self._ref_pred = pred

    # -- input checks ----------------------------------------------------------------------------

    @staticmethod
    def _matrix(X: Any, name: str, n_features: int | None, *, allow_1d: bool = False) -> np.ndarray:
        try:
            arr = np.asarray(X, dtype=np.float64)
        except (TypeError, ValueError) as err:
            raise ParameterError(f"{name}: expected numbers ({err})") from None
        if arr.ndim == 1 and allow_1d:
            arr = arr[:, None]
        if arr.ndim != 2:
            raise ParameterError(f"{name} has shape {arr.shape}; expected (n_rows, n_columns)")
        if arr.shape[1] == 0:
            raise ParameterError(f"{name} has shape {arr.shape}: no columns")
        if n_features is not None and arr.shape[1] != n_features:
            raise ParameterError(
                f"{name} has {arr.shape[1]} column(s); the reference has {n_features}"
            )
        bad = ~np.isfinite(arr).all(axis=1)
        if bad.any():
            raise ParameterError(f"{name} has NaN or inf values in row(s) {_rows_with(bad)}")
        return arr

    def check_rows(self, X: Any, name: str = "X") -> np.ndarray:
        """``X`` as a float64 (n, n_features) array; ParameterError for a wrong column count or
        names, or NaN/inf values. A DataFrame's columns are matched to ``feature_names`` by
        name."""
        columns = getattr(X, "columns", None)
        if columns is not None:
            cols = [str(c) for c in columns]
            if cols != list(self.feature_names):
                missing = sorted(set(self.feature_names) - set(cols))
                if missing:
                    raise ParameterError(f"{name} lacks column(s) {missing[:10]}")
                X = X[list(self.feature_names)]
        return self._matrix(X, name, self.n_features)

    def check_predictions(self, pred: Any, n_rows: int, name: str = "pred") -> np.ndarray | None:
        """``pred`` in the reference predictions' form, or None; ParameterError when the
        detector has no reference predictions, or for a wrong length, shape or kind."""
        if pred is None:
            return None
        if self._ref_pred is None:
            raise ParameterError(
                f"{name} was given but the detector has no reference_pred to compare it with"
            )
        arr = np.asarray(pred)
        if arr.ndim == 0 or arr.shape[0] != n_rows:
            raise ParameterError(f"{name} has shape {arr.shape}; expected {n_rows} row(s)")
        if self.prediction_kind == "labels":
            if arr.ndim != 1:
                raise ParameterError(f"{name} has shape {arr.shape}; expected ({n_rows},) labels")
            return _as_labels(arr, name)
        out = self._matrix(arr, name, None, allow_1d=True)
        if out.shape[1] != self._ref_pred.shape[1]:
            raise ParameterError(
                f"{name} has {out.shape[1]} output(s); the reference predictions have "
                f"{self._ref_pred.shape[1]}"
            )
        return out

    # -- scoring ---------------------------------------------------------------------------------

    @staticmethod
    def _column(
        ref: np.ndarray, live: np.ndarray, name: str, limit: float, scale: float
    ) -> FeatureDrift:
        from scipy import stats

        # the exact p-value (SciPy's default below 10,000 rows a side) costs twice the
        # asymptotic one, which is accurate from a few dozen rows a side
        method = "exact" if min(len(ref), len(live)) < 100 else "asymp"
        ks = stats.ks_2samp(ref, live, method=method)
        return FeatureDrift(
            name=name,
            ks_statistic=float(ks.statistic),
            ks_pvalue=float(ks.pvalue),
            psi=population_stability_index(ref, live),
            wasserstein=float(stats.wasserstein_distance(ref, live)) / scale,
            drifted=bool(ks.pvalue < limit),
        )

    def _classifier_test(self, live: np.ndarray, rng: np.random.Generator) -> tuple[float, float]:
        """(AUC, one-sided p-value) of telling ``live`` from an equal-size reference draw.

        Identical rows always fall in the same fold: otherwise a row repeated in the live
        window (a cached or replayed request) is learnt in one fold and recognised in another,
        which reads as drift where there is none."""
        from scipy import stats
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        m = min(len(live), self.n_reference)
        if len(live) > m:
            live = live[np.sort(rng.choice(len(live), m, replace=False))]
        ref = self._ref[np.sort(rng.choice(self.n_reference, m, replace=False))]
        rows = np.vstack([ref, live])
        y = np.repeat([0, 1], m)
        # folds by distinct row, stratified by whether a row is live, reference or both
        inverse = np.unique(rows, axis=0, return_inverse=True)[1].reshape(-1)
        n_groups = int(inverse.max()) + 1
        kind = np.zeros(n_groups, dtype=np.int64)
        np.bitwise_or.at(kind, inverse, y + 1)  # 1 reference, 2 live, 3 both
        group_fold = np.empty(n_groups, dtype=np.int64)
        for k in (1, 2, 3):
            members = np.flatnonzero(kind == k)
            group_fold[rng.permutation(members)] = np.arange(len(members)) % _CV_FOLDS
        fold = group_fold[inverse]

        z = np.clip((rows - self._mean) / self._std, -_Z_CLIP, _Z_CLIP)
        features = np.hstack([z, z * z])
        out = np.empty(len(y))
        for k in range(_CV_FOLDS):
            test = fold == k
            train = ~test
            if not test.any():
                continue
            if len(np.unique(y[train])) < 2:  # a degenerate window (almost all rows equal)
                return 0.5, 1.0
            model = make_pipeline(StandardScaler(), LogisticRegression(C=0.2, max_iter=1000))
            model.fit(features[train], y[train])
            out[test] = model.decision_function(features[test])
        mw = stats.mannwhitneyu(out[m:], out[:m], alternative="greater")
        return float(mw.statistic) / (m * m), float(mw.pvalue)

    def _prediction_drift(self, pred: np.ndarray) -> PredictionDrift:
        from scipy import stats

        ref = self._ref_pred
        assert ref is not None
        if self.prediction_kind == "labels":
            cats, ref_counts = np.unique(ref, return_counts=True)
            allc = np.union1d(cats, np.unique(pred))
            table = np.zeros((2, len(allc)))
            table[0, np.searchsorted(allc, cats)] = ref_counts
            u, c = np.unique(pred, return_counts=True)
            table[1, np.searchsorted(allc, u)] = c
            if len(allc) > 1:
                pvalue = float(stats.chi2_contingency(table)[1])
            else:
                pvalue = 1.0
            shares = table / table.sum(axis=1, keepdims=True)
            tvd = float(0.5 * np.abs(shares[0] - shares[1]).sum())
            return PredictionDrift(
                kind="labels",
                statistic=tvd,
                pvalue=pvalue,
                psi=population_stability_index(ref, pred),
                drifted=pvalue < self.alpha,
                reference_shares={str(k): float(v) for k, v in zip(allc, shares[0], strict=True)},
                live_shares={str(k): float(v) for k, v in zip(allc, shares[1], strict=True)},
            )
        k = ref.shape[1]
        names = ["pred"] if k == 1 else [f"pred[{i}]" for i in range(k)]
        outputs = []
        for i in range(k):
            q1, q3 = np.percentile(ref[:, i], [25, 75])
            scale = q3 - q1 if q3 > q1 else float(ref[:, i].std()) or 1.0
            outputs.append(self._column(ref[:, i], pred[:, i], names[i], self.alpha / k, scale))
        outputs.sort(key=lambda f: -f.ks_statistic)
        top = outputs[0]
        return PredictionDrift(
            kind="continuous",
            statistic=top.ks_statistic,
            pvalue=top.ks_pvalue,
            psi=max(o.psi for o in outputs),
            drifted=any(o.drifted for o in outputs),
            outputs=tuple(outputs),
        )

    def score(self, X: Any, pred: Any = None) -> DriftReport:
        """Compare a window of live rows (and, optionally, their predictions) with the reference.

        ``X``: (n_rows, n_features), n_rows >= ``MIN_ROWS``; ``pred``: the model's predictions
        for those rows, in the form of ``reference_pred``. See the module docstring for the
        statistics and the meaning of the score.
        """
        live = self.check_rows(X)
        n = live.shape[0]
        if n < MIN_ROWS:
            raise ParameterError(f"X has {n} row(s); a window needs at least {MIN_ROWS}")
        pred_arr = self.check_predictions(pred, n)
        # the window itself seeds the draws: equal calls give equal reports, and successive
        # windows use different reference draws (so no draw biases a whole stream)
        digest = hashlib.blake2b(np.ascontiguousarray(live).tobytes(), digest_size=8).digest()
        rng = np.random.default_rng([self.seed, int.from_bytes(digest, "little")])

        limit = self.alpha / self.n_features
        features = [
            self._column(
                self._ref[:, j], live[:, j], self.feature_names[j], limit, float(self._w_scale[j])
            )
            for j in range(self.n_features)
        ]
        features.sort(key=lambda f: (-f.ks_statistic, f.ks_pvalue))
        auc, auc_p = self._classifier_test(live, rng)

        components = {
            "classifier": max(0.0, 2.0 * auc - 1.0) if auc_p < self.alpha else 0.0,
            "features": max((f.ks_statistic for f in features if f.drifted), default=0.0),
            "prediction": 0.0,
        }
        prediction = None
        if pred_arr is not None:
            prediction = self._prediction_drift(pred_arr)
            if prediction.drifted:
                components["prediction"] = prediction.statistic
        score = float(min(1.0, max(components.values())))
        return DriftReport(
            score=score,
            drifted=score > self.threshold,
            threshold=self.threshold,
            n_rows=n,
            n_reference=self.n_reference,
            components=components,
            classifier_auc=auc,
            classifier_pvalue=auc_p,
            features=tuple(features),
            prediction=prediction,
        )

    def __repr__(self) -> str:
        pred = f", predictions={self.prediction_kind}" if self.prediction_kind else ""
        return (
            f"DriftDetector(n_reference={self.n_reference}, n_features={self.n_features}"
            f"{pred}, threshold={self.threshold}, alpha={self.alpha}, seed={self.seed})"
        )


# ------------------------------------------------------------------------------------------------
# the monitor


class DriftMonitor:
    """A sliding window of live rows, scored every ``step`` rows, with a hysteresis alarm.

    Parameters
    ----------
    detector : DriftDetector
        Scores each window; its ``threshold`` is the alarm's.
    window : int
        Rows per scored window (>= ``MIN_ROWS``); the rows live in a fixed-size ring buffer.
    step : int, optional
        Score each time this many new rows have arrived once the window is full (default
        ``window``: non-overlapping windows). Scores fall at the same rows however the stream
        is batched.
    clear_threshold : float, optional
        The alarm turns off only when a score falls below this (default ``threshold * 2 / 3``).
    patience : int
        The alarm turns on after this many consecutive scores above the threshold.

    Thread-safe: serving threads may call :meth:`update` concurrently. Rows are added under a
    lock; scoring runs outside it (other threads keep adding rows), and the scores are applied
    to the alarm in the order of their windows.
    """

    def __init__(
        self,
        detector: DriftDetector,
        *,
        window: int = 500,
        step: int | None = None,
        clear_threshold: float | None = None,
        patience: int = 2,
    ) -> None:
        if not isinstance(detector, DriftDetector):
            raise ParameterError(f"detector={detector!r}: expected a DriftDetector")
        self.detector = detector
        self.window = _check_int("window", window, MIN_ROWS)
        self.step = self.window if step is None else _check_int("step", step, 1)
        self.patience = _check_int("patience", patience, 1)
        threshold = detector.threshold
        if clear_threshold is None:
            clear_threshold = threshold * 2 / 3
        ok = isinstance(clear_threshold, numbers.Real) and not isinstance(clear_threshold, bool)
        if not ok or not 0 <= clear_threshold <= threshold:
            raise ParameterError(
                f"clear_threshold={clear_threshold!r}: expected a number in [0, threshold="
                f"{threshold}]"
            )
        self.clear_threshold = float(clear_threshold)

        self._X = np.zeros((self.window, detector.n_features))
        self._has_pred = np.zeros(self.window, dtype=bool)
        ref_pred = detector._ref_pred
        if ref_pred is None:
            self._pred: np.ndarray | None = None
        elif detector.prediction_kind == "labels":
            self._pred = np.empty(self.window, dtype=object)  # labels of any length
        else:
            self._pred = np.zeros((self.window, ref_pred.shape[1]))
        self._pos = 0  # next slot of the ring
        self._rows_seen = 0
        self._next_score_at = self.window
        self._lock = threading.Lock()
        self._applied = threading.Condition(self._lock)
        self._issued = 0  # windows handed out for scoring
        self._done = 0  # windows whose scores were applied
        self._alarm = False
        self._above = 0
        self._last: DriftReport | None = None
        self._history: deque[tuple[float, float]] = deque(maxlen=HISTORY)

    # -- state -----------------------------------------------------------------------------------

    @property
    def alarm(self) -> bool:
        """True while the alarm is on."""
        with self._lock:
            return self._alarm

    @property
    def last(self) -> DriftReport | None:
        """The last applied report (None before the first score)."""
        with self._lock:
            return self._last

    @property
    def history(self) -> list[tuple[float, float]]:
        """(unix time, score) of the last scores (at most 1,000), oldest first."""
        with self._lock:
            return list(self._history)

    @property
    def rows_seen(self) -> int:
        """Live rows received by :meth:`update` so far."""
        with self._lock:
            return self._rows_seen

    # -- updates ---------------------------------------------------------------------------------

    def _write(self, X: np.ndarray, pred: np.ndarray | None) -> None:
        n = X.shape[0]
        if n > self.window:  # only the last `window` rows can still be in a window
            X = X[-self.window :]
            pred = None if pred is None else pred[-self.window :]
            n = self.window
        idx = (self._pos + np.arange(n)) % self.window
        self._X[idx] = X
        if self._pred is not None:
            self._has_pred[idx] = pred is not None
            if pred is not None:
                self._pred[idx] = pred
        self._pos = (self._pos + n) % self.window

    def window_rows(self) -> tuple[np.ndarray, np.ndarray | None]:
        """Copies of the rows in the window now, oldest first (fewer than ``window`` until it
        has filled), and their predictions where every one of them has one."""
        with self._lock:
            X, pred = self._snapshot()
            n = min(self._rows_seen, self.window)
            return X[len(X) - n :].copy(), None if pred is None else pred[len(pred) - n :].copy()

    def _snapshot(self) -> tuple[np.ndarray, np.ndarray | None]:
        order = (self._pos + np.arange(self.window)) % self.window  # oldest first
        pred = None
        if self._pred is not None and self._has_pred.all():
            pred = self._pred[order]
        return self._X[order], pred

    def _apply(self, report: DriftReport) -> None:
        if self._alarm:
            if report.score < self.clear_threshold:
                self._alarm = False
                self._above = 0
        else:
            self._above = self._above + 1 if report.score > self.detector.threshold else 0
            if self._above >= self.patience:
                self._alarm = True
        self._last = report
        self._history.append((time.time(), report.score))

    def update(self, X: Any, pred: Any = None) -> list[DriftReport]:
        """Add live rows (and their predictions) and score every window that they complete.

        ``X``: (n, n_features), or one row (n_features,); ``pred``: their predictions, in the
        form of the detector's ``reference_pred`` (windows with a row lacking a prediction are
        scored without the prediction term). Returns the reports of the windows completed by
        these rows (usually none or one), oldest first. The whole batch is checked before any
        row is added.
        """
        arr = np.asarray(X) if getattr(X, "columns", None) is None else X
        if getattr(arr, "ndim", 2) == 1:  # one row
            arr = np.asarray(arr)[None, :]
            if pred is not None:
                pred = np.asarray(pred)
                if pred.ndim == 0 or self.detector.prediction_kind == "continuous":
                    pred = pred.reshape(1, -1) if pred.ndim else pred[None]
        rows = self.detector.check_rows(arr)
        preds = self.detector.check_predictions(pred, rows.shape[0])
        snapshots = []
        with self._lock:
            start, n = 0, rows.shape[0]
            while start < n:
                take = min(n - start, self._next_score_at - self._rows_seen)
                self._write(
                    rows[start : start + take],
                    None if preds is None else preds[start : start + take],
                )
                self._rows_seen += take
                start += take
                if self._rows_seen == self._next_score_at:
                    snapshots.append(self._snapshot())
                    self._next_score_at += self.step
            first = self._issued
            self._issued += len(snapshots)
        if not snapshots:
            return []
        reports: list[DriftReport] = []
        try:
            for window_X, window_pred in snapshots:
                reports.append(self.detector.score(window_X, window_pred))
        finally:
            with self._applied:
                while self._done != first:
                    self._applied.wait()
                for report in reports:
                    self._apply(report)
                self._done = first + len(snapshots)
                self._applied.notify_all()
        return reports

    def __repr__(self) -> str:
        return (
            f"DriftMonitor(window={self.window}, step={self.step}, patience={self.patience}, "
            f"clear_threshold={self.clear_threshold:.3g}, rows_seen={self.rows_seen}, "
            f"alarm={self.alarm})"
        )
