"""Model monitoring: drift of live traffic against a model's reference data.

:class:`DriftDetector` scores a window of live rows (and the model's predictions for them)
against a reference sample: per-feature PSI, Kolmogorov-Smirnov and scaled Wasserstein
statistics, a classifier two-sample test over all features and a prediction-drift test, folded
into one drift score in [0, 1] (0.3, the default threshold, is a noticeable shift; see
:mod:`ml_utilities.monitoring.drift`). :class:`DriftMonitor` keeps a bounded sliding window of
live rows for a serving process, scores it every ``step`` rows and raises an alarm with
hysteresis; it is thread-safe. :func:`population_stability_index` is the one PSI of the package
(the pipeline's data validation uses it too).

A low-layer unit: NumPy, SciPy and scikit-learn only; the pipeline, the serving layer and the
model lifecycle build on it.
"""

from __future__ import annotations

from .drift import (
    MIN_ROWS,
    DriftDetector,
    DriftMonitor,
    DriftReport,
    FeatureDrift,
    PredictionDrift,
    population_stability_index,
)

__all__ = [
    "MIN_ROWS",
    "DriftDetector",
    "DriftMonitor",
    "DriftReport",
    "FeatureDrift",
    "PredictionDrift",
    "population_stability_index",
]
