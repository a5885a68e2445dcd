"""ml_utilities.config: every ML_UTILITIES_* variable, validated in one place."""

from __future__ import annotations

import ast
import dataclasses
import logging
import os
import sys
from pathlib import Path

import pytest

from ml_utilities import config
from ml_utilities.config import (
    DEFAULT_ML_CONFIG,
    ConfigError,
    Settings,
    apply_logging,
    apply_to_core,
    default_ml_config,
    get_settings,
    reload_settings,
)
from ml_utilities.exceptions import ParameterError

# The specification's block "Variables d'Environnement ML", verbatim.
SPEC_EXAMPLE = {
    "ML_UTILITIES_PYTORCH_ENABLED": "true",
    "ML_UTILITIES_TENSORFLOW_ENABLED": "true",
    "ML_UTILITIES_GPU_ENABLED": "true",
    "ML_UTILITIES_CUDA_VISIBLE_DEVICES": "0,1",
    "ML_UTILITIES_BATCH_SIZE": "128",
    "ML_UTILITIES_MAX_WORKERS": "8",
    "ML_UTILITIES_MEMORY_LIMIT_GB": "16",
    "ML_UTILITIES_CACHE_SIZE_GB": "4",
    "ML_UTILITIES_AUTOML_TIME_BUDGET": "4",
    "ML_UTILITIES_AUTOML_TRIALS": "200",
    "ML_UTILITIES_FEATURE_SELECTION": "true",
    "ML_UTILITIES_MODEL_CACHE_SIZE": "10",
    "ML_UTILITIES_PREDICTION_CACHE_TTL": "3600",
    "ML_UTILITIES_MAX_LATENCY_MS": "10",
}

BOOLEANS = [
    "ML_UTILITIES_PYTORCH_ENABLED",
    "ML_UTILITIES_TENSORFLOW_ENABLED",
    "ML_UTILITIES_GPU_ENABLED",
    "ML_UTILITIES_FEATURE_SELECTION",
]

# variable -> values that must be rejected
BAD_VALUES = {
    "ML_UTILITIES_PYTORCH_ENABLED": ["maybe", "2", "on!"],
    "ML_UTILITIES_GPU_ENABLED": ["enabled"],
    "ML_UTILITIES_CUDA_VISIBLE_DEVICES": ["a,b", "0,,1", "-1", "0;1"],
    "ML_UTILITIES_BATCH_SIZE": ["0", "-5", "1.5", "abc"],
    "ML_UTILITIES_MAX_WORKERS": ["abc", "0", "-1", "2.0"],
    "ML_UTILITIES_MEMORY_LIMIT_GB": ["0", "-1", "lots", "nan", "inf"],
    "ML_UTILITIES_CACHE_SIZE_GB": ["-0.5", "x", "nan"],
    "ML_UTILITIES_AUTOML_TIME_BUDGET": ["0", "-2", "soon"],
    "ML_UTILITIES_AUTOML_TRIALS": ["0", "many", "3.5"],
    "ML_UTILITIES_FEATURE_SELECTION": ["sometimes"],
    "ML_UTILITIES_MODEL_CACHE_SIZE": ["0", "-1", "ten"],
    "ML_UTILITIES_PREDICTION_CACHE_TTL": ["-1", "forever", "inf"],
    "ML_UTILITIES_MAX_LATENCY_MS": ["0", "-10", "fast"],
    "ML_UTILITIES_LOG_LEVEL": ["LOUD", "5"],
    "ML_UTILITIES_POSTGRES_URL": ["localhost:5432/db", "mysql://u@h/db"],
    "ML_UTILITIES_REDIS_URL": ["127.0.0.1:6379", "http://h:6379"],
    "ML_UTILITIES_S3_ENDPOINT_URL": ["minio:9000", "s3://bucket"],
}
STORE_VARIABLES = [
    "ML_UTILITIES_POSTGRES_URL",
    "ML_UTILITIES_REDIS_URL",
    "ML_UTILITIES_S3_ENDPOINT_URL",
]
HTTP_VARIABLES = [
    "ML_UTILITIES_HTTP_HEADER_TIMEOUT",
    "ML_UTILITIES_HTTP_BODY_TIMEOUT",
    "ML_UTILITIES_HTTP_MAX_CONNECTIONS",
]


