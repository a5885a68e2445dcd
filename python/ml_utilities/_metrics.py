"""The library's Prometheus metrics, in one registry (:data:`REGISTRY`).

Defined here, at the bottom of the layers, so that every part of the library exports its own:
the feature extractor, AutoML, the prediction service and the model lifecycle. Serving exposes
the registry at ``/metrics`` (:mod:`ml_utilities.serving.metrics` re-exports what is here).

``prometheus_client`` is optional (the ``serving`` extra): without it, :data:`AVAILABLE` is
false and every collector below is a no-op that accepts the same calls (``labels``,
``observe``, ``inc``, ``dec``, ``set``), so the feature extractor and AutoML work unchanged;
:func:`render` then returns an empty exposition. The prediction service still requires it.

The specification's names ("Métriques exposées Prometheus"):

- ``ml_model_inference_duration_seconds`` (histogram, labels model and version): request
  time, from validation to result.
- ``ml_model_prediction_count_total`` (counter, labels model, version, cache hit/miss): rows
  predicted.
- ``ml_model_accuracy_score`` (gauge, labels model and version): the loaded version's
  validation accuracy (r2 for regression).
- ``ml_feature_extraction_duration_seconds`` (histogram, label method: the
  ``FeatureExtractor`` method, e.g. ``extract_comprehensive_features``; the async methods and
  their ``_sync`` twins share one label): the duration of each call that returned.
- ``ml_automl_trial_duration_seconds`` (histogram, labels family and state: complete,
  pruned, failed, killed, timeout): each finished trial of an AutoML search, observed in the
  process that runs the search.
- ``ml_model_memory_usage_bytes`` (gauge, labels model and version): size of the loaded
  model's weights or trees.
- ``ml_gpu_utilization_percentage`` (gauge, label device): declared, set only where a GPU is
  used and NVML reports it (never on a CPU machine).

The prediction service's own:

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

The model lifecycle's (set by its monitor and its rollouts):

- ``ml_model_drift_score`` (gauge, label model): the latest drift score of the live traffic
  against the reference.
- ``ml_model_drift_alarm`` (gauge, label model): 1 while the drift alarm is on, else 0.
- ``ml_model_rollout_weight`` (gauge, labels model and version): each version's share of the
  traffic, 0 to 1.
- ``ml_model_rollout_step_percent`` (gauge, label model): the rollout's current step, the
  challenger's percentage of the traffic.

Served recommenders' (:mod:`ml_utilities.serving.recommend`):

- ``ml_recommendation_requests_total`` (counter, labels model and outcome).
- ``ml_recommendation_duration_seconds`` (histogram, labels model and cache hit/miss).
- ``ml_recommendation_coverage`` (gauge, label model): the share of the catalogue among the
  items of the recent answers (a window of the last 2,000).
- ``ml_recommendation_popularity_bias`` (gauge, label model): the mean popularity percentile of
  the items in those answers (0.5 is what a uniform draw from the catalogue gives).
- ``ml_recommendation_live_ndcg`` (gauge, label model): ndcg@k of the answers whose outcomes
  (the items the user then played) were reported.
- ``ml_recommendation_pending_interactions`` (gauge, label model): interactions reported
  (``update_user``) since the served generators were last built.

The ``model`` label of serving's metrics takes the names of the models the service has loaded,
and ``_unknown`` for every request whose model could not be found or loaded (names sent by
clients cannot make new labels).
"""

from __future__ import annotations

from typing import Any

try:
    from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
except ImportError:  # the serving extra is not installed: no-op collectors
    AVAILABLE = False
else:
    AVAILABLE = True

__all__ = ["AVAILABLE", "REGISTRY", "Metrics", "ServingMetrics", "metrics", "render"]

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
#: one clip's features take milliseconds to seconds; a catalogue, minutes
_EXTRACTION_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
)
#: a trial takes a fraction of a second (a linear model on a small table) to its timeout
_TRIAL_BUCKETS = (
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
    300.0,
    900.0,
    3600.0,
)


