"""The prediction service's configuration: ``configure``'s keys, their checks and defaults.

Defaults come from the ``ML_UTILITIES_*`` settings (:mod:`ml_utilities.config`); every key a
caller sets is checked here, and an unknown key is refused, so a misspelt option fails at once.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from .._validators import flag as check_flag
from .._validators import integer as check_integer
from .._validators import number as check_number
from ..exceptions import ParameterError

__all__ = ["OPTION_KEYS", "ServiceConfig"]

#: keys of ``predict_batch``'s ``options``
OPTION_KEYS = ("explain_predictions", "confidence_intervals", "feature_importance")
_OPTIMIZATIONS = (None, "none", "onnxruntime", "tensorrt", "fp16", "cuda_graphs")


@dataclasses.dataclass(frozen=True)
class ServiceConfig:
    """The service's configuration (``configure``'s keys; defaults from ``ML_UTILITIES_*``).

    Attributes
    ----------
    model_cache_size : int
        Models kept loaded (``ML_UTILITIES_MODEL_CACHE_SIZE``, 10).
    prediction_cache_ttl : float
        Seconds a result stays cached; 0 turns the result cache off
        (``ML_UTILITIES_PREDICTION_CACHE_TTL``, 3600).
    batch_size : int
        Rows per model call of the dynamic batcher, and the size from which a request's rows
        go to the model directly as one batch (``ML_UTILITIES_BATCH_SIZE``, 128).
    max_latency_ms : float
        Latency target (``ML_UTILITIES_MAX_LATENCY_MS``, 10): the batcher waits at most a
        fifth of it for a batch to fill, unless ``max_queue_delay_us`` is given.
    gpu_enabled : bool
        Run models on a CUDA device when one is there (``ML_UTILITIES_GPU_ENABLED``).
    model_optimization : str or None
        None/``"none"`` (the framework's own predict), ``"onnxruntime"`` (export to ONNX, run
        on ONNX Runtime: CUDA provider on a GPU, else CPU), ``"tensorrt"`` (ONNX Runtime's
        TensorRT provider; where TensorRT cannot run, ONNX Runtime on CUDA or CPU, said in
        each response's ``metadata`` and logged), ``"fp16"`` (PyTorch in half precision on
        CUDA; float32 on CPU, said in ``metadata``), ``"cuda_graphs"`` (PyTorch on CUDA
        replaying one captured CUDA graph per power-of-two batch size; eager on CPU, said in
        ``metadata``).
    redis_url : str or None
        Keep results in Redis at this URL instead of in-process.
    dynamic_batching : bool
        Gather concurrent rows into batches (True) or call the model per request (False).
    max_queue_delay_us : float or None
        Batcher queue delay; None derives it from ``max_latency_ms``.
    max_queue_size : int
        Rows queued per model beyond which requests fail with :class:`Overloaded`.
    request_timeout_s : float
        Deadline of each row in the batcher (:class:`RequestTimeoutError` past it).
    batcher_workers : int
        Batcher threads per model.
    confidence_level : float
        Coverage of the conformal intervals and sets (0.9).
    explanation_top_k : int
        Features per explanation (5).
    explanation_background_size : int
        Background rows of the permutation explainer (50).
    explanation_max_evals : int or None
        Model evaluations per row of the permutation explainer (None: ``2 * n_features + 1``).
    prediction_cache_size : int
        Entries of the in-process result cache at most (100000).
    """

    model_cache_size: int = 10
    prediction_cache_ttl: float = 3600.0
    batch_size: int = 128
    max_latency_ms: float = 10.0
    gpu_enabled: bool = True
    model_optimization: str | None = None
    redis_url: str | None = None
    dynamic_batching: bool = True
    max_queue_delay_us: float | None = None
    max_queue_size: int = 4096
    request_timeout_s: float = 30.0
    batcher_workers: int = 1
    confidence_level: float = 0.9
    explanation_top_k: int = 5
    explanation_background_size: int = 50
    explanation_max_evals: int | None = None
    prediction_cache_size: int = 100_000

    @classmethod
    def from_settings(cls) -> ServiceConfig:
        from ..config import get_settings

        s = get_settings()
        return cls(
            model_cache_size=s.model_cache_size,
            prediction_cache_ttl=s.prediction_cache_ttl,
            batch_size=s.batch_size,
            max_latency_ms=s.max_latency_ms,
            gpu_enabled=s.gpu_enabled,
        )

    @property
    def queue_delay_us(self) -> float:
        if self.max_queue_delay_us is not None:
            return float(self.max_queue_delay_us)
        return self.max_latency_ms * 1000.0 / 5.0

    def updated(self, changes: Any) -> ServiceConfig:
        """A copy with ``changes`` applied, each checked; unknown keys are refused."""
        if not isinstance(changes, dict):
            raise ParameterError(f"config={changes!r}: expected a dict")
        names = [f.name for f in dataclasses.fields(self)]
        unknown = sorted(set(changes) - set(names))
        if unknown:
            raise ParameterError(f"unknown configuration key(s) {unknown}; accepted: {names}")
        values = dataclasses.asdict(self)
        for key, value in changes.items():
            values[key] = _check(key, value)
        return ServiceConfig(**values)


def _check(key: str, value: Any) -> Any:
    def integer(low: int) -> int:
        return check_integer(key, value, minimum=low)

    def number(low: float, strict: bool) -> float:
        if strict:
            return check_number(key, value, above=low)
        return check_number(key, value, minimum=low)

    if key in ("model_cache_size", "batch_size", "max_queue_size", "batcher_workers"):
        return integer(1)
    if key in ("explanation_top_k", "explanation_background_size", "prediction_cache_size"):
        return integer(1)
    if key == "explanation_max_evals":
        return None if value is None else integer(3)
    if key == "prediction_cache_ttl":
        return number(0.0, strict=False)
    if key in ("max_latency_ms", "request_timeout_s"):
        return number(0.0, strict=True)
    if key == "max_queue_delay_us":
        return None if value is None else number(0.0, strict=False)
    if key in ("gpu_enabled", "dynamic_batching"):
        return check_flag(key, bool(value) if isinstance(value, np.bool_) else value)
    if key == "confidence_level":
        v = number(0.0, strict=True)
        if v >= 1.0:
            raise ParameterError(f"confidence_level={value!r}: expected a number in (0, 1)")
        return v
    if key == "model_optimization":
        if isinstance(value, str):
            value = value.strip().lower()
        if value not in _OPTIMIZATIONS:
            raise ParameterError(
                f"model_optimization={value!r}: expected one of {list(_OPTIMIZATIONS)}"
            )
        return None if value == "none" else value
    if key == "redis_url":
        if value is not None and (not isinstance(value, str) or "://" not in value):
            raise ParameterError(f"redis_url={value!r}: expected a URL such as redis://host:6379/0")
        return value
    raise AssertionError(key)  # pragma: no cover - every field is handled above
