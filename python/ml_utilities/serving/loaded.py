"""A model version as the service holds it: its serving backend, batchers, metric children
and the JSON encoding of its one-row answers."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from ._json import dumps as _dumps
from .batching import DynamicBatcher
from .conformal import SplitConformal
from .explain import Explainer
from .metrics import metrics, observe_many

__all__ = ["LoadedModel", "cuda_available", "folder_bytes"]


class _ModelMetrics:
    """The Prometheus children one model version updates on every request."""

    __slots__ = ("batch_size", "duration", "ok", "queue_time", "rows_hit", "rows_miss")

    def __init__(self, name: str, version: int) -> None:
        labels = (name, str(version))
        self.duration = metrics.inference_duration.labels(*labels)
        self.rows_hit = metrics.prediction_count.labels(*labels, "hit")
        self.rows_miss = metrics.prediction_count.labels(*labels, "miss")
        self.ok = metrics.requests.labels(name, "ok")
        self.batch_size = metrics.batch_size.labels(name)
        self.queue_time = metrics.queue_time.labels(name)


@dataclasses.dataclass
class LoadedModel:
    """One model version held by the service, with its serving backend."""

    name: str
    version: int
    version_label: str
    handle: Any
    task: str  # "classification" or "regression"
    n_features: int
    feature_names: list[str]
    predict_raw: Callable[[np.ndarray], np.ndarray]
    backend: str
    device: str
    fallback: str | None
    calibration_source: str | None
    calibration: tuple[np.ndarray, np.ndarray] | None
    size_bytes: int
    batcher: DynamicBatcher | None = None
    #: batches TreeSHAP rows of concurrent requests (XGBoost, with dynamic batching)
    explain_batcher: DynamicBatcher | None = None
    conformal: SplitConformal | None = None
    explainer: Explainer | None = None
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)
    #: the metric children of this model, looked up once (``labels()`` costs a lock and a dict)
    observers: _ModelMetrics = dataclasses.field(init=False, repr=False)
    #: ``handle.classes`` as an array, to decode class indices without converting the list
    classes: np.ndarray | None = dataclasses.field(init=False, repr=False, default=None)
    #: whether a row is the model's sample (1-D input shape): the JSON fast path applies
    flat_input: bool = dataclasses.field(init=False, repr=False, default=True)
    #: the result cache key's hash state for one float32 row without options (set on first use)
    key_hasher: Any = dataclasses.field(init=False, repr=False, default=None)
    #: the drift monitor's intake, ``live(rows, outputs)``, called with every model call's
    #: batch (:mod:`ml_utilities.serving.monitor`); None when the model is not watched
    live: Any = dataclasses.field(init=False, repr=False, default=None)
    #: :meth:`answer_template`'s pieces (made on first use)
    _template: tuple[bytes, ...] | None = dataclasses.field(init=False, repr=False, default=None)

    def __post_init__(self) -> None:
        self.observers = _ModelMetrics(self.name, self.version)
        if self.task == "classification":
            self.classes = np.asarray(self.handle.codec.classes)
        self.flat_input = len(tuple(self.handle.adapter.input_shape)) == 1

    def metadata(self) -> dict[str, Any]:
        """The metadata every answer of this model carries (before timing and options)."""
        meta: dict[str, Any] = {
            "model_name": self.name,
            "model_version": self.version_label,
            "registry_version": self.version,
            "task": self.task,
            "backend": self.backend,
            "device": self.device,
        }
        if self.fallback:
            meta["fallback"] = self.fallback
        return meta

    def encode(self, tokens: list[tuple[Any, Any]], out: np.ndarray) -> list[Any]:
        """The JSON answers (bytes) of single-row requests without options, for a whole batch
        at once: ``tokens`` are ``(future, start)`` pairs (``start`` the request's
        ``time.perf_counter()``; None: answer the raw output row instead), ``out`` the batch's
        output rows. The documents are those of :meth:`PredictionService.predict_batch` for
        one row, written through :meth:`answer_template` (only the prediction, probabilities
        and time are encoded per row); the metrics are updated once for the batch."""
        now = time.perf_counter()
        if self.task == "classification":
            probs = out.reshape(len(out), -1)
            labels = self.classes[np.argmax(probs, axis=1)].tolist()  # type: ignore[index]
            first: list[Any] = labels
            second: list[Any] | None = np.round(probs.astype(np.float64), 7).tolist()
        else:
            rows = out.reshape(len(out), -1).astype(np.float64)
            first = (rows[:, 0] if rows.shape[1] == 1 else rows).tolist()
            second = None
        parts = self.answer_template()
        join = b"".join
        elapsed = np.asarray([now - start for _, start in tokens if start is not None])
        # as round(seconds * 1000, 3) per row, in one numpy call
        times = iter(np.round(elapsed * 1000.0, 3).tolist())
        values: list[Any] = []
        for i, (_, start) in enumerate(tokens):
            if start is None:
                values.append(out[i])
            elif second is None:
                ms = _dumps(next(times))
                values.append(join((parts[0], _dumps(first[i]), parts[1], ms, parts[2])))
            else:
                ms = _dumps(next(times))
                values.append(
                    join(
                        (parts[0], _dumps(first[i]), parts[1], _dumps(second[i]), parts[2], ms)
                        + parts[3:]
                    )
                )
        if len(elapsed):
            obs = self.observers
            observe_many(obs.duration, elapsed)
            obs.rows_miss.inc(len(elapsed))
            obs.ok.inc(len(elapsed))
        return values

    def answer_template(self) -> tuple[bytes, ...]:
        """The JSON of a one-row answer of :meth:`encode` cut around its per-row values, made
        once: joined with the encoded prediction, probabilities (classifiers) and
        ``inference_time_ms`` in between, the pieces give the bytes ``_dumps`` gives for the
        whole document (the pieces come from ``_dumps`` of that document, with markers for
        the values)."""
        if self._template is None:
            markers = [f"\x00mlu-value-{i}\x00" for i in range(3)]
            doc: dict[str, Any] = {"predictions": [markers[0]]}
            if self.task == "classification":
                doc["probabilities"] = [markers[1]]
            else:
                del markers[1]
            doc["confidence_intervals"] = None
            doc["explanations"] = None
            doc["feature_importance"] = None
            doc["metadata"] = {
                **self.metadata(),
                "inference_time_ms": markers[-1],
                "batch_size": 1,
                "cache_hit": False,
                "dynamic_batching": self.batcher is not None,
            }
            parts = [_dumps(doc)]
            for marker in markers:
                head, sep, tail = parts.pop().partition(_dumps(marker))
                if not sep or _dumps(marker) in tail:  # pragma: no cover - markers are unique
                    raise AssertionError("the answer template's marker is not where expected")
                parts += [head, tail]
            self._template = tuple(parts)
        return self._template

    def batch_fn(self, x: np.ndarray) -> np.ndarray:
        """What the batcher calls: ``(rows, n_features)`` -> ``(rows, n_outputs)``: one model
        call and one reshape per batch."""
        self.observers.batch_size.observe(len(x))
        out = np.asarray(self.predict_raw(x), dtype=np.float32).reshape(len(x), -1)
        live = self.live
        if live is not None:
            live(x, out)
        return out

    def close(self) -> None:
        if self.batcher is not None:
            self.batcher.close(drain=True)
        if self.explain_batcher is not None:
            self.explain_batcher.close(drain=True)


def cuda_available() -> bool:
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is part of the models extra
        return False
    return bool(torch.cuda.is_available())


def folder_bytes(handle: Any) -> int:
    """Rough in-memory size: bytes of the adapter's saved files, or of its arrays."""
    adapter = handle.adapter
    net = getattr(adapter, "net", None)
    if net is not None:
        return int(sum(p.numel() * p.element_size() for p in net.parameters()))
    booster = getattr(adapter, "booster", None)
    if booster is not None:
        return len(booster.model_to_string())
    model = getattr(adapter, "model", None)
    if model is not None and hasattr(model, "get_booster"):
        return len(model.get_booster().save_raw("ubj"))
    import pickle

    try:
        return len(pickle.dumps(model))
    except Exception:  # noqa: BLE001 - a size estimate only
        return 0