class _NoOp:
    """A collector and its children where ``prometheus_client`` is not installed."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def labels(self, *args: Any, **kwargs: Any) -> _NoOp:
        return self

    def observe(self, amount: float, *args: Any, **kwargs: Any) -> None:
        pass

    def inc(self, amount: float = 1, *args: Any, **kwargs: Any) -> None:
        pass

    def dec(self, amount: float = 1) -> None:
        pass

    def set(self, value: float) -> None:
        pass

    def remove(self, *labelvalues: Any) -> None:
        pass

    def clear(self) -> None:
        pass


if AVAILABLE:
    REGISTRY: Any = CollectorRegistry(auto_describe=True)
    _Histogram: Any = Histogram
    _Counter: Any = Counter
    _Gauge: Any = Gauge
else:
    REGISTRY = None
    _Histogram = _Counter = _Gauge = _NoOp


class Metrics:
    """The library's collectors, registered once in ``registry`` (the attribute names are
    what the rest of the library uses)."""

    def __init__(self, registry: Any = REGISTRY) -> None:
        # -- the specification's model metrics, set by the prediction service
        self.inference_duration = _Histogram(
            "ml_model_inference_duration_seconds",
            "Time to answer a prediction request, validation to result (seconds)",
            ["model", "version"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.prediction_count = _Counter(
            "ml_model_prediction_count",
            "Rows predicted",
            ["model", "version", "cache"],
            registry=registry,
        )
        self.accuracy = _Gauge(
            "ml_model_accuracy_score",
            "Validation accuracy (classification) or r2 (regression) of the loaded version",
            ["model", "version"],
            registry=registry,
        )
        self.memory = _Gauge(
            "ml_model_memory_usage_bytes",
            "Bytes of the loaded model's artifact files",
            ["model", "version"],
            registry=registry,
        )
        self.gpu_utilization = _Gauge(
            "ml_gpu_utilization_percentage",
            "GPU utilisation reported by NVML (absent where no GPU is used)",
            ["device"],
            registry=registry,
        )
        # -- the specification's feature extraction and AutoML metrics
        self.feature_extraction_duration = _Histogram(
            "ml_feature_extraction_duration_seconds",
            "Duration of a FeatureExtractor extraction call, by method (seconds)",
            ["method"],
            buckets=_EXTRACTION_BUCKETS,
            registry=registry,
        )
        self.automl_trial_duration = _Histogram(
            "ml_automl_trial_duration_seconds",
            "Duration of each finished AutoML trial, by model family and final state (seconds)",
            ["family", "state"],
            buckets=_TRIAL_BUCKETS,
            registry=registry,
        )
        # -- the prediction service's own
        self.queue_time = _Histogram(
            "ml_serving_queue_time_seconds",
            "Time a row waited in the dynamic batcher's queue before its batch ran (seconds)",
            ["model"],
            buckets=_QUEUE_BUCKETS,
            registry=registry,
        )
        self.batch_size = _Histogram(
            "ml_serving_batch_size",
            "Rows per model call of the dynamic batcher (observed once per row's batch)",
            ["model"],
            buckets=_BATCH_BUCKETS,
            registry=registry,
        )
        self.requests = _Counter(
            "ml_serving_requests",
            "Prediction requests by outcome",
            ["model", "outcome"],
            registry=registry,
        )
        self.cache = _Counter(
            "ml_serving_cache_requests",
            "Result cache lookups",
            ["result"],
            registry=registry,
        )
        self.models_loaded = _Gauge(
            "ml_serving_models_loaded", "Models held in the model cache", registry=registry
        )
        self.connections_open = _Gauge(
            "ml_serving_connections_open",
            "Connections held by the HTTP front end (sampled on its clock tick)",
            registry=registry,
        )
        self.connections_closed = _Counter(
            "ml_serving_connections_closed",
            "Connections the HTTP front end refused over its cap (limit) or answered 408 and "
            "closed (header_timeout, body_timeout)",
            ["reason"],
            registry=registry,
        )
        # -- the model lifecycle: drift monitoring and rollouts
        self.drift_score = _Gauge(
            "ml_model_drift_score",
            "Latest drift score of the live traffic against the reference",
            ["model"],
            registry=registry,
        )
        self.drift_alarm = _Gauge(
            "ml_model_drift_alarm",
            "1 while the model's drift alarm is on, else 0",
            ["model"],
            registry=registry,
        )
        self.rollout_weight = _Gauge(
            "ml_model_rollout_weight",
            "Share of the model's traffic each version receives (0 to 1)",
            ["model", "version"],
            registry=registry,
        )
        self.rollout_step = _Gauge(
            "ml_model_rollout_step_percent",
            "Current step of the model's rollout: the challenger's percentage of the traffic",
            ["model"],
            registry=registry,
        )
        # -- served recommenders (serving.recommend)
        self.rec_requests = _Counter(
            "ml_recommendation_requests",
            "Recommendation requests by outcome (ok, bad_input, not_found, error)",
            ["model", "outcome"],
            registry=registry,
        )
        self.rec_latency = _Histogram(
            "ml_recommendation_duration_seconds",
            "Time to answer a recommendation request (seconds)",
            ["model", "cache"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.rec_coverage = _Gauge(
            "ml_recommendation_coverage",
            "Share of the catalogue among the items recommended in the recent answers",
            ["model"],
            registry=registry,
        )
        self.rec_popularity = _Gauge(
            "ml_recommendation_popularity_bias",
            "Mean popularity percentile (0 least, 1 most listened) of the recommended items "
            "in the recent answers",
            ["model"],
            registry=registry,
        )
        self.rec_ndcg = _Gauge(
            "ml_recommendation_live_ndcg",
            "Live ndcg@k of the answers whose outcomes (items then played) were reported",
            ["model"],
            registry=registry,
        )
        self.rec_pending = _Gauge(
            "ml_recommendation_pending_interactions",
            "Interactions reported since the served generators were last built",
            ["model"],
            registry=registry,
        )


#: the name serving has always used
ServingMetrics = Metrics

metrics = Metrics()


def render() -> bytes:
    """The registry in Prometheus' text exposition format (empty without
    ``prometheus_client``)."""
    if not AVAILABLE:
        return b""
    return generate_latest(REGISTRY)
