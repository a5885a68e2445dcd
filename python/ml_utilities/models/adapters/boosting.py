"""Gradient-boosted trees: XGBoost (UBJSON) and LightGBM (text model), exported by onnxmltools."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .base import Adapter, OnnxExport, TrainingResult, check_hyperparameters, require

__all__ = ["LightGBMAdapter", "XGBoostAdapter"]

_DEFAULT_ROUNDS = 200


class XGBoostAdapter(Adapter):
    """``xgboost.XGBClassifier`` / ``XGBRegressor`` with early stopping on the validation set."""

    framework = "xgboost"
    architectures = ("gbtree", "gradient_boosting", "dart")
    onnx_exporter = "onnxmltools"
    _FILE = "model.ubj"

    def __init__(self, architecture: str, task: str, hyperparameters: dict[str, Any], **kw: Any):
        super().__init__(architecture, task, hyperparameters, **kw)
        xgb = require("xgboost", package="xgboost-cpu", purpose="XGBoost models")
        cls = xgb.XGBClassifier if task == "classification" else xgb.XGBRegressor
        allowed = set(cls().get_params()) - {"early_stopping_rounds", "booster"}
        check_hyperparameters(self.framework, architecture, hyperparameters, allowed)
        self._cls = cls
        self.model: Any = None

    def _params(self, patience: int | None) -> dict[str, Any]:
        params: dict[str, Any] = {
            "n_estimators": _DEFAULT_ROUNDS,
            "random_state": self.seed,
            "n_jobs": None,
            "booster": "dart" if self.architecture == "dart" else "gbtree",
        }
        params.update(self.hyperparameters)
        if patience:
            params["early_stopping_rounds"] = patience
        return params

    def fit(self, x, y, x_val, y_val, *, patience):  # noqa: ANN001 - see Adapter.fit
        self.model = self._cls(**self._params(patience))
        self.model.fit(
            x.reshape(len(x), -1),
            y,
            eval_set=[(x_val.reshape(len(x_val), -1), y_val)],
            verbose=False,
        )
        best = getattr(self.model, "best_iteration", None)
        history = self.model.evals_result().get("validation_0", {})
        if best is not None:
            # keep only the trees up to the best round, so that every consumer (predict, the
            # saved file, the ONNX export) sees the same model
            self.adopt(self.model.get_booster()[: int(best) + 1])
        return TrainingResult(
            best_iteration=None if best is None else int(best),
            history={k: [float(v) for v in vals] for k, vals in history.items()},
        )

    def _wrapped(self, model: Any) -> Any:
        """The scikit-learn wrapper of a saved model (a path or UBJSON bytes), predicting with
        the ``n_jobs`` of the hyperparameters (all cores when not given)."""
        wrapper = self._cls(n_jobs=self.hyperparameters.get("n_jobs"))
        wrapper.load_model(model)
        return wrapper

    def adopt(self, model: Any) -> XGBoostAdapter:
        """Hold a fitted ``xgboost.Booster`` (from ``xgboost.train``; ranking objectives as
        ``regression``) or scikit-learn wrapper (see :meth:`Adapter.adopt`)."""
        booster = model.get_booster() if hasattr(model, "get_booster") else model
        self.model = self._wrapped(bytearray(booster.save_raw("ubj")))
        return self

    def predict_raw(self, x: np.ndarray) -> np.ndarray:
        return self._predict_sklearn_api(self.model, x)

    def save(self, directory: Path, *, allow_pickle: bool = False) -> None:
        self.model.save_model(directory / self._FILE)

    def load_files(self, directory: Path, *, allow_pickle: bool = False) -> None:
        self.model = self._wrapped(directory / self._FILE)

    def to_onnx(self, sample: np.ndarray, *, opset: int | None = None) -> OnnxExport:
        onnxmltools = require("onnxmltools", purpose="ONNX export of XGBoost models")
        from onnxmltools.convert.common.data_types import FloatTensorType

        n_features = int(np.prod(sample.shape[1:]))
        onx = onnxmltools.convert_xgboost(
            self.model,
            initial_types=[("input", FloatTensorType([None, n_features]))],
            target_opset=opset,
        )
        return self._tabular_export(onx)


class LightGBMAdapter(Adapter):
    """``lightgbm.LGBMClassifier`` / ``LGBMRegressor`` with early stopping; saved as text."""

    framework = "lightgbm"
    architectures = ("gbdt", "gradient_boosting", "dart", "rf")
    onnx_exporter = "onnxmltools"
    _FILE = "model.txt"

    def __init__(self, architecture: str, task: str, hyperparameters: dict[str, Any], **kw: Any):
        super().__init__(architecture, task, hyperparameters, **kw)
        lgb = require("lightgbm", purpose="LightGBM models")
        cls = lgb.LGBMClassifier if task == "classification" else lgb.LGBMRegressor
        allowed = set(cls().get_params()) - {"boosting_type"}
        allowed |= {"min_data_in_leaf", "feature_fraction", "bagging_fraction", "bagging_freq"}
        check_hyperparameters(self.framework, architecture, hyperparameters, allowed)
        self._lgb = lgb
        self._cls = cls
        self.booster: Any = None
        self.model: Any = None

    def fit(self, x, y, x_val, y_val, *, patience):  # noqa: ANN001 - see Adapter.fit
        params: dict[str, Any] = {
            "n_estimators": _DEFAULT_ROUNDS,
            "random_state": self.seed,
            "deterministic": True,
            "verbose": -1,
            "n_jobs": 1 if self.hyperparameters.get("n_jobs") is None else None,
            "boosting_type": "gbdt"
            if self.architecture == "gradient_boosting"
            else self.architecture,
        }
        if self.architecture == "rf":
            params.update(bagging_fraction=0.8, bagging_freq=1)
        params.update(self.hyperparameters)
        params = {k: v for k, v in params.items() if v is not None}
        self.model = self._cls(**params)
        callbacks = [self._lgb.early_stopping(patience, verbose=False)] if patience else []
        xv = x_val.reshape(len(x_val), -1)
        import inspect

        if "eval_X" in inspect.signature(self.model.fit).parameters:  # lightgbm >= 4.7
            evals: dict[str, Any] = {"eval_X": (xv,), "eval_y": (y_val,)}
        else:
            evals = {"eval_set": [(xv, y_val)]}
        self.model.fit(x.reshape(len(x), -1), y, callbacks=callbacks, **evals)
        history = self.model.evals_result_.get("valid_0", {})
        best = self.model.best_iteration_
        # keep only the trees up to the best iteration (see XGBoostAdapter.fit)
        self.booster = self._lgb.Booster(
            model_str=self.model.booster_.model_to_string(num_iteration=best or None)
        )
        return TrainingResult(
            best_iteration=int(best) if best else None,
            history={k: [float(v) for v in vals] for k, vals in history.items()},
        )

    def adopt(self, model: Any) -> LightGBMAdapter:
        """Hold a fitted ``lightgbm.Booster`` (from ``lightgbm.train``; ranking objectives as
        ``regression``), see :meth:`Adapter.adopt`."""
        self.booster = model
        return self

    def predict_raw(self, x: np.ndarray) -> np.ndarray:
        x2 = x.reshape(len(x), -1)
        raw = np.asarray(self.booster.predict(x2), dtype=np.float32)
        if self.task == "classification" and raw.ndim == 1:  # binary: P(class 1)
            # 1 - p in float32, as XGBoost's predict_proba and the ONNX graph compute it
            raw = np.stack([1.0 - raw, raw], axis=1)
        return raw

    def save(self, directory: Path, *, allow_pickle: bool = False) -> None:
        self.booster.save_model(str(directory / self._FILE))

    def load_files(self, directory: Path, *, allow_pickle: bool = False) -> None:
        self.booster = self._lgb.Booster(model_file=str(directory / self._FILE))

    def to_onnx(self, sample: np.ndarray, *, opset: int | None = None) -> OnnxExport:
        onnxmltools = require("onnxmltools", purpose="ONNX export of LightGBM models")
        from onnxmltools.convert.common.data_types import FloatTensorType

        n_features = int(np.prod(sample.shape[1:]))
        onx = onnxmltools.convert_lightgbm(
            self.booster,
            initial_types=[("input", FloatTensorType([None, n_features]))],
            target_opset=opset,
            zipmap=False,
        )
        return self._tabular_export(onx)
