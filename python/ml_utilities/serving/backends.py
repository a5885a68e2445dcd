"""Where a served model runs: its framework on CPU or CUDA, or ONNX Runtime (CPU, CUDA, TensorRT).

:func:`select_backend` returns the function the service calls with ``(rows, n_features)``
float32 batches, and says honestly where it runs. Nothing is silent: whenever the configuration
asked for something this machine cannot do (``gpu_enabled`` without a CUDA device, TensorRT
without its provider), the model runs on what is there, the reason is logged once at load time
and every response's ``metadata["fallback"]`` carries it.

========================== ============================== =========================================
``model_optimization``      GPU present and enabled        otherwise
========================== ============================== =========================================
None / ``"none"``           PyTorch on CUDA; XGBoost with   the framework's own predict on the CPU
                            ``device="cuda"``; others CPU
``"fp16"``                  PyTorch in float16 on CUDA      as None (float32)
``"cuda_graphs"``           PyTorch on CUDA, one captured   as None (eager)
                            CUDA graph per batch size
                            (rounded up to a power of two)
``"onnxruntime"``           ONNX Runtime, CUDA provider     ONNX Runtime, CPU provider
``"tensorrt"``              ONNX Runtime, TensorRT provider ONNX Runtime on CUDA, else CPU
                            (when TensorRT is installed)
========================== ============================== =========================================

An ONNX export is checked against the framework's own predictions on the model's held-out rows
(max absolute difference 1e-4); an export that fails or disagrees is not served: the model
runs natively, with the reason in ``fallback``.
"""

from __future__ import annotations

import ctypes
import json
import logging
import math
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from ..exceptions import ParameterError

__all__ = ["select_backend"]

logger = logging.getLogger(__name__)

Backend = tuple[Callable[[np.ndarray], np.ndarray], str, str, "str | None"]

#: the ``model_optimization`` values that only PyTorch models on a CUDA device can use
TORCH_CUDA_OPTIMIZATIONS = ("fp16", "cuda_graphs")


def _gpu() -> tuple[bool, str]:
    try:
        import torch
    except ImportError:
        return False, "torch is not installed, so CUDA cannot be probed"
    if torch.cuda.is_available():
        return True, ""
    return False, "no CUDA device is visible to torch"


def select_backend(handle: Any, optimization: str | None, gpu_enabled: bool) -> Backend:
    """``(predict_raw, backend, device, fallback)`` for a loaded :class:`ModelHandle`.

    ``predict_raw(x)`` takes ``(rows, n_features)`` float32 and returns ``(rows, n_classes)``
    probabilities or ``(rows,)`` values.
    """
    notes: list[str] = []
    has_gpu, why = _gpu() if gpu_enabled else (False, "")
    if gpu_enabled and not has_gpu:
        notes.append(f"gpu_enabled=True but {why}: running on the CPU")
    if optimization in ("onnxruntime", "tensorrt"):
        fn, backend, device, note = _onnx(handle, optimization, has_gpu)
        if note:
            notes.append(note)
        if fn is not None:
            return fn, backend, device, _join(notes)
    fn, backend, device, note = _native(handle, optimization, has_gpu)
    if note:
        notes.append(note)
    fallback = _join(notes)
    if fallback:
        logger.warning("%s v%s: %s", handle.name, handle.version, fallback)
    return fn, backend, device, fallback


def _join(notes: list[str]) -> str | None:
    return "; ".join(notes) if notes else None


def _native(handle: Any, optimization: str | None, has_gpu: bool) -> Backend:
    adapter = handle.adapter
    shape = tuple(adapter.input_shape)
    framework = handle.framework
    note = None
    if framework == "pytorch":
        return _torch(adapter, shape, optimization, has_gpu)
    if optimization in TORCH_CUDA_OPTIMIZATIONS:
        note = f"model_optimization={optimization!r} applies to PyTorch models only ({framework})"
    if framework == "xgboost":
        booster = adapter.model.get_booster()
        # one thread: serving batches are small, and idle OpenMP threads spinning on a few
        # cores take CPU from the event loop and the batcher
        booster.set_param({"nthread": 1})
        device = "cpu"
        if has_gpu:
            booster.set_param({"device": "cuda"})
            device = "cuda"
        classification = adapter.task == "classification"
        inplace = (_dense_predictor(booster) if device == "cpu" else None) or (
            booster.inplace_predict
        )

        def xgb_predict(x: np.ndarray) -> np.ndarray:
            out = np.asarray(inplace(x), dtype=np.float32)
            if classification and out.ndim == 1:  # binary:logistic gives P(class 1)
                out = np.stack([1.0 - out, out], axis=1)
            return out

        return xgb_predict, "xgboost", device, note

    def predict(x: np.ndarray) -> np.ndarray:
        return adapter.predict_raw(x.reshape((len(x), *shape)))

    return predict, framework, "cpu", note


