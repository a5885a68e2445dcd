"""The AutoML configuration dictionary: every key checked, defaults from ``ML_UTILITIES_*``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .._validators import flag, integer, keyed, number
from ..exceptions import ParameterError
from ..recommend.metrics import RANKING_METRICS, parse_ranking_metric, ranking_cutoff

__all__ = [
    "ALGORITHMS",
    "CONFIG_KEYS",
    "METRICS",
    "AutoMLOptions",
    "parse_config",
]

TASKS = ("classification", "regression", "recommendation")
#: canonical family name -> accepted spellings
ALGORITHMS: dict[str, tuple[str, ...]] = {
    "linear": ("linear", "logistic", "logistic_regression", "ridge", "linear_regression"),
    "knn": ("knn", "k-nn", "k_nn", "kneighbors", "k_neighbors"),
    "svm": ("svm", "svc", "svr"),
    "random_forest": ("random_forest", "random forest", "randomforest", "rf"),
    "extra_trees": ("extra_trees", "extra trees", "extratrees"),
    "xgboost": ("xgboost", "xgb"),
    "lightgbm": ("lightgbm", "lgbm", "lgb"),
    "neural_network": ("neural_network", "neural network", "mlp", "pytorch_mlp"),
}
_ALGO_LOOKUP = {alias: name for name, aliases in ALGORITHMS.items() for alias in aliases}
#: families tried when ``model_search_space.algorithms`` is not given, cheap ones first
DEFAULT_ALGORITHMS = (
    "linear",
    "knn",
    "lightgbm",
    "xgboost",
    "extra_trees",
    "random_forest",
    "svm",
    "neural_network",
)
RANKING_ALGORITHMS = ("lightgbm", "xgboost", "linear", "random_forest", "neural_network")

METRICS: dict[str, tuple[str, ...]] = {
    "classification": (
        "accuracy",
        "balanced_accuracy",
        "f1_weighted",
        "f1_macro",
        "roc_auc",
        "log_loss",
    ),
    "regression": ("r2", "rmse", "mae"),
    "recommendation": RANKING_METRICS,
}
DEFAULT_METRIC = {"classification": "accuracy", "regression": "r2", "recommendation": "ndcg@10"}
ENSEMBLES = ("stacking", "voting")
HPO = ("bayesian", "random")
FEATURE_SELECTION = ("mutual_info", "none")

CONFIG_KEYS = (
    "task_type",
    "optimization_metric",
    "time_budget_hours",
    "time_budget_seconds",
    "ensemble_methods",
    "feature_engineering",
    "model_search_space",
    "max_trials",
    "cv_folds",
    "seed",
    "n_jobs",
    "trial_timeout_seconds",
    "storage",
    "study_name",
    "group_column",
    "register",
    "name",
)
FE_KEYS = ("polynomial_features", "interaction_features", "feature_selection")
SEARCH_KEYS = ("algorithms", "hyperparameter_optimization")


@dataclass
class AutoMLOptions:
    """A checked configuration (see :func:`parse_config`)."""

    task: str
    metric: str
    metric_k: int | None
    budget_s: float
    ensembles: tuple[str, ...]
    polynomial: bool
    interactions: bool
    feature_selection: str
    algorithms: tuple[str, ...]
    sampler: str
    max_trials: int
    cv_folds: int
    seed: int
    n_jobs: int
    trial_timeout_s: float | None
    storage: str | None
    study_name: str | None
    group_column: str | None
    register: bool
    name: str | None
    given: dict[str, Any] = field(default_factory=dict)

    @property
    def metric_label(self) -> str:
        return self.metric if self.metric_k is None else f"{self.metric}@{self.metric_k}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "task_type": self.task,
            "optimization_metric": self.metric_label,
            "time_budget_seconds": self.budget_s,
            "ensemble_methods": list(self.ensembles),
            "feature_engineering": {
                "polynomial_features": self.polynomial,
                "interaction_features": self.interactions,
                "feature_selection": self.feature_selection,
            },
            "model_search_space": {
                "algorithms": list(self.algorithms),
                "hyperparameter_optimization": self.sampler,
            },
            "max_trials": self.max_trials,
            "cv_folds": self.cv_folds,
            "seed": self.seed,
            "n_jobs": self.n_jobs,
            "trial_timeout_seconds": self.trial_timeout_s,
            "study_name": self.study_name,
            "group_column": self.group_column,
        }


def parse_metric(task: str, metric: Any) -> tuple[str, int | None]:
    """``'ndcg@10'`` -> ``('ndcg', 10)``; checks the metric fits the task (ranking metrics, and
    their cut-off, are :mod:`ml_utilities.recommend.metrics`'s)."""
    if task == "recommendation":
        return parse_ranking_metric(metric)
    if not isinstance(metric, str):
        raise ParameterError(
            f"optimization_metric={metric!r}: expected one of {list(METRICS[task])}"
        )
    if ranking_cutoff(metric) is not None:
        raise ParameterError(
            f"optimization_metric={metric!r} ranks items; use it with "
            f"task_type='recommendation' (for {task!r}: {list(METRICS[task])})"
        )
    name = metric.strip().lower()
    if name not in METRICS[task]:
        raise ParameterError(
            f"optimization_metric={metric!r} is not available for task_type={task!r}; "
            f"choose one of {list(METRICS[task])}"
        )
    return name, None


def canonical_algorithm(name: Any) -> str:
    if not isinstance(name, str) or name.strip().lower() not in _ALGO_LOOKUP:
        raise ParameterError(
            f"algorithm {name!r} is not supported; choose among {list(ALGORITHMS)}"
        )
    return _ALGO_LOOKUP[name.strip().lower()]


def parse_config(config: Any, *, n_cores: int | None = None) -> AutoMLOptions:
    """Check an ``automl_config`` dictionary and fill in the defaults.

    Defaults come from the environment (``ML_UTILITIES_AUTOML_TIME_BUDGET`` hours,
    ``ML_UTILITIES_AUTOML_TRIALS``, ``ML_UTILITIES_FEATURE_SELECTION``,
    ``ML_UTILITIES_MAX_WORKERS``) and the specification's ``ML_CONFIG``
    (``cross_validation_folds``).

    Raises
    ------
    ParameterError
        For an unknown key or a bad value; the message names both.
    """
    from ..config import default_ml_config, get_settings

    if config is None:
        config = {}
    if not isinstance(config, dict):
        raise ParameterError(f"config={config!r}: expected a dict (the automl_config)")
    unknown = sorted(set(config) - set(CONFIG_KEYS))
    if unknown:
        raise ParameterError(f"unknown config key(s) {unknown}; accepted: {list(CONFIG_KEYS)}")
    settings = get_settings()
    task = config.get("task_type", "classification")
    if task not in TASKS:
        raise ParameterError(f"task_type={task!r}: expected one of {list(TASKS)}")
    metric, k = parse_metric(task, config.get("optimization_metric", DEFAULT_METRIC[task]))
    if "time_budget_hours" in config and "time_budget_seconds" in config:
        raise ParameterError("give time_budget_hours or time_budget_seconds, not both")
    if "time_budget_seconds" in config:
        budget = number("time_budget_seconds", config["time_budget_seconds"], above=0.0)
    else:
        hours = config.get("time_budget_hours", settings.automl_time_budget)
        budget = number("time_budget_hours", hours, above=0.0) * 3600.0
    ens = config.get("ensemble_methods", list(ENSEMBLES))
    if isinstance(ens, str) or not isinstance(ens, (list, tuple)):
        raise ParameterError(
            f"ensemble_methods={ens!r}: expected a list among {list(ENSEMBLES)} (may be empty)"
        )
    for e in ens:
        if e not in ENSEMBLES:
            raise ParameterError(f"ensemble method {e!r} is not supported; choose {ENSEMBLES}")
    fe = keyed("feature_engineering", config.get("feature_engineering"), FE_KEYS)
    poly = flag("polynomial_features", fe.get("polynomial_features", False))
    inter = flag("interaction_features", fe.get("interaction_features", False))
    default_fs = "mutual_info" if settings.feature_selection else "none"
    fs = fe.get("feature_selection", default_fs)
    if fs is None or fs is False:
        fs = "none"
    if fs not in FEATURE_SELECTION:
        raise ParameterError(
            f"feature_selection={fs!r}: expected one of {list(FEATURE_SELECTION)} (or None)"
        )
    space = keyed("model_search_space", config.get("model_search_space"), SEARCH_KEYS)
    default_algos = RANKING_ALGORITHMS if task == "recommendation" else DEFAULT_ALGORITHMS
    algos_given = space.get("algorithms", list(default_algos))
    if isinstance(algos_given, str) or not isinstance(algos_given, (list, tuple)):
        raise ParameterError(f"algorithms={algos_given!r}: expected a list of names")
    if not algos_given:
        raise ParameterError("algorithms=[]: give at least one algorithm")
    algos: list[str] = []
    for a in algos_given:
        c = canonical_algorithm(a)
        if task == "recommendation" and c not in RANKING_ALGORITHMS:
            raise ParameterError(
                f"algorithm {a!r} cannot rank; for recommendation choose among "
                f"{list(RANKING_ALGORITHMS)}"
            )
        if c not in algos:
            algos.append(c)
    hpo = space.get("hyperparameter_optimization", "bayesian")
    if hpo not in HPO:
        raise ParameterError(f"hyperparameter_optimization={hpo!r}: expected one of {list(HPO)}")
    max_trials = integer("max_trials", config.get("max_trials", settings.automl_trials), minimum=1)
    folds = integer(
        "cv_folds",
        config.get("cv_folds", default_ml_config()["model_training"]["cross_validation_folds"]),
        minimum=2,
    )
    seed = integer("seed", config.get("seed", 0), minimum=0)
    n_jobs = integer("n_jobs", config.get("n_jobs", n_cores or settings.max_workers), minimum=1)
    tt = config.get("trial_timeout_seconds")
    trial_timeout = None if tt is None else number("trial_timeout_seconds", tt, above=0.0)
    storage = config.get("storage")
    if storage is not None and (not isinstance(storage, str) or not storage.strip()):
        raise ParameterError(
            f"storage={storage!r}: expected an SQLAlchemy URL such as "
            "'sqlite:///automl.db' or 'postgresql+psycopg://user@host/db'"
        )
    study = config.get("study_name")
    if study is not None and (not isinstance(study, str) or not study.strip()):
        raise ParameterError(f"study_name={study!r}: expected a non-empty string")
    group = config.get("group_column")
    if group is not None and not isinstance(group, str):
        raise ParameterError(f"group_column={group!r}: expected a column name")
    register = flag("register", config.get("register", True))
    name = config.get("name")
    if name is not None and (not isinstance(name, str) or not name.strip() or "/" in name):
        raise ParameterError(f"name={name!r}: expected a non-empty string without '/'")
    return AutoMLOptions(
        task=task,
        metric=metric,
        metric_k=k,
        budget_s=budget,
        ensembles=tuple(dict.fromkeys(ens)),
        polynomial=poly,
        interactions=inter,
        feature_selection=fs,
        algorithms=tuple(algos),
        sampler=hpo,
        max_trials=max_trials,
        cv_folds=folds,
        seed=seed,
        n_jobs=n_jobs,
        trial_timeout_s=trial_timeout,
        storage=storage,
        study_name=study,
        group_column=group,
        register=register,
        name=name,
        given=dict(config),
    )
