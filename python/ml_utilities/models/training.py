"""Training from the specification's configuration dictionary."""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np

from ._data import (
    LabelCodec,
    as_features,
    as_labels,
    fingerprint,
    input_signature,
    split_train_validation,
)
from .adapters import adapter_class, canonical_framework
from .errors import BackendUnavailableError, ParameterError
from .handle import ModelHandle

__all__ = ["CONFIG_KEYS", "DEFAULT_ARCHITECTURES", "TASKS", "train", "validation_metrics"]

logger = logging.getLogger(__name__)

TASKS = ("classification", "regression", "audio_classification")
CONFIG_KEYS = (
    "framework",
    "architecture",
    "task",
    "hyperparameters",
    "name",
    "seed",
    "early_stopping_patience",
    "device",
    "mixed_precision",
)
DEFAULT_ARCHITECTURES = {
    "sklearn": "random_forest",
    "xgboost": "gbtree",
    "lightgbm": "gbdt",
    "pytorch": "mlp",
    "tensorflow": "mlp",
    "transformers": "audio_spectrogram_transformer",
}
#: rows of the validation set kept with the model to check exports against it
HOLDOUT_ROWS = 256


def _check_config(config: Any) -> dict[str, Any]:
    if not isinstance(config, dict):
        raise ParameterError(f"config={config!r}: expected a dict with at least 'framework'")
    unknown = sorted(set(config) - set(CONFIG_KEYS))
    if unknown:
        raise ParameterError(f"unknown config key(s) {unknown}; accepted: {list(CONFIG_KEYS)}")
    if "framework" not in config:
        raise ParameterError(
            "config has no 'framework' (one of sklearn, xgboost, lightgbm, "
            "pytorch, tensorflow, transformers)"
        )
    cfg = dict(config)
    cfg["framework"] = canonical_framework(cfg["framework"])
    _check_enabled(cfg["framework"])
    if cfg["framework"] == "onnx":
        raise ParameterError("framework='onnx' is for inference; train in another framework")
    task = cfg.get("task", "classification")
    if task not in TASKS:
        raise ParameterError(f"task={task!r}: expected one of {list(TASKS)}")
    cfg["task"] = task
    cfg.setdefault("architecture", DEFAULT_ARCHITECTURES[cfg["framework"]])
    hp = cfg.get("hyperparameters", {})
    if hp is None:
        hp = {}
    if not isinstance(hp, dict):
        raise ParameterError(f"hyperparameters={hp!r}: expected a dict")
    cfg["hyperparameters"] = dict(hp)
    seed = cfg.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ParameterError(f"seed={seed!r}: expected an integer >= 0")
    cfg["seed"] = int(seed)
    patience = cfg.get("early_stopping_patience")
    if patience is None:
        from ..config import default_ml_config

        patience = default_ml_config()["model_training"]["early_stopping_patience"]
    if isinstance(patience, bool) or not isinstance(patience, int) or patience < 0:
        raise ParameterError(
            f"early_stopping_patience={patience!r}: expected an integer >= 0 (0 disables it)"
        )
    cfg["early_stopping_patience"] = patience
    name = cfg.get("name") or f"{cfg['framework']}-{cfg['architecture']}-{task}"
    if not isinstance(name, str) or not name.strip() or len(name) > 200 or "/" in name:
        raise ParameterError(f"name={name!r}: expected a non-empty string without '/'")
    cfg["name"] = name
    return cfg


def _check_enabled(framework: str) -> None:
    """ML_UTILITIES_PYTORCH_ENABLED / ML_UTILITIES_TENSORFLOW_ENABLED switch frameworks off."""
    from ..config import get_settings

    settings = get_settings()
    if framework in ("pytorch", "transformers") and not settings.pytorch_enabled:
        raise BackendUnavailableError(
            f"framework={framework!r} needs PyTorch, which ML_UTILITIES_PYTORCH_ENABLED=false "
            "turns off"
        )
    if framework == "tensorflow" and not settings.tensorflow_enabled:
        raise BackendUnavailableError(
            "framework='tensorflow' is turned off by ML_UTILITIES_TENSORFLOW_ENABLED=false"
        )