@pytest.fixture
def clean_env(monkeypatch):
    """An environment without any ML_UTILITIES_* variable; the cached settings restored after."""
    for name in list(os.environ):
        if name.startswith(config.ENV_PREFIX):
            monkeypatch.delenv(name)
    yield monkeypatch
    monkeypatch.undo()
    reload_settings()


def test_defaults():
    s = Settings.from_env({})
    assert s.pytorch_enabled is True
    assert s.tensorflow_enabled is True
    assert s.gpu_enabled is True
    assert s.cuda_visible_devices is None
    assert s.batch_size == 128
    assert s.max_workers == os.cpu_count()
    assert s.memory_limit_gb == 16.0
    assert s.cache_size_gb == 4.0
    assert s.automl_time_budget == 4.0
    assert s.automl_trials == 200
    assert s.feature_selection is True
    assert s.model_cache_size == 10
    assert s.prediction_cache_ttl == 3600.0
    assert s.max_latency_ms == 10.0
    assert s.home == Path("~/.ml_utilities").expanduser()
    assert s.log_level is None
    assert s.postgres_url is None and s.redis_url is None and s.s3_endpoint_url is None
    assert s == Settings()


def test_spec_example_parses():
    s = Settings.from_env(SPEC_EXAMPLE)
    assert s.cuda_visible_devices == (0, 1)
    assert s.max_workers == 8
    assert (s.batch_size, s.automl_trials, s.model_cache_size) == (128, 200, 10)
    assert (s.memory_limit_gb, s.cache_size_gb, s.automl_time_budget) == (16.0, 4.0, 4.0)
    assert (s.prediction_cache_ttl, s.max_latency_ms) == (3600.0, 10.0)
    assert s.pytorch_enabled and s.tensorflow_enabled and s.gpu_enabled and s.feature_selection


def test_every_spec_variable_is_read():
    variables = Settings.variables()
    extra = ["ML_UTILITIES_HOME", "ML_UTILITIES_LOG_LEVEL", *STORE_VARIABLES, *HTTP_VARIABLES]
    for name in [*SPEC_EXAMPLE, *extra]:
        assert name in variables, name
    assert all(name.startswith("ML_UTILITIES_") for name in variables)
    assert len(variables) == len(SPEC_EXAMPLE) + len(extra)


def test_field_types():
    s = Settings.from_env(SPEC_EXAMPLE)
    assert isinstance(s.max_workers, int) and isinstance(s.batch_size, int)
    assert isinstance(s.memory_limit_gb, float) and isinstance(s.max_latency_ms, float)
    assert isinstance(s.home, Path)
    assert all(isinstance(d, int) for d in s.cuda_visible_devices)


@pytest.mark.parametrize("name", BOOLEANS)
@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("true", True),
        ("TRUE", True),
        ("1", True),
        ("yes", True),
        ("Yes", True),
        (" true ", True),
        ("false", False),
        ("False", False),
        ("0", False),
        ("no", False),
        ("NO", False),
    ],
)
def test_booleans(name, raw, value):
    s = Settings.from_env({name: raw})
    field = Settings.variables()[name]
    assert getattr(s, field) is value


@pytest.mark.parametrize(
    ("name", "value"),
    [(name, value) for name, values in BAD_VALUES.items() for value in values],
)
def test_bad_values_name_variable_and_value(name, value):
    with pytest.raises(ConfigError) as info:
        Settings.from_env({name: value})
    message = str(info.value)
    assert name in message
    assert repr(value) in message
    assert isinstance(info.value, ParameterError)
    assert isinstance(info.value, ValueError)


def test_max_workers_messages():
    with pytest.raises(ConfigError, match=r"ML_UTILITIES_MAX_WORKERS='abc'"):
        Settings.from_env({"ML_UTILITIES_MAX_WORKERS": "abc"})
    with pytest.raises(ConfigError, match=r"ML_UTILITIES_MAX_WORKERS='0'.*>= 1"):
        Settings.from_env({"ML_UTILITIES_MAX_WORKERS": "0"})


