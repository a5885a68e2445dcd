"""TensorFlow/Keras and Hugging Face transformers adapters (skipped where the package is absent)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from model_cases import subprocess_env

from ml_utilities.exceptions import BackendUnavailableError
from ml_utilities.models import ModelManager

ROUND_TRIP = r"""
import sys
import numpy as np
from ml_utilities.models import ModelManager
url, root, name, data, out = sys.argv[1:6]
handle = ModelManager(registry_url=url, artifact_root=root).load_model_sync(name)
np.save(out, handle.predict_proba(np.load(data)))
"""


def _round_trip_in_fresh_process(manager, handle, x, tmp_path, registry_url):
    mv = manager.register_model_sync(handle)
    np.save(tmp_path / "x.npy", x)
    subprocess.run(
        [
            sys.executable,
            "-c",
            ROUND_TRIP,
            registry_url,
            str(tmp_path / "artifacts"),
            mv.name,
            str(tmp_path / "x.npy"),
            str(tmp_path / "out.npy"),
        ],
        check=True,
        env=subprocess_env(),
        timeout=300,
    )
    return np.load(tmp_path / "out.npy")


@pytest.fixture
def sqlite(tmp_path):
    url = f"sqlite:///{tmp_path / 'r.db'}"
    m = ModelManager(registry_url=url, artifact_root=tmp_path / "artifacts")
    yield m, url
    m.registry.dispose()


def test_transformers_audio_spectrogram_transformer(sqlite, sequences, tmp_path):
    pytest.importorskip("transformers", reason="the transformers adapter needs transformers")
    pytest.importorskip("torch", reason="the transformers adapter needs torch")
    manager, url = sqlite
    x, y = sequences
    config = {
        "framework": "transformers",
        "architecture": "audio_spectrogram_transformer",
        "task": "audio_classification",
        # the specification's names, mapped onto ASTConfig's
        "hyperparameters": {
            "hidden_size": 32,
            "num_layers": 2,
            "num_heads": 4,
            "dropout": 0.1,
            "patch_size": 4,
            "frequency_stride": 4,
            "time_stride": 4,
            "epochs": 4,
        },
    }
    handle = manager.train_model_sync(x, y, config, validation_split=0.2)
    cfg = handle.adapter.net.model.config
    assert (cfg.hidden_size, cfg.num_hidden_layers, cfg.num_attention_heads) == (32, 2, 4)
    assert cfg.max_length == 16 and cfg.num_mel_bins == 12
    assert handle.metrics["accuracy"] > 0.55
    got = _round_trip_in_fresh_process(manager, handle, x[:32], tmp_path, url)
    assert np.array_equal(got, handle.predict_proba(x[:32]))
    files = manager.registry.get_version(handle.name).manifest
    assert {"model/hf/config.json", "model/hf/model.safetensors"} <= set(files)
    deployed = manager.deploy_model_sync(
        handle, {"max_latency_ms": 10_000, "latency_runs": 10, "batch_size": 4}
    )
    assert deployed.report["verification"]["max_rel_error"] <= 1e-5


def test_tensorflow_keras_mlp_and_cnn(sqlite, tabular, mels, tmp_path):
    pytest.importorskip("tensorflow", reason="the Keras adapter needs tensorflow (tensorflow-cpu)")
    manager, url = sqlite
    x, y, _ = tabular
    handle = manager.train_model_sync(
        x,
        y,
        {
            "framework": "tensorflow",
            "architecture": "mlp",
            "task": "classification",
            "hyperparameters": {"hidden_sizes": [32], "epochs": 20},
        },
        0.2,
    )
    assert handle.metrics["accuracy"] > 0.6
    assert handle.training["epochs_run"] <= 20
    got = _round_trip_in_fresh_process(manager, handle, x[:32], tmp_path, url)
    np.testing.assert_array_equal(got, handle.predict_proba(x[:32]))
    assert "model/model.keras" in manager.registry.get_version(handle.name).manifest
    xm, ym = mels
    cnn = manager.train_model_sync(
        xm,
        ym,
        {
            "framework": "keras",
            "architecture": "cnn",
            "task": "audio_classification",
            "hyperparameters": {"channels": [8], "epochs": 5},
        },
        0.2,
    )
    assert cnn.predict_proba(xm[:4]).shape == (4, 2)
    try:
        import tf2onnx  # noqa: F401
    except ImportError:
        with pytest.raises(BackendUnavailableError, match="tf2onnx"):
            manager.deploy_model_sync(handle, {"max_latency_ms": 10_000, "latency_runs": 10})
    else:
        deployed = manager.deploy_model_sync(handle, {"max_latency_ms": 10_000, "latency_runs": 10})
        assert deployed.report["verification"]["max_rel_error"] <= 1e-5
