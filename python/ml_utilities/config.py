"""Every ``ML_UTILITIES_*`` setting, read and validated in one place.

The specification's environment variables (section "Variables d'Environnement ML") plus
``ML_UTILITIES_HOME`` and ``ML_UTILITIES_LOG_LEVEL`` are parsed into one frozen
:class:`Settings`. A bad value raises :class:`ConfigError` naming the variable and the value, so
a misconfigured service fails at start-up instead of on its first request. An unset or empty
variable takes its default (except ``ML_UTILITIES_CUDA_VISIBLE_DEVICES``, where an empty value
means "no device", as CUDA reads it).

This module imports only the standard library: the package imports it on start-up.

Examples
--------
>>> from ml_utilities.config import Settings
>>> s = Settings.from_env({"ML_UTILITIES_MAX_WORKERS": "4", "ML_UTILITIES_GPU_ENABLED": "no"})
>>> s.max_workers, s.gpu_enabled, s.batch_size
(4, False, 128)
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import math
import os
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from .exceptions import ParameterError

__all__ = [
    "DEFAULT_ML_CONFIG",
    "ENV_PREFIX",
    "SERVE_HANDOFF",
    "ConfigError",
    "Settings",
    "apply_logging",
    "apply_to_core",
    "default_ml_config",
    "get_settings",
    "read_serve_handoff",
    "read_variable",
    "reload_settings",
    "serve_handoff",
]

logger = logging.getLogger(__name__)

ENV_PREFIX = "ML_UTILITIES_"

_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no"})
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

T = TypeVar("T")


class ConfigError(ParameterError):
    """An ``ML_UTILITIES_*`` variable holds a value that cannot be used."""


#: The specification's ``ML_CONFIG`` ("Configuration Avancée"), with its values. Read-only by
#: convention: :func:`default_ml_config` gives a copy to modify.
DEFAULT_ML_CONFIG: dict[str, dict[str, Any]] = {
    "feature_extraction": {
        "audio_sample_rate": 22050,
        "n_mfcc": 13,
        "n_chroma": 12,
        "n_fft": 2048,
        "hop_length": 512,
        "parallel_jobs": 8,
    },
    "model_training": {
        "frameworks": ["pytorch", "tensorflow", "sklearn"],
        "hyperparameter_optimization": "optuna",
        "cross_validation_folds": 5,
        "early_stopping_patience": 10,
        "model_selection_metric": "f1_weighted",
    },
    "automl": {
        "time_budget_hours": 4,
        "max_trials": 500,
        "ensemble_methods": ["voting", "stacking"],
        "feature_engineering": True,
        "neural_architecture_search": True,
    },
    "deployment": {
        "model_optimization": ["quantization", "pruning", "distillation"],
        "serving_framework": "torchserve",
        "auto_scaling": True,
        "monitoring_enabled": True,
    },
    "performance": {
        "gpu_memory_fraction": 0.8,
        "mixed_precision": True,
        "tensorrt_optimization": True,
        "batch_prediction": True,
    },
}


def default_ml_config() -> dict[str, dict[str, Any]]:
    """A deep copy of :data:`DEFAULT_ML_CONFIG`, free to modify.

    Returns
    -------
    dict
        ``{"feature_extraction": {...}, "model_training": {...}, "automl": {...},
        "deployment": {...}, "performance": {...}}``.
    """
    return copy.deepcopy(DEFAULT_ML_CONFIG)


# -- parsers: each takes the variable's full name and its raw (stripped, non-empty) value ------


def _bad(name: str, raw: str, expected: str) -> ConfigError:
    return ConfigError(f"{name}={raw!r} is not valid: expected {expected}")


def _parse_bool(name: str, raw: str) -> bool:
    value = raw.lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise _bad(name, raw, "one of true/false/1/0/yes/no")


def _int_parser(minimum: int) -> Callable[[str, str], int]:
    def parse(name: str, raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise _bad(name, raw, f"an integer >= {minimum}") from None
        if value < minimum:
            raise _bad(name, raw, f"an integer >= {minimum}")
        return value

    return parse


def _float_parser(minimum: float, *, strict: bool) -> Callable[[str, str], float]:
    bound = f"> {minimum:g}" if strict else f">= {minimum:g}"

    def parse(name: str, raw: str) -> float:
        try:
            value = float(raw)
        except ValueError:
            raise _bad(name, raw, f"a number {bound}") from None
        if not math.isfinite(value) or value < minimum or (strict and value == minimum):
            raise _bad(name, raw, f"a finite number {bound}")
        return value

    return parse


def _parse_devices(name: str, raw: str) -> tuple[int, ...]:
    if not raw:
        return ()
    devices = []
    for item in raw.split(","):
        item = item.strip()
        if not item.isdigit():
            raise _bad(name, raw, "a comma-separated list of device indices such as '0,1'")
        devices.append(int(item))
    return tuple(devices)


def _parse_path(name: str, raw: str) -> Path:
    return Path(raw).expanduser()


def _parse_log_level(name: str, raw: str) -> str:
    level = raw.upper()
    if level not in _LOG_LEVELS:
        raise _bad(name, raw, f"one of {', '.join(_LOG_LEVELS)}")
    return level


def _url_parser(*schemes: str) -> Callable[[str, str], str]:
    def parse(name: str, raw: str) -> str:
        scheme = raw.split("://", 1)[0].lower() if "://" in raw else ""
        if not scheme.startswith(schemes):
            raise _bad(name, raw, f"a URL starting with {' or '.join(s + '://' for s in schemes)}")
        return raw

    return parse


def _default_workers() -> int:
    return os.cpu_count() or 1


def _field(variable: str, parser: Callable[[str, str], Any], doc: str, **kwargs: Any) -> Any:
    """A dataclass field that knows its environment variable and parser."""
    return dataclasses.field(
        metadata={"env": ENV_PREFIX + variable, "parse": parser, "doc": doc}, **kwargs
    )


@dataclasses.dataclass(frozen=True)
class Settings:
    """ml_utilities' settings, one field per ``ML_UTILITIES_*`` variable.

    Build one with :meth:`from_env`; :func:`get_settings` gives the process-wide one.

    Attributes
    ----------
    pytorch_enabled, tensorflow_enabled : bool
        Use PyTorch / TensorFlow when installed (``ML_UTILITIES_PYTORCH_ENABLED``,
        ``ML_UTILITIES_TENSORFLOW_ENABLED``; default True).
    gpu_enabled : bool
        Use a CUDA device when one is there (``ML_UTILITIES_GPU_ENABLED``; default True).
    cuda_visible_devices : tuple of int or None
        Device indices to use (``ML_UTILITIES_CUDA_VISIBLE_DEVICES="0,1"``); None, the default,
        means every device CUDA shows; an empty value means none.
    batch_size : int >= 1
        Batch size for batched feature extraction and prediction (default 128).
    max_workers : int >= 1
        Threads of the compiled core's pool and of worker pools (default: every core).
    memory_limit_gb : float > 0
        Memory budget in GiB (default 16).
    cache_size_gb : float >= 0
        Size of the feature and prediction caches in GiB (default 4).
    automl_time_budget : float > 0
        Time budget of an AutoML search, in hours (default 4).
    automl_trials : int >= 1
        Trials of an AutoML search (default 200).
    feature_selection : bool
        Run automatic feature selection in AutoML (default True).
    model_cache_size : int >= 1
        Models kept loaded in memory (default 10).
    prediction_cache_ttl : float >= 0
        Lifetime of a cached prediction in seconds; 0 disables the cache (default 3600).
    max_latency_ms : float > 0
        Latency target of the serving batcher, in milliseconds (default 10).
    http_header_timeout, http_body_timeout : float > 0
        Seconds the HTTP front end of ``ml-utilities serve`` waits for a request's line and
        headers (``ML_UTILITIES_HTTP_HEADER_TIMEOUT``, default 10), then for its body
        (``ML_UTILITIES_HTTP_BODY_TIMEOUT``, default 30), from their first byte; a slower
        client is answered 408 and its connection closed.
    http_max_connections : int >= 1
        Open connections the HTTP front end serves at once, per worker process
        (``ML_UTILITIES_HTTP_MAX_CONNECTIONS``, default 1000); one more is answered 503 and
        closed at once.
    home : pathlib.Path
        Where the registry, artifacts and caches live (``ML_UTILITIES_HOME``, default
        ``~/.ml_utilities``).
    log_level : str or None
        Level of the ``ml_utilities`` logger (``ML_UTILITIES_LOG_LEVEL``: DEBUG, INFO, WARNING,
        ERROR or CRITICAL); None, the default, leaves the logger as the application set it.
    postgres_url, redis_url, s3_endpoint_url : str or None
        The stores the DataPipeline's sources read when a source gives no ``url``
        (``ML_UTILITIES_POSTGRES_URL``: ``postgresql://user@host:5432/db``,
        ``ML_UTILITIES_REDIS_URL``: ``redis://host:6379/0``, ``ML_UTILITIES_S3_ENDPOINT_URL``:
        an S3-compatible endpoint such as ``http://127.0.0.1:9000``; None: AWS's).
    """

    pytorch_enabled: bool = _field("PYTORCH_ENABLED", _parse_bool, "use PyTorch", default=True)
    tensorflow_enabled: bool = _field(
        "TENSORFLOW_ENABLED", _parse_bool, "use TensorFlow", default=True
    )
    gpu_enabled: bool = _field("GPU_ENABLED", _parse_bool, "use CUDA devices", default=True)
    cuda_visible_devices: tuple[int, ...] | None = _field(
        "CUDA_VISIBLE_DEVICES", _parse_devices, "CUDA device indices", default=None
    )
    batch_size: int = _field("BATCH_SIZE", _int_parser(1), "batch size", default=128)
    max_workers: int = _field(
        "MAX_WORKERS", _int_parser(1), "worker threads", default_factory=_default_workers
    )
    memory_limit_gb: float = _field(
        "MEMORY_LIMIT_GB", _float_parser(0.0, strict=True), "memory budget (GiB)", default=16.0
    )
    cache_size_gb: float = _field(
        "CACHE_SIZE_GB", _float_parser(0.0, strict=False), "cache size (GiB)", default=4.0
    )
    automl_time_budget: float = _field(
        "AUTOML_TIME_BUDGET", _float_parser(0.0, strict=True), "AutoML budget (h)", default=4.0
    )
    automl_trials: int = _field("AUTOML_TRIALS", _int_parser(1), "AutoML trials", default=200)
    feature_selection: bool = _field(
        "FEATURE_SELECTION", _parse_bool, "AutoML feature selection", default=True
    )
    model_cache_size: int = _field(
        "MODEL_CACHE_SIZE", _int_parser(1), "models kept loaded", default=10
    )
    prediction_cache_ttl: float = _field(
        "PREDICTION_CACHE_TTL",
        _float_parser(0.0, strict=False),
        "prediction cache TTL (s)",
        default=3600.0,
    )
    max_latency_ms: float = _field(
        "MAX_LATENCY_MS", _float_parser(0.0, strict=True), "latency target (ms)", default=10.0
    )
    http_header_timeout: float = _field(
        "HTTP_HEADER_TIMEOUT",
        _float_parser(0.0, strict=True),
        "deadline of a request's headers (s)",
        default=10.0,
    )
    http_body_timeout: float = _field(
        "HTTP_BODY_TIMEOUT",
        _float_parser(0.0, strict=True),
        "deadline of a request's body (s)",
        default=30.0,
    )
    http_max_connections: int = _field(
        "HTTP_MAX_CONNECTIONS", _int_parser(1), "open HTTP connections", default=1000
    )
    home: Path = _field(
        "HOME",
        _parse_path,
        "data folder",
        default_factory=lambda: Path("~/.ml_utilities").expanduser(),
    )
    log_level: str | None = _field("LOG_LEVEL", _parse_log_level, "log level", default=None)
    postgres_url: str | None = _field(
        "POSTGRES_URL", _url_parser("postgres"), "PostgreSQL URL", default=None
    )
    redis_url: str | None = _field(
        "REDIS_URL", _url_parser("redis", "rediss", "unix"), "Redis URL", default=None
    )
    s3_endpoint_url: str | None = _field(
        "S3_ENDPOINT_URL", _url_parser("http", "https"), "S3 endpoint URL", default=None
    )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read every ``ML_UTILITIES_*`` variable from ``environ`` (``os.environ`` by default).

        Parameters
        ----------
        environ : mapping of str to str, optional
            The environment to read.

        Returns
        -------
        Settings

        Raises
        ------
        ConfigError
            If a variable holds an unusable value; the message names the variable and value.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for field in dataclasses.fields(cls):
            name = field.metadata["env"]
            raw = env.get(name)
            if raw is None:
                continue
            raw = raw.strip()
            if not raw and name != ENV_PREFIX + "CUDA_VISIBLE_DEVICES":
                continue
            values[field.name] = field.metadata["parse"](name, raw)
        return cls(**values)

    @classmethod
    def variables(cls) -> dict[str, str]:
        """Map each environment variable to the field it sets."""
        return {f.metadata["env"]: f.name for f in dataclasses.fields(cls)}

    def as_dict(self) -> dict[str, Any]:
        """The settings as a plain dict of JSON-friendly values (paths as str, tuples as list)."""
        out: dict[str, Any] = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, Path):
                value = str(value)
            elif isinstance(value, tuple):
                value = list(value)
            out[field.name] = value
        return out


_lock = threading.Lock()
_settings: Settings | None = None


def get_settings() -> Settings:
    """The process-wide settings, read from the environment on first call and then cached.

    Raises
    ------
    ConfigError
        If a variable holds an unusable value.
    """
    global _settings
    current = _settings
    if current is None:
        with _lock:
            if _settings is None:
                _settings = Settings.from_env()
            current = _settings
    return current


def reload_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read the environment again (or ``environ``) and replace the cached settings.

    Parameters
    ----------
    environ : mapping of str to str, optional
        The environment to read (``os.environ`` by default).

    Returns
    -------
    Settings
        The new settings. They are not applied to the compiled core: call
        :func:`apply_to_core` for that.
    """
    global _settings
    fresh = Settings.from_env(environ)
    with _lock:
        _settings = fresh
    return fresh


def apply_to_core(settings: Settings | None = None) -> None:
    """Size the compiled core's thread pool from ``settings.max_workers``.

    Parameters
    ----------
    settings : Settings, optional
        Defaults to :func:`get_settings`.
    """
    settings = get_settings() if settings is None else settings
    from ._native import core

    core.set_threads(settings.max_workers)
    logger.debug("core thread pool set to %d threads", settings.max_workers)


def apply_logging(settings: Settings | None = None) -> None:
    """Set the ``ml_utilities`` logger's level from ``settings.log_level`` (when it is set).

    Parameters
    ----------
    settings : Settings, optional
        Defaults to :func:`get_settings`.
    """
    settings = get_settings() if settings is None else settings
    if settings.log_level is not None:
        logging.getLogger("ml_utilities").setLevel(settings.log_level)


def read_variable(name: str, environ: Mapping[str, str] | None = None) -> str:
    """The stripped value of an environment variable a caller names itself (a data source's
    ``url_env``), or "" when it is unset: read here, with the settings, so that this module
    stays the one place that reads the environment."""
    env = os.environ if environ is None else environ
    return env.get(name, "").strip()


# -- hand-offs to the worker processes of ``ml-utilities serve`` --------------------------------
#: The variables through which ``ml-utilities serve`` hands its arguments to the app factory of
#: each worker process (``ml_utilities.serving.cli:build_app_from_env``, which an ASGI server
#: such as ``uvicorn --factory`` can call too). Internal, not settings: this module is still the
#: one place that reads the environment.
SERVE_HANDOFF = ("MLU_SERVE_CONFIG", "MLU_SERVE_REGISTRY_URL", "MLU_SERVE_ARTIFACT_ROOT")


def serve_handoff(
    config: Mapping[str, Any], registry_url: str | None, artifact_root: str | None
) -> dict[str, str]:
    """The :data:`SERVE_HANDOFF` variables for a service ``config`` (JSON-able) and registry."""
    import json

    return dict(
        zip(
            SERVE_HANDOFF,
            (json.dumps(dict(config)), registry_url or "", artifact_root or ""),
            strict=True,
        )
    )


def read_serve_handoff(
    environ: Mapping[str, str] | None = None,
) -> tuple[dict[str, Any], str | None, str | None]:
    """``(config, registry_url, artifact_root)`` from the :data:`SERVE_HANDOFF` variables
    (``os.environ`` by default); unset ones give ``{}`` and None.

    Raises
    ------
    ConfigError
        If ``MLU_SERVE_CONFIG`` is not a JSON object.
    """
    import json

    env = os.environ if environ is None else environ
    raw_config, url, root = (env.get(name, "") for name in SERVE_HANDOFF)
    try:
        config = json.loads(raw_config) if raw_config.strip() else {}
    except ValueError as err:
        raise _bad(SERVE_HANDOFF[0], raw_config, f"a JSON object ({err})") from None
    if not isinstance(config, dict):
        raise _bad(SERVE_HANDOFF[0], raw_config, "a JSON object")
    return config, url or None, root or None
