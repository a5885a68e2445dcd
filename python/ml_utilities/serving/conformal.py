"""Split-conformal prediction: intervals for regression, prediction sets for classification.

Calibration (Vovk et al.; Angelopoulos & Bates, "A Gentle Introduction to Conformal
Prediction", 2021): on ``n`` calibration rows the model never trained on, compute a
non-conformity score per row, and take ``q`` = the ``ceil((n + 1)(1 - alpha)) / n`` empirical
quantile of the scores. For a new row exchangeable with the calibration rows:

- regression, score ``|y - f(x)|``: the interval ``[f(x) - q, f(x) + q]`` holds ``y`` with
  probability at least ``1 - alpha``;
- classification, score ``1 - p_y(x)`` (one minus the probability given to the true class):
  the set ``{k : p_k(x) >= 1 - q}`` holds the true class with probability at least
  ``1 - alpha``.

The guarantee is marginal (over rows), and needs calibration rows that played no part in
training; rows used for early stopping give a slightly optimistic ``q``.
"""

from __future__ import annotations

import math

import numpy as np

from ..exceptions import ParameterError

__all__ = ["SplitConformal"]


class SplitConformal:
    """Split-conformal calibration of one model.

    Parameters
    ----------
    task : {"classification", "regression"}
    confidence : float in (0, 1)
        Target coverage ``1 - alpha`` (0.9 gives 90 % intervals or sets).
    """

    def __init__(self, task: str, confidence: float = 0.9) -> None:
        if task not in ("classification", "regression"):
            raise ParameterError(f"task={task!r}: expected 'classification' or 'regression'")
        if not 0.0 < float(confidence) < 1.0:
            raise ParameterError(f"confidence_level={confidence!r}: expected a number in (0, 1)")
        self.task = task
        self.confidence = float(confidence)
        self.quantile: float | None = None
        self.n_calibration = 0

    def fit(self, raw: np.ndarray, y: np.ndarray) -> SplitConformal:
        """Calibrate on the model's raw outputs for the calibration rows.

        Parameters
        ----------
        raw : ndarray
            ``(n,)`` predicted values (regression) or ``(n, n_classes)`` probabilities.
        y : ndarray, shape (n,)
            True values, or true class indices ``0..n_classes-1``.
        """
        raw = np.asarray(raw, dtype=np.float64)
        y = np.asarray(y)
        n = len(y)
        if n == 0 or len(raw) != n:
            raise ParameterError(
                f"calibration needs as many outputs as labels, got {len(raw)} and {n}"
            )
        if self.task == "regression":
            scores = np.abs(y.astype(np.float64) - raw.reshape(n))
        else:
            scores = 1.0 - raw[np.arange(n), y.astype(np.int64)]
        level = math.ceil((n + 1) * self.confidence) / n
        if level > 1.0:
            # too few rows for this confidence: the interval is unbounded (the honest answer)
            self.quantile = math.inf
        else:
            self.quantile = float(np.quantile(scores, level, method="higher"))
        self.n_calibration = n
        return self

    def intervals(self, values: np.ndarray) -> np.ndarray:
        """``(n, 2)`` lower and upper bounds around predicted ``values`` ``(n,)``."""
        q = self._q()
        v = np.asarray(values, dtype=np.float64).reshape(-1)
        return np.stack([v - q, v + q], axis=1)

    def sets(self, probabilities: np.ndarray) -> list[list[int]]:
        """Class indices in each row's prediction set (never empty: the top class is kept)."""
        q = self._q()
        p = np.asarray(probabilities, dtype=np.float64)
        keep = p >= 1.0 - q
        keep[np.arange(len(p)), np.argmax(p, axis=1)] = True
        return [np.flatnonzero(row).tolist() for row in keep]

    def _q(self) -> float:
        if self.quantile is None:
            raise ParameterError("this conformal predictor is not calibrated yet: call fit")
        return self.quantile
