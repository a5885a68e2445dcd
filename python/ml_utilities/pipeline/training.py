"""Fitting the preprocessing and the model on one training split, evaluating on another, and the
fitted pipeline that the registry stores.

Every fit here sees training rows only: the :class:`FeatureBuilder`, the ColumnTransformer
(imputer, scaler, target encoder), the polynomial expansion, the outlier detector and the model
are all fitted on the split's training rows, then applied unchanged to its validation rows.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..models.handle import ModelHandle
from ..models.skops_io import dump_skops, load_skops
from .errors import ParameterError

__all__ = ["FoldResult", "PipelineModel", "evaluate", "fit_split"]

logger = logging.getLogger(__name__)

_PIPE_DIR = "pipeline"
_PRE_FILE = "preprocessor.skops"
_PIPE_META = "pipeline.json"
# the pipeline's own transformers, which its preprocessor's skops file may rebuild
_TRUSTED_TYPES = (
    "ml_utilities.pipeline.features.FeatureBuilder",
    "ml_utilities.pipeline.features.PolynomialExpansion",
)


class FoldResult:
    """What :func:`fit_split` returns: the fitted preprocessor and model, and timings."""

    def __init__(
        self, preprocessor: Any, handle: ModelHandle, n_outliers: int, times: dict[str, float]
    ) -> None:
        self.preprocessor = preprocessor
        self.handle = handle
        self.n_outliers = n_outliers
        self.times = times


def fit_split(
    x: pd.DataFrame,
    y: np.ndarray,
    *,
    feature_builder: Any,
    column_transformer: Any,
    expansion: Any,
    detector: Any,
    manager: Any,
    model_config: dict[str, Any],
    validation_split: float,
) -> FoldResult:
    """Fit every step on ``(x, y)`` (training rows only) and return the fitted pieces.

    The steps are fitted one by one so each can be timed; they are then assembled into one
    fitted :class:`sklearn.pipeline.Pipeline` (``features`` -> ``columns`` -> ``expand`` ->
    ``rescale``, the last two only with polynomial or interaction terms).
    """
    from sklearn.pipeline import Pipeline

    times = {"feature_engineering": 0.0, "preprocessing": 0.0, "training": 0.0}
    t = time.perf_counter()
    a = feature_builder.fit_transform(x)
    times["feature_engineering"] += time.perf_counter() - t
    t = time.perf_counter()
    # fit_transform: a TargetEncoder cross-fits the training rows' own encodings
    b = column_transformer.fit_transform(a, y)
    times["preprocessing"] += time.perf_counter() - t
    steps = [("features", feature_builder), ("columns", column_transformer)]
    if expansion is not None:
        from sklearn.preprocessing import StandardScaler

        t = time.perf_counter()
        b = expansion.fit_transform(b)
        # products of scaled features span many orders of magnitude: put them back on one
        # scale (the usual PolynomialFeatures -> StandardScaler), for linear models above all
        rescale = StandardScaler()
        b = rescale.fit_transform(b)
        times["feature_engineering"] += time.perf_counter() - t
        steps += [("expand", expansion), ("rescale", rescale)]
    b = np.asarray(b, dtype=np.float64)
    n_outliers = 0
    if detector is not None:
        t = time.perf_counter()
        keep = detector.fit_predict(b) == 1
        n_outliers = int((~keep).sum())
        times["preprocessing"] += time.perf_counter() - t
        if keep.sum() >= 2:
            b, y = b[keep], y[keep]
    pipe = Pipeline(steps)
    t = time.perf_counter()
    if model_config.get("framework") == "automl":
        handle = _train_automl(manager, pipe, b, y, model_config)
    else:
        handle = manager.train_model_sync(b, y, model_config, validation_split)
    times["training"] += time.perf_counter() - t
    return FoldResult(pipe, handle, n_outliers, times)


def feature_names(pre: Any) -> list[str]:
    """The output names of a fitted preprocessing step, or [] where a step cannot name them."""
    try:
        return [str(n) for n in pre.get_feature_names_out()]
    except (AttributeError, ValueError):
        return []


def _train_automl(
    manager: Any, pipe: Any, b: np.ndarray, y: np.ndarray, model_config: dict[str, Any]
) -> ModelHandle:
    """One AutoMLHelper search (its own inner CV, ensembles, refit) on the preprocessed rows.

    The rows go in as a DataFrame named by the preprocessing's output names where it has them,
    so the search's report lists importances by feature; the model itself is not registered
    (the pipeline registers the fitted pipeline around it).
    """
    from ..automl import AutoMLHelper

    names = feature_names(pipe)
    features: Any = b
    if len(names) == b.shape[1] and len(set(names)) == len(names):
        features = pd.DataFrame(b, columns=names)
    config = {k: v for k, v in model_config.items() if k != "framework"}
    return AutoMLHelper(manager).train_automl_pipeline_sync(
        features, y, {**config, "register": False}
    )


def evaluate(handle: ModelHandle, z: np.ndarray, y: np.ndarray, task: str) -> dict[str, float]:
    """Metrics of ``handle`` on preprocessed rows ``z`` with true labels/values ``y``.

    Classification: ``accuracy``, ``f1_weighted``, ``log_loss`` and ``roc_auc`` (two classes;
    one-vs-rest weighted with more). Regression: ``rmse``, ``mae``, ``r2``.
    """
    from sklearn import metrics as skm

    from ..models.training import validation_metrics

    if task == "regression":
        raw = handle.predict(z)
        return validation_metrics("regression", np.asarray(y, dtype=np.float64), raw)
    proba = handle.predict_proba(z)
    classes = handle.classes or []
    index = {c: i for i, c in enumerate(classes)}
    y_plain = [v.item() if isinstance(v, np.generic) else v for v in np.asarray(y).tolist()]
    known = np.array([v in index for v in y_plain])
    if not known.all():
        unseen = sorted({str(v) for v, k in zip(y_plain, known, strict=True) if not k})
        raise ParameterError(f"validation rows hold classes the model never saw: {unseen}")
    codes = np.array([index[v] for v in y_plain])
    out = validation_metrics("classification", codes, proba)
    try:
        if len(classes) == 2:
            out["roc_auc"] = float(skm.roc_auc_score(codes, proba[:, 1]))
        elif len(np.unique(codes)) == len(classes):
            out["roc_auc"] = float(
                skm.roc_auc_score(codes, proba, multi_class="ovr", average="weighted")
            )
    except ValueError:  # a single class in y
        pass
    return out


class PipelineModel(ModelHandle):
    """A fitted pipeline: preprocessing (a scikit-learn Pipeline over DataFrames) plus the
    ModelManager model trained on its output.

    It is a :class:`~ml_utilities.models.ModelHandle` (registered, versioned and checked like
    any model) whose ``predict``/``predict_proba`` also take raw DataFrames with the training
    columns; arrays are taken as already preprocessed. Its folder holds the model's files plus
    ``pipeline/preprocessor.skops`` (skops, no pickle) and ``pipeline/pipeline.json``.
    """

    def __init__(
        self,
        *args: Any,
        preprocessor: Any = None,
        pipeline_info: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.preprocessor = preprocessor
        self.pipeline_info = dict(pipeline_info or {})

    @classmethod
    def wrap(cls, handle: ModelHandle, preprocessor: Any, info: dict[str, Any]) -> PipelineModel:
        return cls(**handle.init_kwargs(), preprocessor=preprocessor, pipeline_info=info)

    @property
    def input_columns(self) -> list[str]:
        return list(self.pipeline_info.get("input_columns", []))

    def transform(self, data: Any) -> np.ndarray:
        """Raw rows (DataFrame, list of dicts, dict of columns) -> the model's input matrix."""
        if isinstance(data, (list, dict)):
            data = pd.DataFrame(data)
        if not isinstance(data, pd.DataFrame):
            raise ParameterError(
                f"data must be a DataFrame (or records) with columns {self.input_columns}, got "
                f"{type(data).__name__}"
            )
        missing = [c for c in self.input_columns if c not in data.columns]
        if missing:
            raise ParameterError(f"data lacks column(s) {missing} the pipeline was fitted on")
        return np.asarray(self.preprocessor.transform(data[self.input_columns]), dtype=np.float32)

    def _matrix(self, data: Any) -> Any:
        if isinstance(data, (pd.DataFrame, list, dict)):
            return self.transform(data)
        return data

    def predict(self, features: Any) -> np.ndarray:
        """Labels or values for raw rows (DataFrame) or preprocessed arrays."""
        return super().predict(self._matrix(features))

    def predict_proba(self, features: Any) -> np.ndarray:
        """Class probabilities for raw rows (DataFrame) or preprocessed arrays."""
        return super().predict_proba(self._matrix(features))

    def describe(self) -> dict[str, Any]:
        out = super().describe()
        out["pipeline"] = self.pipeline_info
        return out

    def write_folder(self, folder: Path, *, allow_pickle: bool = False) -> dict[str, str]:
        pdir = folder / _PIPE_DIR
        pdir.mkdir()
        dump_skops(self.preprocessor, pdir / _PRE_FILE)
        (pdir / _PIPE_META).write_text(
            json.dumps(self.pipeline_info, indent=1, sort_keys=True, default=str)
        )
        # the base class writes the model and then the manifest of the whole folder
        return super().write_folder(folder, allow_pickle=allow_pickle)

    @classmethod
    def load(
        cls,
        path: str | Path,
        *,
        allow_pickle: bool = False,
        manifest: dict[str, str] | None = None,
        device: str | None = None,
    ) -> PipelineModel:
        """Load a folder written by :meth:`write_folder` (every file's sha256 checked first)."""
        handle = super().load(path, allow_pickle=allow_pickle, manifest=manifest, device=device)
        assert isinstance(handle, PipelineModel)
        pdir = Path(path) / _PIPE_DIR
        if not (pdir / _PRE_FILE).is_file():
            raise ParameterError(f"{path} is a model folder without a pipeline (no {_PIPE_DIR}/)")
        handle.preprocessor = load_skops(
            pdir / _PRE_FILE, trusted=_TRUSTED_TYPES, allow_pickle=allow_pickle
        )
        handle.pipeline_info = json.loads((pdir / _PIPE_META).read_text())
        return handle