#: ``Booster.inplace_predict``'s configuration with its defaults (all trees, values, NaN missing)
_INPLACE_CONFIG = json.dumps(
    {
        "type": 0,
        "training": False,
        "iteration_begin": 0,
        "iteration_end": 0,
        "missing": float("nan"),
        "strict_shape": False,
        "cache_id": 0,
    }
).encode()


#: the ``__array_interface__`` (as JSON) of a float32 C-contiguous 2-D array, for XGBoost
_INTERFACE = (
    b'{"data": [%d, %s], "shape": [%d, %d], "strides": null, "typestr": "<f4", "version": 3}'
)


def _dense_predictor(booster: Any) -> Callable[[np.ndarray], np.ndarray] | None:
    """``booster.inplace_predict(x)`` for a C-contiguous float32 ``(rows, n_features)`` array
    on the CPU, as one call of XGBoost's C function behind it (``XGBoosterPredictFromDense``),
    with the same configuration and the same output array; or None where this XGBoost does
    not expose it.

    ``inplace_predict`` spends about 170 us of Python per call around that C call (input type
    dispatch, a JSON configuration and array interface built each time, the output copied
    through a class defined per call): more than 2 us per row of a 64-row serving batch.
    Here the configuration is encoded once and the array interface is one bytes format.
    Any other input goes to ``inplace_predict``.
    """
    try:
        from xgboost.core import _LIB, _check_call, c_bst_ulong
    except ImportError:  # pragma: no cover - another XGBoost layout: inplace_predict
        return None
    fn = getattr(_LIB, "XGBoosterPredictFromDense", None)
    if fn is None:  # pragma: no cover - XGBoost < 1.4
        return None
    handle = booster.handle
    n_features = int(booster.num_features())
    fallback = booster.inplace_predict

    def predict(x: np.ndarray) -> np.ndarray:
        if (
            type(x) is not np.ndarray
            or x.dtype != np.float32
            or x.ndim != 2
            or x.shape[1] != n_features
            or not x.flags.c_contiguous
            or not x.flags.aligned
            or len(x) == 0
        ):
            return fallback(x)  # type: ignore[no-any-return]
        interface = _INTERFACE % (
            x.ctypes.data,
            b"false" if x.flags.writeable else b"true",
            x.shape[0],
            n_features,
        )
        shape = ctypes.POINTER(c_bst_ulong)()
        dims = c_bst_ulong()
        preds = ctypes.POINTER(ctypes.c_float)()
        _check_call(
            fn(
                handle,
                interface,
                _INPLACE_CONFIG,
                None,
                ctypes.byref(shape),
                ctypes.byref(dims),
                ctypes.byref(preds),
            )
        )
        out_shape = tuple(shape[i] for i in range(dims.value))
        size = math.prod(out_shape)
        # XGBoost owns the buffer (reused by the next call on this thread): copy it
        return np.ctypeslib.as_array(preds, (size,)).reshape(out_shape).copy()

    return predict


