"""ONNX export of a bag (or a voting ensemble of bags): every fold model in one graph.

Each fold model is exported by its adapter (onnxmltools for LightGBM and XGBoost, skl2onnx for
scikit-learn pipelines), its names prefixed, its feature engineering written as
``Gather``/``Mul``/``Concat`` nodes in front, and the fold outputs averaged (weighted across
members) into one ``scores`` output that gives what :meth:`AutoMLAdapter.predict_raw` gives.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..exceptions import ParameterError
from ..models.adapters.base import OnnxExport
from .data import FeatureEngineering

__all__ = ["export_bag"]


def export_bag(adapter: Any, n_inputs: int, opset: int | None) -> OnnxExport:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    task = adapter.inner_task
    if task == "ranking":
        raise ParameterError("ranking models are served natively (recommend()); no ONNX export")
    nodes: list[Any] = []
    inits: list[Any] = []
    opsets: dict[str, int] = {}
    member_outputs: list[str] = []
    weights = adapter.hyperparameters.get("weights") or [1.0]
    for m, folds in enumerate(adapter.members):
        fold_outputs = []
        for f, (fe, model) in enumerate(folds):
            pre = f"m{m}f{f}_"
            fe_out = _fe_nodes(fe, "input", pre, nodes, inits)
            sample = np.zeros((1, fe.n_outputs(n_inputs)), dtype=np.float32)
            export = model.to_onnx(sample, opset=opset)
            sub = onnx.compose.add_prefix(export.model, pre)
            for imp in sub.opset_import:
                opsets[imp.domain] = max(opsets.get(imp.domain, 0), imp.version)
            nodes.append(helper.make_node("Identity", [fe_out], [pre + export.input_name]))
            nodes.extend(sub.graph.node)
            inits.extend(sub.graph.initializer)
            score = pre + export.score_output
            flat = pre + "score2d"
            if task == "classification":
                nodes.append(helper.make_node("Identity", [score], [flat]))
            else:
                shape = pre + "shape"
                inits.append(numpy_helper.from_array(np.array([-1], dtype=np.int64), shape))
                nodes.append(helper.make_node("Reshape", [score, shape], [flat]))
            fold_outputs.append(flat)
        mean = f"m{m}_mean"
        nodes.append(helper.make_node("Mean", fold_outputs, [mean]))
        w = f"m{m}_w"
        inits.append(
            numpy_helper.from_array(np.array(weights[m] / float(sum(weights)), dtype=np.float32), w)
        )
        nodes.append(helper.make_node("Mul", [mean, w], [f"m{m}_weighted"]))
        member_outputs.append(f"m{m}_weighted")
    nodes.append(helper.make_node("Sum", member_outputs, ["scores"]))
    n_out = adapter.n_classes if task == "classification" else None
    out_shape = [None, n_out] if task == "classification" else [None]
    graph = helper.make_graph(
        nodes,
        "automl_bag",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [None, n_inputs])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, out_shape)],
        initializer=inits,
    )
    opsets.setdefault("", 17)
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets.items()]
    )
    model.ir_version = min(model.ir_version, 10)
    onnx.checker.check_model(model)
    return OnnxExport(model, "scores", "input", flatten=True)


def _fe_nodes(
    fe: FeatureEngineering, source: str, pre: str, nodes: list[Any], inits: list[Any]
) -> str:
    from onnx import helper, numpy_helper

    current = source
    if fe.pairs:
        a = np.array([p[0] for p in fe.pairs], dtype=np.int64)
        b = np.array([p[1] for p in fe.pairs], dtype=np.int64)
        inits += [numpy_helper.from_array(a, pre + "pa"), numpy_helper.from_array(b, pre + "pb")]
        nodes += [
            helper.make_node("Gather", [current, pre + "pa"], [pre + "ga"], axis=1),
            helper.make_node("Gather", [current, pre + "pb"], [pre + "gb"], axis=1),
            helper.make_node("Mul", [pre + "ga", pre + "gb"], [pre + "prod"]),
            helper.make_node("Concat", [current, pre + "prod"], [pre + "full"], axis=1),
        ]
        current = pre + "full"
    if fe.keep is not None:
        inits.append(numpy_helper.from_array(np.array(fe.keep, dtype=np.int64), pre + "keep"))
        nodes.append(helper.make_node("Gather", [current, pre + "keep"], [pre + "kept"], axis=1))
        current = pre + "kept"
    return current
