"""DataPipeline: ingestion, validation, preprocessing, feature engineering, training and
validation from one configuration (the specification's ``run_complete_pipeline``)."""

from __future__ import annotations

import asyncio
import copy
import logging
import re
import sys
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._jsonable import jsonable
from ..exceptions import ParameterError
from ..features.listening import ITEM_COLUMNS, USER_COLUMNS, WEIGHT_COLUMNS
from .config import DEFAULT_MODELS, check_config
from .errors import PipelineConfigError
from .features import FeatureBuilder, PolynomialExpansion
from .preprocessing import build_column_transformer, build_outlier_detector
from .sources import join_frames, read_source, read_source_async
from .training import PipelineModel, evaluate, feature_names, fit_split
from .validation import validate_frame

__all__ = ["DataPipeline"]

logger = logging.getLogger(__name__)

_TIMESTAMP_NAMES = ("timestamp", "played_at", "listened_at", "event_time", "time")


def _progress(total: int, desc: str, enabled: bool | None) -> Any:
    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="fit")


def _configured_task(model_config: dict[str, Any]) -> str | None:
    """The task the model configuration names (``task`` or ``task_type``), if any."""
    task = model_config.get("task", model_config.get("task_type"))
    if task is None:
        return None
    return "regression" if task == "regression" else "classification"


def _infer_task(y: pd.Series, model_config: dict[str, Any]) -> str:
    task = _configured_task(model_config)
    if task is not None:
        return task
    if pd.api.types.is_float_dtype(y):
        vals = y.dropna()
        if len(vals) and np.all(np.mod(vals, 1) == 0) and vals.nunique() <= 20:
            return "classification"
        return "regression"
    if pd.api.types.is_integer_dtype(y) and y.nunique() > 20:
        return "regression"
    return "classification"


def _is_automl(model_config: dict[str, Any]) -> bool:
    return model_config.get("framework") == "automl"


def _share_automl_budget(model_config: dict[str, Any], n_fits: int) -> dict[str, Any]:
    """The AutoMLHelper's time budget is the whole run's: each of the ``n_fits`` searches (one
    per fold and the final one) gets an equal share, so the pipeline ends within it.
    ``check_automl_model`` has already put the budget in ``time_budget_seconds``."""
    return {**model_config, "time_budget_seconds": model_config["time_budget_seconds"] / n_fits}


def _summary(folds: list[dict[str, Any]]) -> tuple[dict[str, float], dict[str, float]]:
    keys = [k for k in folds[0] if isinstance(folds[0][k], float)]
    mean = {k: float(np.mean([f[k] for f in folds])) for k in keys}
    std = {k: float(np.std([f[k] for f in folds])) for k in keys}
    return mean, std