def _torch(
    adapter: Any, shape: tuple[int, ...], optimization: str | None, has_gpu: bool
) -> Backend:
    import torch

    device = "cuda" if has_gpu else "cpu"
    net = adapter.net.to(device).eval()
    adapter.device = device
    dtype = torch.float32
    note = None
    if optimization in TORCH_CUDA_OPTIMIZATIONS and not has_gpu:
        note = f"model_optimization={optimization!r} needs CUDA: running in float32 on the CPU"
    elif optimization == "fp16":
        net = net.half()
        dtype = torch.float16
    classification = adapter.task == "classification"

    def run(xb: Any) -> Any:
        out = adapter.forward(net, xb).float()
        return torch.softmax(out, dim=1) if classification else out.reshape(-1)

    if optimization == "cuda_graphs" and has_gpu:
        return _graphed(run, shape, device), "torch-cuda-graphs", device, None

    def predict(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            xb = torch.from_numpy(x.reshape((len(x), *shape))).to(device=device, dtype=dtype)
            return run(xb).cpu().numpy()

    backend = "torch-fp16" if dtype == torch.float16 else "torch"
    return predict, backend, device, note


#: the largest batch one graph holds; longer inputs run as several replays
GRAPH_MAX_ROWS = 1024


def _graphed(
    run: Callable[[Any], Any], shape: tuple[int, ...], device: str
) -> Callable[[np.ndarray], np.ndarray]:
    """``predict(x)`` replaying CUDA graphs of ``run``: one per power-of-two batch size, captured
    the first time a batch of that size arrives, on static device buffers.

    A batch of ``n`` rows is copied into the first ``n`` rows of the captured size's input (the
    rest hold zeros or the previous batch: rows are independent in an ``eval()`` network) and
    only the first ``n`` outputs are read. Replays share their buffers, so a lock serialises
    them (the batcher's workers may call from several threads)."""
    import torch

    graphs: dict[int, tuple[Any, Any, Any, Any]] = {}
    lock = threading.Lock()

    def capture(rows: int) -> tuple[Any, Any, Any, Any]:
        static_in = torch.zeros((rows, *shape), device=device, dtype=torch.float32)
        host_in = torch.zeros((rows, *shape), dtype=torch.float32).pin_memory()
        side = torch.cuda.Stream(device=device)
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.no_grad(), torch.cuda.stream(side):
            for _ in range(3):  # warm-up outside the capture (cuBLAS handles, autotuning)
                run(static_in)
        torch.cuda.current_stream(device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.no_grad(), torch.cuda.graph(graph):
            static_out = run(static_in)
        host_out = torch.empty(static_out.shape, dtype=torch.float32).pin_memory()
        return graph, static_in, static_out, (host_in, host_out)

    def replay(chunk: np.ndarray) -> np.ndarray:
        n = len(chunk)
        rows = 1 << (n - 1).bit_length()
        with lock:
            entry = graphs.get(rows)
            if entry is None:
                entry = graphs[rows] = capture(rows)
            graph, static_in, static_out, (host_in, host_out) = entry
            host_in[:n].copy_(torch.from_numpy(chunk.reshape((n, *shape))))
            static_in[:n].copy_(host_in[:n], non_blocking=True)
            graph.replay()
            host_out[:n].copy_(static_out[:n], non_blocking=True)
            torch.cuda.current_stream(device).synchronize()
            return host_out[:n].numpy().copy()

    def predict(x: np.ndarray) -> np.ndarray:
        if len(x) == 0:
            raise ParameterError("an empty batch has no rows to predict")
        parts = [replay(x[i : i + GRAPH_MAX_ROWS]) for i in range(0, len(x), GRAPH_MAX_ROWS)]
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    return predict


def _onnx(
    handle: Any, optimization: str, has_gpu: bool
) -> tuple[Callable[[np.ndarray], np.ndarray] | None, str, str, str | None]:
    try:
        import onnxruntime as ort

        from ..models.adapters.onnx import make_session
        from ..models.deploy import tensorrt_status
    except ImportError as err:
        return None, "", "", f"model_optimization={optimization!r} needs onnxruntime ({err})"
    available = ort.get_available_providers()
    note = None
    providers: list[Any] = ["CPUExecutionProvider"]
    if optimization == "tensorrt":
        ok, missing = tensorrt_status()
        if ok:
            providers = ["TensorrtExecutionProvider", "CUDAExecutionProvider", *providers]
        else:
            note = f"model_optimization='tensorrt' is not available here (missing {missing})"
    if (
        has_gpu
        and "CUDAExecutionProvider" in available
        and "CUDAExecutionProvider" not in providers
    ):
        providers = ["CUDAExecutionProvider", *providers]
    adapter = handle.adapter
    shape = tuple(adapter.input_shape)
    try:
        sample = (
            np.asarray(handle.holdout[0][:8], np.float32)
            if handle.holdout is not None
            else np.zeros((2, *shape), np.float32)
        )
        export = adapter.to_onnx(sample)
        session = make_session(export.model.SerializeToString(), providers, threads=1)
    except Exception as err:  # noqa: BLE001 - any exporter failure falls back, with its reason
        reason = f"ONNX export failed ({type(err).__name__}: {err}): running natively"
        return None, "", "", _join([n for n in (note, reason) if n])
    used = session.get_providers()[0]
    classification = adapter.task == "classification"
    input_name, output = export.input_name, export.score_output

    def predict(x: np.ndarray) -> np.ndarray:
        xi = x if export.flatten else x.reshape((len(x), *shape))
        (out,) = session.run([output], {input_name: xi})
        out = np.asarray(out, dtype=np.float32)
        return out if classification else out.reshape(-1)

    if handle.holdout is not None:
        check = np.asarray(handle.holdout[0], np.float32).reshape(len(handle.holdout[0]), -1)
        ref = np.asarray(adapter.predict_raw(check.reshape((len(check), *shape))), np.float32)
        diff = float(np.max(np.abs(predict(check).reshape(ref.shape) - ref)))
        if diff > 1e-4:
            reason = f"the ONNX export differs from the model by {diff:.3g}: running natively"
            return None, "", "", _join([n for n in (note, reason) if n])
    device = {"CPUExecutionProvider": "cpu"}.get(used, "cuda")
    backend = f"onnxruntime-{used.replace('ExecutionProvider', '').lower()}"
    return predict, backend, device, note