def test_empty_values_take_defaults():
    s = Settings.from_env(
        {name: "" for name in Settings.variables()} | {"ML_UTILITIES_CUDA_VISIBLE_DEVICES": "0"}
    )
    assert s.max_workers == os.cpu_count() and s.batch_size == 128 and s.log_level is None
    assert s.cuda_visible_devices == (0,)


def test_empty_cuda_devices_means_none():
    assert Settings.from_env({"ML_UTILITIES_CUDA_VISIBLE_DEVICES": ""}).cuda_visible_devices == ()
    s = Settings.from_env({"ML_UTILITIES_CUDA_VISIBLE_DEVICES": " 2, 0 "})
    assert s.cuda_visible_devices == (2, 0)


def test_other_values():
    s = Settings.from_env(
        {
            "ML_UTILITIES_HOME": "~/somewhere/else",
            "ML_UTILITIES_LOG_LEVEL": "debug",
            "ML_UTILITIES_CACHE_SIZE_GB": "0",
            "ML_UTILITIES_PREDICTION_CACHE_TTL": "0",
            "ML_UTILITIES_MEMORY_LIMIT_GB": "0.5",
            "ML_UTILITIES_AUTOML_TIME_BUDGET": "1e-1",
        }
    )
    assert s.home == Path("~/somewhere/else").expanduser()
    assert s.log_level == "DEBUG"
    assert s.cache_size_gb == 0.0 and s.prediction_cache_ttl == 0.0
    assert s.memory_limit_gb == 0.5 and s.automl_time_budget == 0.1


def test_store_urls():
    s = Settings.from_env(
        {
            "ML_UTILITIES_POSTGRES_URL": "postgresql+psycopg://u@db:5432/music",
            "ML_UTILITIES_REDIS_URL": " rediss://cache:6380/1 ",
            "ML_UTILITIES_S3_ENDPOINT_URL": "http://127.0.0.1:9000",
        }
    )
    assert s.postgres_url == "postgresql+psycopg://u@db:5432/music"
    assert s.redis_url == "rediss://cache:6380/1"
    assert s.s3_endpoint_url == "http://127.0.0.1:9000"


def test_settings_are_frozen():
    s = Settings.from_env({})
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.max_workers = 3  # type: ignore[misc]


def test_as_dict_is_plain():
    d = Settings.from_env(SPEC_EXAMPLE).as_dict()
    assert d["cuda_visible_devices"] == [0, 1]
    assert isinstance(d["home"], str)
    assert set(d) == {f.name for f in dataclasses.fields(Settings)}


def test_get_settings_is_cached_and_reloadable(clean_env):
    clean_env.setenv("ML_UTILITIES_BATCH_SIZE", "32")
    first = reload_settings()
    assert first.batch_size == 32
    assert get_settings() is first
    clean_env.setenv("ML_UTILITIES_BATCH_SIZE", "64")
    assert get_settings() is first  # cached until reloaded
    second = reload_settings()
    assert second.batch_size == 64 and get_settings() is second
    assert reload_settings({"ML_UTILITIES_BATCH_SIZE": "7"}).batch_size == 7


def test_bad_environment_fails_on_reload(clean_env):
    clean_env.setenv("ML_UTILITIES_MAX_WORKERS", "abc")
    with pytest.raises(ConfigError, match="ML_UTILITIES_MAX_WORKERS='abc'"):
        reload_settings()


def test_default_ml_config_is_the_specification():
    assert DEFAULT_ML_CONFIG["feature_extraction"] == {
        "audio_sample_rate": 22050,
        "n_mfcc": 13,
        "n_chroma": 12,
        "n_fft": 2048,
        "hop_length": 512,
        "parallel_jobs": 8,
    }
    assert DEFAULT_ML_CONFIG["model_training"]["frameworks"] == ["pytorch", "tensorflow", "sklearn"]
    assert DEFAULT_ML_CONFIG["model_training"]["hyperparameter_optimization"] == "optuna"
    assert DEFAULT_ML_CONFIG["model_training"]["cross_validation_folds"] == 5
    assert DEFAULT_ML_CONFIG["model_training"]["early_stopping_patience"] == 10
    assert DEFAULT_ML_CONFIG["model_training"]["model_selection_metric"] == "f1_weighted"
    assert DEFAULT_ML_CONFIG["automl"] == {
        "time_budget_hours": 4,
        "max_trials": 500,
        "ensemble_methods": ["voting", "stacking"],
        "feature_engineering": True,
        "neural_architecture_search": True,
    }
    assert DEFAULT_ML_CONFIG["deployment"] == {
        "model_optimization": ["quantization", "pruning", "distillation"],
        "serving_framework": "torchserve",
        "auto_scaling": True,
        "monitoring_enabled": True,
    }
    assert DEFAULT_ML_CONFIG["performance"] == {
        "gpu_memory_fraction": 0.8,
        "mixed_precision": True,
        "tensorrt_optimization": True,
        "batch_prediction": True,
    }