def validation_metrics(task: str, y_true: np.ndarray, raw: np.ndarray) -> dict[str, float]:
    """Metrics on the validation rows: raw is probabilities (classification) or values."""
    from sklearn import metrics as skm

    if task == "regression":
        err = raw.astype(np.float64) - y_true.astype(np.float64)
        return {
            "rmse": float(np.sqrt(np.mean(err**2))),
            "mae": float(np.mean(np.abs(err))),
            "r2": float(skm.r2_score(y_true, raw)) if len(y_true) > 1 else float("nan"),
        }
    pred = np.argmax(raw, axis=1)
    probs = np.clip(raw.astype(np.float64), 1e-12, 1.0)
    probs = probs / probs.sum(axis=1, keepdims=True)
    return {
        "accuracy": float(skm.accuracy_score(y_true, pred)),
        "f1_weighted": float(skm.f1_score(y_true, pred, average="weighted", zero_division=0)),
        "log_loss": float(skm.log_loss(y_true, probs, labels=np.arange(raw.shape[1]))),
    }


def train(features: Any, labels: Any, config: Any, validation_split: float = 0.2) -> ModelHandle:
    """Train one model; see :meth:`ModelManager.train_model`."""
    cfg = _check_config(config)
    framework, task = cfg["framework"], cfg["task"]
    x = as_features(features)
    adapter_task = "regression" if task == "regression" else "classification"
    y_given = as_labels(labels, len(x), adapter_task)
    codec = LabelCodec.fit(y_given) if adapter_task == "classification" else None
    y = codec.encode(y_given) if codec is not None else y_given
    train_idx, val_idx = split_train_validation(
        len(x), validation_split, cfg["seed"], y if codec is not None else None
    )
    if codec is not None and np.unique(y[train_idx]).size < len(codec.classes):
        raise ParameterError(
            f"the training split lacks some classes of {codec.classes}: give more samples per "
            "class or a smaller validation_split"
        )
    cls = adapter_class(framework)
    adapter = cls(
        cfg["architecture"],
        adapter_task,
        cfg["hyperparameters"],
        n_classes=None if codec is None else len(codec.classes),
        input_shape=x.shape[1:],
        seed=cfg["seed"],
    )
    from .adapters.torch import TorchAdapter, torch_device

    if isinstance(adapter, TorchAdapter):
        adapter.device = torch_device(cfg.get("device"))
        mp = cfg.get("mixed_precision")
        if mp is None:
            from ..config import default_ml_config

            mp = default_ml_config()["performance"]["mixed_precision"]
        adapter.mixed_precision = bool(mp)
    elif cfg.get("device") not in (None, "auto", "cpu"):
        raise ParameterError(f"device={cfg['device']!r} is only supported for pytorch models")
    start = time.perf_counter()
    result = adapter.fit(
        x[train_idx], y[train_idx], x[val_idx], y[val_idx], patience=cfg["early_stopping_patience"]
    )
    duration = time.perf_counter() - start
    raw = adapter.predict_raw(x[val_idx])
    metrics = validation_metrics(adapter_task, y[val_idx], raw)
    metrics.update(n_train=int(len(train_idx)), n_validation=int(len(val_idx)))
    training = dict(result)
    training.update(
        duration_s=round(duration, 4),
        seed=cfg["seed"],
        validation_split=float(validation_split),
        early_stopping_patience=cfg["early_stopping_patience"],
    )
    keep = val_idx[:HOLDOUT_ROWS]
    logger.info("trained %s in %.2fs: %s", cfg["name"], duration, metrics)
    handle = ModelHandle(
        adapter,
        name=cfg["name"],
        task=task,
        config={k: cfg[k] for k in cfg if k != "name"},
        codec=codec,
        metrics=metrics,
        training=training,
        signature={
            "inputs": input_signature(x),
            "classes": None if codec is None else codec.classes,
        },
        fingerprint=fingerprint(x, np.asarray(y_given)),
        holdout=(x[keep], y_given[keep]),
    )
    if x.ndim == 2:
        # the training rows' reference sample (validation and drift monitoring of this
        # version); models over 2-D samples (spectrograms, sequences) get none: their drift is
        # watched on summary features, not on every cell of a sample
        handle.set_reference(x[train_idx], np.asarray(y_given)[train_idx], seed=cfg["seed"])
    return handle
