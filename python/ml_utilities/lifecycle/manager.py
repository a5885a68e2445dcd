"""ModelLifecycleManager: the specification's loop of register, deploy (validate, performance
tests, gradual rollout), monitor (metrics, drift) and retrain, over the registry, the model
manager and the prediction service of one process.

Examples
--------
>>> lifecycle = ModelLifecycleManager(manager)                      # doctest: +SKIP
>>> mv = await lifecycle.register_model(handle, {"owner": "recs"})  # doctest: +SKIP
>>> await lifecycle.deploy_model("genre", mv.version, {"rollout": {"window_s": 30}})
... # doctest: +SKIP
>>> report = await lifecycle.monitor_model("genre")                 # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import logging
import math
import os
import time
from typing import Any

import numpy as np

from ..exceptions import ParameterError
from ..models.errors import DeploymentRefusedError

__all__ = ["DEFAULT_LIFECYCLE_CONFIG", "ModelLifecycleManager"]

#: the service settings a performance test copies from the serving one (``configure``'s keys)
_SERVICE_KEYS = (
    "model_cache_size",
    "batch_size",
    "max_latency_ms",
    "gpu_enabled",
    "model_optimization",
    "dynamic_batching",
    "max_queue_delay_us",
    "max_queue_size",
    "request_timeout_s",
    "batcher_workers",
)

logger = logging.getLogger(__name__)

#: every key the lifecycle configuration accepts, with its default
DEFAULT_LIFECYCLE_CONFIG: dict[str, dict[str, Any]] = {
    # the challenger's metric on the held-out rows may be worse than the champion's by this
    # much: accuracy points for classifiers, a share of the mean absolute error for regressors
    "validation": {"max_metric_drop": 0.01, "export": None},
    # through the real serving path: p99 per request and rows/s at each batch size
    "performance": {
        "batch_sizes": [1, 32],
        "requests": 200,
        "max_p99_ms": 100.0,
        "min_rows_per_s": None,
        "max_memory_mb": None,
    },
    "rollout": {
        "steps": [5, 25, 50, 100],
        "window_s": 60.0,
        "mode": "canary",
        "criteria": {},
        "wait": False,
        "timeout_s": None,
    },
    # a drift score above the threshold with the alarm on (hysteresis) triggers retraining
    "drift": {"threshold": 0.3, "window": 500, "step": None, "patience": 2, "cpu_share": 0.02},
    "retraining": {
        "data": None,
        "target": None,
        "config": None,
        "validation_split": 0.2,
        "nice": 10,
        "threads": 1,
    },
}


def _merge(base: dict[str, Any], over: dict[str, Any] | None, where: str) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in (over or {}).items():
        if key not in base:
            raise ParameterError(f"unknown {where} key {key!r}; accepted: {sorted(base)}")
        if isinstance(base[key], dict) and isinstance(value, dict):
            out[key] = _merge(base[key], value, f"{where}[{key!r}]")
        else:
            out[key] = value
    return out


class ModelLifecycleManager:
    """Versions, validation, rollouts, drift monitoring and retraining of served models.

    Every coroutine has a synchronous twin ending in ``_sync``.

    Parameters
    ----------
    manager : ModelManager, optional
        Where models are registered (default: one on the default registry).
    service : PredictionService, optional
        The service that serves them, in this process: rollouts are judged and live inputs
        watched there (default: a new one on ``manager``'s registry).
    config : dict, optional
        Overrides of :data:`DEFAULT_LIFECYCLE_CONFIG` (``validation``, ``performance``,
        ``rollout``, ``drift``, ``retraining``).
    """

    def __init__(
        self,
        manager: Any = None,
        *,
        service: Any = None,
        config: dict[str, Any] | None = None,
    ) -> None:
        if manager is None:
            from ..models import ModelManager

            manager = ModelManager()
        self.manager = manager
        if service is None:
            from ..serving import PredictionService
            from ..serving.loaded import cuda_available

            service = PredictionService(
                registry=manager.registry, config={"gpu_enabled": cuda_available()}
            )
        self.service = service
        self.config = _merge(DEFAULT_LIFECYCLE_CONFIG, config, "lifecycle config")
        self.jobs: dict[str, Any] = {}

    @property
    def registry(self) -> Any:
        return self.manager.registry

    def _section(self, key: str, over: dict[str, Any] | None) -> dict[str, Any]:
        return _merge(self.config[key], over, f"{key} config")

    # -- versions --------------------------------------------------------------------------------
    def increment_version_sync(self, model_name: str) -> int:
        """The version number the next registration of ``model_name`` gets."""
        try:
            versions = self.registry.list_versions(model_name)
        except Exception:  # noqa: BLE001 - an unknown name starts at 1
            return 1
        return (max(v.version for v in versions) + 1) if versions else 1

    async def increment_version(self, model_name: str) -> int:
        return await asyncio.to_thread(self.increment_version_sync, model_name)

    def register_model_sync(
        self,
        model: Any,
        metadata: dict[str, Any] | None = None,
        *,
        name: str | None = None,
        reference_data: Any = None,
        aliases: list[str] | tuple[str, ...] = (),
    ) -> Any:
        """Register ``model`` (a ModelHandle) as the next version of its name, with a
        fingerprinted reference sample: ``reference_data`` (``X`` or ``(X, y)``), else the one
        it carries (training rows), else its held-out rows. The reference is what validation
        and drift monitoring compare against.

        Returns the :class:`~ml_utilities.models.ModelVersion`."""
        if reference_data is not None:
            if isinstance(reference_data, tuple) and len(reference_data) == 2:
                model.set_reference(reference_data[0], reference_data[1])
            else:
                model.set_reference(reference_data)
        elif getattr(model, "reference", None) is None and getattr(model, "holdout", None):
            x, y = model.holdout
            model.set_reference(x, y)
        meta = dict(metadata or {})
        if model.reference_fingerprint is not None:
            meta.setdefault("reference_fingerprint", model.reference_fingerprint)
            meta.setdefault("reference_rows", int(len(model.reference["x"])))
        return self.manager.register_model_sync(model, name=name, metadata=meta, aliases=aliases)

    async def register_model(
        self, model: Any, metadata: dict[str, Any] | None = None, **kwargs: Any
    ) -> Any:
        """Coroutine of :meth:`register_model_sync`."""
        return await asyncio.to_thread(self.register_model_sync, model, metadata, **kwargs)

    # -- deployment: validate, performance, rollout ------------------------------------------------
    def _champion(self, name: str) -> int | None:
        return self.registry.aliases(name).get("champion")

    def validate_model_sync(
        self, model_name: str, version: int, config: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Check ``version`` against the serving champion: a compatible signature (task, input
        shape, classes, feature names), a metric on held-out rows not worse than the champion's
        on the same rows by more than ``max_metric_drop``, and the export check where
        ``export`` names a deployment configuration. The rows: ``data`` (``(X, y)``) where
        given, else the candidate's held-out rows (or its labelled reference) with the
        champion's held-out rows.

        Raises
        ------
        DeploymentRefusedError
            Naming the failed check with its numbers.
        """
        cfg = self._section("validation", config)
        candidate = self.registry.load(model_name, version)
        mv = self.registry.get_version(model_name, version)
        report: dict[str, Any] = {"version": int(version), "checks": {}}
        champion_v = self._champion(model_name)
        report["champion"] = champion_v
        data = cfg.get("data")
        if data is None:
            data = candidate.holdout
            if data is None and candidate.reference is not None and "y" in candidate.reference:
                data = (candidate.reference["x"], candidate.reference["y"])
        if data is None:
            raise DeploymentRefusedError(
                f"{model_name} v{version}: no held-out rows to validate on (register it with "
                "a holdout or reference labels, or pass validation={'data': (X, y)})"
            )
        x, y = np.asarray(data[0]), np.asarray(data[1])
        task = candidate.task if candidate.codec is None else "classification"
        champ = cmv = None
        if champion_v is not None and int(champion_v) != int(version):
            champ = self.registry.load(model_name, champion_v)
            cmv = self.registry.get_version(model_name, champion_v)
            problems = _signature_problems(candidate, mv, champ, cmv)
            report["checks"]["signature"] = {"compatible": not problems, "problems": problems}
            if problems:
                raise DeploymentRefusedError(
                    f"{model_name} v{version} is not compatible with the champion "
                    f"v{champion_v}: " + "; ".join(problems),
                    report,
                )
            if cfg.get("data") is None and champ.holdout is not None:
                # the champion's held-out rows too: a candidate trained on other (fresh or
                # wrong) labels is judged on the rows the champion was judged on as well
                x = np.concatenate(
                    [x.reshape(len(x), -1), champ.holdout[0].reshape(len(champ.holdout[0]), -1)]
                ).reshape(-1, *x.shape[1:])
                y = np.concatenate([y.astype(object), np.asarray(champ.holdout[1], object)])
        score_c = _score(candidate, x, y, task)
        report["checks"]["metric"] = {"candidate": score_c}
        if champ is not None:
            score_b = _score(champ, x, y, task)
            report["checks"]["metric"]["champion"] = score_b
            drop = float(cfg["max_metric_drop"])
            name_ = score_c["name"]
            worse = (
                score_c["value"] < score_b["value"] - drop
                if name_ == "accuracy"
                else score_c["value"] > score_b["value"] * (1.0 + drop)
            )
            report["checks"]["metric"]["passed"] = not worse
            if worse:
                raise DeploymentRefusedError(
                    f"{model_name} v{version}: {name_} {score_c['value']:.4f} on {len(x)} "
                    f"held-out rows against {score_b['value']:.4f} of the champion "
                    f"v{champion_v}, past the allowed drop {drop}",
                    report,
                )
        if cfg.get("export"):
            deployed = self.manager.deploy_model_sync(candidate, dict(cfg["export"]))
            report["checks"]["export"] = {"passed": True, "deployment": repr(deployed)}
        report["passed"] = True
        return report

    async def validate_model(
        self, model_name: str, version: int, config: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        return await asyncio.to_thread(self.validate_model_sync, model_name, version, config)

    def run_performance_tests_sync(
        self, model_name: str, version: int, config: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """p50/p99 latency per request and rows/s at each configured batch size through the
        real serving path (this service's ``predict_batch``, batcher included), and the
        loaded model's memory.

        Raises
        ------
        DeploymentRefusedError
            With the numbers past the SLA (``max_p99_ms``, ``min_rows_per_s``,
            ``max_memory_mb``).
        """
        cfg = self._section("performance", config)
        sizes = cfg["batch_sizes"]
        if not isinstance(sizes, (list, tuple)) or any(
            isinstance(b, bool) or not isinstance(b, int) or b < 1 for b in sizes
        ):
            raise ParameterError(
                f"performance batch_sizes={sizes!r}: expected a list of positive integers "
                "(an empty list only loads the version through the serving path)"
            )
        if int(cfg["requests"]) < 1:
            raise ParameterError(f"performance requests={cfg['requests']!r}: expected >= 1")
        handle = self.registry.load(model_name, version)
        rows = _rows_for(handle)
        # the serving path as configured, without the result cache (repeated rows would be
        # answered from it and flatter the latency)
        from ..serving import PredictionService

        settings = dataclasses.asdict(self.service.config)
        settings = {k: v for k, v in settings.items() if k in _SERVICE_KEYS}
        settings["prediction_cache_ttl"] = 0
        service = PredictionService(registry=self.registry, config=settings)
        try:
            return self._performance(service, model_name, int(version), cfg, rows)
        finally:
            service.close_sync()

    def _performance(
        self, service: Any, model_name: str, version: int, cfg: dict[str, Any], rows: np.ndarray
    ) -> dict[str, Any]:
        loaded = service.get_model(model_name, int(version))
        report: dict[str, Any] = {"version": int(version), "batches": {}}
        failures: list[str] = []
        for bs in cfg["batch_sizes"]:
            bs = int(bs)
            n = max(10, int(cfg["requests"]) // max(1, bs // 8))
            lat = np.empty(n)
            t_all = time.perf_counter()
            for i in range(n):
                start = (i * bs) % max(1, len(rows) - bs)
                batch = rows[start : start + bs]
                if len(batch) < bs:
                    batch = np.resize(rows, (bs, rows.shape[1]))
                t0 = time.perf_counter()
                service.predict_batch_sync(model_name, batch, version=int(version))
                lat[i] = time.perf_counter() - t0
            total = time.perf_counter() - t_all
            entry = {
                "requests": n,
                "p50_ms": round(float(np.percentile(lat, 50)) * 1e3, 3),
                "p99_ms": round(float(np.percentile(lat, 99)) * 1e3, 3),
                "rows_per_s": round(n * bs / total, 1),
            }
            report["batches"][str(bs)] = entry
            limit = cfg["max_p99_ms"]
            if isinstance(limit, dict):
                limit = limit.get(str(bs), limit.get(bs))
            if limit is not None and entry["p99_ms"] > float(limit):
                failures.append(f"batch {bs}: p99 {entry['p99_ms']} ms > {limit} ms")
            if cfg["min_rows_per_s"] is not None and entry["rows_per_s"] < cfg["min_rows_per_s"]:
                failures.append(
                    f"batch {bs}: {entry['rows_per_s']} rows/s < {cfg['min_rows_per_s']}"
                )
        memory_mb = loaded.size_bytes / 2**20
        report["memory_mb"] = round(memory_mb, 3)
        report["rss_mb"] = round(_rss_mb(), 1)
        if cfg["max_memory_mb"] is not None and memory_mb > float(cfg["max_memory_mb"]):
            failures.append(f"memory {memory_mb:.1f} MB > {cfg['max_memory_mb']} MB")
        report["passed"] = not failures
        if failures:
            raise DeploymentRefusedError(
                f"{model_name} v{version} fails its performance SLA: " + "; ".join(failures),
                report,
            )
        return report

    async def run_performance_tests(
        self, model_name: str, version: int, config: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        return await asyncio.to_thread(self.run_performance_tests_sync, model_name, version, config)

    def gradual_rollout_sync(
        self, model_name: str, version: int, config: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Start a rollout of ``version`` against the champion (steps, window, mode,
        criteria: :mod:`ml_utilities.serving.rollout`); where no champion exists yet, the
        version simply becomes it. With ``wait``, return once it is promoted or rolled back
        (or ``timeout_s`` passed)."""
        cfg = self._section("rollout", config)
        if self._champion(model_name) is None:
            self.registry.set_alias(model_name, "champion", int(version))
            return {"status": "promoted", "champion": int(version), "detail": "first champion"}
        row = self.registry.start_rollout(
            model_name,
            int(version),
            steps=cfg["steps"],
            window_s=float(cfg["window_s"]),
            mode=cfg["mode"],
            criteria=cfg["criteria"],
        )
        self.service.rollouts.refresh(model_name)  # this process judges it from now on
        if not cfg["wait"]:
            return row.to_dict()
        deadline = None if cfg["timeout_s"] is None else time.monotonic() + cfg["timeout_s"]
        while True:
            row = self.service.rollouts.refresh(model_name)
            if not row.running or (deadline is not None and time.monotonic() > deadline):
                return row.to_dict()
            time.sleep(0.2)

    async def gradual_rollout(
        self, model_name: str, version: int, config: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        return await asyncio.to_thread(self.gradual_rollout_sync, model_name, version, config)

    def deploy_model_sync(
        self, model_name: str, version: int, deployment_config: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """validate -> performance tests -> gradual rollout. ``deployment_config`` holds
        ``validation``, ``performance`` and ``rollout`` sections (overrides of this manager's).
        A refusal is recorded in the registry's deployments and raised."""
        dc = dict(deployment_config or {})
        unknown = sorted(set(dc) - {"validation", "performance", "rollout"})
        if unknown:
            raise ParameterError(
                f"unknown deployment_config key(s) {unknown}; accepted: validation, "
                "performance, rollout"
            )
        out: dict[str, Any] = {"model": model_name, "version": int(version)}
        try:
            self.registry.get_version(model_name, int(version))  # ModelNotFoundError
            row = self.registry.get_rollout(model_name)
            if row is not None and row.running:
                raise DeploymentRefusedError(
                    f"{model_name}: rollout {row.id} of v{row.challenger} is still running at "
                    f"{row.step_percent:g}%: let it finish or roll it back first",
                    out,
                )
            if self._champion(model_name) == int(version):
                raise DeploymentRefusedError(
                    f"{model_name} v{version} is already the champion", out
                )
            out["validation"] = self.validate_model_sync(model_name, version, dc.get("validation"))
            out["performance"] = self.run_performance_tests_sync(
                model_name, version, dc.get("performance")
            )
        except DeploymentRefusedError as err:
            if err.report:
                out.setdefault("refused_report", err.report)
            self.registry.record_deployment(
                model_name, int(version), status="refused", config=dc, report=out, reason=str(err)
            )
            raise
        out["rollout"] = self.gradual_rollout_sync(model_name, version, dc.get("rollout"))
        try:
            self._ensure_monitor(model_name)
        except ParameterError as err:  # a model over 2-D samples: no row-wise drift
            logger.info("%s is deployed without drift monitoring: %s", model_name, err)
        self.registry.record_deployment(
            model_name, int(version), status="deployed", config=dc, report=out
        )
        return out

    async def deploy_model(
        self, model_name: str, version: int, deployment_config: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Coroutine of :meth:`deploy_model_sync`."""
        return await asyncio.to_thread(
            self.deploy_model_sync, model_name, version, deployment_config
        )

    # -- monitoring ------------------------------------------------------------------------------
    def start_monitoring_sync(self, model_name: str) -> dict[str, Any]:
        """Watch ``model_name``'s live rows in this process's service from now on (the
        ``drift`` configuration); :meth:`deploy_model` does it for what it deploys. Returns the
        monitor's status."""
        self._ensure_monitor(model_name)
        return self.service.drift_status_sync(model_name)

    async def start_monitoring(self, model_name: str) -> dict[str, Any]:
        return await asyncio.to_thread(self.start_monitoring_sync, model_name)

    def _ensure_monitor(self, model_name: str) -> None:
        if self.service.monitor_of(model_name) is None:
            d = self.config["drift"]
            self.service.monitor_sync(
                model_name,
                window=int(d["window"]),
                step=d["step"],
                threshold=float(d["threshold"]),
                patience=int(d["patience"]),
                cpu_share=float(d["cpu_share"]),
            )

    def collect_model_metrics_sync(self, model_name: str) -> dict[str, Any]:
        """What is known of ``model_name`` now: versions and aliases, the rollout with this
        process's step stats, the drift monitor's status, the loaded versions."""
        self._ensure_monitor(model_name)
        out: dict[str, Any] = {
            "model": model_name,
            "aliases": self.registry.aliases(model_name),
            "rollout": self.service.rollout_status_sync(model_name),
            "drift": self.service.drift_status_sync(model_name),
            "loaded": [m for m in self.service.loaded_models() if m["name"] == model_name],
        }
        return out

    async def collect_model_metrics(self, model_name: str) -> dict[str, Any]:
        return await asyncio.to_thread(self.collect_model_metrics_sync, model_name)

    def detect_data_drift_sync(self, model_name: str) -> float:
        """The drift score of ``model_name``'s live window against its reference, in [0, 1]
        (0.3: see :class:`~ml_utilities.monitoring.DriftDetector`); 0.0 until the first window
        is full. Starts the monitor on its first call."""
        self._ensure_monitor(model_name)
        status = self.service.drift_status_sync(model_name, flush=True)
        return 0.0 if status["score"] is None else float(status["score"])

    async def detect_data_drift(self, model_name: str) -> float:
        return await asyncio.to_thread(self.detect_data_drift_sync, model_name)

    def monitor_model_sync(self, model_name: str) -> dict[str, Any]:
        """Metrics and drift of ``model_name``; retraining starts where the drift score passes
        the threshold (0.3) with the alarm on (hysteresis: one noisy window does not retrain)
        and no retraining of it is already running."""
        score = self.detect_data_drift_sync(model_name)  # every row submitted is scored
        metrics = self.collect_model_metrics_sync(model_name)
        status = self.service.drift_status_sync(model_name)
        out = {"metrics": metrics, "drift_score": score, "alarm": status["alarm"], "job": None}
        threshold = float(self.config["drift"]["threshold"])
        job = self.jobs.get(model_name)
        if score > threshold and status["alarm"] and (job is None or job.done()):
            out["job"] = self.trigger_retraining_sync(model_name)
        elif job is not None:
            out["job"] = job
        return out

    async def monitor_model(self, model_name: str) -> dict[str, Any]:
        """The specification's monitor step (:meth:`monitor_model_sync`)."""
        return await asyncio.to_thread(self.monitor_model_sync, model_name)

    def write_report_sync(self, model_name: str, path: Any) -> Any:
        """Write the HTML monitoring report of ``model_name``: its reference rows against the
        live window, the drift score over time, and the rollout (champion against challenger)
        where there is one. Returns the path."""
        from .report import render_monitoring_report

        self._ensure_monitor(model_name)
        status = self.service.drift_status_sync(model_name, flush=True)
        monitor = self.service.monitor_of(model_name)
        assert monitor is not None  # _ensure_monitor made it
        live, _ = monitor.monitor.window_rows()
        ref = monitor.monitor.detector
        reference = self.registry.load(model_name, status["reference_version"]).reference
        ref_x = np.asarray(reference["x"], dtype=np.float64).reshape(len(reference["x"]), -1)
        if len(live) == 0:
            raise ParameterError(
                f"{model_name}: no live rows yet to compare with the reference (serve some "
                "traffic first)"
            )
        rollout = None
        row = self.service.rollout_status_sync(model_name)
        if row is not None:
            stats = row["stats"]
            rollout = {
                "step_percent": row["step_percent"],
                "status": row["status"],
                "champion": _report_side(stats["champion"]),
                "challenger": _report_side(stats["challenger"]),
                "events": row["events"],
            }
        return render_monitoring_report(
            path,
            model=model_name,
            feature_names=list(ref.feature_names),
            reference=ref_x,
            live=live,
            drift_history=[tuple(p) for p in status["history"]],
            threshold=float(self.config["drift"]["threshold"]),
            rollout=rollout,
        )

    async def write_report(self, model_name: str, path: Any) -> Any:
        return await asyncio.to_thread(self.write_report_sync, model_name, path)

    # -- retraining ------------------------------------------------------------------------------
    def trigger_retraining_sync(self, model_name: str, config: dict[str, Any] | None = None) -> Any:
        """Retrain ``model_name`` out of this process (a niced subprocess with ``threads``
        threads): the champion's training configuration on ``retraining['data']`` (a CSV or
        Parquet file with the ``target`` column, or an ``.npz`` with ``x`` and ``y``),
        registered as the alias ``challenger`` with its reference sample. Returns a
        :class:`~ml_utilities.lifecycle.retrain.RetrainingJob`; deploy its version with
        :meth:`deploy_model` once it is done."""
        from .retrain import start_retraining

        cfg = self._section("retraining", config)
        if cfg["data"] is None:
            raise ParameterError(
                "retraining needs data: lifecycle config {'retraining': {'data': PATH, "
                "'target': COLUMN}}"
            )
        champion = self._champion(model_name)
        base = self.registry.get_version(model_name, champion if champion else None)
        train_cfg = cfg["config"]
        if train_cfg is None:
            handle = self.registry.load(model_name, base.version)
            train_cfg = {k: v for k, v in handle.config.items() if k != "name"}
        reg = self.registry
        job = start_retraining(
            model_name,
            registry_url=reg.url,
            artifact_root=reg.store.url,
            data=os.fspath(cfg["data"]),
            target=cfg["target"],
            train_config=train_cfg,
            validation_split=float(cfg["validation_split"]),
            based_on=int(base.version),
            nice=int(cfg["nice"]),
            threads=int(cfg["threads"]),
        )
        self.jobs[model_name] = job
        return job

    async def trigger_retraining(
        self, model_name: str, config: dict[str, Any] | None = None
    ) -> Any:
        return await asyncio.to_thread(self.trigger_retraining_sync, model_name, config)

    def close_sync(self) -> None:
        for job in self.jobs.values():
            job.terminate()


# -- helpers ---------------------------------------------------------------------------------
def _report_side(stats: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": stats["version"],
        "requests": stats["requests"],
        "errors": stats["errors"],
        "p99_ms": stats["p99_ms"],
        "metric": stats["metric"],
    }


def _score(handle: Any, x: np.ndarray, y: np.ndarray, task: str) -> dict[str, Any]:
    pred = handle.predict(x)
    if task == "classification":
        value = float(np.mean(np.asarray(pred).astype(str) == np.asarray(y).astype(str)))
        return {"name": "accuracy", "value": value, "rows": int(len(x))}
    err = np.abs(np.asarray(pred, dtype=np.float64).reshape(-1) - y.astype(np.float64).reshape(-1))
    return {"name": "mae", "value": float(err.mean()), "rows": int(len(x))}


def _signature_problems(cand: Any, cmv: Any, champ: Any, bmv: Any) -> list[str]:
    problems = []
    if cand.task != champ.task:
        problems.append(f"task {cand.task!r} != champion's {champ.task!r}")
    # the sample shape (the batch dimension, None, left out)
    a = [d for d in cand.signature["inputs"]["shape"] if d is not None]
    b = [d for d in champ.signature["inputs"]["shape"] if d is not None]
    if a != b:
        problems.append(f"input shape {a} != champion's {b}")
    ca, cb = cand.classes, champ.classes
    if (ca is None) != (cb is None) or (
        ca is not None and sorted(map(str, ca)) != sorted(map(str, cb))
    ):
        problems.append(f"classes {ca} != champion's {cb}")
    fa, fb = cmv.metadata.get("feature_names"), bmv.metadata.get("feature_names")
    if fa is not None and fb is not None and list(fa) != list(fb):
        problems.append("feature_names differ from the champion's")
    return problems


def _rows_for(handle: Any) -> np.ndarray:
    ref = handle.reference
    if ref is not None:
        x = ref["x"]
    elif handle.holdout is not None:
        x = handle.holdout[0]
    else:
        shape = tuple(handle.signature["inputs"]["shape"])
        x = np.random.default_rng(0).standard_normal((512, *shape))
    x = np.asarray(x, dtype=np.float32)
    return x.reshape(len(x), -1)


def _rss_mb() -> float:
    try:
        with open("/proc/self/statm") as fh:
            pages = int(fh.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return math.nan
