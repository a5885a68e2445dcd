"""The pipeline configuration: its keys, defaults and checks (unknown keys are errors)."""

from __future__ import annotations

from typing import Any

from .._validators import flag, integer
from .errors import PipelineConfigError
from .preprocessing import PREPROCESSING_KEYS, parse_option
from .sources import check_source

__all__ = [
    "CONFIG_KEYS",
    "DEFAULT_MODELS",
    "FEATURE_ENGINEERING_KEYS",
    "VALIDATION_KEYS",
    "check_config",
]

CONFIG_KEYS = (
    "data_sources",
    "join",
    "columns",
    "schema",
    "quality",
    "preprocessing",
    "feature_engineering",
    "validation",
    "model",
    "register",
    "progress",
    "seed",
)
FEATURE_ENGINEERING_KEYS = (
    "polynomial_degree",
    "interaction_depth",
    "temporal_features",
    "embedding_features",
    "max_output_features",
)
VALIDATION_KEYS = ("cv_folds", "test_size", "stratify", "shuffle", "early_stopping_split")
#: the model when the configuration names none: a strongly regularised linear model, the usual
#: partner of polynomial and interaction features (standardised by the pipeline)
DEFAULT_MODELS = {
    "classification": {
        "framework": "sklearn",
        "architecture": "linear",
        "hyperparameters": {"C": 0.01, "max_iter": 1000},
    },
    "regression": {
        "framework": "sklearn",
        "architecture": "linear",
        "hyperparameters": {"alpha": 10.0},
    },
}
_COLUMNS_KEYS = ("categorical", "drop", "timestamp")
_JOIN_KEYS = ("on", "how")
_TEMPORAL_KEYS = ("timestamp_columns", "user_column", "session_gap_minutes", "evening_hours")
_EMBEDDING_KEYS = ("user_column", "item_column", "weight_column", "n_components", "method")
_REGISTER_KEYS = ("name", "aliases", "metadata")


def _int(where: str, value: Any, minimum: int) -> int:
    return integer(where, value, minimum=minimum, error=PipelineConfigError)


def _bool(where: str, value: Any) -> bool:
    return flag(where, value, error=PipelineConfigError)


def _section(config: dict[str, Any], key: str, allowed: tuple[str, ...]) -> dict[str, Any]:
    value = config.get(key) or {}
    if not isinstance(value, dict):
        raise PipelineConfigError(f"{key}={value!r}: expected a dict")
    unknown = sorted(set(value) - set(allowed))
    if unknown:
        raise PipelineConfigError(f"{key}: unknown key(s) {unknown}; accepted: {list(allowed)}")
    return dict(value)


def _flag_or_dict(where: str, value: Any, allowed: tuple[str, ...]) -> dict[str, Any] | None:
    if value is None or value is False:
        return None
    if value is True:
        return {}
    if not isinstance(value, dict):
        raise PipelineConfigError(f"{where}={value!r}: expected True, False or a dict")
    unknown = sorted(set(value) - set(allowed))
    if unknown:
        raise PipelineConfigError(f"{where}: unknown key(s) {unknown}; accepted: {list(allowed)}")
    return dict(value)


