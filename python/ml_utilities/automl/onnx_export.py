"""ONNX export of a bag (or a voting ensemble of bags): every fold model in one graph.

Each fold model is converted by its family's converter (onnxmltools for LightGBM and XGBoost,
skl2onnx for scikit-learn pipelines), its names prefixed, its feature engineering written as
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


def _convert(family: str, model: Any, n_features: int, task: str, opset: int | None) -> Any:
    if family == "lightgbm":
        import onnxmltools
        from onnxmltools.convert.common.data_types import FloatTensorType

        return onnxmltools.convert_lightgbm(
            model,
            initial_types=[("x", FloatTensorType([None, n_features]))],
            target_opset=opset,
            zipmap=False,
        )
    if family == "xgboost":
        import onnxmltools
        import xgboost as xgb
        from onnxmltools.convert.common.data_types import FloatTensorType

        cls = xgb.XGBClassifier if task == "classification" else xgb.XGBRegressor
        wrapped = cls()
        wrapped.load_model(bytearray(model.save_raw("ubj")))
        return onnxmltools.convert_xgboost(
            wrapped,
            initial_types=[("x", FloatTensorType([None, n_features]))],
            target_opset=opset,
        )
    import skl2onnx
    from skl2onnx.common.data_types import FloatTensorType

    options = {id(model[-1]): {"zipmap": False}} if task == "classification" else None
    return skl2onnx.convert_sklearn(
        model,
        initial_types=[("x", FloatTensorType([None, n_features]))],
        options=options,
        target_opset=opset,
    )


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
    for m, (spec, folds) in enumerate(
        zip(adapter.hyperparameters["members"], adapter.members, strict=True)
    ):
        fold_outputs = []
        for f, (fe, model) in enumerate(folds):
            pre = f"m{m}f{f}_"
            fe_out = _fe_nodes(fe, "input", pre, nodes, inits)
            n_fe = fe.n_outputs(n_inputs)
            sub = _convert(spec["family"], model, n_fe, task, opset)
            sub = onnx.compose.add_prefix(sub, pre)
            for imp in sub.opset_import:
                opsets[imp.domain] = max(opsets.get(imp.domain, 0), imp.version)
            nodes.append(helper.make_node("Identity", [fe_out], [pre + "x"]))
            nodes.extend(sub.graph.node)
            inits.extend(sub.graph.initializer)
            outs = [o.name for o in sub.graph.output]
            score = outs[1] if task == "classification" else outs[0]
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
