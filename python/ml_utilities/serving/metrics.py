"""Prometheus metrics of the prediction service, in one registry (:data:`REGISTRY`).

The collectors are defined in :mod:`ml_utilities._metrics` (so that the feature extractor,
AutoML and the lifecycle, below serving in the layers, export theirs in the same registry) and
re-exported here: ``REGISTRY``, ``ServingMetrics``, ``metrics``, ``render``. See that module for
the list of metric names. Serving requires ``prometheus_client`` (the ``serving`` extra):
importing this module without it raises ``ImportError``, as it always has.

Here too: :func:`observe_many`, the batcher's one-call observation of a whole batch's times.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import prometheus_client  # noqa: F401  - serving requires it (its metrics are not optional)

from .._metrics import REGISTRY, ServingMetrics, metrics, render

__all__ = ["REGISTRY", "ServingMetrics", "metrics", "observe_many", "render"]


#: up to this many values, observe_many calls observe() for each
_FEW = 4


def observe_many(child: Any, values: np.ndarray) -> None:
    """Observe every value of ``values`` in one labelled :class:`Histogram` child, as that many
    ``child.observe(v)`` calls would, but with one increment per bucket touched and one of the
    sum (the batcher reports a whole batch's times at once).

    Uses the child's bucket values (``_upper_bounds``, ``_buckets``, ``_sum``); where a
    ``prometheus_client`` version lacks them, it observes the values one by one.
    """
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    if len(values) <= _FEW:  # a handful: one observe() each costs less than the numpy calls
        for v in values.tolist():
            child.observe(v)
        return
    bounds = getattr(child, "_upper_bounds", None)
    buckets = getattr(child, "_buckets", None)
    total = getattr(child, "_sum", None)
    if bounds is None or buckets is None or total is None or len(bounds) != len(buckets):
        for v in values.tolist():
            child.observe(v)
        return
    # observe() counts a value in the first bucket whose bound is >= it (the last is +Inf)
    index = np.searchsorted(np.asarray(bounds, dtype=np.float64), values, side="left")
    counts = np.bincount(np.minimum(index, len(bounds) - 1), minlength=len(bounds))
    total.inc(float(values.sum()))
    for i in np.flatnonzero(counts).tolist():
        buckets[i].inc(int(counts[i]))
