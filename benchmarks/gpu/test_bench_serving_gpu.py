"""PredictionService on CUDA: a PyTorch MLP served with CUDA graphs or in half precision
("ours") against the same model run eagerly in float32 on the same GPU ("peer"), through the
service's batch call with dynamic batching and the result cache off, so each timing is one
request of that many rows through the model.
Answers are checked against the eager ones inside the benchmark.

Run on a GPU machine: python -m pytest benchmarks/gpu --benchmark-enable -q
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

N_FEATURES = 64


@pytest.fixture(scope="module")
def gpu_services(tmp_path_factory: Any) -> Any:
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch sees no CUDA device")
    pytest.importorskip("sqlalchemy")
    from ml_utilities.models import ModelManager, ModelRegistry
    from ml_utilities.serving import PredictionService

    root = tmp_path_factory.mktemp("gpu-serving-bench")
    registry = ModelRegistry(f"sqlite:///{root / 'registry.db'}", root / "artifacts")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4000, N_FEATURES)).astype(np.float32)
    y = np.array(["a", "b", "c", "d"])[np.digitize(x[:, 0] + x[:, 1] * x[:, 2], [-1, 0, 1])]
    config = {
        "framework": "pytorch",
        "architecture": "mlp",
        "task": "classification",
        "name": "mlp",
        "seed": 0,
        "device": "cuda",
        "hyperparameters": {"hidden_sizes": [512, 512, 256], "epochs": 3, "batch_size": 256},
    }
    registry.register(ModelManager(registry).train_model_sync(x, y, config))
    services = {}
    for optimization in (None, "cuda_graphs", "fp16"):
        svc = PredictionService(
            registry=registry,
            config={
                "gpu_enabled": True,
                "dynamic_batching": False,
                "prediction_cache_ttl": 0,  # every call runs the model, none is a cache hit
                "model_optimization": optimization,
            },
        )
        services[optimization] = svc
    yield services
    for svc in services.values():
        svc.close_sync()
    registry.dispose()


@pytest.fixture(scope="module", params=[1, 32, 256], ids=["rows1", "rows32", "rows256"])
def rows(request: Any) -> np.ndarray:
    rng = np.random.default_rng(request.param)
    return rng.standard_normal((request.param, N_FEATURES)).astype(np.float32)


def _run(benchmark: Any, services: dict, optimization: str | None, x: np.ndarray) -> None:
    svc = services[optimization]
    want = np.asarray(services[None].predict_batch_sync("mlp", x)["probabilities"])
    out = benchmark(svc.predict_batch_sync, "mlp", x)
    meta = out["metadata"]
    assert meta["device"] == "cuda" and "fallback" not in meta, meta
    assert meta["cache_hit"] is False, meta
    got = np.asarray(out["probabilities"])
    np.testing.assert_allclose(got, want, atol=2e-2 if optimization == "fp16" else 1e-4)


def test_serving_peer_eager_float32(benchmark: Any, gpu_services: dict, rows: np.ndarray) -> None:
    benchmark.group = f"gpu/serving-mlp-cuda-graphs/{len(rows)}rows"
    _run(benchmark, gpu_services, None, rows)


def test_serving_ours_cuda_graphs(benchmark: Any, gpu_services: dict, rows: np.ndarray) -> None:
    benchmark.group = f"gpu/serving-mlp-cuda-graphs/{len(rows)}rows"
    _run(benchmark, gpu_services, "cuda_graphs", rows)


def test_serving_peer_eager_float32_again(
    benchmark: Any, gpu_services: dict, rows: np.ndarray
) -> None:
    benchmark.group = f"gpu/serving-mlp-fp16/{len(rows)}rows"
    _run(benchmark, gpu_services, None, rows)


def test_serving_ours_fp16(benchmark: Any, gpu_services: dict, rows: np.ndarray) -> None:
    benchmark.group = f"gpu/serving-mlp-fp16/{len(rows)}rows"
    _run(benchmark, gpu_services, "fp16", rows)