class DataPipeline:
    """End-to-end ML pipeline: sources -> validation -> preprocessing -> features -> model.

    Parameters
    ----------
    model_manager : ModelManager, optional
        Trains and registers the models (default: a :class:`~ml_utilities.models.ModelManager`
        on the default registry, or on ``registry_url`` / ``artifact_root``).
    registry_url, artifact_root, storage_options :
        Passed to the default ModelManager.

    Examples
    --------
    >>> pipeline = DataPipeline()
    >>> results = await pipeline.run_complete_pipeline(  # doctest: +SKIP
    ...     target_column="user_satisfaction",
    ...     config={"data_sources": [{"type": "postgresql", "table": "user_listening_history"}],
    ...             "preprocessing": {"missing_values": "knn_imputation"},
    ...             "validation": {"cv_folds": 5, "test_size": 0.2}})
    >>> results["cv_metrics"]["mean"]["accuracy"]  # doctest: +SKIP
    """

    def __init__(
        self,
        model_manager: Any = None,
        *,
        registry_url: str | None = None,
        artifact_root: str | Path | None = None,
        storage_options: dict[str, Any] | None = None,
    ) -> None:
        if model_manager is None:
            from ..models import ModelManager

            model_manager = ModelManager(
                registry_url=registry_url,
                artifact_root=artifact_root,
                storage_options=storage_options,
            )
        elif registry_url or artifact_root:
            raise ParameterError("pass either model_manager or registry_url/artifact_root")
        self.model_manager = model_manager

    # -- ingestion ------------------------------------------------------------------------------
    def load_data_sync(self, config: dict[str, Any]) -> pd.DataFrame:
        """Read and join the configuration's ``data_sources`` (synchronous)."""
        cfg = check_config(config)
        frames = [read_source(s, i) for i, s in enumerate(cfg["data_sources"])]
        return join_frames(frames, cfg["data_sources"], cfg["join"])

    async def load_data(self, config: dict[str, Any]) -> pd.DataFrame:
        """Read the ``data_sources`` concurrently, then join them."""
        cfg = check_config(config)
        frames = await asyncio.gather(
            *(read_source_async(s, i) for i, s in enumerate(cfg["data_sources"]))
        )
        return join_frames(list(frames), cfg["data_sources"], cfg["join"])

    # -- the whole pipeline ----------------------------------------------------------------------
    def run_complete_pipeline_sync(
        self, target_column: str, config: dict[str, Any], data: pd.DataFrame | None = None
    ) -> dict[str, Any]:
        """Synchronous twin of :meth:`run_complete_pipeline`."""
        cfg = check_config(config, need_sources=data is None)
        t = time.perf_counter()
        sources: list[dict[str, Any]] = []
        if data is None:
            frames = []
            for i, s in enumerate(cfg["data_sources"]):
                t0 = time.perf_counter()
                frames.append(read_source(s, i))
                sources.append(self._source_info(s, frames[-1], time.perf_counter() - t0))
            data = join_frames(frames, cfg["data_sources"], cfg["join"])
        return self._run(data, target_column, cfg, time.perf_counter() - t, sources)

    async def run_complete_pipeline(
        self, target_column: str, config: dict[str, Any], data: pd.DataFrame | None = None
    ) -> dict[str, Any]:
        """Read the sources, validate, preprocess, engineer features, train and validate.

        Parameters
        ----------
        target_column : str
            The column to predict (it must be in the joined data).
        config : dict
            ``data_sources`` (see :mod:`ml_utilities.pipeline.sources`), ``preprocessing``,
            ``feature_engineering``, ``validation`` as in the specification; optionally
            ``join``, ``columns``, ``schema``, ``quality``, ``model`` (a ModelManager config;
            default scikit-learn's HistGradientBoosting), ``register``, ``progress``, ``seed``.
            See ``docs/pipeline.md`` for every key.
        data : DataFrame, optional
            Rows to use instead of reading ``data_sources``.

        Returns
        -------
        dict
            ``task``, ``target_column``, ``n_rows``, ``n_features``, ``feature_names``,
            ``cv_metrics`` (``folds``: per-fold metrics with ``n_train``, ``n_validation``,
            ``outliers_removed`` and the rows' ``train_index``; ``mean``; ``std``),
            ``fold_models`` (each fold's fitted pipeline), ``test_metrics``, ``test_index``
            (rows of the data held out for the test), ``model`` (the fitted
            :class:`PipelineModel`), ``model_name`` and ``model_version`` (registry),
            ``validation_report``, ``stage_times`` (seconds per stage), ``sources``.

        Raises
        ------
        PipelineConfigError
            Unknown keys or bad values in ``config``.
        SourceError
            A source cannot be read (missing table, wrong Redis type, empty...).
        DataValidationError
            Hard validation failures, every one of them listed.
        ParameterError
            ``target_column`` is not in the data.
        """
        cfg = check_config(config, need_sources=data is None)
        t = time.perf_counter()
        sources: list[dict[str, Any]] = []
        if data is None:

            async def timed(i: int, s: dict[str, Any]) -> pd.DataFrame:
                t0 = time.perf_counter()
                frame = await read_source_async(s, i)
                sources.append(self._source_info(s, frame, time.perf_counter() - t0, i))
                return frame

            frames = await asyncio.gather(*(timed(i, s) for i, s in enumerate(cfg["data_sources"])))
            sources.sort(key=lambda s: s["index"])
            data = join_frames(list(frames), cfg["data_sources"], cfg["join"])
        ingestion = time.perf_counter() - t
        return await asyncio.to_thread(self._run, data, target_column, cfg, ingestion, sources)

    @staticmethod
    def _source_info(
        spec: dict[str, Any], frame: pd.DataFrame, seconds: float, index: int | None = None
    ) -> dict[str, Any]:
        out = {
            "type": spec["type"],
            "name": spec.get("name"),
            "rows": int(len(frame)),
            "columns": [str(c) for c in frame.columns],
            "seconds": round(seconds, 4),
        }
        if index is not None:
            out["index"] = index
        return out

    # -- the stages after ingestion --------------------------------------------------------------
    def _run(
        self,
        data: pd.DataFrame,
        target_column: str,
        cfg: dict[str, Any],
        ingestion_s: float,
        sources: list[dict[str, Any]],
    ) -> dict[str, Any]:
        from sklearn.model_selection import KFold, StratifiedKFold, train_test_split

        total0 = time.perf_counter()
        stage = {"ingestion": ingestion_s}
        if not isinstance(target_column, str) or target_column not in data.columns:
            raise ParameterError(
                f"target_column={target_column!r} is not in the data; its columns are "
                f"{[str(c) for c in data.columns]}"
            )
        if len(data) == 0:
            raise ParameterError("the data has no rows")
        model_cfg = dict(cfg["model"] or {})
        task = _infer_task(data[target_column], model_cfg)
        if cfg["model"] is None:
            model_cfg = copy.deepcopy(DEFAULT_MODELS[task])
        model_cfg.setdefault("task_type" if _is_automl(model_cfg) else "task", task)
        model_cfg.setdefault("seed", cfg["seed"])

        t = time.perf_counter()
        report = validate_frame(
            data,
            schema=cfg["schema"],
            quality=cfg["quality"],
            target_column=target_column,
            task=task,
        )
        missing_target = int(data[target_column].isna().sum())
        if missing_target:
            data = data[data[target_column].notna()].reset_index(drop=True)
            report["warnings"].append(
                {
                    "check": "target_missing",
                    "column": target_column,
                    "severity": "warning",
                    "message": f"{missing_target} row(s) without {target_column!r} were dropped",
                    "count": missing_target,
                }
            )
        stage["validation"] = time.perf_counter() - t

        x = data.drop(columns=[target_column])
        y = data[target_column].to_numpy()
        plan = self._plan(x, target_column, cfg, report)
        x = x[plan["input_columns"]]

        val = cfg["validation"]
        seed = cfg["seed"]
        stratify = val["stratify"] and task == "classification"
        if val["test_size"] > 0:
            idx_train, idx_test = train_test_split(
                np.arange(len(x)),
                test_size=val["test_size"],
                shuffle=val["shuffle"],
                random_state=seed if val["shuffle"] else None,
                stratify=y if stratify and val["shuffle"] else None,
            )
        else:
            idx_train, idx_test = np.arange(len(x)), np.arange(0)
        x_train, y_train = x.iloc[idx_train].reset_index(drop=True), y[idx_train]

        times = {"feature_engineering": 0.0, "preprocessing": 0.0, "training": 0.0}
        folds: list[dict[str, Any]] = []
        fold_models: list[PipelineModel] = []
        n_fits = (val["cv_folds"] if val["cv_folds"] >= 2 else 0) + 1
        if _is_automl(model_cfg):
            model_cfg = _share_automl_budget(model_cfg, n_fits)
        bar = _progress(n_fits, "pipeline", cfg["progress"])
        eval_s = 0.0
        with bar if bar is not None else nullcontext():
            if val["cv_folds"] >= 2:
                splitter_cls = StratifiedKFold if stratify else KFold
                splitter = splitter_cls(
                    n_splits=val["cv_folds"],
                    shuffle=val["shuffle"],
                    random_state=seed if val["shuffle"] else None,
                )
                split_y = y_train if stratify else None
                for k, (tr, va) in enumerate(splitter.split(x_train, split_y)):
                    fold = self._fit(x_train.iloc[tr], y_train[tr], plan, model_cfg, cfg)
                    for key in times:
                        times[key] += fold.times[key]
                    t = time.perf_counter()
                    z = fold.preprocessor.transform(x_train.iloc[va])
                    metrics = evaluate(fold.handle, z, y_train[va], task)
                    eval_s += time.perf_counter() - t
                    metrics.update(
                        fold=k,
                        n_train=int(len(tr)),
                        n_validation=int(len(va)),
                        outliers_removed=fold.n_outliers,
                    )
                    folds.append({"train_index": idx_train[tr], **metrics})
                    fold_models.append(PipelineModel.wrap(fold.handle, fold.preprocessor, {}))
                    if bar is not None:
                        bar.update(1)
            final = self._fit(x_train, y_train, plan, model_cfg, cfg)
            for key in times:
                times[key] += final.times[key]
            if bar is not None:
                bar.update(1)
        test_metrics: dict[str, Any] = {}
        if len(idx_test):
            t = time.perf_counter()
            z = final.preprocessor.transform(x.iloc[idx_test])
            test_metrics = evaluate(final.handle, z, y[idx_test], task)
            test_metrics["n_test"] = int(len(idx_test))
            eval_s += time.perf_counter() - t
        stage.update(times)
        stage["model_validation"] = eval_s

        names = feature_names(final.preprocessor)
        info = {
            "target_column": target_column,
            "input_columns": plan["input_columns"],
            "categorical_columns": plan["categorical"],
            "timestamp_columns": plan["timestamp"],
            "feature_names": names,
            "preprocessing": {k: v for k, v in cfg["preprocessing"].items()},
            "feature_engineering": {
                k: v
                for k, v in cfg["feature_engineering"].items()
                if k != "temporal_features" or v is None or isinstance(v, dict)
            },
            "validation": cfg["validation"],
            "cv_metrics": _summary([_metrics_only(f) for f in folds])[0] if folds else {},
            "test_metrics": test_metrics,
        }
        model = PipelineModel.wrap(final.handle, final.preprocessor, _jsonable(info))
        if test_metrics:
            model.metrics = {**model.metrics, **{f"test_{k}": v for k, v in test_metrics.items()}}
        t = time.perf_counter()
        version = None
        registered = bool(cfg["register"])
        if registered:
            reg = cfg["register"] if isinstance(cfg["register"], dict) else {}
            name = reg.get("name") or _model_name(target_column)
            mv = self.model_manager.register_model_sync(
                model,
                name=name,
                metadata=_jsonable({"pipeline": True, **reg.get("metadata", {})}),
                aliases=reg.get("aliases", ()),
            )
            version = mv.version
        stage["registration"] = time.perf_counter() - t
        stage["total"] = ingestion_s + (time.perf_counter() - total0)
        result: dict[str, Any] = {
            "task": task,
            "target_column": target_column,
            "n_rows": int(len(data)),
            "n_features": len(names),
            "feature_names": names,
            "cv_metrics": {
                "folds": [_metrics_only(f) | {"train_index": f["train_index"]} for f in folds],
                **(
                    dict(
                        zip(
                            ("mean", "std"),
                            _summary([_metrics_only(f) for f in folds]),
                            strict=True,
                        )
                    )
                    if folds
                    else {"mean": {}, "std": {}}
                ),
            },
            "test_metrics": test_metrics,
            "test_index": idx_test,
            "fold_models": fold_models,
            "model": model,
            "model_name": model.name if registered else None,
            "model_version": version,
            "validation_report": report,
            "stage_times": {k: round(v, 4) for k, v in stage.items()},
            "sources": sources,
        }
        return result

    def _fit(
        self,
        x: pd.DataFrame,
        y: np.ndarray,
        plan: dict[str, Any],
        model_cfg: dict[str, Any],
        cfg: dict[str, Any],
    ) -> Any:
        fe = cfg["feature_engineering"]
        seed = cfg["seed"]
        builder = FeatureBuilder(**plan["builder"], seed=seed)
        task = _configured_task(model_cfg)  # always set by run_complete_pipeline
        assert task is not None
        ct = build_column_transformer(cfg["preprocessing"], seed, task, len(x))
        expansion = None
        if fe["polynomial_degree"] > 1 or fe["interaction_depth"] > 1:
            expansion = PolynomialExpansion(
                fe["polynomial_degree"], fe["interaction_depth"], fe["max_output_features"]
            )
        return fit_split(
            x,
            y,
            feature_builder=builder,
            column_transformer=ct,
            expansion=expansion,
            detector=build_outlier_detector(cfg["preprocessing"], seed),
            manager=self.model_manager,
            model_config=model_cfg,
            validation_split=cfg["validation"]["early_stopping_split"],
        )

    def _plan(
        self, x: pd.DataFrame, target: str, cfg: dict[str, Any], report: dict[str, Any]
    ) -> dict[str, Any]:
        """Decide each column's role: dropped, timestamp, categorical, user/item ids."""
        cols = cfg["columns"]
        fe = cfg["feature_engineering"]
        names = [str(c) for c in x.columns]
        for key in ("categorical", "drop", "timestamp"):
            bad = [c for c in cols[key] if c not in names]
            if bad:
                raise ParameterError(f"columns[{key!r}] names {bad}, not in the data ({names})")
        drop = list(cols["drop"])
        # bookkeeping columns that sources add
        drop += [c for c in ("stream_id",) if c in names and c not in drop]
        kept = [c for c in names if c not in drop]
        temporal = fe["temporal_features"]
        timestamp = list(cols["timestamp"])
        if temporal is not None:
            timestamp = list(temporal.get("timestamp_columns", timestamp))
            if not timestamp:
                timestamp = [
                    c
                    for c in names
                    if c not in drop
                    and (
                        pd.api.types.is_datetime64_any_dtype(x[c]) or c.lower() in _TIMESTAMP_NAMES
                    )
                ]
            if not timestamp:
                report["warnings"].append(
                    {
                        "check": "temporal_features",
                        "column": None,
                        "severity": "warning",
                        "message": "temporal_features is on but the data has no timestamp column "
                        "(datetime dtype or named timestamp/played_at/...); none were built",
                    }
                )
        emb = fe["embedding_features"]
        user_col = item_col = weight_col = None
        n_components = 0
        embedding_method = "svd"
        if emb is not None:
            user_col = emb.get("user_column") or next((c for c in USER_COLUMNS if c in kept), None)
            item_col = emb.get("item_column") or next((c for c in ITEM_COLUMNS if c in kept), None)
            weight_col = emb.get("weight_column") or next(
                (c for c in WEIGHT_COLUMNS if c in kept and c != target), None
            )
            n_components = int(emb.get("n_components", 8))
            embedding_method = emb.get("method", "svd")
            if embedding_method not in ("svd", "als"):
                raise PipelineConfigError(
                    f"feature_engineering['embedding_features']['method']={embedding_method!r}:"
                    " expected 'svd' or 'als'"
                )
            if user_col is None or item_col is None:
                report["warnings"].append(
                    {
                        "check": "embedding_features",
                        "column": None,
                        "severity": "warning",
                        "message": "embedding_features is on but no user and item id columns "
                        f"were found (tried {USER_COLUMNS} and {ITEM_COLUMNS}); none were built",
                    }
                )
                n_components = 0
        if temporal is not None and user_col is None:
            user_col = temporal.get("user_column") or next(
                (c for c in USER_COLUMNS if c in kept), None
            )
        for c in (user_col, item_col, weight_col):
            if c is not None and c not in names:
                raise ParameterError(f"column {c!r} is not in the data ({names})")
            if c is not None and c in drop:
                raise ParameterError(f"column {c!r} is needed for features but in columns['drop']")
        categorical = list(cols["categorical"])
        for c in (user_col, item_col):
            if c is not None and c not in categorical and c not in drop:
                categorical.append(c)
        input_columns = [c for c in names if c not in drop]
        if not input_columns:
            raise ParameterError("no feature column is left after dropping columns['drop']")
        return {
            "input_columns": input_columns,
            "categorical": categorical,
            "timestamp": timestamp,
            "builder": {
                "timestamp_columns": timestamp,
                "user_column": user_col,
                "item_column": item_col,
                "weight_column": weight_col,
                "n_components": n_components,
                "embedding_method": embedding_method,
                "categorical_columns": categorical,
                "session_gap_minutes": float((temporal or {}).get("session_gap_minutes", 30.0)),
                "evening_hours": tuple((temporal or {}).get("evening_hours", (18, 24))),
            },
        }

    # -- loading a registered pipeline ---------------------------------------------------------
    def load_pipeline_sync(
        self, name: str, version: int | str | None = None, *, allow_pickle: bool = False
    ) -> PipelineModel:
        """Load a pipeline registered by :meth:`run_complete_pipeline` (every file's sha256
        is checked), ready to ``predict`` on raw DataFrames."""
        import shutil

        registry = self.model_manager.registry
        mv = registry.get_version(name, version)
        key = registry._artifact_key(mv)
        folder, temporary = registry.store.open_folder(key, mv.manifest)
        try:
            model = PipelineModel.load(folder, allow_pickle=allow_pickle, manifest=mv.manifest)
        finally:
            if temporary:
                shutil.rmtree(folder, ignore_errors=True)
        model.name, model.version = mv.name, mv.version
        return model

    async def load_pipeline(
        self, name: str, version: int | str | None = None, *, allow_pickle: bool = False
    ) -> PipelineModel:
        """Coroutine of :meth:`load_pipeline_sync`."""
        return await asyncio.to_thread(
            self.load_pipeline_sync, name, version, allow_pickle=allow_pickle
        )

    # -- multimodal --------------------------------------------------------------------------------
    def train_multimodal_model_sync(
        self,
        audio_features: Any,
        text_features: Any,
        emotion_labels: Any,
        model_type: str = "transformer_fusion",
        *,
        register: bool | dict[str, Any] = False,
        name: str | None = None,
        **options: Any,
    ) -> Any:
        """Synchronous twin of :meth:`train_multimodal_model`."""
        from .multimodal import train_multimodal

        model = train_multimodal(
            audio_features,
            text_features,
            emotion_labels,
            model_type,
            manager=self.model_manager,
            **options,
        )
        if register or name is not None:
            reg = register if isinstance(register, dict) else {}
            unknown = sorted(set(reg) - {"name", "metadata", "aliases"})
            if unknown:
                raise PipelineConfigError(
                    f"unknown register key(s) {unknown}; accepted: name, metadata, aliases"
                )
            model.register(
                self.model_manager.registry,
                name or reg.get("name") or f"multimodal-{model_type}",
                metadata=_jsonable(reg.get("metadata", {})),
                aliases=reg.get("aliases", ()),
            )
        return model

    async def train_multimodal_model(
        self,
        audio_features: Any,
        text_features: Any,
        emotion_labels: Any,
        model_type: str = "transformer_fusion",
        *,
        register: bool | dict[str, Any] = False,
        name: str | None = None,
        **options: Any,
    ) -> Any:
        """Train a classifier on audio features fused with text (see
        :func:`ml_utilities.pipeline.multimodal.train_multimodal`).

        With ``register=True`` (or ``name=``, or ``register={"name", "metadata",
        "aliases"}``) the model is also registered in this pipeline's registry as framework
        ``multimodal`` (default name ``multimodal-<model_type>``); the returned
        :class:`~ml_utilities.pipeline.multimodal.MultimodalModel` then has ``name`` and
        ``version`` set, and ``PredictionService`` serves it with named inputs
        ``{"audio_features": rows, "text": strings}``."""
        return await asyncio.to_thread(
            self.train_multimodal_model_sync,
            audio_features,
            text_features,
            emotion_labels,
            model_type,
            register=register,
            name=name,
            **options,
        )


def _metrics_only(fold: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in fold.items() if k != "train_index"}


def _model_name(target: str) -> str:
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", f"pipeline-{target}").strip("-")
    return name[:200]


def _jsonable(value: Any) -> Any:
    return jsonable(value, str)