def check_config(config: Any, *, need_sources: bool = True) -> dict[str, Any]:
    """Validate a pipeline configuration and fill in its defaults.

    Raises
    ------
    PipelineConfigError
        For an unknown key at any level or a bad value; the message names it and lists the
        accepted keys or values.
    """
    if not isinstance(config, dict):
        raise PipelineConfigError(f"config={config!r}: expected a dict")
    unknown = sorted(set(config) - set(CONFIG_KEYS))
    if unknown:
        raise PipelineConfigError(f"unknown config key(s) {unknown}; accepted: {list(CONFIG_KEYS)}")
    cfg: dict[str, Any] = {}
    sources = config.get("data_sources")
    if sources is None and need_sources:
        raise PipelineConfigError("config has no 'data_sources' (a list of source dicts)")
    if sources is not None:
        if not isinstance(sources, (list, tuple)) or not sources:
            raise PipelineConfigError(
                f"data_sources={sources!r}: expected a non-empty list of source dicts"
            )
        cfg["data_sources"] = [check_source(s, i) for i, s in enumerate(sources)]
    cfg["join"] = _section(config, "join", _JOIN_KEYS)
    cols = _section(config, "columns", _COLUMNS_KEYS)
    for key in _COLUMNS_KEYS:
        val = cols.get(key, [])
        if isinstance(val, str):
            val = [val]
        if not isinstance(val, (list, tuple)) or not all(isinstance(v, str) for v in val):
            raise PipelineConfigError(f"columns[{key!r}]={val!r}: expected a list of names")
        cols[key] = list(val)
    cfg["columns"] = cols
    cfg["schema"] = config.get("schema")
    cfg["quality"] = config.get("quality") or {}
    if not isinstance(cfg["quality"], dict):
        raise PipelineConfigError(f"quality={cfg['quality']!r}: expected a dict")

    pre = _section(config, "preprocessing", PREPROCESSING_KEYS)
    for key in PREPROCESSING_KEYS:
        parse_option(key, pre.get(key, "none"))  # raises on an unknown method or parameter
    cfg["preprocessing"] = pre

    fe = _section(config, "feature_engineering", FEATURE_ENGINEERING_KEYS)
    fe["polynomial_degree"] = _int(
        "feature_engineering['polynomial_degree']", fe.get("polynomial_degree", 1), 1
    )
    fe["interaction_depth"] = _int(
        "feature_engineering['interaction_depth']", fe.get("interaction_depth", 1), 1
    )
    fe["max_output_features"] = _int(
        "feature_engineering['max_output_features']", fe.get("max_output_features", 20_000), 1
    )
    fe["temporal_features"] = _flag_or_dict(
        "feature_engineering['temporal_features']", fe.get("temporal_features"), _TEMPORAL_KEYS
    )
    fe["embedding_features"] = _flag_or_dict(
        "feature_engineering['embedding_features']", fe.get("embedding_features"), _EMBEDDING_KEYS
    )
    cfg["feature_engineering"] = fe

    val = _section(config, "validation", VALIDATION_KEYS)
    folds = val.get("cv_folds", 5)
    if folds not in (0, 1):
        _int("validation['cv_folds']", folds, 2)
    val["cv_folds"] = int(folds)
    test_size = val.get("test_size", 0.2)
    if (
        isinstance(test_size, bool)
        or not isinstance(test_size, (int, float))
        or not (0 <= test_size < 1)
    ):
        raise PipelineConfigError(
            f"validation['test_size']={test_size!r}: expected a share in [0, 1)"
        )
    val["test_size"] = float(test_size)
    val["stratify"] = _bool("validation['stratify']", val.get("stratify", True))
    val["shuffle"] = _bool("validation['shuffle']", val.get("shuffle", True))
    es = val.get("early_stopping_split", 0.1)
    if isinstance(es, bool) or not isinstance(es, (int, float)) or not 0 < es < 1:
        raise PipelineConfigError(
            f"validation['early_stopping_split']={es!r}: expected a share in (0, 1)"
        )
    val["early_stopping_split"] = float(es)
    cfg["validation"] = val

    model = config.get("model")
    if model is not None and not isinstance(model, dict):
        raise PipelineConfigError(f"model={model!r}: expected a ModelManager config dict")
    cfg["model"] = dict(model) if model else None  # None: DEFAULT_MODELS[task]
    if cfg["model"] is not None and cfg["model"].get("framework") == "automl":
        cfg["model"] = check_automl_model(cfg["model"])
    reg = config.get("register", True)
    if isinstance(reg, dict):
        unknown = sorted(set(reg) - set(_REGISTER_KEYS))
        if unknown:
            raise PipelineConfigError(
                f"register: unknown key(s) {unknown}; accepted: {list(_REGISTER_KEYS)}"
            )
    elif not isinstance(reg, bool):
        raise PipelineConfigError(f"register={reg!r}: expected True, False or a dict")
    cfg["register"] = reg
    progress = config.get("progress")
    if progress is not None:
        _bool("progress", progress)
    cfg["progress"] = progress
    cfg["seed"] = _int("seed", config.get("seed", 0), 0)
    return cfg


def check_automl_model(model: dict[str, Any]) -> dict[str, Any]:
    """Check ``model={'framework': 'automl', **automl_config}`` before any data is read.

    The keys besides ``framework`` are the AutoMLHelper's ``automl_config``
    (:func:`ml_utilities.automl.options.parse_config` checks them, so an unknown key or value
    fails here, not after ingestion). ``task`` is accepted as a synonym of ``task_type``;
    ``recommendation`` is refused: the pipeline's folds are over rows, not users. ``register``
    is the pipeline's own key (the pipeline registers the fitted pipeline, not the bare model).
    The budget comes back as ``time_budget_seconds`` (the settings' default where none is given).
    """
    from ..automl.options import parse_config

    rest = {k: v for k, v in model.items() if k != "framework"}
    if "task" in rest:
        task = rest.pop("task")
        if rest.setdefault("task_type", task) != task:
            raise PipelineConfigError(
                f"model: task={task!r} and task_type={rest['task_type']!r} disagree"
            )
    if "register" in rest:
        raise PipelineConfigError(
            "model['register'] is not accepted with framework='automl': the pipeline registers "
            "the fitted pipeline (configure it with the pipeline's 'register' key)"
        )
    if rest.get("task_type") == "recommendation":
        raise PipelineConfigError(
            "model: task_type='recommendation' is not a pipeline task (its folds split rows, "
            "not users); use AutoMLHelper.train_recommendation_model"
        )
    try:
        budget_s = parse_config({**rest, "register": False}).budget_s
    except ValueError as err:
        raise PipelineConfigError(f"model (framework='automl'): {err}") from None
    # the budget in one unit from here on: the run shares it out among its searches
    rest.pop("time_budget_hours", None)
    rest["time_budget_seconds"] = budget_s
    return {"framework": "automl", **rest}
