"""Every adapter round-trips through the registry into a fresh process with identical output."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
from model_cases import ADAPTER_CASES, subprocess_env

from ml_utilities.models import ModelHandle

CHILD = r"""
import json, sys
import numpy as np
from ml_utilities.models import ModelManager
url, root, out, names = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
manager = ModelManager(registry_url=url, artifact_root=root)
data = dict(np.load(sys.argv[5]))
result = {}
for case, name in names.items():
    handle = manager.load_model_sync(name, "champion")
    x = data[case]
    result[case + ".predict"] = np.asarray(handle.predict(x))
    if handle.classes is not None:
        result[case + ".proba"] = handle.predict_proba(x)
    result[case + ".fingerprint"] = np.asarray(handle.fingerprint)
np.savez(out, **result)
"""


def test_every_adapter_round_trips_in_a_fresh_process(trained_models, tmp_path, request):
    """Through a SQLite registry (the registry's own tests cover PostgreSQL)."""
    from ml_utilities.models import ModelManager

    registry_url = f"sqlite:///{tmp_path / 'registry.db'}"
    manager = ModelManager(registry_url=registry_url, artifact_root=tmp_path / "artifacts")
    names, inputs, expected = {}, {}, {}
    for case in ADAPTER_CASES:
        handle = trained_models(case)
        mv = manager.register_model_sync(handle, aliases=["champion"], metadata={"case": case})
        names[case] = mv.name
        x = request.getfixturevalue(ADAPTER_CASES[case][3])[0][:64]
        inputs[case] = x
        expected[case] = (
            handle.predict(x),
            handle.predict_proba(x) if handle.classes is not None else None,
        )
    np.savez(tmp_path / "inputs.npz", **inputs)
    subprocess.run(
        [
            sys.executable,
            "-c",
            CHILD,
            registry_url,
            str(tmp_path / "artifacts"),
            str(tmp_path / "out.npz"),
            json.dumps(names),
            str(tmp_path / "inputs.npz"),
        ],
        check=True,
        env=subprocess_env(),
        timeout=300,
    )
    got = np.load(tmp_path / "out.npz")
    for case, (pred, proba) in expected.items():
        assert np.array_equal(got[case + ".predict"], pred), case
        if proba is not None:
            # bit-identical: same weights, same kernels, same inputs
            assert np.array_equal(got[case + ".proba"], proba), case
        assert str(got[case + ".fingerprint"]) == trained_models(case).fingerprint


def test_save_and_load_a_folder(trained_models, tmp_path, tabular):
    x = tabular[0][:32]
    handle = trained_models("lightgbm")
    path = handle.save(tmp_path / "model")
    files = sorted(p.name for p in path.rglob("*") if p.is_file())
    assert "model.txt" in files and "MANIFEST.sha256.json" in files
    assert not any(name.endswith((".pkl", ".pickle")) for name in files)
    again = ModelHandle.load(path)
    assert np.array_equal(again.predict(x), handle.predict(x))
    assert again.metrics == handle.metrics and again.fingerprint == handle.fingerprint
    assert not list(tmp_path.glob(".tmp-*"))  # the temporary folder was renamed into place


def test_safe_formats_per_framework(trained_models, tmp_path):
    expected = {
        "sklearn": "model.skops",
        "xgboost": "model.ubj",
        "lightgbm": "model.txt",
        "pytorch_mlp": "model.safetensors",
    }
    for case, filename in expected.items():
        path = trained_models(case).save(tmp_path / case)
        assert (path / "model" / filename).is_file(), case
