"""Inference latency of the model manager's deployments: native vs ONNX fp32 vs ONNX int8.

Three models (a PyTorch MLP, the MusicTransformer, an XGBoost ensemble) at batch 1 and 128.
Each benchmark checks its own output against the native model first (fp32 to 1e-5; int8's
accuracy is measured on held-out rows and printed), so a fast wrong answer cannot score.
fp16 is measured on a CUDA device only (ONNX Runtime's CPU provider runs fp16 through casts).

Run:   python -m pytest benchmarks/models -o addopts="" --benchmark-enable -q
(``-o addopts=""`` clears the project's default ``--benchmark-disable``.) The table of medians
and accuracies is printed at the end, and written to the file ``$MLU_BENCH_MODELS_OUT`` when set.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch", reason="the model benchmarks need torch")
pytest.importorskip("xgboost", reason="the model benchmarks need xgboost")
pytest.importorskip("onnxruntime", reason="the model benchmarks need onnxruntime")

from ml_utilities.models import ModelManager  # noqa: E402
from ml_utilities.models.adapters.onnx import OnnxAdapter  # noqa: E402
from ml_utilities.models.deploy import quantize  # noqa: E402

OUT = os.environ.get("MLU_BENCH_MODELS_OUT")
RESULTS: dict[tuple[str, int, str], dict[str, float]] = {}


def _data(seed: int, shape: tuple[int, ...], n: int = 3000):
    """Rows (or frame sequences) and 4 classes from a noisy linear rule (over the frames' mean
    for sequences), so every model has something to learn."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, *shape)).astype(np.float32)
    summary = x.reshape(n, -1) if len(shape) == 1 else x.mean(axis=1) * np.sqrt(shape[0])
    w = rng.standard_normal((summary.shape[1], 4)).astype(np.float32)
    y = np.argmax(summary @ w + 0.5 * rng.standard_normal((n, 4)), axis=1)
    return x, y


MODELS = {
    "mlp": (
        (64,),
        {
            "framework": "pytorch",
            "architecture": "mlp",
            "hyperparameters": {"hidden_sizes": [512, 256], "epochs": 8},
        },
    ),
    "transformer": (
        (32, 24),
        {
            "framework": "pytorch",
            "architecture": "transformer",
            "hyperparameters": {"hidden_size": 128, "num_layers": 2, "num_heads": 4, "epochs": 6},
        },
    ),
    "xgboost": (
        (64,),
        {
            "framework": "xgboost",
            "hyperparameters": {"n_estimators": 200, "max_depth": 6},
            "early_stopping_patience": 0,
        },
    ),
}


@pytest.fixture(scope="module")
def built():
    """model name -> (handle, {variant: run(x) -> probabilities}, x_test, y_test)."""
    out = {}
    for i, (name, (shape, config)) in enumerate(MODELS.items()):
        x, y = _data(i, shape)
        x_train, y_train, x_test, y_test = x[:2400], y[:2400], x[2400:], y[2400:]
        handle = ModelManager().train_model_sync(x_train, y_train, config, 0.2)
        export = handle.adapter.to_onnx(x_test)
        fp32 = export.model.SerializeToString()
        kw = {"task": "classification", "n_classes": 4, "input_shape": shape}
        variants = {
            "native": handle.adapter.predict_raw,
            "onnx_fp32": OnnxAdapter.from_export(export, fp32, **kw).run,
        }
        if name != "xgboost":  # tree ensembles have no weights to quantise
            variants["onnx_int8"] = OnnxAdapter.from_export(
                export, quantize(fp32, "int8"), **kw
            ).run
        import onnxruntime as ort

        if "CUDAExecutionProvider" in ort.get_available_providers() and name != "xgboost":
            variants["onnx_fp16_cuda"] = OnnxAdapter.from_export(
                export,
                quantize(fp32, "fp16"),
                providers=["CUDAExecutionProvider"],
                graph_optimization="extended",
                **kw,
            ).run
        out[name] = (handle, variants, x_test, y_test)
    return out


@pytest.mark.parametrize("batch", [1, 128])
@pytest.mark.parametrize("variant", ["native", "onnx_fp32", "onnx_int8", "onnx_fp16_cuda"])
@pytest.mark.parametrize("model", list(MODELS))
def test_inference(benchmark, built, model, variant, batch):
    handle, variants, x_test, y_test = built[model]
    if variant not in variants:
        pytest.skip(f"{variant} does not apply to {model} here")
    run = variants[variant]
    reference = handle.adapter.predict_raw(x_test)
    probs = np.asarray(run(x_test)).reshape(reference.shape)
    if variant == "onnx_fp32":
        np.testing.assert_allclose(probs, reference, atol=1e-5)
    accuracy = float(np.mean(probs.argmax(1) == y_test))
    agreement = float(np.mean(probs.argmax(1) == reference.argmax(1)))
    xb = np.ascontiguousarray(x_test[:batch])
    benchmark.group = f"{model}/batch{batch}"
    benchmark.name = variant
    benchmark.pedantic(
        run, args=(xb,), rounds=50 if batch == 1 else 20, iterations=5, warmup_rounds=3
    )
    RESULTS[(model, batch, variant)] = {
        "median_ms": benchmark.stats.stats.median * 1e3,
        "accuracy": accuracy,
        "agreement": agreement,
    }


def teardown_module(module):
    if not RESULTS:
        return
    lines = [
        f"Machine: {platform.machine()}, {os.cpu_count()} CPU threads "
        f"({platform.processor() or 'cpu'}), load average {os.getloadavg()[0]:.1f} at the end; "
        "medians of pytest-benchmark rounds.",
        "",
        "| model | batch | variant | median latency (ms) | accuracy (600 held-out rows) | "
        "agreement with native |",
        "| --- | ---: | --- | ---: | ---: | ---: |",
    ]
    for (model, batch, variant), r in sorted(RESULTS.items()):
        lines.append(
            f"| {model} | {batch} | {variant} | {r['median_ms']:.3f} | "
            f"{r['accuracy']:.3f} | {r['agreement']:.3f} |"
        )
    if OUT:
        Path(OUT).write_text("\n".join(lines) + "\n")
    print("\n" + "\n".join(lines))
