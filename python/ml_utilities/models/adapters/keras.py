"""TensorFlow / Keras 3 models (mlp, cnn), saved in Keras' own ``.keras`` format.

Loading uses ``safe_mode=True``: a ``.keras`` file holding Python lambdas is refused. ONNX
export goes through tf2onnx when it is installed.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import BackendUnavailableError, ParameterError
from .base import Adapter, OnnxExport, TrainingResult, check_hyperparameters, require

__all__ = ["KerasAdapter"]

_DEFAULTS: dict[str, dict[str, Any]] = {
    "mlp": {"hidden_sizes": [128, 64], "dropout": 0.1},
    "cnn": {"channels": [16, 32], "kernel_size": 3, "dropout": 0.2},
}
_TRAINING = {"epochs": 50, "batch_size": 32, "learning_rate": 1e-3}
_FILE = "model.keras"


@contextlib.contextmanager
def _numpy2_compat() -> Iterator[None]:
    """Keras 3 with TensorFlow converts variables with ``np.array(variable)``, which NumPy 2
    reports as a DeprecationWarning (TensorFlow's ``__array__`` lacks ``copy=``); the values are
    right, so that one warning is silenced here and nowhere else."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore",
            message=r"__array__ implementation doesn't accept a "
            r"copy keyword",
            category=DeprecationWarning,
        )
        yield


def _compat(method: Any) -> Any:
    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with _numpy2_compat():
            return method(*args, **kwargs)

    return wrapper


class KerasAdapter(Adapter):
    """A Keras Sequential model with a fitted ``Normalization`` layer at its input.

    Hyperparameters: ``hidden_sizes``, ``dropout`` (mlp); ``channels``, ``kernel_size``,
    ``dropout`` (cnn over ``(n, n_mels, n_frames)``); ``epochs`` (50), ``batch_size`` (32),
    ``learning_rate`` (1e-3).
    """

    framework = "tensorflow"
    architectures = ("mlp", "cnn")
    onnx_exporter = "tf2onnx"

    def __init__(self, architecture: str, task: str, hyperparameters: dict[str, Any], **kw: Any):
        super().__init__(architecture, task, hyperparameters, **kw)
        self.keras = require("keras", package="tensorflow-cpu", purpose="TensorFlow/Keras models")
        check_hyperparameters(
            self.framework,
            architecture,
            hyperparameters,
            set(_DEFAULTS[architecture]) | set(_TRAINING),
        )
        if architecture == "cnn" and len(self.input_shape) != 2:
            raise ParameterError(
                f"cnn expects samples of shape (n_mels, n_frames); got {self.input_shape}"
            )
        self.model: Any = None

    def _param(self, name: str) -> Any:
        merged = {**_DEFAULTS[self.architecture], **_TRAINING, **self.hyperparameters}
        return merged[name]

    def _build(self, x: np.ndarray) -> Any:
        keras = self.keras
        layers = keras.layers
        n_out = self._classes() if self.task == "classification" else 1
        inputs = keras.Input(shape=self.input_shape, name="input")
        if self.architecture == "mlp":
            norm = layers.Normalization(axis=-1)
            flat = x.reshape(len(x), -1)
            norm.adapt(flat)
            h = norm(layers.Flatten()(inputs))
            for width in self._param("hidden_sizes"):
                h = layers.Dense(int(width), activation="relu")(h)
                h = layers.Dropout(float(self._param("dropout")))(h)
        else:
            h = layers.Reshape((*self.input_shape, 1))(inputs)
            norm = layers.Normalization(axis=1)  # one mean/variance per mel band
            norm.adapt(x[..., None])
            h = norm(h)
            k = int(self._param("kernel_size"))
            for ch in self._param("channels"):
                h = layers.Conv2D(int(ch), k, padding="same", activation="relu")(h)
                h = layers.MaxPooling2D(2, padding="same")(h)
            h = layers.GlobalAveragePooling2D()(h)
            h = layers.Dropout(float(self._param("dropout")))(h)
        activation = "softmax" if self.task == "classification" else None
        outputs = layers.Dense(n_out, activation=activation, name="scores")(h)
        return keras.Model(inputs, outputs)

    @_compat
    def fit(self, x, y, x_val, y_val, *, patience):  # noqa: ANN001 - see Adapter.fit
        keras = self.keras
        keras.utils.set_random_seed(self.seed)
        model = self._build(x)
        loss = "sparse_categorical_crossentropy" if self.task == "classification" else "mse"
        model.compile(
            optimizer=keras.optimizers.Adam(float(self._param("learning_rate"))), loss=loss
        )
        callbacks = []
        if patience:
            callbacks.append(
                keras.callbacks.EarlyStopping(
                    monitor="val_loss", patience=patience, restore_best_weights=True
                )
            )
        hist = model.fit(
            x,
            y,
            validation_data=(x_val, y_val),
            epochs=int(self._param("epochs")),
            batch_size=int(self._param("batch_size")),
            shuffle=True,
            verbose=0,
            callbacks=callbacks,
        )
        self.model = model
        val = [float(v) for v in hist.history["val_loss"]]
        finite = [v if math.isfinite(v) else float("inf") for v in val]
        return TrainingResult(
            best_iteration=int(np.argmin(finite)),
            epochs_run=len(val),
            history={"train_loss": [float(v) for v in hist.history["loss"]], "val_loss": val},
        )

    @_compat
    def predict_raw(self, x: np.ndarray) -> np.ndarray:
        outs = [
            np.asarray(self.model(x[i : i + 1024], training=False)) for i in range(0, len(x), 1024)
        ]
        raw = np.concatenate(outs).astype(np.float32)
        return raw if self.task == "classification" else raw.reshape(-1)

    @_compat
    def save(self, directory: Path, *, allow_pickle: bool = False) -> None:
        self.model.save(directory / _FILE)
        (directory / "architecture.json").write_text(json.dumps(self.spec(), sort_keys=True))

    @_compat
    def load_files(self, directory: Path, *, allow_pickle: bool = False) -> None:
        self.model = self.keras.saving.load_model(directory / _FILE, compile=False, safe_mode=True)

    @_compat
    def to_onnx(self, sample: np.ndarray, *, opset: int | None = None) -> OnnxExport:
        try:
            import tf2onnx
        except ImportError as err:
            raise BackendUnavailableError(
                f"ONNX export of Keras models needs tf2onnx, which is not installed ({err}); "
                "pip install tf2onnx"
            ) from err
        import tensorflow as tf

        spec = (tf.TensorSpec((None, *self.input_shape), tf.float32, name="input"),)
        model_proto, _ = tf2onnx.convert.from_keras(
            self.model, input_signature=spec, opset=opset or 17
        )
        return OnnxExport(model_proto, model_proto.graph.output[0].name, "input")
