"""Per-row explanations: exact TreeSHAP for gradient-boosted trees, permutation SHAP otherwise.

- XGBoost (``Booster.predict(..., pred_contribs=True)``) and LightGBM
  (``Booster.predict(..., pred_contrib=True)``) compute exact TreeSHAP values (Lundberg et al.,
  2020) in the model's margin space (log-odds for binary classification, per-class raw scores
  for multi-class, the prediction itself for squared-error regression). For a classifier the
  contributions are those of the predicted class.
- Any other model: the ``shap`` library's ``PermutationExplainer`` (antithetic permutation
  sampling of Shapley values) on the model's output (the predicted class's probability, or the
  regression value), with features outside a coalition drawn from a background of up to
  ``background_size`` rows of the data registered with the model (its held-out rows). With
  ``max_evals = 2 * n_features + 1`` (the default) each row costs one forward and one reverse
  permutation, i.e. ``(2 * n_features + 1) * background_size`` model evaluations. The values
  are estimates that add up (with the background's mean output) to the row's output.

Each row's explanation is ``{"top_features": [...], "impact": [...]}``: the ``top_k`` features
with the largest absolute contribution, in decreasing order of that magnitude, with their signed
contributions.
"""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["Explainer", "TREE_METHOD", "PERMUTATION_METHOD", "top_features"]

logger = logging.getLogger(__name__)

TREE_METHOD = "tree_shap"
PERMUTATION_METHOD = "permutation_shap"


def top_features(
    contributions: np.ndarray, names: list[str], top_k: int
) -> list[dict[str, list[Any]]]:
    """``[{"top_features": [...], "impact": [...]}]`` for each row of ``(n, n_features)``."""
    out = []
    k = min(int(top_k), contributions.shape[1])
    for row in contributions:
        order = np.argsort(-np.abs(row), kind="stable")[:k]
        out.append(
            {
                "top_features": [names[i] for i in order],
                "impact": [round(float(row[i]), 6) for i in order],
            }
        )
    return out


class Explainer:
    """Feature contributions of one loaded model.

    Parameters
    ----------
    handle : ModelHandle
        The loaded model (its adapter gives the framework's native booster).
    predict_raw : callable
        ``(n, n_features) float32 -> (n, n_classes)`` probabilities or ``(n,)`` values: the
        function the service serves with (used by the permutation method).
    background : ndarray, shape (m, n_features)
        Rows standing in for "feature absent" (permutation method).
    max_evals : int, optional
        Model evaluations per row for the permutation method (default ``2 * n_features + 1``).
    """

    def __init__(
        self,
        handle: Any,
        predict_raw: Callable[[np.ndarray], np.ndarray],
        background: np.ndarray | None,
        *,
        n_features: int,
        max_evals: int | None = None,
        seed: int = 0,
    ) -> None:
        self.handle = handle
        self.predict_raw = predict_raw
        self.n_features = int(n_features)
        self.classification = handle.adapter.task == "classification"
        self.method = (
            TREE_METHOD if handle.framework in ("xgboost", "lightgbm") else (PERMUTATION_METHOD)
        )
        self.background = background
        self.max_evals = int(max_evals or 2 * self.n_features + 1)
        self.seed = int(seed)
        self._shap: Any = None
        self._lock = threading.Lock()

    # -- public ----------------------------------------------------------------------------------
    def contributions(self, x: np.ndarray, predicted: np.ndarray | None = None) -> np.ndarray:
        """``(n, n_features)`` contributions of each feature to each row's output.

        ``predicted`` holds the predicted class index per row (classification); computed when
        not given.
        """
        x = np.ascontiguousarray(x.reshape(len(x), -1), dtype=np.float32)
        if self.classification and predicted is None:
            predicted = np.argmax(self.predict_raw(x), axis=1)
        if self.method == TREE_METHOD:
            return self._tree(x, predicted)
        return self._permutation(x, predicted)

    @property
    def batchable(self) -> bool:
        """Whether :meth:`tree_all` may run through a dynamic batcher: XGBoost's TreeSHAP,
        float32 and computed row by row, so a batch gives each row the values it gets alone."""
        return self.method == TREE_METHOD and self.handle.framework == "xgboost"

    def tree_all(self, x: np.ndarray) -> np.ndarray:
        """TreeSHAP contributions of every output: ``(n, k * n_features)`` with ``k`` the
        classes of a multi-class model, else 1 (the bias column left out)."""
        x = np.ascontiguousarray(x.reshape(len(x), -1), dtype=np.float32)
        n, f = x.shape
        adapter = self.handle.adapter
        if self.handle.framework == "xgboost":
            import xgboost as xgb

            booster = adapter.model.get_booster()
            contrib = np.asarray(booster.predict(xgb.DMatrix(x), pred_contribs=True))
        else:  # LightGBM: (n, k * (f + 1))
            contrib = np.asarray(adapter.booster.predict(x, pred_contrib=True))
        # (n, f + 1) for one output, (n, k, f + 1) or (n, k * (f + 1)) for k classes
        return contrib.reshape(n, -1, f + 1)[:, :, :f].reshape(n, -1)

    @staticmethod
    def pick(all_contributions: np.ndarray, n_features: int, predicted: Any) -> np.ndarray:
        """``(n, n_features)`` from :meth:`tree_all`'s output: each row's predicted class."""
        c = all_contributions.reshape(len(all_contributions), -1, n_features)
        if c.shape[1] == 1:
            return c[:, 0]
        return c[np.arange(len(c)), predicted]

    # -- TreeSHAP ---------------------------------------------------------------------------------
    def _tree(self, x: np.ndarray, predicted: np.ndarray | None) -> np.ndarray:
        return self.pick(self.tree_all(x), x.shape[1], predicted)

    # -- permutation SHAP -------------------------------------------------------------------------
    def _permutation(self, x: np.ndarray, predicted: np.ndarray | None) -> np.ndarray:
        with self._lock:
            if self._shap is None:
                with warnings.catch_warnings():
                    # shap imports matplotlib colormaps through an API matplotlib deprecates
                    warnings.filterwarnings(
                        "ignore", category=PendingDeprecationWarning, module="matplotlib.*"
                    )
                    warnings.filterwarnings("ignore", message="The set_(bad|over|under) function")
                    import shap

                self._shap = shap
        shap = self._shap
        if self.background is None or len(self.background) == 0:
            raise RuntimeError("the permutation explainer needs background rows")
        out = np.empty((len(x), self.n_features), dtype=np.float64)
        groups = (
            [np.arange(len(x))]
            if predicted is None
            else [np.flatnonzero(predicted == k) for k in np.unique(predicted)]
        )
        for rows in groups:
            if len(rows) == 0:
                continue
            if predicted is None:
                f = self._value
            else:
                f = self._class_fn(int(predicted[rows[0]]))
            masker = shap.maskers.Independent(self.background, max_samples=len(self.background))
            explainer = shap.explainers.Permutation(f, masker, seed=self.seed)
            values = explainer(x[rows], max_evals=self.max_evals, silent=True).values
            out[rows] = np.asarray(values).reshape(len(rows), self.n_features)
        return out

    def _value(self, z: np.ndarray) -> np.ndarray:
        return np.asarray(self.predict_raw(np.ascontiguousarray(z, dtype=np.float32))).reshape(-1)

    def _class_fn(self, k: int) -> Callable[[np.ndarray], np.ndarray]:
        def f(z: np.ndarray) -> np.ndarray:
            return np.asarray(self.predict_raw(np.ascontiguousarray(z, dtype=np.float32)))[:, k]

        return f
