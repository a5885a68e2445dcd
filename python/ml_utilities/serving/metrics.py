"""Prometheus metrics of the prediction service, in one registry (:data:`REGISTRY`).

The specification's names ("Métriques exposées Prometheus") where they concern serving, plus
the batcher's own:

- ``ml_model_inference_duration_seconds`` (histogram, labels model and version): request
  time, from validation to result.
- ``ml_model_prediction_count_total`` (counter, labels model, version, cache hit/miss): rows
  predicted.
- ``ml_model_accuracy_score`` (gauge): the loaded version's validation accuracy (r2 for
  regression).
- ``ml_model_memory_usage_bytes`` (gauge): size of the loaded model's weights or trees.
- ``ml_gpu_utilization_percentage`` (gauge): declared, set only where a GPU is used and NVML
  reports it (never on a CPU machine).
- ``ml_serving_queue_time_seconds`` (histogram, label model): time a row waited in the
  batcher's queue before its batch ran.
- ``ml_serving_batch_size`` (histogram, label model): rows per model call of the batcher.
- ``ml_serving_requests_total`` (counter, labels model and outcome: ok, overloaded, timeout,
  bad_input, not_found, error).
- ``ml_serving_cache_requests_total`` (counter, label result: hit/miss): result-cache lookups.
- ``ml_serving_models_loaded`` (gauge): models held in the model cache.
- ``ml_serving_connections_open`` (gauge): connections the HTTP front end holds (updated on
  its clock tick, at most a second old).
- ``ml_serving_connections_closed_total`` (counter, label reason: ``limit``, ``header_timeout``,
  ``body_timeout``): connections the front end refused over its cap, or answered 408 and
  closed because the request's headers or body missed their deadline.

The ``model`` label takes the names of the models the service has loaded, and ``_unknown``
for every request whose model could not be found or loaded (names sent by clients cannot
make new labels).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["REGISTRY", "ServingMetrics", "metrics", "observe_many", "render"]

REGISTRY = CollectorRegistry(auto_describe=True)

_LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.002,
    0.003,
    0.005,
    0.0075,
    0.01,
    0.015,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
_QUEUE_BUCKETS = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.1, 1.0)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class ServingMetrics:
    """The service's collectors, registered once in ``registry``."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.inference_duration = Histogram(
            "ml_model_inference_duration_seconds",
            "Time to answer a prediction request, validation to result (seconds)",
            ["model", "version"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.prediction_count = Counter(
            "ml_model_prediction_count",
            "Rows predicted",
            ["model", "version", "cache"],
            registry=registry,
        )
        self.accuracy = Gauge(
            "ml_model_accuracy_score",
            "Validation accuracy (classification) or r2 (regression) of the loaded version",
            ["model", "version"],
            registry=registry,
        )
        self.memory = Gauge(
            "ml_model_memory_usage_bytes",
            "Bytes of the loaded model's artifact files",
            ["model", "version"],
            registry=registry,
        )
        self.gpu_utilization = Gauge(
            "ml_gpu_utilization_percentage",
            "GPU utilisation reported by NVML (absent where no GPU is used)",
            ["device"],
            registry=registry,
        )
        self.queue_time = Histogram(
            "ml_serving_queue_time_seconds",
            "Time a row waited in the dynamic batcher's queue before its batch ran (seconds)",
            ["model"],
            buckets=_QUEUE_BUCKETS,
            registry=registry,
        )
        self.batch_size = Histogram(
            "ml_serving_batch_size",
            "Rows per model call of the dynamic batcher (observed once per row's batch)",
            ["model"],
            buckets=_BATCH_BUCKETS,
            registry=registry,
        )
        self.requests = Counter(
            "ml_serving_requests",
            "Prediction requests by outcome",
            ["model", "outcome"],
            registry=registry,
        )
        self.cache = Counter(
            "ml_serving_cache_requests",
            "Result cache lookups",
            ["result"],
            registry=registry,
        )
        self.models_loaded = Gauge(
            "ml_serving_models_loaded", "Models held in the model cache", registry=registry
        )
        self.connections_open = Gauge(
            "ml_serving_connections_open",
            "Connections held by the HTTP front end (sampled on its clock tick)",
            registry=registry,
        )
        self.connections_closed = Counter(
            "ml_serving_connections_closed",
            "Connections the HTTP front end refused over its cap (limit) or answered 408 and "
            "closed (header_timeout, body_timeout)",
            ["reason"],
            registry=registry,
        )


metrics = ServingMetrics()


def render() -> bytes:
    """The registry in Prometheus' text exposition format."""
    return generate_latest(REGISTRY)


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
