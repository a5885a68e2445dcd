"""Crafted skops files: nothing in them runs on load, whatever the trick.

Each file is a real exploit: the test first proves that skops, told to trust every type the file
names (what a prefix rule such as "anything under builtins." amounts to), runs its payload, and
then that :func:`load_skops` and every loader of the library refuse it with the payload not run.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

sio = pytest.importorskip("skops.io")
pytest.importorskip("sklearn")

from ml_utilities.models.errors import ArtifactIntegrityError  # noqa: E402
from ml_utilities.models.skops_io import (  # noqa: E402
    SKLEARN_TYPES,
    UntrustedArtifactError,
    dump_skops,
    load_skops,
)

_ids = iter(range(1, 1 << 30))


def _node(loader: str, module: str, cls: str, content: Any = None, **extra: Any) -> dict:
    node = {"__class__": cls, "__module__": module, "__loader__": loader, "__id__": next(_ids)}
    if content is not None:
        node["content"] = content
    node.update(extra)
    return node


def _json(value: Any) -> dict:
    return _node("JsonNode", "builtins", type(value).__name__, json.dumps(value), is_json=True)


def _tuple(*items: dict) -> dict:
    return _node("TupleNode", "builtins", "tuple", list(items))


def _dict(**items: dict) -> dict:
    keys = _node("ListNode", "builtins", "list", [_json(k) for k in items])
    return _node("DictNode", "builtins", "dict", dict(items), key_types=keys)


def _call(module: str, name: str, *args: dict) -> dict:
    """A node that skops builds by calling ``module.name(*args)``."""
    return _node("ConstructorFromReduceNode", module, name, _tuple(*args))


def _function(module: str, name: str) -> dict:
    return _node("FunctionNode", module, name)


def _write(path: Path, root: dict) -> Path:
    root = dict(root, protocol=2, _skops_version=importlib.metadata.version("skops"))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("schema.json", json.dumps(root))
    path.write_bytes(buf.getvalue())
    return path


def _payload(marker: Path) -> str:
    return f"__import__('pathlib').Path({str(marker)!r}).write_text('ran')"


def _exec(marker: Path) -> dict:
    return _call("builtins", "exec", _json(_payload(marker)))


def _runstring(marker: Path) -> dict:
    # a NumPy test helper that exec()s a string: a "numpy." prefix rule trusts it
    return _call("numpy.testing._private.utils", "runstring", _json(_payload(marker)), _dict())


def _functools(marker: Path) -> dict:
    # functools.reduce(exec, [code, {}]) calls exec(code, {})
    items = _node("ListNode", "builtins", "list", [_json(_payload(marker)), _dict()])
    return _call("functools", "reduce", _function("builtins", "exec"), items)


def _operator(marker: Path) -> dict:
    # operator.call(exec, code)
    return _call("operator", "call", _function("builtins", "exec"), _json(_payload(marker)))


def _getattr_chain(marker: Path) -> dict:
    # operator.call(getattr(__import__("builtins"), "exec"), code)
    module = _call("builtins", "__import__", _json("builtins"))
    exec_ = _call("builtins", "getattr", module, _json("exec"))
    return _call("operator", "call", exec_, _json(_payload(marker)))


def _inside_model(marker: Path) -> dict:
    # the payload hidden in an estimator's attribute, beside trusted scikit-learn nodes
    from sklearn.linear_model import LogisticRegression

    schema = json.loads(
        zipfile.ZipFile(io.BytesIO(sio.dumps(LogisticRegression()))).read("schema.json")
    )
    schema["content"]["content"]["C"] = _exec(marker)
    schema.pop("protocol"), schema.pop("_skops_version")
    return schema


TRICKS = {
    "exec": _exec,
    "runstring": _runstring,
    "functools": _functools,
    "operator": _operator,
    "getattr_chain": _getattr_chain,
    "inside_model": _inside_model,
}


@pytest.fixture(params=sorted(TRICKS))
def crafted(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, Path]:
    marker = tmp_path / "payload-ran"
    return _write(tmp_path / "model.skops", TRICKS[request.param](marker)), marker


def test_crafted_files_are_real_exploits(crafted: tuple[Path, Path]) -> None:
    path, marker = crafted
    # what a prefix rule amounts to: trust every name the file lists. Some tricks build an odd
    # object after the payload has run, and skops then fails: the payload ran all the same.
    with contextlib.suppress(Exception):
        sio.load(path, trusted=sio.get_untrusted_types(file=path))
    assert marker.read_text() == "ran"


def test_load_skops_refuses_every_trick_and_runs_nothing(crafted: tuple[Path, Path]) -> None:
    path, marker = crafted
    with pytest.raises(UntrustedArtifactError) as info:
        load_skops(path)
    assert info.value.types, "the refusal lists the types"
    assert str(path) in str(info.value)
    assert not marker.exists()
    assert isinstance(info.value, ArtifactIntegrityError)


def test_sklearn_adapter_refuses_a_crafted_model_file(tmp_path: Path) -> None:
    from ml_utilities.models.adapters.sklearn import SklearnAdapter

    marker = tmp_path / "payload-ran"
    _write(tmp_path / "model.skops", _inside_model(marker))
    adapter = SklearnAdapter("linear", "classification", {}, n_classes=2, input_shape=(2,))
    with pytest.raises(UntrustedArtifactError, match="builtins.exec"):
        adapter.load_files(tmp_path)
    assert not marker.exists()


def test_automl_families_refuse_a_crafted_model_file(tmp_path: Path) -> None:
    from ml_utilities.automl.families import FAMILIES, FitContext

    marker = tmp_path / "payload-ran"
    _write(tmp_path / "model.skops", _exec(marker))
    _write(tmp_path / "prep.skops", _runstring(marker))
    (tmp_path / "net.json").write_text("{}")  # a network's fold of a bag of format 1
    ctx = FitContext("classification", 2, [], 0, n_features=2)
    with pytest.raises(UntrustedArtifactError, match="builtins.exec"):
        FAMILIES["linear"].load(tmp_path, ctx)
    with pytest.raises(UntrustedArtifactError, match="runstring"):
        FAMILIES["neural_network"].load(tmp_path, ctx)
    assert not marker.exists()


def test_a_network_refuses_a_crafted_preprocessor(tmp_path: Path) -> None:
    """A network saved with a scikit-learn preprocessor in front (AutoML's MLP folds)."""
    pytest.importorskip("torch")
    from ml_utilities.models.adapters.torch import TorchAdapter

    marker = tmp_path / "payload-ran"
    net = TorchAdapter("mlp", "regression", {"hidden_sizes": [4]}, n_classes=None, input_shape=(3,))
    net.adopt(net.build(), target_scale=(1.0, 2.0)).save(tmp_path)
    _write(tmp_path / "preprocessor.skops", _runstring(marker))
    with pytest.raises(UntrustedArtifactError, match="runstring"):
        TorchAdapter.read(tmp_path)
    assert not marker.exists()


def test_allow_pickle_is_the_only_way_past_the_list(tmp_path: Path) -> None:
    marker = tmp_path / "payload-ran"
    path = _write(tmp_path / "model.skops", _exec(marker))
    assert load_skops(path, allow_pickle=True) is None  # exec returns None: it ran
    assert marker.read_text() == "ran"


def test_trusted_takes_exact_names_only(tmp_path: Path) -> None:
    marker = tmp_path / "payload-ran"
    path = _write(tmp_path / "model.skops", _exec(marker))
    for near in ("builtins", "builtins.", "builtins.ex", "builtins.exec2", "builtins.*"):
        with pytest.raises(UntrustedArtifactError):
            load_skops(path, trusted=[near])
    assert not marker.exists()
    with pytest.raises(ArtifactIntegrityError, match="type names"):
        load_skops(path, trusted=[None])  # type: ignore[list-item]


def test_a_file_that_is_not_skops_is_refused_with_its_name(tmp_path: Path) -> None:
    path = tmp_path / "model.skops"
    path.write_bytes(b"not a zip file")
    with pytest.raises(ArtifactIntegrityError, match="not a readable skops file"):
        load_skops(path)


def test_every_allowed_name_is_a_class() -> None:
    for name in sorted(SKLEARN_TYPES):
        module, _, attr = name.rpartition(".")
        obj = getattr(importlib.import_module(module), attr)
        assert isinstance(obj, type), f"{name} is not a class: {obj!r}"


def _fitted_models() -> list[tuple[Any, Any]]:
    """One of each model the library saves with skops, fitted on a few rows, with those rows."""
    import pandas as pd
    from sklearn import ensemble, neighbors, neural_network, svm
    from sklearn.calibration import CalibratedClassifierCV

    from ml_utilities.pipeline.preprocessing import build_column_transformer

    rng = np.random.default_rng(0)
    x = rng.random((60, 3))
    y = (x[:, 0] > 0.5).astype(int)
    frame = pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "c": rng.choice(["p", "q"], 60)})
    frame.loc[2, "a"] = np.nan
    models: list[Any] = [
        ensemble.RandomForestClassifier(3, random_state=0).fit(x, y),
        ensemble.HistGradientBoostingRegressor(max_iter=3).fit(x, x[:, 1]),
        neural_network.MLPClassifier(max_iter=3, random_state=0).fit(x, y),
        neural_network.MLPRegressor(solver="sgd", max_iter=3, random_state=0).fit(x, x[:, 1]),
        neighbors.KNeighborsClassifier(algorithm="kd_tree").fit(x, y),
        neighbors.KNeighborsRegressor(algorithm="ball_tree", metric="manhattan").fit(x, y),
        CalibratedClassifierCV(svm.SVC(), cv=2).fit(x, y),
        ensemble.IsolationForest(n_estimators=3, random_state=0).fit(x),
    ]
    for options in (
        {
            "missing_values": "iterative_imputation",
            "scaling": "robust_scaler",
            "encoding": "target_encoding",
        },
        {"missing_values": "knn_imputation", "scaling": "quantile_transformer"},
    ):
        models.append(build_column_transformer(options, n_samples=60).fit(frame, y))
    return [(m, frame if hasattr(m, "transformers_") else x) for m in models]


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_what_the_library_saves_loads_without_allow_pickle(tmp_path: Path) -> None:
    outside_defaults = set()
    for i, (model, rows) in enumerate(_fitted_models()):
        path = tmp_path / f"m{i}.skops"
        dump_skops(model, path)
        outside_defaults.update(sio.get_untrusted_types(file=path))
        back = load_skops(path)
        method = "predict" if hasattr(model, "predict") else "transform"
        np.testing.assert_array_equal(getattr(back, method)(rows), getattr(model, method)(rows))
    # the cases reach well into the allow-list (skops' defaults alone would refuse them)
    assert len(outside_defaults & SKLEARN_TYPES) >= 10, sorted(outside_defaults)


