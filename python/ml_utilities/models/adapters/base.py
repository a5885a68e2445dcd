"""The one interface every framework adapter implements.

An adapter wraps one fitted model of one framework. Labels reach it already encoded as
``0..K-1`` (classification) or float32 (regression); the :class:`~ml_utilities.models.ModelHandle`
above it owns the class names. ``save`` writes the model in the framework's own safe format into
a folder, ``load`` reads it back, and ``to_onnx`` exports it for :meth:`ModelManager.deploy_model`.
"""

from __future__ import annotations

import importlib
import logging
import types
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..._jsonable import jsonable
from ..errors import BackendUnavailableError, ParameterError

__all__ = ["Adapter", "OnnxExport", "TrainingResult", "require"]

logger = logging.getLogger(__name__)

TASKS = ("classification", "regression", "audio_classification")


def require(module: str, *, package: str | None = None, purpose: str = "") -> Any:
    """Import an optional dependency or raise an error naming the package to install."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        what = f" for {purpose}" if purpose else ""
        raise BackendUnavailableError(
            f"{package or module} is needed{what} but cannot be imported ({err}); "
            f"install it with `pip install {package or module}` "
            "(or `pip install ml_utilities[models]`)"
        ) from err


class TrainingResult(dict):
    """What a fit reports: ``history`` (per-epoch losses), ``best_iteration``, ``device``..."""


class OnnxExport:
    """An exported ONNX model and the name of its output holding probabilities or values."""

    def __init__(
        self, model: Any, score_output: str, input_name: str, *, flatten: bool = False
    ) -> None:
        self.model = model
        self.score_output = score_output
        self.input_name = input_name
        #: the exported graph takes ``(n, prod(sample shape))`` rather than the sample's shape
        self.flatten = flatten


class Adapter(ABC):
    """Fit, predict, save, load and export one model of one framework.

    Parameters
    ----------
    architecture : str
        The framework's model family (``"random_forest"``, ``"mlp"``, ``"transformer"``, ...).
    task : {"classification", "regression"}
        ``audio_classification`` is mapped to ``classification`` by the manager.
    hyperparameters : dict
        Passed to the model; unknown names raise :class:`ParameterError`.
    n_classes : int or None
        Number of classes (classification).
    input_shape : tuple of int
        Shape of one sample (without the batch axis).
    seed : int
        Seed of every random generator the framework uses.
    """

    framework: ClassVar[str]
    architectures: ClassVar[tuple[str, ...]]
    #: files written by :meth:`save`, relative to its folder (set by subclasses)
    onnx_exporter: ClassVar[str] = ""

    def __init__(
        self,
        architecture: str,
        task: str,
        hyperparameters: dict[str, Any],
        *,
        n_classes: int | None,
        input_shape: tuple[int, ...],
        seed: int = 0,
    ) -> None:
        if architecture not in self.architectures:
            raise ParameterError(
                f"architecture={architecture!r} is not available for framework "
                f"{self.framework!r}; choose one of {list(self.architectures)}"
            )
        if task not in ("classification", "regression"):
            raise ParameterError(f"task={task!r}: expected 'classification' or 'regression'")
        self.architecture = architecture
        self.task = task
        self.hyperparameters = dict(hyperparameters)
        self.n_classes = n_classes
        self.input_shape = tuple(int(s) for s in input_shape)
        self.seed = int(seed)

    # -- pickling, between this library's own processes (AutoML's fold workers) ----------------
    def __getstate__(self) -> dict[str, Any]:
        """The adapter's attributes, with the framework modules it keeps as their names."""
        state = dict(self.__dict__)
        modules = {k: v.__name__ for k, v in state.items() if isinstance(v, types.ModuleType)}
        for k in modules:
            del state[k]
        state["_adapter_modules"] = modules
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        modules = state.pop("_adapter_modules", {})
        self.__dict__.update(state)
        for k, name in modules.items():
            setattr(self, k, importlib.import_module(name))

    # -- the common description written beside the model files --------------------------------
    def _classes(self) -> int:
        if self.n_classes is None:
            raise ParameterError("a classification model needs n_classes")
        return int(self.n_classes)

    def spec(self) -> dict[str, Any]:
        """JSON-friendly description from which :meth:`load` rebuilds the adapter."""
        return {
            "framework": self.framework,
            "architecture": self.architecture,
            "task": self.task,
            "hyperparameters": _jsonable(self.hyperparameters),
            "n_classes": self.n_classes,
            "input_shape": list(self.input_shape),
            "seed": self.seed,
        }

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> Adapter:
        return cls(
            spec["architecture"],
            spec["task"],
            spec["hyperparameters"],
            n_classes=spec["n_classes"],
            input_shape=tuple(spec["input_shape"]),
            seed=spec["seed"],
        )

    @abstractmethod
    def fit(
        self,
        x: np.ndarray,
        y: np.ndarray,
        x_val: np.ndarray,
        y_val: np.ndarray,
        *,
        patience: int,
    ) -> TrainingResult:
        """Train on ``(x, y)``, stopping early on the validation loss of ``(x_val, y_val)``."""

    def adopt(self, model: Any) -> Adapter:
        """Hold ``model``, fitted by the caller instead of :meth:`fit`, and return ``self``.

        For callers with a training loop of their own (AutoML's families stop on their trial's
        deadline and on their fold's validation rows): the adapter then predicts, saves, loads and
        exports the model as one it had fitted. Adapters that cannot hold a foreign model say so.
        """
        raise ParameterError(f"the {self.framework} adapter cannot hold a model fitted elsewhere")

    @abstractmethod
    def predict_raw(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities ``(n, n_classes)`` (classification) or values ``(n,)``."""

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Class indices (classification) or values (regression)."""
        out = self.predict_raw(x)
        if self.task == "classification":
            return np.argmax(out, axis=1)
        return out

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        if self.task != "classification":
            raise ParameterError("predict_proba is only defined for classification models")
        return self.predict_raw(x)

    def _predict_sklearn_api(self, model: Any, x: np.ndarray) -> np.ndarray:
        """:meth:`predict_raw` of a model with scikit-learn's API (``predict_proba``,
        ``predict``) on rows flattened to ``(n, features)``."""
        x2 = x.reshape(len(x), -1)
        if self.task == "classification":
            return np.asarray(model.predict_proba(x2), dtype=np.float32)
        return np.asarray(model.predict(x2), dtype=np.float32)

    def _tabular_export(self, onx: Any) -> OnnxExport:
        """The export of a converter of tabular models (skl2onnx, onnxmltools) with input
        ``input``: its outputs are the labels then the probabilities, or the values."""
        outputs = [o.name for o in onx.graph.output]
        score = outputs[1] if self.task == "classification" else outputs[0]
        return OnnxExport(onx, score, "input", flatten=True)

    @abstractmethod
    def save(self, directory: Path, *, allow_pickle: bool = False) -> None:
        """Write the fitted model into ``directory`` (which exists and is empty)."""

    @abstractmethod
    def load_files(self, directory: Path, *, allow_pickle: bool = False) -> None:
        """Read the model written by :meth:`save` into this (unfitted) adapter."""

    @abstractmethod
    def to_onnx(self, sample: np.ndarray, *, opset: int | None = None) -> OnnxExport:
        """Export to ONNX with a free batch axis; the score output gives what
        :meth:`predict_raw` gives."""


def _jsonable(value: Any) -> Any:
    return jsonable(value)


def check_hyperparameters(
    framework: str, architecture: str, given: dict[str, Any], allowed: set[str] | list[str]
) -> None:
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        raise ParameterError(
            f"unknown hyperparameter(s) {unknown} for {framework} {architecture!r}; "
            f"accepted: {sorted(allowed)}"
        )
