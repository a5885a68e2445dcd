"""A SimilarityModel as a registry model (framework ``"similarity"``).

:class:`SimilarityAdapter` holds a :class:`~.model.SimilarityModel`: the registry stores,
fingerprints and versions it, ``ModelManager``/``ModelRegistry.load`` read it back (safetensors
and JSON, no pickle), ``deploy_model`` exports the encoder to ONNX, and ``PredictionService``
serves it: a request's rows are windows of ``(12 + n_other, frames)`` features (flattened or
not), the answer their unit embeddings. The registry finds the adapter through the entry point
``ml_utilities.adapters``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..exceptions import ParameterError
from ..models.adapters import Adapter, OnnxExport, register_adapter
from .model import SimilarityModel

__all__ = ["SimilarityAdapter", "to_handle"]


class SimilarityAdapter(Adapter):
    """The registry's view of a :class:`SimilarityModel` (``self.model``).

    ``predict_raw(x)`` takes ``(n, channels, frames)`` windows (or ``(n, channels * frames)``
    with ``frames`` the model's segment length) and returns ``(n, dim)`` embeddings.
    """

    framework = "similarity"
    architectures = ("key_invariant_cnn",)

    def __init__(self, architecture: str, task: str, hyperparameters: dict[str, Any], **kw: Any):
        super().__init__(architecture, task, hyperparameters, **kw)
        self.model: SimilarityModel | None = None

    def _held(self) -> SimilarityModel:
        if self.model is None:
            raise ParameterError("this SimilarityAdapter holds no model (load it first)")
        return self.model

    def fit(self, x, y, x_val, y_val, *, patience):  # noqa: ANN001 - see Adapter.fit
        raise ParameterError(
            "a similarity model is trained by ml_utilities.similarity.train_siamese_network, "
            "not by ModelManager.train_model"
        )

    def predict_raw(self, x: np.ndarray) -> np.ndarray:
        model = self._held()
        x = np.asarray(x, dtype=np.float32)
        c, t = self.input_shape
        if x.ndim == 2 and x.shape[1] == c * t:
            x = x.reshape(len(x), c, t)
        return model.embed_array(x)

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.predict_raw(x)

    def save(self, folder: Path, *, allow_pickle: bool = False) -> None:
        self._held().save(Path(folder))

    def load_files(self, folder: Path, *, allow_pickle: bool = False) -> None:
        self.model = SimilarityModel.load(Path(folder))

    def to_onnx(self, sample: np.ndarray | None = None, *, opset: int | None = None) -> OnnxExport:
        return OnnxExport(self._held().to_onnx(opset=opset or 17), "embedding", "input")


register_adapter("similarity", SimilarityAdapter)


def to_handle(model: SimilarityModel, name: str = "similarity") -> Any:
    """A :class:`~ml_utilities.models.ModelHandle` holding ``model``, for
    ``ModelRegistry.register``; its metrics are the training report's recall and calibration."""
    from ..models.handle import ModelHandle

    if not isinstance(model, SimilarityModel):
        raise ParameterError(f"model must be a SimilarityModel, got {type(model).__name__}")
    shape = (model.n_channels, model.segment_frames)
    adapter = SimilarityAdapter(
        "key_invariant_cnn", "regression", dict(model.config), n_classes=None, input_shape=shape
    )
    adapter.model = model
    report = model.report
    metrics: dict[str, float] = {}
    for key in ("augmented_recall_at_1", "final_loss", "n_tracks", "steps"):
        if isinstance(report.get(key), (int, float)):
            metrics[key] = float(report[key])
    if model.threshold is not None:
        metrics["threshold"] = float(model.threshold)
    return ModelHandle(
        adapter,
        name=name,
        task="regression",
        config={"framework": "similarity", "architecture": "key_invariant_cnn"},
        codec=None,
        metrics=metrics,
        training={"report": {k: v for k, v in report.items() if k != "loss"}},
        signature={"inputs": {"dtype": "float32", "shape": [None, *shape]}, "classes": None},
        fingerprint=model.fingerprint(),
    )