def _onnx_with_external_weight(location: str) -> bytes:
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    weight = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[4])
    weight.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", "16")):
        entry = weight.external_data.add()
        entry.key, entry.value = key, value
    graph = helper.make_graph(
        [helper.make_node("Add", ["input", "w"], ["scores"])],
        "g",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [None, 4])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [None, 4])],
        [weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    return onnx.shape_inference.infer_shapes(model).SerializeToString()


def test_onnx_model_reading_another_file_is_refused(tmp_path: Path, monkeypatch) -> None:
    pytest.importorskip("onnxruntime")
    from ml_utilities.models.adapters.onnx import OnnxAdapter

    # a file beside the server's working directory that a crafted weight would read
    (tmp_path / "secret.txt").write_bytes(b"0123456789abcdef")
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "model.onnx").write_bytes(_onnx_with_external_weight("secret.txt"))
    adapter = OnnxAdapter("onnx", "regression", {}, n_classes=None, input_shape=(4,))
    with pytest.raises(ArtifactIntegrityError, match="external data"):
        adapter.load_files(folder)
    assert getattr(adapter, "session", None) is None


def test_transformers_folder_with_a_pickle_is_not_unpickled(tmp_path: Path) -> None:
    pytest.importorskip("transformers", reason="the transformers adapter needs transformers")
    torch = pytest.importorskip("torch")
    import pickle

    from ml_utilities.models.adapters.hf import TransformersAdapter

    adapter = TransformersAdapter(
        "ast",
        "classification",
        {"hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "epochs": 1},
        n_classes=2,
        input_shape=(32, 16),
    )
    x = np.random.default_rng(0).random((8, 32, 16)).astype(np.float32)
    adapter.fit(x, np.arange(8) % 2, x, np.arange(8) % 2, patience=1)
    adapter.save(tmp_path)
    hf = tmp_path / "hf"
    (hf / "model.safetensors").unlink()
    marker = tmp_path / "payload-ran"

    class Payload:
        def __reduce__(self):  # what a crafted pytorch_model.bin holds
            return (exec, (_payload(marker),))

    with open(hf / "pytorch_model.bin", "wb") as fh:
        pickle.dump({"w": Payload()}, fh)
    del torch
    with pytest.raises(OSError):
        adapter.load_files(tmp_path)
    assert not marker.exists()
