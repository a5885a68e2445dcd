"""The AutoML result as a ModelManager model: a bag of fold models, or an ensemble of bags.

:class:`AutoMLAdapter` is an :class:`~ml_utilities.models.adapters.Adapter` of framework
``automl``: each member is one trial's K fold models (their predictions averaged), and the
architecture says how members combine: ``single`` (one member), ``voting`` (weighted average,
weights from greedy ensemble selection) or ``stacking`` (a logistic or ridge meta-learner on the
members' predictions). Its input is the encoded matrix of :class:`~.data.ColumnEncoder`;
:class:`AutoMLModel` (a :class:`~ml_utilities.models.ModelHandle`) takes DataFrames too.

Every fold model and the meta-learner are held by the adapter of their framework, which writes
and reads their files: ``member{i}/fold{j}/`` and ``meta/``, with ``automl.json`` naming the
layout's :data:`BAG_FORMAT`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..exceptions import ParameterError
from ..models.adapters import register_adapter
from ..models.adapters.base import Adapter, OnnxExport
from ..models.adapters.sklearn import PREFIT, SklearnAdapter
from ..models.handle import ModelHandle
from ..models.skops_io import load_skops
from .data import ColumnEncoder, FeatureEngineering
from .ensemble import stacking_features
from .families import FAMILIES, FitContext, make_adapter

__all__ = ["BAG_FORMAT", "AutoMLAdapter", "AutoMLModel", "register_framework"]

#: layout of a saved bag, in ``automl.json``: 2 since each fold model and the meta-learner are
#: saved by their adapter; 1 (no number) before, when a network's fold held ``prep.skops``,
#: ``net.json`` and ``net.safetensors`` and the meta-learner was ``meta.skops`` (both still load)
BAG_FORMAT = 2


def register_framework() -> None:
    """Make ``framework='automl'`` loadable by the model registry. Importing this module does
    it, and the ``ml_utilities.adapters`` entry point finds this module for a registry load
    before anyone imported it; kept for callers of the earlier API."""
    register_adapter("automl", AutoMLAdapter)


class AutoMLAdapter(Adapter):
    """Members (bags of fold models) combined as ``single``, ``voting`` or ``stacking``.

    ``hyperparameters`` holds the JSON description: ``members`` (family, params, and each
    fold's feature engineering), ``weights``, ``scales`` (ranking), ``inner_task``
    (classification, regression or ranking) and ``encoder`` (the column encoder's spec).
    """

    framework = "automl"
    architectures = ("single", "voting", "stacking")
    onnx_exporter = "onnxmltools/skl2onnx, folds averaged in one graph"

    def __init__(self, architecture: str, task: str, hyperparameters: dict[str, Any], **kw: Any):
        super().__init__(architecture, task, hyperparameters, **kw)
        self.inner_task: str = hyperparameters.get("inner_task", task)
        self.members: list[list[tuple[FeatureEngineering, Adapter]]] = []
        self.meta: Adapter | None = None  # stacking's meta-learner

    # -- construction from a search -----
    @classmethod
    def build(
        cls,
        architecture: str,
        inner_task: str,
        n_classes: int | None,
        n_columns: int,
        encoder: ColumnEncoder,
        members: list[dict[str, Any]],
        fold_models: list[list[tuple[FeatureEngineering, Adapter]]],
        weights: list[float] | None,
        scales: list[tuple[float, float]] | None,
        meta: Adapter | None,
        seed: int,
    ) -> AutoMLAdapter:
        desc = {
            "inner_task": inner_task,
            "encoder": encoder.spec(),
            "members": [
                {
                    "family": m["family"],
                    "params": m["params"],
                    "trial": m["trial"],
                    "folds": [fe.spec() for fe, _ in folds],
                }
                for m, folds in zip(members, fold_models, strict=True)
            ],
            "weights": weights,
            "scales": None if scales is None else [list(s) for s in scales],
        }
        task = "classification" if inner_task == "classification" else "regression"
        adapter = cls(
            architecture, task, desc, n_classes=n_classes, input_shape=(n_columns,), seed=seed
        )
        adapter.members = fold_models
        adapter.meta = meta
        return adapter

    def fit(self, x, y, x_val, y_val, *, patience):  # noqa: ANN001 - see Adapter.fit
        raise ParameterError(
            "an AutoML model is built by AutoMLHelper.train_automl_pipeline, not by "
            "ModelManager.train_model"
        )

    # -- inference -----
    def encode(self, features: Any) -> np.ndarray:
        """``features`` (a DataFrame of the training columns) as the matrix the members take,
        through the column encoder fitted in the search (e.g. a recommender's loaded ranker)."""
        return ColumnEncoder.from_spec(self.hyperparameters["encoder"]).transform(features)

    def _ctx(self, fe: FeatureEngineering) -> FitContext:
        from .search import mapped_categorical

        enc = ColumnEncoder.from_spec(self.hyperparameters["encoder"])
        return FitContext(
            task=self.inner_task,
            n_classes=self.n_classes,
            categorical=mapped_categorical(fe, enc.categorical_indices),
            seed=self.seed,
            n_features=fe.n_outputs(self.input_shape[0]),
        )

    def member_predictions(self, x: np.ndarray) -> list[np.ndarray]:
        out = []
        for folds in self.members:
            preds = [model.predict_raw(fe.transform(x)) for fe, model in folds]
            out.append(np.mean(preds, axis=0).astype(np.float32))
        return out

    def predict_raw(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x.reshape(len(x), -1), dtype=np.float32)
        preds = self.member_predictions(x)
        scales = self.hyperparameters.get("scales")
        if self.architecture == "stacking":
            z = stacking_features(self.inner_task, preds, scales or [(0.0, 1.0)] * len(preds))
            assert self.meta is not None, "a stacking ensemble holds its meta-learner"
            return self.meta.predict_raw(z)
        weights = self.hyperparameters.get("weights") or [1.0]
        if self.inner_task == "ranking" and scales:
            preds = [(p - m) / (s or 1.0) for p, (m, s) in zip(preds, scales, strict=True)]
        total = sum(w * p for w, p in zip(weights, preds, strict=True))
        return np.asarray(total / float(sum(weights)), dtype=np.float32)

    # -- persistence -----
    def save(self, directory: Path, *, allow_pickle: bool = False) -> None:
        for i, folds in enumerate(self.members):
            for j, (_, model) in enumerate(folds):
                folder = directory / f"member{i}" / f"fold{j}"
                folder.mkdir(parents=True)
                model.save(folder, allow_pickle=allow_pickle)
        if self.meta is not None:
            (directory / "meta").mkdir()
            self.meta.save(directory / "meta", allow_pickle=allow_pickle)
        (directory / "automl.json").write_text(
            json.dumps({"members": len(self.members), "format": BAG_FORMAT})
        )

    def load_files(self, directory: Path, *, allow_pickle: bool = False) -> None:
        info = directory / "automl.json"
        layout = json.loads(info.read_text()).get("format", 1) if info.exists() else 1
        if layout not in (1, BAG_FORMAT):
            raise ParameterError(
                f"{directory} holds an AutoML bag of format {layout!r}; this version of "
                f"ml_utilities reads formats 1 to {BAG_FORMAT}"
            )
        self.members = []
        for i, spec in enumerate(self.hyperparameters["members"]):
            fam = FAMILIES[spec["family"]]
            folds = []
            for j, fe_spec in enumerate(spec["folds"]):
                fe = FeatureEngineering.from_spec(fe_spec)
                folder = directory / f"member{i}" / f"fold{j}"
                folds.append((fe, fam.load(folder, self._ctx(fe), allow_pickle=allow_pickle)))
            self.members.append(folds)
        self.meta = None
        if self.architecture != "stacking":
            return
        classify = self.inner_task == "classification"
        n_meta = len(self.members) * (int(self.n_classes or 1) if classify else 1)
        meta = make_adapter(
            SklearnAdapter, PREFIT, self.inner_task, self.n_classes, n_meta, self.seed
        )
        if layout == 1:
            meta.adopt(load_skops(directory / "meta.skops", allow_pickle=allow_pickle))
        else:
            meta.load_files(directory / "meta", allow_pickle=allow_pickle)
        self.meta = meta

    # -- ONNX -----
    def to_onnx(self, sample: np.ndarray, *, opset: int | None = None) -> OnnxExport:
        from .onnx_export import export_bag

        if self.architecture == "stacking":
            raise ParameterError(
                "a stacking ensemble has no ONNX export (its meta-learner reads the members' "
                "log-probabilities); serve it natively, or train with "
                "ensemble_methods=['voting'] for an exportable model"
            )
        for spec in self.hyperparameters["members"]:
            if not FAMILIES[spec["family"]].onnx:
                raise ParameterError(
                    f"family {spec['family']!r} has no ONNX export here; exportable families: "
                    f"{[n for n, f in FAMILIES.items() if f.onnx]}"
                )
        return export_bag(self, int(sample.reshape(len(sample), -1).shape[1]), opset)


class AutoMLModel(ModelHandle):
    """A ModelHandle whose inputs may be DataFrames (encoded as in training) and hold NaN.

    Attributes
    ----------
    report : AutoMLReport
        What the search did (also saved in ``training['automl_report']``).
    """

    report: Any = None

    def _features(self, features: Any) -> np.ndarray:
        enc = ColumnEncoder.from_spec(self.adapter.hyperparameters["encoder"])
        return enc.transform(features)

    @classmethod
    def from_handle(cls, handle: ModelHandle) -> AutoMLModel:
        """Wrap a ModelHandle loaded from the registry (framework ``automl``)."""
        from .report import AutoMLReport

        if handle.framework != "automl":
            raise ParameterError(f"model {handle.name!r} is a {handle.framework} model")
        out = cls(**handle.init_kwargs())
        out.version = handle.version
        out.report = AutoMLReport(handle.training.get("automl_report", {}))
        return out


register_framework()
