"""PyTorch models trained and served on CUDA: ModelManager's CUDA training with mixed precision,
and the PredictionService on CUDA in float32, half precision and CUDA graphs.

These need torch with a CUDA device (not the ``_cuda`` extension); they are skipped, with the
reason, elsewhere. The CPU side of the same options (fallbacks said in ``metadata``) is tested in
tests/serving."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from serving_support import N_FEATURES, make_data

torch = pytest.importorskip("torch")
pytest.importorskip("sqlalchemy")
pytest.importorskip("safetensors")

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="torch sees no CUDA device")


@pytest.fixture(scope="module")
def cuda_registry(tmp_path_factory):
    """An MLP classifier and regressor, trained on CUDA with mixed precision, registered."""
    from ml_utilities.models import ModelManager, ModelRegistry

    root = tmp_path_factory.mktemp("gpu-registry")
    registry = ModelRegistry(f"sqlite:///{root / 'registry.db'}", root / "artifacts")
    manager = ModelManager(registry)
    handles = {}
    for name, task in (("mlp-clf", "classification"), ("mlp-reg", "regression")):
        x, y = make_data(1200, seed=len(name), task=task)
        config = {
            "framework": "pytorch",
            "architecture": "mlp",
            "task": task,
            "name": name,
            "seed": 0,
            "device": "cuda",
            "mixed_precision": True,
            "hyperparameters": {"hidden_sizes": [64, 32], "epochs": 10, "batch_size": 64},
        }
        handle = manager.train_model_sync(x, y, config)
        registry.register(handle)
        handles[name] = handle
    yield registry, handles
    registry.dispose()


def test_training_ran_on_cuda_with_mixed_precision(cuda_registry) -> None:
    registry, handles = cuda_registry
    for name, handle in handles.items():
        assert handle.training["device"] == "cuda", name
        assert handle.training["mixed_precision"] is True, name
        assert next(handle.adapter.net.parameters()).is_cuda
        x, y = make_data(400, seed=5, task=handle.task)
        # the network learned the signal (mixed precision did not break training)
        if handle.task == "classification":
            assert np.mean(handle.predict(x) == y) > 0.7
        else:
            assert np.corrcoef(handle.predict(x), y)[0, 1] > 0.8
        # the registered weights reload on the CPU and give the same numbers
        cpu = registry.load(name, device="cpu")
        gpu = registry.load(name, device="cuda")
        ref = cpu.predict_proba(x) if handle.task == "classification" else cpu.predict(x)
        got = gpu.predict_proba(x) if handle.task == "classification" else gpu.predict(x)
        np.testing.assert_allclose(got, ref, rtol=1e-3, atol=1e-3)


@pytest.fixture()
def service(cuda_registry):
    from ml_utilities.serving import PredictionService

    registry, _ = cuda_registry
    svc = PredictionService(registry=registry, config={"gpu_enabled": True})
    yield svc
    svc.close_sync()


def _expected(handle, x: np.ndarray) -> np.ndarray:
    return handle.predict_proba(x) if handle.task == "classification" else handle.predict(x)


def _values(handle, out: dict) -> np.ndarray:
    key = "probabilities" if handle.task == "classification" else "predictions"
    return np.asarray(out[key], dtype=np.float64)


@pytest.mark.parametrize("name", ["mlp-clf", "mlp-reg"])
@pytest.mark.parametrize(
    ("optimization", "backend", "tol"),
    [
        (None, "torch", 1e-4),
        ("cuda_graphs", "torch-cuda-graphs", 1e-4),
        ("fp16", "torch-fp16", 2e-2),
    ],
)
def test_served_on_cuda(service, cuda_registry, name, optimization, backend, tol) -> None:
    _, handles = cuda_registry
    handle = handles[name]
    service.configure_sync({"gpu_enabled": True, "model_optimization": optimization})
    # sizes around the graphs' power-of-two buckets and past one graph's largest batch
    for rows in (1, 3, 64, 127, 128, 300, 1500):
        x, _ = make_data(rows, seed=rows, task="regression")
        out = service.predict_batch_sync(name, x)
        meta = out["metadata"]
        assert meta["device"] == "cuda" and meta["backend"] == backend, meta
        assert "fallback" not in meta, meta
        got = _values(handle, out)
        assert np.isfinite(got).all()
        np.testing.assert_allclose(got, _expected(handle, x), atol=tol, rtol=tol)


def test_cuda_graphs_under_concurrent_requests(service, cuda_registry) -> None:
    """Rows from many threads and coroutines are batched to assorted sizes; every answer is its
    own row's, whichever captured graph served it."""
    _, handles = cuda_registry
    handle = handles["mlp-clf"]
    service.configure_sync({"gpu_enabled": True, "model_optimization": "cuda_graphs"})
    x, _ = make_data(512, seed=77, task="regression")
    expected = handle.predict_proba(x)

    def one(i: int) -> tuple[int, dict]:
        return i, service.predict_sync("mlp-clf", x[i])

    with ThreadPoolExecutor(64) as pool:
        answers = list(pool.map(one, range(len(x))))

    async def coro() -> list[dict]:
        return await asyncio.gather(*(service.predict("mlp-clf", row) for row in x))

    answers += list(enumerate(asyncio.run(coro())))
    for i, out in answers:
        assert out["metadata"]["backend"] == "torch-cuda-graphs"
        np.testing.assert_allclose(out["probabilities"], expected[i], atol=1e-4)
    assert len(answers) == 1024


def test_graphed_predictor_directly() -> None:
    """The graph replay helper against eager execution, on a network with a nonlinearity and a
    batch-size-dependent pitfall (padding rows must not leak into real rows)."""
    from ml_utilities.serving.backends import GRAPH_MAX_ROWS, _graphed

    torch.manual_seed(0)
    net = (
        torch.nn.Sequential(
            torch.nn.Linear(N_FEATURES, 48), torch.nn.GELU(), torch.nn.Linear(48, 4)
        )
        .cuda()
        .eval()
    )

    def run(xb):
        return torch.softmax(net(xb), dim=1)

    predict = _graphed(run, (N_FEATURES,), "cuda")
    rng = np.random.default_rng(3)
    for rows in (1, 2, 5, 64, 65, GRAPH_MAX_ROWS, GRAPH_MAX_ROWS + 7, 3):
        x = rng.standard_normal((rows, N_FEATURES)).astype(np.float32)
        with torch.no_grad():
            ref = run(torch.from_numpy(x).cuda()).cpu().numpy()
        got = predict(x)
        assert got.shape == ref.shape
        np.testing.assert_allclose(got, ref, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="empty batch"):
        predict(np.zeros((0, N_FEATURES), np.float32))


def test_onnx_runtime_cuda_provider(service, cuda_registry) -> None:
    """ONNX models on ONNX Runtime's CUDA provider, where the installed ONNX Runtime has it."""
    ort = pytest.importorskip("onnxruntime")
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip(f"this ONNX Runtime has no CUDA provider ({ort.get_available_providers()})")
    _, handles = cuda_registry
    service.configure_sync({"gpu_enabled": True, "model_optimization": "onnxruntime"})
    x, _ = make_data(200, seed=8, task="regression")
    out = service.predict_batch_sync("mlp-clf", x)
    meta = out["metadata"]
    assert meta["backend"] == "onnxruntime-cuda" and meta["device"] == "cuda", meta
    np.testing.assert_allclose(out["probabilities"], _expected(handles["mlp-clf"], x), atol=1e-4)
