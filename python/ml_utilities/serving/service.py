"""PredictionService: the specification's high-performance prediction service.

Models come from the :class:`~ml_utilities.models.ModelRegistry` by name, version or alias and
stay loaded in an LRU cache of ``model_cache_size``; concurrent single rows are gathered into
batches by the native :class:`~ml_utilities.serving.batching.DynamicBatcher`; results are kept
for ``prediction_cache_ttl`` seconds in-process or in Redis; explanations are TreeSHAP for
boosted trees and permutation SHAP otherwise; intervals are split-conformal.

Examples
--------
>>> service = PredictionService()                                   # doctest: +SKIP
>>> await service.configure({'model_cache_size': 10, 'prediction_cache_ttl': 3600,
...                          'batch_size': 128, 'max_latency_ms': 5, 'gpu_enabled': True,
...                          'model_optimization': 'tensorrt'})     # doctest: +SKIP
>>> out = await service.predict_batch(model_name='recommendation_v3', features=x,
...     options={'explain_predictions': True, 'confidence_intervals': True,
...              'feature_importance': True})                       # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import logging
import math
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from ..exceptions import ParameterError
from ..models.errors import ModelNotFoundError
from ._json import dumps as _dumps
from ._json import loads as _loads
from .batching import DynamicBatcher
from .cache import (
    InProcessResultCache,
    LRUCache,
    RedisResultCache,
    features_key,
    key_hasher,
    result_key,
)
from .config import ServiceConfig
from .conformal import SplitConformal
from .errors import ModelInputError
from .explain import Explainer, top_features
from .loaded import LoadedModel, cuda_available, folder_bytes
from .metrics import metrics, observe_many
from .request import (
    FLOAT32_MAX,
    NO_OPTIONS,
    TIMING_KEYS,
    UNKNOWN_MODEL,
    fast_row,
    one_row,
    outcome,
    outcome_name,
    parse_options,
    single,
    split_name,
    validate,
)
from .rollout import Decision, RolloutRouter

if TYPE_CHECKING:
    from .monitor import LiveMonitor
    from .recommend import RecommenderService

__all__ = ["PredictionService"]

logger = logging.getLogger(__name__)

#: how long a name/alias -> version resolution is reused before asking the registry again (s)
_RESOLVE_TTL_S = 2.0

_CACHE_HIT = metrics.cache.labels("hit")
_CACHE_MISS = metrics.cache.labels("miss")


# ---------------------------------------------------------------------------------- the service
class PredictionService:
    """High-performance predictions from registered models, with caches and explanations.

    Every coroutine has a synchronous twin ending in ``_sync``.

    Parameters
    ----------
    manager : ModelManager, optional
        Where models come from (default: a :class:`ModelManager` on the default registry under
        ``ML_UTILITIES_HOME``).
    registry : ModelRegistry, optional
        A registry to use instead of ``manager``'s.
    config : dict, optional
        Initial configuration (as :meth:`configure`).
    freeze_gc : bool, default False
        After each model load, collect garbage once and move every surviving object into the
        collector's permanent generation (``gc.freeze``). For a server process that has frozen
        its start-up objects: a model load imports its framework (XGBoost brings scikit-learn,
        SciPy, pandas: over 100,000 objects), and without this every full collection walks
        them again, a pause of 50-90 ms on a loaded core that lands in the latency tail. It
        acts on the whole process, so only the process's owner (``ml-utilities serve``) sets it.
    """

    def __init__(
        self,
        manager: Any = None,
        *,
        registry: Any = None,
        config: dict[str, Any] | None = None,
        freeze_gc: bool = False,
    ) -> None:
        if manager is not None and registry is not None:
            raise ParameterError("pass either manager or registry, not both")
        self._manager = manager
        self._registry = registry
        self._config = ServiceConfig.from_settings()
        self._models = LRUCache(self._config.model_cache_size, on_evict=self._evicted)
        self._resolved: dict[tuple[str, str], tuple[float, int]] = {}
        self._loading: dict[tuple[str, int], threading.Lock] = {}
        self._loading_lock = threading.Lock()
        #: names of the models loaded once: the only ``model`` labels besides UNKNOWN_MODEL
        self._labelled: set[str] = set()
        self._calibration: dict[tuple[str, int], tuple[np.ndarray, np.ndarray]] = {}
        self._results: InProcessResultCache | RedisResultCache | None = None
        self._closed = False
        self._freeze_gc = bool(freeze_gc)
        #: gradual rollouts: the split read from the registry, judged in this process
        self.rollouts = RolloutRouter(lambda: self.registry, on_switch=self._forget_name)
        self._shadow_pool: Any = None
        #: name -> LiveMonitor (drift of live inputs and predictions against the reference)
        self._monitors: dict[str, Any] = {}
        self._recommenders: Any = None
        self._apply(self._config)
        if config:
            self.configure_sync(config)

    # -- configuration ---------------------------------------------------------------------------
    @property
    def config(self) -> ServiceConfig:
        return self._config

    @property
    def registry(self) -> Any:
        if self._registry is None:
            if self._manager is None:
                from ..models import ModelManager

                self._manager = ModelManager()
            self._registry = self._manager.registry
        return self._registry

    def configure_sync(self, config: dict[str, Any]) -> dict[str, Any]:
        """Apply ``config`` (see :class:`ServiceConfig` for the keys); returns the full
        configuration now in force. Loaded models are dropped, so new settings apply to them.
        """
        new = self._config.updated(config)
        self._apply(new)
        return dataclasses.asdict(new)

    async def configure(self, config: dict[str, Any]) -> dict[str, Any]:
        """Coroutine of :meth:`configure_sync` (the specification's ``await configure({...})``).

        Parameters
        ----------
        config : dict
            Any of ``model_cache_size``, ``prediction_cache_ttl`` (s), ``batch_size``,
            ``max_latency_ms``, ``gpu_enabled``, ``model_optimization`` (None, ``"onnxruntime"``,
            ``"tensorrt"``, ``"fp16"``, ``"cuda_graphs"``), ``redis_url``, ``dynamic_batching``,
            ``max_queue_delay_us``, ``max_queue_size``, ``request_timeout_s``,
            ``batcher_workers``, ``confidence_level``, ``explanation_top_k``,
            ``explanation_background_size``, ``explanation_max_evals``,
            ``prediction_cache_size``.

        Raises
        ------
        ParameterError
            For an unknown key or a bad value (the message names it).
        """
        return await asyncio.to_thread(self.configure_sync, config)

    def _apply(self, new: ServiceConfig) -> None:
        old_results = self._results
        if new.prediction_cache_ttl <= 0:
            results: Any = None
        elif new.redis_url:
            results = RedisResultCache(new.redis_url, new.prediction_cache_ttl)
        else:
            results = InProcessResultCache(new.prediction_cache_ttl, new.prediction_cache_size)
        for model in self._models.pop_all():
            model.close()
        self._models = LRUCache(new.model_cache_size, on_evict=self._evicted)
        self._resolved.clear()
        self._config = new
        self._results = results
        metrics.models_loaded.set(0)
        if old_results is not None and old_results is not results:
            old_results.close()
        if new.gpu_enabled and not cuda_available():
            logger.info("gpu_enabled=True but no CUDA device is visible: models run on the CPU")

    @staticmethod
    def _evicted(model: LoadedModel) -> None:
        logger.info("model cache full: unloading %s v%d", model.name, model.version)
        model.close()
        metrics.models_loaded.dec()

    # -- models ----------------------------------------------------------------------------------
    def _resolve(self, name: str, version: int | str | None) -> int:
        if isinstance(version, int) and not isinstance(version, bool):
            return version
        key = (name, str(version))
        now = time.monotonic()
        hit = self._resolved.get(key)
        if hit is not None and now - hit[0] < _RESOLVE_TTL_S:
            return hit[1]
        if not self.rollouts.cached(name)[0]:
            self.rollouts.refresh(name)  # the fast path asks whether a rollout runs
        if version is None:
            # a plain name is the champion where one is named (so that a version registered,
            # or rolled back, after it takes no traffic outside a rollout), else the latest
            try:
                mv = self.registry.get_version(name, "champion")
            except ModelNotFoundError:
                mv = self.registry.get_version(name, None)
        else:
            mv = self.registry.get_version(name, version)
        self._resolved[key] = (now, mv.version)
        return int(mv.version)

    def _forget_name(self, name: str) -> None:
        """Forget the cached alias resolutions of ``name`` (a rollout of it started or ended:
        its alias may point elsewhere now)."""
        for key in [k for k in self._resolved if k[0] == name]:
            self._resolved.pop(key, None)

    def get_model(self, model_name: str, version: int | str | None = None) -> LoadedModel:
        """The loaded model ``model_name`` at ``version`` (int, alias, or latest), loading it
        into the LRU cache if needed.

        ``model_name`` may carry the version: ``"genre:3"`` or ``"genre@champion"``.

        Raises
        ------
        ModelNotFoundError
            No such name, version or alias in the registry.
        """
        if self._closed:
            raise ParameterError("this PredictionService is closed")
        name, version = split_name(model_name, version)
        v = self._resolve(name, version)
        model = self._models.get((name, v))
        if model is not None:
            return model
        with self._loading_lock:
            lock = self._loading.setdefault((name, v), threading.Lock())
        try:
            with lock:
                model = self._models.get((name, v))
                if model is None:
                    model = self._load(name, v)
                    self._models.put((name, v), model)
                    self._labelled.add(name)
                    metrics.models_loaded.inc()
                    if self._freeze_gc:
                        _refreeze_gc()
        finally:
            # the lock is only for the load: kept, a version number sent by clients
            # ("genre@123456", which fails to load) would stay here for good
            with self._loading_lock:
                if self._loading.get((name, v)) is lock:
                    del self._loading[(name, v)]
        return model

    async def get_model_async(
        self, model_name: str, version: int | str | None = None
    ) -> LoadedModel:
        """Coroutine of :meth:`get_model`: answers from the cache without leaving the loop."""
        model = self._loaded(model_name, version)
        if model is not None:
            return model
        return await asyncio.to_thread(self.get_model, model_name, version)

    def _loaded(self, model_name: str, version: int | str | None) -> LoadedModel | None:
        """The model if it is loaded and its name or alias was resolved within the last
        ``_RESOLVE_TTL_S`` (no registry call), else None."""
        name, ver = split_name(model_name, version)
        if isinstance(ver, int) and not isinstance(ver, bool):
            v: int | None = ver
        else:
            hit = self._resolved.get((name, str(ver)))
            v = hit[1] if hit is not None and time.monotonic() - hit[0] < _RESOLVE_TTL_S else None
        return None if v is None else self._models.get((name, v))

    def _load(self, name: str, version: int) -> LoadedModel:
        cfg = self._config
        mv = self.registry.get_version(name, version)
        handle = self.registry.load(name, version)
        task = handle.adapter.task
        n_features = int(np.prod(handle.adapter.input_shape))
        names = mv.metadata.get("feature_names")
        if not (isinstance(names, list) and len(names) == n_features):
            # an adapter may name its matrix's columns (multimodal: audio:..., text:...)
            names = getattr(handle.adapter, "feature_names", None)
        if not (isinstance(names, list) and len(names) == n_features):
            names = [f"f{i}" for i in range(n_features)]
        predict_raw, backend, device, fallback = self._backend(handle, cfg)
        label = mv.metadata.get("version")
        version_label = str(label) if isinstance(label, (str, int, float)) else f"v{version}"
        calib, source = self._calibration_data(name, version, mv, handle)
        model = LoadedModel(
            name=name,
            version=version,
            version_label=version_label,
            handle=handle,
            task=task,
            n_features=n_features,
            feature_names=[str(n) for n in names],
            predict_raw=predict_raw,
            backend=backend,
            device=device,
            fallback=fallback,
            calibration_source=source,
            calibration=calib,
            size_bytes=folder_bytes(handle),
        )
        if cfg.dynamic_batching:
            model.batcher = DynamicBatcher(
                model.batch_fn,
                n_features,
                max_batch_size=cfg.batch_size,
                max_queue_delay_us=cfg.queue_delay_us,
                max_queue_size=cfg.max_queue_size,
                n_workers=cfg.batcher_workers,
                observe=self._observer(name),
                encode=model.encode,
            )
        monitor = self._monitors.get(name)
        if monitor is not None:
            model.live = monitor.intake(task)
        labels = (name, str(version))
        metrics.memory.labels(*labels).set(model.size_bytes)
        score = handle.metrics.get("accuracy", handle.metrics.get("r2"))
        if isinstance(score, (int, float)) and math.isfinite(score):
            metrics.accuracy.labels(*labels).set(score)
        logger.info(
            "loaded %s v%d (%s %s) on %s via %s%s",
            name,
            version,
            handle.framework,
            task,
            device,
            backend,
            f" ({fallback})" if fallback else "",
        )
        return model

    @staticmethod
    def _observer(name: str) -> Callable[[np.ndarray], None]:
        hist = metrics.queue_time.labels(name)  # the same child as LoadedModel.observers

        def observe(queue_us: np.ndarray) -> None:
            observe_many(hist, queue_us * 1e-6)

        return observe

    def _backend(
        self, handle: Any, cfg: ServiceConfig
    ) -> tuple[Callable[[np.ndarray], np.ndarray], str, str, str | None]:
        """``(predict_raw, backend, device, fallback reason)`` for ``handle`` under ``cfg``."""
        from .backends import select_backend

        return select_backend(handle, cfg.model_optimization, cfg.gpu_enabled)

    def _calibration_data(
        self, name: str, version: int, mv: Any, handle: Any
    ) -> tuple[tuple[np.ndarray, np.ndarray] | None, str | None]:
        given = self._calibration.get((name, version))
        if given is not None:
            return given, "calibrate"
        meta = mv.metadata.get("calibration")
        if isinstance(meta, dict) and "features" in meta and "labels" in meta:
            x = np.asarray(meta["features"], dtype=np.float32)
            return (x, np.asarray(meta["labels"])), "registry_metadata"
        if handle.holdout is not None:
            return (np.asarray(handle.holdout[0], np.float32), np.asarray(handle.holdout[1])), (
                "holdout"
            )
        return None, None

    def calibrate_sync(
        self, model_name: str, features: Any, labels: Any, version: int | str | None = None
    ) -> dict[str, Any]:
        """Calibrate the conformal intervals of a model version on ``(features, labels)``:
        rows the model never trained on, exchangeable with the traffic. Replaces the default
        calibration (the data registered with the model). Returns ``{"quantile",
        "n_calibration", "confidence_level"}``."""
        model = self.get_model(model_name, version)
        x = validate(model, features)
        y = np.asarray(labels)
        if y.ndim != 1 or len(y) != len(x):
            raise ParameterError(f"labels has shape {y.shape}: expected ({len(x)},)")
        with model.lock:
            self._calibration[(model.name, model.version)] = (x, y)
            model.calibration, model.calibration_source = (x, y), "calibrate"
            model.conformal = None
        conformal = self._conformal(model)
        assert conformal is not None
        return {
            "quantile": conformal.quantile,
            "n_calibration": conformal.n_calibration,
            "confidence_level": conformal.confidence,
        }

    async def calibrate(
        self, model_name: str, features: Any, labels: Any, version: int | str | None = None
    ) -> dict[str, Any]:
        """Coroutine of :meth:`calibrate_sync`."""
        return await asyncio.to_thread(self.calibrate_sync, model_name, features, labels, version)

    def _conformal(self, model: LoadedModel) -> SplitConformal | None:
        with model.lock:
            if model.conformal is None and model.calibration is not None:
                x, y = model.calibration
                raw = np.asarray(model.predict_raw(x.reshape(len(x), -1)))
                if model.task == "classification":
                    y = model.handle.codec.encode(y)
                model.conformal = SplitConformal(model.task, self._config.confidence_level).fit(
                    raw, y
                )
            return model.conformal

    def _explainer(self, model: LoadedModel) -> Explainer:
        with model.lock:
            if model.explainer is None:
                background = None
                if model.calibration is not None:
                    x = model.calibration[0].reshape(len(model.calibration[0]), -1)
                    background = x[: self._config.explanation_background_size]
                model.explainer = Explainer(
                    model.handle,
                    model.predict_raw,
                    background,
                    n_features=model.n_features,
                    max_evals=self._config.explanation_max_evals,
                )
            return model.explainer

    # -- inputs ----------------------------------------------------------------------------------
    def _prepare(
        self, model: LoadedModel, features: Any, options: Any
    ) -> tuple[dict[str, bool], np.ndarray, str | None]:
        """The first steps of every request of :meth:`predict_batch` (and its twin): the
        options checked, the features checked and converted to a float32 batch, and the result
        cache's key (None without a cache)."""
        opts = parse_options(options)
        x = validate(model, self._named_inputs(model, features))
        key = self._cache_key(model, opts, x) if self._results is not None else None
        return opts, x, key

    @staticmethod
    def _named_inputs(model: LoadedModel, features: Any) -> Any:
        """``features`` as given, or, where it is a dict of named inputs, the model's matrix
        made by its adapter's ``prepare_inputs`` (a model whose adapter has ``input_names``,
        e.g. multimodal ``{"audio_features": rows, "text": strings}``)."""
        if not isinstance(features, dict):
            return features
        adapter = model.handle.adapter
        names = tuple(getattr(adapter, "input_names", None) or ())
        if not names:
            raise ModelInputError(
                f"{model.name} v{model.version} takes an array of features, not named inputs "
                f"{sorted(map(str, features))}"
            )
        missing = [n for n in names if n not in features]
        extra = sorted(str(k) for k in features if k not in names)
        if missing or extra:
            raise ModelInputError(
                f"{model.name} v{model.version} takes the inputs {list(names)}: "
                + "; ".join(
                    ([f"missing {missing}"] if missing else [])
                    + ([f"unknown {extra}"] if extra else [])
                )
            )
        try:
            return adapter.prepare_inputs(features)
        except ModelInputError:
            raise
        except (ParameterError, TypeError, ValueError) as err:
            raise ModelInputError(
                f"the inputs of {model.name} v{model.version} cannot be prepared: {err}"
            ) from None

    def _cache_key(self, model: LoadedModel, opts: dict[str, bool], x: np.ndarray) -> str:
        if opts == NO_OPTIONS and x.shape == (1, model.n_features) and x.dtype == np.float32:
            # the common request (one row, no options): the hash of its prefix is kept
            if model.key_hasher is None:
                model.key_hasher = key_hasher(
                    model.name, model.version, self._key_extra(model, opts), x
                )
            return features_key(model.key_hasher, x)
        return result_key(model.name, model.version, self._key_extra(model, opts), x)

    def _key_extra(self, model: LoadedModel, opts: dict[str, bool]) -> dict[str, Any]:
        """The options of a cache key, with what else changes the answer (``configure``
        drops the loaded models, so a kept prefix never outlives these settings)."""
        c = self._config
        return {
            **opts,
            "confidence_level": c.confidence_level,
            "top_k": c.explanation_top_k,
            "backend": model.backend,
        }

    # -- prediction ------------------------------------------------------------------------------
    def _raw_direct(self, model: LoadedModel, x: np.ndarray) -> np.ndarray:
        return model.batch_fn(x)

    def _raw_sync(self, model: LoadedModel, x: np.ndarray) -> np.ndarray:
        if model.batcher is None or len(x) >= self._config.batch_size:
            return self._raw_direct(model, x)
        timeout = self._config.request_timeout_s
        if len(x) == 1:
            return model.batcher.predict(x[0], timeout=timeout)[None]
        tickets = [model.batcher.submit(row, timeout=timeout) for row in x]
        out = [t.result() for t in tickets]
        model.batcher.observe_tickets(tickets)
        return np.stack(out)

    async def _raw_async(self, model: LoadedModel, x: np.ndarray) -> np.ndarray:
        if model.batcher is None or len(x) >= self._config.batch_size:
            return await asyncio.to_thread(self._raw_direct, model, x)
        timeout = self._config.request_timeout_s
        if len(x) == 1:
            return (await model.batcher.predict_async(x[0], timeout=timeout))[None]
        out = await asyncio.gather(
            *(model.batcher.predict_async(row, timeout=timeout) for row in x)
        )
        return np.stack(out)

    async def _contrib_async(
        self, model: LoadedModel, x: np.ndarray, raw: np.ndarray
    ) -> np.ndarray | None:
        """TreeSHAP contributions ``(rows, n_features)`` through the model's explanation
        batcher, so that concurrent requests share one TreeSHAP call (whose fixed cost is
        large); None where that does not apply (no dynamic batching, a request of
        ``batch_size`` rows or more, or not XGBoost)."""
        if model.batcher is None or len(x) >= self._config.batch_size:
            return None
        explainer = self._explainer(model)
        if not explainer.batchable:
            return None
        batcher = model.explain_batcher
        if batcher is None:
            cfg = self._config
            with model.lock:
                if model.explain_batcher is None:
                    model.explain_batcher = DynamicBatcher(
                        explainer.tree_all,
                        model.n_features,
                        max_batch_size=cfg.batch_size,
                        max_queue_delay_us=cfg.queue_delay_us,
                        max_queue_size=cfg.max_queue_size,
                        n_workers=cfg.batcher_workers,
                    )
                batcher = model.explain_batcher
        timeout = self._config.request_timeout_s
        if len(x) == 1:
            rows = (await batcher.predict_async(x[0], timeout=timeout))[None]
        else:
            rows = np.stack(
                await asyncio.gather(*(batcher.predict_async(r, timeout=timeout) for r in x))
            )
        predicted = None
        if model.task == "classification":
            predicted = np.argmax(raw.reshape(len(x), -1), axis=1)
        return explainer.pick(rows, model.n_features, predicted)

    def _assemble(
        self,
        model: LoadedModel,
        x: np.ndarray,
        raw: np.ndarray,
        opts: dict[str, bool],
        contrib: np.ndarray | None = None,
    ) -> dict[str, Any]:
        """The result dictionary (without timing metadata) from the raw model outputs (and the
        feature contributions, when the explanation batcher computed them)."""
        classification = model.task == "classification"
        result: dict[str, Any] = {}
        if classification:
            probs = raw.reshape(len(x), -1)
            idx = np.argmax(probs, axis=1)
            result["predictions"] = model.classes[idx].tolist()  # type: ignore[index]
            result["probabilities"] = np.round(probs.astype(np.float64), 7).tolist()
        else:
            # one value per row, or a vector per row (an embedding model's output)
            values = raw.reshape(len(x), -1).astype(np.float64)
            idx = None
            result["predictions"] = (values[:, 0] if values.shape[1] == 1 else values).tolist()
        result["confidence_intervals"] = None
        if opts["confidence_intervals"]:
            conformal = self._conformal(model)
            if conformal is None:
                raise ParameterError(
                    f"{model.name} v{model.version} has no calibration data: register it with "
                    "held-out rows or call calibrate(model_name, features, labels)"
                )
            if classification:
                classes = model.handle.classes
                result["confidence_intervals"] = [
                    [classes[k] for k in s] for s in conformal.sets(raw.reshape(len(x), -1))
                ]
            else:
                result["confidence_intervals"] = [
                    (float(lo), float(hi)) for lo, hi in conformal.intervals(raw)
                ]
        explainer = None
        if opts["explain_predictions"] or opts["feature_importance"]:
            explainer = self._explainer(model)
            if contrib is None:
                contrib = explainer.contributions(x, idx)
        result["explanations"] = (
            top_features(contrib, model.feature_names, self._config.explanation_top_k)
            if opts["explain_predictions"] and contrib is not None
            else None
        )
        result["feature_importance"] = None
        if opts["feature_importance"] and contrib is not None:
            mean_abs = np.abs(contrib).mean(axis=0)
            order = np.argsort(-mean_abs, kind="stable")
            result["feature_importance"] = {
                model.feature_names[i]: round(float(mean_abs[i]), 6) for i in order
            }
        meta = model.metadata()
        if opts["confidence_intervals"]:
            meta["confidence_level"] = self._config.confidence_level
            meta["calibration"] = model.calibration_source
            meta["interval_kind"] = "prediction_set" if classification else "split_conformal"
        if explainer is not None:
            meta["explanation_method"] = explainer.method
        if contrib is not None and getattr(model.handle.adapter, "input_names", None):
            # a model of named inputs: the mean over rows of each modality's summed |impact|
            # (its features are named "<modality>:<feature>")
            per_row = np.abs(contrib).reshape(len(x), -1)
            shares: dict[str, float] = {}
            for i, fname in enumerate(model.feature_names):
                modality = fname.split(":", 1)[0] if ":" in fname else "other"
                shares[modality] = shares.get(modality, 0.0) + float(per_row[:, i].mean())
            meta["modality_importance"] = {k: round(v, 6) for k, v in shares.items()}
        result["metadata"] = meta
        return result

    @staticmethod
    def _finish(
        model: LoadedModel, result: dict[str, Any], start: float, rows: int, hit: bool
    ) -> dict[str, Any]:
        """Adds the timing metadata to ``result`` (a fresh document, changed in place)."""
        elapsed = time.perf_counter() - start
        meta = result["metadata"]
        meta["inference_time_ms"] = round(elapsed * 1000.0, 3)
        meta["batch_size"] = rows
        meta["cache_hit"] = hit
        meta["dynamic_batching"] = model.batcher is not None
        if hit:
            ci = result.get("confidence_intervals")
            if ci is not None and model.task == "regression":
                result["confidence_intervals"] = [tuple(pair) for pair in ci]
        obs = model.observers
        obs.duration.observe(elapsed)
        (obs.rows_hit if hit else obs.rows_miss).inc(rows)
        obs.ok.inc()
        return result

    def predict_batch_sync(
        self,
        model_name: str,
        features: Any,
        options: dict[str, bool] | None = None,
        *,
        version: int | str | None = None,
        request_key: Any = None,
        request_id: Any = None,
    ) -> dict[str, Any]:
        """Synchronous twin of :meth:`predict_batch`."""
        name, ver = split_name(model_name, version)
        decision = self.rollouts.decide(name, ver, request_key, request_id)
        if decision is None:
            result = self._predict_version_sync(model_name, features, options, version)
            return self._tagged(result, request_id)
        t0 = time.perf_counter()
        try:
            self.get_model(name, decision.version)  # a first load is not the version's latency
            t0 = time.perf_counter()
            result = self._predict_version_sync(name, features, options, decision.version)
        except Exception as err:
            if not self._failed(decision, err, time.perf_counter() - t0):
                raise
            elapsed, t0 = time.perf_counter() - t0, time.perf_counter()
            try:
                result = self._predict_version_sync(
                    name, features, options, decision.rollout.champion
                )
            except Exception as champion_err:
                self._fallback_failed(decision, champion_err, t0)
                raise
            self._fallback_answered(decision, err, elapsed, t0, result)
        else:
            self._count(decision, decision.version, t0, result)
        if decision.shadow is not None:
            self._shadow_submit(decision, name, features, options)
        return self._rollout_meta(result, decision)

    def _predict_version_sync(
        self,
        model_name: str,
        features: Any,
        options: dict[str, bool] | None,
        version: int | str | None,
    ) -> dict[str, Any]:
        start = time.perf_counter()
        model = self._counted(model_name, lambda: self.get_model(model_name, version))
        with outcome(model.name):
            opts, x, key = self._prepare(model, features, options)
            if key is not None:
                cached = self._results.get(key)  # type: ignore[union-attr]
                (_CACHE_HIT if cached is not None else _CACHE_MISS).inc()
                if cached is not None:
                    self._live_cached(model, x, cached)
                    return self._finish(model, cached, start, len(x), True)
            raw = self._raw_sync(model, x)
            result = self._assemble(model, x, raw, opts)
            if key is not None:
                # the cache serialises it at once (tuples become lists, as JSON gives back)
                self._results.set(key, result)  # type: ignore[union-attr]
            return self._finish(model, result, start, len(x), False)

    async def predict_batch(
        self,
        model_name: str,
        features: Any,
        options: dict[str, bool] | None = None,
        *,
        version: int | str | None = None,
        request_key: Any = None,
        request_id: Any = None,
    ) -> dict[str, Any]:
        """Predict every row of ``features`` with ``model_name``.

        Parameters
        ----------
        model_name : str
            Registered name (``"genre"``), optionally with a version or alias (``"genre:3"``,
            ``"genre@champion"``).
        features : array-like, float, or dict
            ``(n, n_features)``, or ``(n, *sample_shape)`` for models over 2-D samples; one row
            ``(n_features,)`` is accepted too. For a model whose adapter has ``input_names``
            (multimodal: ``{"audio_features": rows, "text": strings}``), a dict of those named
            inputs, turned into its matrix by the adapter's ``prepare_inputs``; with
            explanations, ``metadata["modality_importance"]`` then sums the absolute
            contributions per modality (the prefix of the feature names, ``audio:``/``text:``).
        options : dict, optional
            ``explain_predictions`` (per-row top features and their contributions),
            ``confidence_intervals`` (split-conformal intervals; prediction sets for
            classifiers), ``feature_importance`` (mean absolute contribution per feature over
            the batch); all False by default.
        version : int or str, optional
            Version number or alias (default: the one in ``model_name``, else the
            ``champion`` alias where the model has one, else its latest version). While a
            rollout of the model runs (:mod:`ml_utilities.serving.rollout`), a request
            without a version or with the rollout's alias is answered by the champion or the
            challenger, as the split assigns it.
        request_key : str or int, optional
            What the split assigns by (a user id): one key, one version. Default: the request
            id (each request drawn apart).
        request_id : str or int, optional
            The request's id, returned in ``metadata["request_id"]``; outcomes are reported
            against it (:meth:`record_outcome`). Default under a rollout: a fresh one.

        Returns
        -------
        dict
            ``predictions`` (values, or class labels), ``probabilities`` (classifiers),
            ``confidence_intervals`` (``[(low, high), ...]``, or ``[[labels...], ...]`` for
            classifiers; None unless asked), ``explanations`` (``[{"top_features": [...],
            "impact": [...]}, ...]`` or None), ``feature_importance`` (``{name: value}`` or
            None), ``metadata`` (``model_version``, ``inference_time_ms``, ``batch_size``,
            ``model_name``, ``registry_version``, ``backend``, ``device``, ``cache_hit``, ...).

        Raises
        ------
        ModelNotFoundError
            Unknown name, version or alias.
        ModelInputError
            Wrong feature count or shape, NaN or inf (a :class:`ParameterError`).
        Overloaded
            The model's queue is full.
        RequestTimeoutError
            No answer within ``request_timeout_s``.
        """
        name, ver = split_name(model_name, version)
        fresh, row = self.rollouts.cached(name)
        if not fresh:
            row = await asyncio.to_thread(self.rollouts.refresh, name)
        decision = self.rollouts.decide(name, ver, request_key, request_id, row=row)
        if decision is None:
            result = await self._predict_version(model_name, features, options, version)
            return self._tagged(result, request_id)
        t0 = time.perf_counter()
        try:
            await self.get_model_async(name, decision.version)  # not the version's latency
            t0 = time.perf_counter()
            result = await self._predict_version(name, features, options, decision.version)
        except Exception as err:
            if not self._failed(decision, err, time.perf_counter() - t0):
                raise
            elapsed, t0 = time.perf_counter() - t0, time.perf_counter()
            try:
                result = await self._predict_version(
                    name, features, options, decision.rollout.champion
                )
            except Exception as champion_err:
                self._fallback_failed(decision, champion_err, t0)
                raise
            self._fallback_answered(decision, err, elapsed, t0, result)
        else:
            self._count(decision, decision.version, t0, result)
        if decision.shadow is not None:
            self._shadow_submit(decision, name, features, options)
        return self._rollout_meta(result, decision)

    async def _predict_version(
        self,
        model_name: str,
        features: Any,
        options: dict[str, bool] | None,
        version: int | str | None,
    ) -> dict[str, Any]:
        start = time.perf_counter()
        try:
            model = await self.get_model_async(model_name, version)
        except Exception as err:
            metrics.requests.labels(self._label(model_name), outcome_name(err)).inc()
            raise
        with outcome(model.name):
            opts, x, key = self._prepare(model, features, options)
            if key is not None:
                cached = await self._results.aget(key)  # type: ignore[union-attr]
                (_CACHE_HIT if cached is not None else _CACHE_MISS).inc()
                if cached is not None:
                    self._live_cached(model, x, cached)
                    return self._finish(model, cached, start, len(x), True)
            raw = await self._raw_async(model, x)
            explain = opts["explain_predictions"] or opts["feature_importance"]
            contrib = await self._contrib_async(model, x, raw) if explain else None
            if (explain and contrib is None) or (
                opts["confidence_intervals"] and model.conformal is None
            ):
                # permutation SHAP, or fitting the conformal calibration: off the loop
                result = await asyncio.to_thread(self._assemble, model, x, raw, opts, contrib)
            else:
                result = self._assemble(model, x, raw, opts, contrib)
            if key is not None:
                await self._results.aset(key, result)  # type: ignore[union-attr]
            return self._finish(model, result, start, len(x), False)

    # -- rollouts ---------------------------------------------------------------------------------
    @staticmethod
    def _tagged(result: dict[str, Any], request_id: Any) -> dict[str, Any]:
        if request_id is not None:
            result["metadata"]["request_id"] = str(request_id)
        return result

    def _rollout_meta(self, result: dict[str, Any], decision: Decision) -> dict[str, Any]:
        row = decision.rollout
        meta = result["metadata"]
        meta["request_id"] = decision.request_id
        answered = int(meta.get("registry_version", decision.version))
        meta["rollout"] = {
            "id": row.id,
            "mode": row.mode,
            "role": "champion" if answered == row.champion else "challenger",
            "step_percent": row.step_percent,
        }
        self.rollouts.log_answer(decision, answered, result["predictions"])
        return result

    def _count(self, decision: Decision, version: int, t0: float, result: dict[str, Any]) -> None:
        task = "classification" if "probabilities" in result else "regression"
        self.rollouts.record(decision.rollout, version, time.perf_counter() - t0, False, task)

    def _failed(self, decision: Decision, err: BaseException, elapsed: float) -> bool:
        """Count a failed request of the rollout. True where the champion should answer it
        instead (the challenger failed); False where the error is the answer (the champion
        failed). A champion refusing bad input is no failure of it; a challenger refusing input
        is counted against it only once the champion has answered the same rows
        (:meth:`_fallback_answered`): rows bad for every version are the client's fault."""
        row = decision.rollout
        bad_input = isinstance(err, (ModelInputError, ParameterError))
        if decision.version == row.champion:
            if not bad_input:
                self.rollouts.record(row, row.champion, elapsed, True)
            return False
        if not bad_input:
            self.rollouts.record(row, decision.version, elapsed, True)
            self._log_challenger(decision, err)
        return True

    @staticmethod
    def _log_challenger(decision: Decision, err: BaseException) -> None:
        logger.warning(
            "challenger %s v%d failed a request (%s: %s); the champion v%d answered it",
            decision.rollout.name,
            decision.version,
            type(err).__name__,
            err,
            decision.rollout.champion,
        )

    def _fallback_answered(
        self,
        decision: Decision,
        err: BaseException,
        elapsed: float,
        t0: float,
        result: dict[str, Any],
    ) -> None:
        """The champion answered what the challenger failed: the challenger's input refusal
        counts now (its latency ``elapsed``), the champion's answer from ``t0``."""
        if isinstance(err, (ModelInputError, ParameterError)):
            self.rollouts.record(decision.rollout, decision.version, elapsed, True)
            self._log_challenger(decision, err)
        self._count(decision, decision.rollout.champion, t0, result)

    def _fallback_failed(self, decision: Decision, err: BaseException, t0: float) -> None:
        """The champion failed too, answering in the challenger's place: its own failure counts
        unless the input is bad (then neither version is at fault)."""
        if not isinstance(err, (ModelInputError, ParameterError)):
            row = decision.rollout
            self.rollouts.record(row, row.champion, time.perf_counter() - t0, True)

    def _shadow_submit(
        self, decision: Decision, name: str, features: Any, options: dict[str, bool] | None
    ) -> None:
        """The shadow challenger predicts the same rows on a worker thread: its answer is
        logged and judged, never returned."""
        if self._shadow_pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self._shadow_pool = ThreadPoolExecutor(1, thread_name_prefix="mlu-shadow")
        self._shadow_pool.submit(self._shadow, decision, name, features, options)

    def _shadow(
        self, decision: Decision, name: str, features: Any, options: dict[str, bool] | None
    ) -> None:
        version = int(decision.shadow)  # type: ignore[arg-type]
        t0 = time.perf_counter()
        try:
            self.get_model(name, version)
            t0 = time.perf_counter()
            result = self._predict_version_sync(name, features, options, version)
        except Exception as err:  # noqa: BLE001 - the shadow's failure is counted, not raised
            self.rollouts.record(decision.rollout, version, time.perf_counter() - t0, True)
            logger.info("shadow %s v%d failed: %s", name, version, err)
            return
        self._count(decision, version, t0, result)
        self.rollouts.log_answer(decision, version, result["predictions"])

    def record_outcome_sync(self, request_id: Any, label: Any) -> dict[str, Any]:
        """The true ``label`` of an answered request (one value, or one per row): scores the
        versions that predicted it for the rollout's judge. Raises ``ParameterError`` for an
        unknown request id."""
        return self.rollouts.record_outcome(request_id, label)

    async def record_outcome(self, request_id: Any, label: Any) -> dict[str, Any]:
        """Coroutine of :meth:`record_outcome_sync`."""
        return self.record_outcome_sync(request_id, label)

    def rollout_status_sync(self, model_name: str) -> dict[str, Any] | None:
        """The rollout of ``model_name`` (the registry's row) with this process's stats of its
        current step; None where the model never had one."""
        row = self.rollouts.refresh(model_name)
        if row is None:
            return None
        out = row.to_dict()
        out["stats"] = self.rollouts.step_stats(row)
        return out

    # -- live monitoring --------------------------------------------------------------------------
    def monitor_sync(
        self,
        model_name: str,
        *,
        version: int | str | None = None,
        window: int = 500,
        step: int | None = None,
        threshold: float = 0.3,
        patience: int = 2,
        on_alarm: Callable[[str, Any], None] | None = None,
        cpu_share: float = 0.02,
    ) -> dict[str, Any]:
        """Watch the live rows and predictions of ``model_name`` for drift against the
        reference sample of ``version`` (default: its ``champion``, else its latest version).

        Every answered request's rows feed a sliding window of ``window`` rows, scored every
        ``step`` rows on a worker thread (:mod:`ml_utilities.serving.monitor`) that keeps to
        ``cpu_share`` of a core (sampling the rows where the traffic needs more). Returns the
        monitor's status. Calling it again replaces the monitor."""
        from .monitor import LiveMonitor, reference_of

        name, ver = split_name(model_name, version)
        if ver is None:
            ver = "champion" if "champion" in self.registry.aliases(name) else None
        model = self.get_model(name, ver)
        if not model.flat_input:
            raise ParameterError(
                f"{name} v{model.version} takes samples of shape "
                f"{list(model.handle.adapter.input_shape)}: drift is monitored on feature rows "
                "(monitor the model that consumes their summary features)"
            )
        monitor = LiveMonitor(
            name,
            model.version,
            reference_of(model.handle),
            model.feature_names,
            window=window,
            step=step,
            threshold=threshold,
            patience=patience,
            on_alarm=on_alarm,
            cpu_share=cpu_share,
        )
        old = self._monitors.pop(name, None)
        if old is not None:
            old.close()
        self._monitors[name] = monitor
        for key in self._models.keys():  # the versions loaded now; a later load in _load
            loaded = self._models.get(key)
            if loaded is not None and loaded.name == name:
                loaded.live = monitor.intake(loaded.task)
        return monitor.status()

    def monitor_of(self, model_name: str) -> LiveMonitor | None:
        """The live drift monitor of ``model_name`` in this service, or None."""
        return self._monitors.get(model_name)

    def drift_status_sync(self, model_name: str, *, flush: bool = False) -> dict[str, Any]:
        """The drift monitor's status of ``model_name`` (score, alarm, history...).

        Raises ``ParameterError`` where the model is not monitored."""
        monitor = self._monitors.get(model_name)
        if monitor is None:
            raise ParameterError(f"model {model_name!r} is not monitored: call monitor() first")
        if flush:
            monitor.flush()
        return monitor.status()

    def unmonitor_sync(self, model_name: str) -> None:
        monitor = self._monitors.pop(model_name, None)
        if monitor is not None:
            for key in self._models.keys():
                loaded = self._models.get(key)
                if loaded is not None and loaded.name == model_name:
                    loaded.live = None
            monitor.close()

    def _live_cached(self, model: LoadedModel, x: np.ndarray, result: dict[str, Any]) -> None:
        """A cached answer's rows are live traffic too (the drift is in what clients send)."""
        monitor = self._monitors.get(model.name)
        if monitor is not None:
            key = "probabilities" if model.task == "classification" else "predictions"
            monitor.submit(x, np.asarray(result[key], dtype=np.float64), model.task)

    def _fast_request(self, model_name: str, doc: Any) -> tuple[LoadedModel, list[Any]] | None:
        """``(model, features)`` where ``doc`` is the fast path's request (:func:`fast_row`)
        for a flat-input model that is loaded and takes that many features; else None."""
        features = fast_row(doc)
        if features is None:
            return None
        fresh, row = self.rollouts.cached(model_name)
        if not fresh or (row is not None and row.running):
            # a rollout may split this model's traffic: predict_batch reads the split
            return None
        model = self._loaded(model_name, None)
        if model is None or not model.flat_input or len(features[0]) != model.n_features:
            return None
        return model, features

    def submit_json(
        self, model_name: str, doc: Any, callback: Callable[[bytes | None, Any], None]
    ) -> bool:
        """The fast path of the predict route, without a coroutine: True where it takes the
        request ``doc`` (a decoded HTTP body), and then ``callback(payload, None)`` with the
        JSON answer, ``callback(None, err)`` with the error, or ``callback(None, None)`` where
        the row turned out not to be finite numbers (:meth:`predict_batch` says why), runs
        once, later, on this event loop's thread; False where :meth:`predict_batch` must
        answer. An error at submission (``Overloaded``, a closed batcher) is counted and raised
        here. Must be called on the event loop's thread.

        It takes the common request: one row of a flat-input model that is already loaded, no
        options (or all False), no ``version`` field, and no result cache or the in-process one
        (:func:`~ml_utilities.serving.request.fast_row`). With dynamic batching, the decoded
        row goes to the native batcher, which checks and converts it, and the batch's wake-up
        of the loop answers every request of the batch (no task, future or coroutine per
        request; :meth:`LoadedModel.encode` writes the documents of a whole batch at once and
        counts them in the metrics). Without it, the model is called once for the request on
        the default executor, as :meth:`predict_batch` does. With the in-process result cache,
        the row is converted here to look up its key (that of :meth:`predict_batch`: model
        name and version, options, the float32 bytes); a hit is answered from the cache, and a
        miss's document (less its timing) is cached. The documents, metrics and errors are
        those of :meth:`predict_batch` for that row.
        """
        results = self._results
        if results is not None and type(results) is not InProcessResultCache:
            return False
        found = self._fast_request(model_name, doc)
        if found is None:
            return False
        model, features = found
        row = features[0]
        name = model.name
        batcher = model.batcher
        start = time.perf_counter()
        x = None
        if results is not None or batcher is None:  # converted here, so checked here first
            # in Python: a numpy call that releases the GIL would hand it to the batcher thread
            # waiting to cut its batch, which would then cut one of a few rows
            if not all(
                (type(v) is float or type(v) is int) and -FLOAT32_MAX <= v <= FLOAT32_MAX
                for v in row
            ):  # NaN fails both comparisons
                return False
            x = np.asarray(features, dtype=np.float32)  # as predict_batch converts it

        def done(payload: Any, err: BaseException | None) -> None:
            if isinstance(err, ParameterError):  # not finite numbers: predict_batch answers
                callback(None, None)
                return
            if err is not None:
                metrics.requests.labels(name, outcome_name(err)).inc()
            callback(payload, err)

        finish = done
        try:
            if results is not None:
                key = self._cache_key(model, NO_OPTIONS, x)  # type: ignore[arg-type]
                cached = results.get(key)
                (_CACHE_HIT if cached is not None else _CACHE_MISS).inc()
                if cached is not None:
                    payload = _dumps(self._finish(model, cached, start, 1, True))
                    asyncio.get_running_loop().call_soon(callback, payload, None)
                    return True

                def finish(payload: Any, err: BaseException | None) -> None:
                    if payload is not None:  # cached as predict_batch caches it
                        try:
                            answer = _loads(payload)
                            meta = answer["metadata"]
                            for timing in TIMING_KEYS:  # added to every answer by _finish
                                del meta[timing]
                            results.set(key, answer)
                        except Exception:  # the request is answered all the same
                            logger.exception("caching an answer of %s failed", name)
                    done(payload, err)

            if batcher is None:  # one model call for this request, off the loop
                job = asyncio.get_running_loop().run_in_executor(None, model.batch_fn, x)

                def called(job: asyncio.Future[Any]) -> None:
                    try:
                        out = job.result()
                        payload = model.encode([(None, start)], out)[0]
                    except BaseException as err:  # noqa: BLE001 - the request's error
                        finish(None, err)
                        return
                    finish(payload, None)

                job.add_done_callback(called)
                return True
            batcher.submit_callback(row, start, finish, timeout=self._config.request_timeout_s)
        except ParameterError:  # not a row of finite numbers: predict_batch says why
            return False
        except Exception as err:
            metrics.requests.labels(name, outcome_name(err)).inc()
            raise
        return True

    async def predict_json(self, model_name: str, doc: Any) -> bytes | None:
        """:meth:`submit_json` as a coroutine: the JSON answer (bytes) to a decoded HTTP
        request body ``doc``, or None where the fast path does not apply (the caller then uses
        :meth:`predict_batch`, which also gives every error its message)."""
        answer: asyncio.Future[bytes | None] = asyncio.get_running_loop().create_future()

        def settle(payload: bytes | None, err: BaseException | None) -> None:
            if answer.done():  # the caller was cancelled
                return
            if err is not None:
                answer.set_exception(err)
            else:
                answer.set_result(payload)

        if not self.submit_json(model_name, doc, settle):
            return None
        return await answer

    def predict_sync(
        self,
        model_name: str,
        features: Any,
        options: dict[str, bool] | None = None,
        *,
        version: int | str | None = None,
    ) -> dict[str, Any]:
        """Synchronous twin of :meth:`predict`."""
        return single(
            self.predict_batch_sync(model_name, one_row(features), options, version=version)
        )

    async def predict(
        self,
        model_name: str,
        features: Any,
        options: dict[str, bool] | None = None,
        *,
        version: int | str | None = None,
    ) -> dict[str, Any]:
        """Predict one row ``(n_features,)`` (or one sample of the model's shape).

        Returns the dictionary of :meth:`predict_batch` for that row, with singular keys:
        ``prediction``, ``probabilities`` (classifiers), ``confidence_interval``,
        ``explanation``, ``feature_importance``, ``metadata``.
        """
        return single(
            await self.predict_batch(model_name, one_row(features), options, version=version)
        )

    def _counted(self, model_name: str, fn: Callable[[], LoadedModel]) -> LoadedModel:
        try:
            return fn()
        except Exception as err:
            metrics.requests.labels(self._label(model_name), outcome_name(err)).inc()
            raise

    def _label(self, model_name: Any) -> str:
        """The ``model`` label of a request for ``model_name`` that failed before its model was
        found: the name (without its version) if this service has loaded that model once, else
        :data:`UNKNOWN_MODEL`."""
        if isinstance(model_name, str):
            name = model_name.partition("@")[0].partition(":")[0]
            if name in self._labelled:
                return name
        return UNKNOWN_MODEL

    # -- status and shutdown ---------------------------------------------------------------------
    def loaded_models(self) -> list[dict[str, Any]]:
        """What is in the model cache, least recently used first."""
        out = []
        for key in self._models.keys():
            m = self._models.get(key)
            if m is None:
                continue
            out.append(
                {
                    "name": m.name,
                    "version": m.version,
                    "model_version": m.version_label,
                    "framework": m.handle.framework,
                    "task": m.task,
                    "n_features": m.n_features,
                    "backend": m.backend,
                    "device": m.device,
                    "fallback": m.fallback,
                    "batcher": None if m.batcher is None else m.batcher.stats(),
                }
            )
        return out

    @property
    def recommenders(self) -> RecommenderService:
        """The recommenders this service answers (``/v1/recommenders/{name}:recommend``): a
        :class:`~ml_utilities.serving.recommend.RecommenderService` over the same registry,
        made at first use; assign one to choose its settings."""
        if self._recommenders is None:
            from .recommend import RecommenderService

            with self._loading_lock:
                if self._recommenders is None:
                    self._recommenders = RecommenderService(
                        self.registry, freeze_gc=self._freeze_gc
                    )
        return self._recommenders

    @recommenders.setter
    def recommenders(self, value: RecommenderService) -> None:
        from .recommend import RecommenderService

        if not isinstance(value, RecommenderService):
            raise ParameterError(
                f"recommenders must be a RecommenderService, got {type(value).__name__}"
            )
        if self._recommenders is not None and self._recommenders is not value:
            self._recommenders.close()
        self._recommenders = value

    def close_sync(self) -> None:
        """Drain every batcher and release the caches."""
        self._closed = True
        if self._recommenders is not None:
            self._recommenders.close()
        self.rollouts.close()
        for monitor in list(self._monitors.values()):
            monitor.close()
        if self._shadow_pool is not None:
            self._shadow_pool.shutdown(wait=True)
        for model in self._models.pop_all():
            model.close()
        metrics.models_loaded.set(0)
        if self._results is not None:
            self._results.close()

    async def close(self) -> None:
        """Coroutine of :meth:`close_sync`."""
        if isinstance(self._results, RedisResultCache):
            await self._results.aclose()
        await asyncio.to_thread(self.close_sync)


def _refreeze_gc() -> None:
    """One full collection over everything, frozen objects included (so the cycles of an
    evicted model are freed too), then every survivor frozen again: one pause per model load
    instead of one per full collection while serving."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()