def test_default_ml_config_copy_is_independent():
    copy = default_ml_config()
    assert copy == DEFAULT_ML_CONFIG
    copy["automl"]["ensemble_methods"].append("blending")
    assert DEFAULT_ML_CONFIG["automl"]["ensemble_methods"] == ["voting", "stacking"]


def test_apply_to_core_sets_threads():
    from ml_utilities import _core

    before = _core.threads()
    try:
        apply_to_core(Settings.from_env({"ML_UTILITIES_MAX_WORKERS": "1"}))
        assert _core.threads() == 1
        apply_to_core(Settings.from_env({"ML_UTILITIES_MAX_WORKERS": "3"}))
        assert _core.threads() == 3
    finally:
        _core.set_threads(before)


def test_apply_logging():
    logger = logging.getLogger("ml_utilities")
    before = logger.level
    try:
        apply_logging(Settings.from_env({"ML_UTILITIES_LOG_LEVEL": "info"}))
        assert logger.level == logging.INFO
        apply_logging(Settings.from_env({}))  # unset: left alone
        assert logger.level == logging.INFO
    finally:
        logger.setLevel(before)


def test_config_imports_only_stdlib():
    tree = ast.parse(Path(config.__file__).read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            imported.add((node.module or "").split(".")[0])
    third_party = {name for name in imported if name not in sys.stdlib_module_names}
    assert third_party <= {"__future__"}, third_party


def test_the_suite_runs_under_a_temporary_home():
    """conftest.py points HOME and ML_UTILITIES_HOME away from the account's real home."""
    import pwd

    real = Path(pwd.getpwuid(os.getuid()).pw_dir).resolve()
    assert Path.home().resolve() != real
    assert real not in Path(os.environ["ML_UTILITIES_HOME"]).resolve().parents
    assert Settings.from_env().home.resolve().is_relative_to(Path.home().resolve())


# -------------------------------------------------------------- one place reads the environment


def test_serve_handoff_round_trip_and_bad_config():
    from ml_utilities.config import SERVE_HANDOFF, read_serve_handoff, serve_handoff

    env = serve_handoff({"batch_size": 64}, "sqlite:///r.db", None)
    assert sorted(env) == sorted(SERVE_HANDOFF)
    assert read_serve_handoff(env) == ({"batch_size": 64}, "sqlite:///r.db", None)
    assert read_serve_handoff({}) == ({}, None, None)
    with pytest.raises(ConfigError, match="MLU_SERVE_CONFIG='\\[1\\]'"):
        read_serve_handoff({"MLU_SERVE_CONFIG": "[1]"})
    with pytest.raises(ConfigError, match="MLU_SERVE_CONFIG='{nope'"):
        read_serve_handoff({"MLU_SERVE_CONFIG": "{nope"})


def test_only_config_reads_the_environment():
    # os.environ.get / os.getenv / os.environ[...] read outside config.py would be settings
    # that escape its parsing and checks (writes, such as serve's hand-off, are allowed)
    import re

    import ml_utilities

    root = Path(ml_utilities.__file__).resolve().parent
    read = re.compile(r"os\.getenv\(|os\.environ\.get\(|os\.environ\[(?![^\]]*\]\s*=[^=])")
    reads = [
        f"{path.relative_to(root)}:{n}: {line.strip()}"
        for path in sorted(root.rglob("*.py"))
        if path != root / "config.py"
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if read.search(line)
    ]
    assert reads == []
