"""scikit-learn estimators, saved with skops (no pickle) and exported with skl2onnx."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ArtifactIntegrityError, ParameterError
from ..skops_io import dump_skops, load_skops
from .base import Adapter, OnnxExport, TrainingResult, check_hyperparameters, require

__all__ = ["SklearnAdapter"]

logger = logging.getLogger(__name__)

# (architecture) -> (classifier, regressor), as "module:Class"
_ESTIMATORS: dict[str, tuple[str, str]] = {
    "random_forest": (
        "sklearn.ensemble:RandomForestClassifier",
        "sklearn.ensemble:RandomForestRegressor",
    ),
    "extra_trees": (
        "sklearn.ensemble:ExtraTreesClassifier",
        "sklearn.ensemble:ExtraTreesRegressor",
    ),
    "gradient_boosting": (
        "sklearn.ensemble:HistGradientBoostingClassifier",
        "sklearn.ensemble:HistGradientBoostingRegressor",
    ),
    "linear": ("sklearn.linear_model:LogisticRegression", "sklearn.linear_model:Ridge"),
    "mlp": ("sklearn.neural_network:MLPClassifier", "sklearn.neural_network:MLPRegressor"),
    "knn": ("sklearn.neighbors:KNeighborsClassifier", "sklearn.neighbors:KNeighborsRegressor"),
}
_ALIASES = {
    "logistic_regression": "linear",
    "ridge": "linear",
    "hist_gradient_boosting": "gradient_boosting",
}
#: any estimator or pipeline fitted by the caller and handed over with ``adopt`` (AutoML's folds,
#: its stacking meta-learner); ``fit`` refuses it
PREFIT = "prefit"

_MODEL_FILE = "model.skops"
_PICKLE_FILE = "model.pkl"


def _estimator_class(path: str) -> type:
    module, name = path.split(":")
    return getattr(require(module, package="scikit-learn", purpose="scikit-learn models"), name)


class SklearnAdapter(Adapter):
    framework = "sklearn"
    architectures = (*_ESTIMATORS, *_ALIASES, PREFIT)
    onnx_exporter = "skl2onnx"

    def __init__(self, architecture: str, task: str, hyperparameters: dict[str, Any], **kw: Any):
        super().__init__(architecture, task, hyperparameters, **kw)
        self.model: Any = None
        if architecture == PREFIT:
            check_hyperparameters(self.framework, architecture, hyperparameters, ())
            self._cls: type | None = None
            self._params: dict[str, Any] = {}
            return
        family = _ALIASES.get(architecture, architecture)
        cls = _estimator_class(_ESTIMATORS[family][0 if task == "classification" else 1])
        check_hyperparameters(self.framework, architecture, hyperparameters, cls().get_params())
        params = dict(hyperparameters)
        if "random_state" in cls().get_params() and "random_state" not in params:
            params["random_state"] = self.seed
        self._cls = cls
        self._params = params

    def fit(self, x, y, x_val, y_val, *, patience):  # noqa: ANN001 - see Adapter.fit
        if self._cls is None:
            raise ParameterError(
                f"architecture={PREFIT!r} holds an estimator fitted by its caller (adopt()); "
                f"train one of {sorted(set(self.architectures) - {PREFIT})}"
            )
        self.model = self._cls(**self._params)
        self.model.fit(x.reshape(len(x), -1), y)
        return TrainingResult(best_iteration=None, history={})

    def adopt(self, model: Any) -> SklearnAdapter:
        """Hold a fitted estimator or pipeline (see :meth:`Adapter.adopt`)."""
        self.model = model
        return self

    def predict_raw(self, x: np.ndarray) -> np.ndarray:
        return self._predict_sklearn_api(self.model, x)

    def save(self, directory: Path, *, allow_pickle: bool = False) -> None:
        try:
            dump_skops(self.model, directory / _MODEL_FILE)
        except Exception as err:  # skops refuses objects it cannot describe safely
            if not allow_pickle:
                raise ParameterError(
                    f"{type(self.model).__name__} cannot be saved with skops ({err}); pass "
                    "allow_pickle=True to save it with pickle (loading it then needs "
                    "allow_pickle=True too)"
                ) from err
            import pickle

            (directory / _MODEL_FILE).unlink(missing_ok=True)
            with open(directory / _PICKLE_FILE, "wb") as fh:
                pickle.dump(self.model, fh, protocol=pickle.HIGHEST_PROTOCOL)
        cls = type(self.model)
        (directory / "estimator.json").write_text(
            json.dumps({"class": f"{cls.__module__}.{cls.__name__}"})
        )

    def load_files(self, directory: Path, *, allow_pickle: bool = False) -> None:
        if (directory / _PICKLE_FILE).exists():
            if not allow_pickle:
                raise ArtifactIntegrityError(
                    f"{directory / _PICKLE_FILE} is a pickle: loading it can run arbitrary code; "
                    "pass allow_pickle=True only if you trust where it comes from"
                )
            import pickle

            with open(directory / _PICKLE_FILE, "rb") as fh:
                self.model = pickle.load(fh)  # noqa: S301 - the caller allowed it
            return
        self.model = load_skops(directory / _MODEL_FILE, allow_pickle=allow_pickle)

    def to_onnx(self, sample: np.ndarray, *, opset: int | None = None) -> OnnxExport:
        skl2onnx = require("skl2onnx", purpose="ONNX export of scikit-learn models")
        from skl2onnx.common.data_types import FloatTensorType

        n_features = int(np.prod(sample.shape[1:]))
        options = {id(self.model): {"zipmap": False}} if self.task == "classification" else None
        onx = skl2onnx.convert_sklearn(
            self.model,
            initial_types=[("input", FloatTensorType([None, n_features]))],
            options=options,
            target_opset=opset,
        )
        return self._tabular_export(onx)
