"""Inference on ONNX models with ONNX Runtime (what :meth:`ModelManager.deploy_model` serves)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ArtifactIntegrityError, ParameterError
from .base import Adapter, OnnxExport, require

__all__ = ["OnnxAdapter", "make_session"]

_FILE = "model.onnx"


def make_session(
    model: Any,
    providers: list[Any] | None = None,
    *,
    threads: int | None = None,
    graph_optimization: str = "all",
) -> Any:
    """An ``onnxruntime.InferenceSession`` on a model (path, bytes or ModelProto).

    ``graph_optimization`` is ``"all"`` (ONNX Runtime's default) or ``"extended"``: float16
    graphs on the CPU provider need the latter, ONNX Runtime 1.2x's layout optimiser crashes
    on some of them.
    """
    ort = require("onnxruntime", purpose="ONNX inference")
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    levels = {
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    }
    opts.graph_optimization_level = levels[graph_optimization]
    if threads:
        opts.intra_op_num_threads = threads
    if hasattr(model, "SerializeToString"):
        model = model.SerializeToString()
    elif isinstance(model, Path):
        model = str(model)
    return ort.InferenceSession(
        model, sess_options=opts, providers=providers or ["CPUExecutionProvider"]
    )


def _external_tensors(graph: Any) -> list[str]:
    """Names of the tensors of ``graph`` (and its subgraphs) whose data lies in another file."""
    external = 1  # onnx.TensorProto.EXTERNAL
    found = [t.name for t in graph.initializer if t.data_location == external]
    found += [s.values.name for s in graph.sparse_initializer if s.values.data_location == external]
    for node in graph.node:
        for attr in node.attribute:
            tensors = [attr.t] if attr.HasField("t") else []
            found += [
                t.name or node.name
                for t in (*tensors, *attr.tensors)
                if t.data_location == external
            ]
            subgraphs = [attr.g] if attr.HasField("g") else []
            for sub in (*subgraphs, *attr.graphs):
                found += _external_tensors(sub)
    return found


def check_self_contained(model_bytes: bytes, source: str) -> None:
    """Refuse a model whose tensors point at other files (this library never writes one).

    A model loaded from bytes has no folder of its own: ONNX Runtime checks its external data
    paths against the working directory (1.32 then fails with an internal error), so whether a
    crafted file can read a file there into a weight depends on the runtime's version. This check
    answers the same for every version, with the file's name. Needs ``onnx`` to look; without it,
    ONNX Runtime's own checks remain.
    """
    try:
        import onnx
    except ImportError:
        return
    try:
        model = onnx.load_from_string(model_bytes)
    except Exception as err:  # protobuf's DecodeError and friends
        raise ArtifactIntegrityError(f"{source} is not a readable ONNX model: {err}") from err
    external = _external_tensors(model.graph)
    if external:
        raise ArtifactIntegrityError(
            f"{source} keeps tensors {external[:5]} in other files (external data); models "
            "loaded here must hold all their weights"
        )


class OnnxAdapter(Adapter):
    """Runs an exported model; inference only (train in another framework, then deploy)."""

    framework = "onnx"
    architectures = ("onnx",)

    def __init__(self, architecture: str, task: str, hyperparameters: dict[str, Any], **kw: Any):
        super().__init__(architecture, task, hyperparameters, **kw)
        self.score_output = str(hyperparameters.get("score_output", "scores"))
        self.input_name = str(hyperparameters.get("input_name", "input"))
        self.flatten = bool(hyperparameters.get("flatten", False))
        self.providers: list[Any] = list(hyperparameters.get("providers", ["CPUExecutionProvider"]))
        self.graph_optimization = str(hyperparameters.get("graph_optimization", "all"))
        self.session: Any = None
        self._bytes: bytes | None = None

    @classmethod
    def from_export(
        cls,
        export: OnnxExport,
        model_bytes: bytes,
        *,
        task: str,
        n_classes: int | None,
        input_shape: tuple[int, ...],
        providers: list[Any] | None = None,
        graph_optimization: str = "all",
    ) -> OnnxAdapter:
        self = cls(
            "onnx",
            task,
            {
                "score_output": export.score_output,
                "input_name": export.input_name,
                "flatten": export.flatten,
                "providers": providers or ["CPUExecutionProvider"],
                "graph_optimization": graph_optimization,
            },
            n_classes=n_classes,
            input_shape=input_shape,
        )
        self._bytes = model_bytes
        self.session = make_session(
            model_bytes, self.providers, graph_optimization=graph_optimization
        )
        return self

    def fit(self, x, y, x_val, y_val, *, patience):  # noqa: ANN001 - see Adapter.fit
        raise ParameterError(
            "framework='onnx' is for inference: train with sklearn, xgboost, lightgbm or "
            "pytorch and export with ModelManager.deploy_model"
        )

    def run(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=np.float32)
        if self.flatten:
            x = x.reshape(len(x), -1)
        (out,) = self.session.run([self.score_output], {self.input_name: x})
        return np.asarray(out)

    def predict_raw(self, x: np.ndarray) -> np.ndarray:
        out = self.run(x).astype(np.float32)
        return out if self.task == "classification" else out.reshape(-1)

    def save(self, directory: Path, *, allow_pickle: bool = False) -> None:
        if self._bytes is None:
            raise ParameterError("this ONNX adapter holds no model to save")
        (directory / _FILE).write_bytes(self._bytes)
        (directory / "onnx.json").write_text(json.dumps(self.spec()))

    def load_files(self, directory: Path, *, allow_pickle: bool = False) -> None:
        self._bytes = (directory / _FILE).read_bytes()
        check_self_contained(self._bytes, str(directory / _FILE))
        self.session = make_session(
            self._bytes, self.providers, graph_optimization=self.graph_optimization
        )

    def to_onnx(self, sample: np.ndarray, *, opset: int | None = None) -> OnnxExport:
        onnx = require("onnx", purpose="ONNX export")
        return OnnxExport(
            onnx.load_from_string(self._bytes),
            self.score_output,
            self.input_name,
            flatten=self.flatten,
        )
