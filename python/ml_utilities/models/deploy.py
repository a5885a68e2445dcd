"""Deployment: ONNX export, verification against the original, int8/fp16, TensorRT, latency SLA.

:func:`deploy` is what :meth:`ModelManager.deploy_model` runs. Each attempt is recorded in the
registry, the refused ones with their reason and what was measured.
"""

from __future__ import annotations

import ctypes
import json
import logging
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from .._fs import kept_temp_dir
from .._validators import integer, number
from .adapters.base import OnnxExport, require
from .adapters.onnx import OnnxAdapter
from .errors import (
    BackendUnavailableError,
    DeploymentRefusedError,
    ExportVerificationError,
    ParameterError,
)
from .handle import ModelHandle

__all__ = ["DEPLOYMENT_KEYS", "DeployedModel", "deploy", "quantize", "tensorrt_status"]

logger = logging.getLogger(__name__)

DEPLOYMENT_KEYS = (
    "optimization",
    "quantization",
    "batch_size",
    "max_latency_ms",
    "tolerance",
    "max_accuracy_drop",
    "latency_runs",
    "opset",
    "validation_data",
)
OPTIMIZATIONS = ("none", "onnxruntime", "tensorrt")
QUANTIZATIONS = ("none", "fp32", "int8", "fp16")
#: quantized graphs hold at least one of these when dynamic/static int8 quantization applied
_INT8_OPS = {
    "MatMulInteger",
    "ConvInteger",
    "DynamicQuantizeLinear",
    "QuantizeLinear",
    "QLinearMatMul",
    "QLinearConv",
    "DynamicQuantizeMatMul",
    "QGemm",
    "QAttention",
}
_QUANTIZABLE_OPS = {"MatMul", "Gemm", "Conv", "ConvTranspose"}
_ONNX_FILE = "model.onnx"


# -- configuration -----------------------------------------------------------------------------
def _check_config(config: Any) -> dict[str, Any]:
    from ..config import get_settings

    if not isinstance(config, dict):
        raise ParameterError(f"deployment_config={config!r}: expected a dict")
    unknown = sorted(set(config) - set(DEPLOYMENT_KEYS))
    if unknown:
        raise ParameterError(
            f"unknown deployment_config key(s) {unknown}; accepted: {list(DEPLOYMENT_KEYS)}"
        )
    settings = get_settings()
    cfg = dict(config)
    opt = cfg.get("optimization") or "onnxruntime"
    if opt not in OPTIMIZATIONS:
        raise ParameterError(f"optimization={opt!r}: expected one of {list(OPTIMIZATIONS)}")
    cfg["optimization"] = opt
    quant = cfg.get("quantization") or "none"
    if quant not in QUANTIZATIONS:
        raise ParameterError(f"quantization={quant!r}: expected one of {list(QUANTIZATIONS)}")
    cfg["quantization"] = "none" if quant == "fp32" else quant
    cfg["batch_size"] = integer("batch_size", cfg.get("batch_size", settings.batch_size), minimum=1)
    for key, default in (
        ("max_latency_ms", settings.max_latency_ms),
        ("tolerance", 1e-5),
        ("max_accuracy_drop", 0.02),
    ):
        cfg[key] = number(key, cfg.get(key, default), above=0.0, finite=False)
    cfg["latency_runs"] = integer("latency_runs", cfg.get("latency_runs", 200), minimum=10)
    if cfg.get("opset") is not None:
        cfg["opset"] = integer("opset", cfg["opset"], minimum=1)
    return cfg


# -- TensorRT ----------------------------------------------------------------------------------
def tensorrt_status() -> tuple[bool, str]:
    """Whether ONNX Runtime can run models through TensorRT here, and if not, what is missing."""
    missing = []
    try:
        import onnxruntime as ort
    except ImportError:
        return False, "onnxruntime is not installed"
    providers = ort.get_available_providers()
    if "TensorrtExecutionProvider" not in providers:
        missing.append(
            f"ONNX Runtime's TensorrtExecutionProvider (this onnxruntime {ort.__version__} "
            f"offers {providers}; install onnxruntime-gpu)"
        )
    for lib in ("libnvinfer.so.10", "libnvinfer.so.8"):
        try:
            ctypes.CDLL(lib)
            break
        except OSError:
            continue
    else:
        missing.append("the TensorRT runtime library libnvinfer.so (pip install tensorrt)")
    try:
        import torch

        has_gpu = torch.cuda.is_available()
    except ImportError:
        has_gpu = Path("/dev/nvidia0").exists()
    if not has_gpu:
        missing.append("an NVIDIA GPU visible to CUDA")
    if missing:
        return False, "; ".join(missing)
    return True, "available"


# -- quantization --------------------------------------------------------------------------------
def quantize(
    model_bytes: bytes, mode: str, calibration: np.ndarray | None = None, input_name: str = "input"
) -> bytes:
    """int8 (ONNX Runtime's dynamic quantizer; static QDQ with calibration rows for TensorRT)
    or fp16 (float16 weights and activations, float32 inputs and outputs)."""
    onnx = require("onnx", purpose="quantization")
    label = "fp16" if mode == "fp16" else "int8"
    ops = {n.op_type for n in onnx.load_from_string(model_bytes).graph.node}
    if not ops & _QUANTIZABLE_OPS:
        raise ParameterError(
            f"quantization={label!r} applies to the weights of MatMul, Gemm and Conv layers; "
            f"this model has none (its operators: {sorted(ops)}). Tree ensembles compare "
            "float32 thresholds, which lower precision would change: deploy them with "
            "quantization=None"
        )
    if mode == "fp16":
        from onnxruntime.transformers.float16 import convert_float_to_float16

        model = onnx.load_from_string(model_bytes)
        converted = convert_float_to_float16(model, keep_io_types=True)
        return converted.SerializeToString()
    if mode not in ("int8", "int8_qdq"):
        raise ParameterError(f"quantization mode {mode!r}")
    from onnxruntime import quantization as q

    tmp = Path(tempfile.mkdtemp(prefix="mlu-quant-"))
    try:
        src, pre, dst = tmp / "in.onnx", tmp / "pre.onnx", tmp / "out.onnx"
        src.write_bytes(model_bytes)
        try:
            q.quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        except Exception as err:  # pre-processing is an optimisation; quantize the raw model
            logger.debug("quant_pre_process skipped: %s", err)
            shutil.copyfile(src, pre)
        if mode == "int8":
            q.quantize_dynamic(str(pre), str(dst), weight_type=q.QuantType.QInt8)
        else:
            if calibration is None:
                raise ParameterError("static int8 quantization needs calibration rows")
            rows = calibration

            class _Reader(q.CalibrationDataReader):
                def __init__(self) -> None:
                    self.rows = iter([{input_name: rows[i : i + 1]} for i in range(len(rows))])

                def get_next(self) -> dict[str, np.ndarray] | None:
                    return next(self.rows, None)

            q.quantize_static(
                str(pre),
                str(dst),
                _Reader(),
                quant_format=q.QuantFormat.QDQ,
                activation_type=q.QuantType.QInt8,
                weight_type=q.QuantType.QInt8,
            )
        out = dst.read_bytes()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    ops = {n.op_type for n in onnx.load_from_string(out).graph.node}
    if not ops & _INT8_OPS:
        raise ParameterError(
            "quantization='int8': ONNX Runtime's quantizer left this model unchanged (its "
            f"operators: {sorted(ops)})"
        )
    return out


# -- measurements -------------------------------------------------------------------------------
def measure_latency(
    run: Any, batch: np.ndarray, runs: int, budget_s: float = 10.0
) -> dict[str, Any]:
    """p50/p99/mean latency of ``run(batch)`` in milliseconds (after warm-up runs)."""
    for _ in range(5):
        run(batch)
    times: list[float] = []
    deadline = time.perf_counter() + budget_s
    while len(times) < runs and (len(times) < 20 or time.perf_counter() < deadline):
        t0 = time.perf_counter()
        run(batch)
        times.append((time.perf_counter() - t0) * 1e3)
    t = np.asarray(times)
    return {
        "p50_ms": float(np.percentile(t, 50)),
        "p99_ms": float(np.percentile(t, 99)),
        "mean_ms": float(t.mean()),
        "runs": int(t.size),
        "batch_size": int(len(batch)),
        "rows_per_s": float(len(batch) / (t.mean() / 1e3)),
    }


def _batch_of(x: np.ndarray, batch_size: int) -> np.ndarray:
    reps = -(-batch_size // len(x))
    return np.ascontiguousarray(np.concatenate([x] * reps)[:batch_size])


def _compare(
    task: str, reference: np.ndarray, got: np.ndarray, y_true: np.ndarray | None
) -> dict[str, Any]:
    ref = reference.astype(np.float64)
    out = got.astype(np.float64).reshape(ref.shape)
    diff = np.abs(out - ref)
    report: dict[str, Any] = {
        "max_abs_error": float(diff.max()),
        "max_rel_error": float((diff / np.maximum(np.abs(ref), 1.0)).max()),
        "rows": int(len(ref)),
    }
    if task == "classification":
        report["label_agreement"] = float(np.mean(ref.argmax(1) == out.argmax(1)))
        if y_true is not None:
            report["accuracy_original"] = float(np.mean(ref.argmax(1) == y_true))
            report["accuracy"] = float(np.mean(out.argmax(1) == y_true))
    elif y_true is not None:
        report["rmse_original"] = float(np.sqrt(np.mean((ref - y_true) ** 2)))
        report["rmse"] = float(np.sqrt(np.mean((out - y_true) ** 2)))
    return report


class DeployedModel:
    """A deployed model: the optimised ONNX session, its registry record and measurements.

    Attributes
    ----------
    deployment : Deployment
        The registry's record (``id``, ``status``, ``report``...).
    report : dict
        ``verification`` (fp32 export against the original), ``optimized`` (the quantised model
        against the original), ``latency`` (p50/p99 at ``batch_size``), ``provider``...
    """

    def __init__(self, handle: ModelHandle, adapter: OnnxAdapter, deployment: Any) -> None:
        self.handle = handle
        self.adapter = adapter
        self.deployment = deployment
        self.report = deployment.report

    def __repr__(self) -> str:
        lat = self.report["latency"]
        return (
            f"<DeployedModel {self.deployment.name} v{self.deployment.version} "
            f"#{self.deployment.id} {self.report['provider']} "
            f"p99={lat['p99_ms']:.3f} ms @ batch {lat['batch_size']}>"
        )

    def predict(self, features: Any) -> np.ndarray:
        x = self.handle._features(features)
        out = self.adapter.predict(x)
        return self.handle.codec.decode(out) if self.handle.codec is not None else out

    def predict_proba(self, features: Any) -> np.ndarray:
        return self.adapter.predict_proba(self.handle._features(features))


def _providers(cfg: dict[str, Any]) -> list[Any]:
    import onnxruntime as ort

    from ..config import get_settings

    if cfg["optimization"] == "tensorrt":
        trt_opts = {
            "trt_fp16_enable": cfg["quantization"] == "fp16",
            "trt_int8_enable": cfg["quantization"] == "int8",
        }
        return [
            ("TensorrtExecutionProvider", trt_opts),
            "CUDAExecutionProvider",
            "CPUExecutionProvider",
        ]
    available = ort.get_available_providers()
    if get_settings().gpu_enabled and "CUDAExecutionProvider" in available:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def deploy(registry: Any, handle: ModelHandle, deployment_config: Any) -> DeployedModel:
    """See :meth:`ModelManager.deploy_model`."""
    if not isinstance(handle, ModelHandle):
        raise ParameterError(f"model must be a ModelHandle, got {type(handle).__name__}")
    cfg = _check_config(deployment_config)
    if handle.version is None:
        registry.register(handle)
        logger.info("deploy_model registered %s as version %d first", handle.name, handle.version)
    if handle.version is None:  # pragma: no cover - register() sets it
        raise ParameterError(f"model {handle.name!r} has no registry version")
    name, version = handle.name, handle.version
    report: dict[str, Any] = {
        "optimization": cfg["optimization"],
        "quantization": cfg["quantization"],
    }
    recorded_cfg = {k: v for k, v in cfg.items() if k != "validation_data"}

    def refuse(exc_type: type[Exception], message: str) -> Exception:
        registry.record_deployment(
            name, version, status="refused", config=recorded_cfg, report=report, reason=message
        )
        logger.warning("deployment of %s v%d refused: %s", name, version, message)
        if issubclass(exc_type, (DeploymentRefusedError, ExportVerificationError)):
            return exc_type(message, report)
        return exc_type(message)

    # 1. TensorRT first: fail fast, before any export work, and never fall back silently
    if cfg["optimization"] == "tensorrt":
        ok, why = tensorrt_status()
        if not ok:
            raise refuse(
                BackendUnavailableError,
                f"optimization='tensorrt' is not available here: missing {why}. Deploy with "
                "optimization='onnxruntime' (ONNX Runtime on CPU or CUDA) to serve without "
                "TensorRT, or run on a machine with an NVIDIA GPU, onnxruntime-gpu and TensorRT.",
            )

    # 2. rows to verify and time the export on
    if "validation_data" in cfg:
        from ._data import as_features

        x_hold = as_features(cfg["validation_data"], name="validation_data")
        y_hold = None
    elif handle.holdout is not None:
        x_hold, y_given = handle.holdout
        y_hold = (
            handle.codec.encode(y_given)
            if handle.codec is not None
            else np.asarray(y_given, dtype=np.float64)
        )
    else:
        raise ParameterError(
            "this model carries no held-out rows to verify its export against: pass "
            "deployment_config['validation_data'] = an array of input rows"
        )
    x_hold = handle._features(x_hold)
    task = handle.adapter.task

    # 3. export to ONNX and check it reproduces the original
    reference = handle.adapter.predict_raw(x_hold)
    export: OnnxExport = handle.adapter.to_onnx(x_hold, opset=cfg.get("opset"))
    onnx = require("onnx", purpose="ONNX export")
    onnx.checker.check_model(export.model)
    fp32_bytes = export.model.SerializeToString()
    fp32 = OnnxAdapter.from_export(
        export,
        fp32_bytes,
        task=task,
        n_classes=handle.adapter.n_classes,
        input_shape=handle.adapter.input_shape,
    )
    report["exporter"] = handle.adapter.onnx_exporter
    report["verification"] = _compare(task, reference, fp32.predict_raw(x_hold), y_hold)
    report["verification"]["tolerance"] = cfg["tolerance"]
    if report["verification"]["max_rel_error"] > cfg["tolerance"]:
        raise refuse(
            ExportVerificationError,
            f"the ONNX export differs from the original {handle.framework} model by "
            f"{report['verification']['max_rel_error']:.3g} (relative) on "
            f"{len(x_hold)} held-out rows, above tolerance {cfg['tolerance']:g}",
        )

    # 4. optimise as asked and measure what it costs in accuracy
    model_bytes = fp32_bytes
    if cfg["quantization"] != "none":
        mode = cfg["quantization"]
        if mode == "int8" and cfg["optimization"] == "tensorrt":
            mode = "int8_qdq"  # TensorRT runs explicit QDQ graphs
        try:
            model_bytes = quantize(
                fp32_bytes, mode, calibration=x_hold, input_name=export.input_name
            )
        except ParameterError as err:
            raise refuse(ParameterError, str(err)) from None
    providers = _providers(cfg)
    level = "extended" if cfg["quantization"] == "fp16" else "all"
    report["graph_optimization"] = level
    try:
        served = OnnxAdapter.from_export(
            export,
            model_bytes,
            task=task,
            n_classes=handle.adapter.n_classes,
            input_shape=handle.adapter.input_shape,
            providers=providers,
            graph_optimization=level,
        )
    except Exception as err:
        raise refuse(
            BackendUnavailableError,
            f"ONNX Runtime could not load the optimised model with {providers}: {err}",
        ) from None
    used = served.session.get_providers()
    report["provider"] = used[0]
    if cfg["optimization"] == "tensorrt" and used[0] != "TensorrtExecutionProvider":
        raise refuse(
            BackendUnavailableError,
            f"ONNX Runtime did not enable TensorRT for this model (session providers "
            f"{used}); refusing rather than serving it on {used[0]}",
        )
    report["optimized"] = _compare(task, reference, served.predict_raw(x_hold), y_hold)
    report["model_bytes"] = {"fp32": len(fp32_bytes), "deployed": len(model_bytes)}
    opt = report["optimized"]
    if task == "classification" and "accuracy" in opt:
        drop = opt["accuracy_original"] - opt["accuracy"]
        if drop > cfg["max_accuracy_drop"]:
            raise refuse(
                DeploymentRefusedError,
                f"{cfg['quantization']} costs {drop:.3f} accuracy on {len(x_hold)} held-out rows "
                f"({opt['accuracy_original']:.3f} -> {opt['accuracy']:.3f}), above "
                f"max_accuracy_drop={cfg['max_accuracy_drop']:g}",
            )

    # 5. latency at batch_size against the SLA
    batch = _batch_of(x_hold, cfg["batch_size"])
    report["latency"] = measure_latency(served.run, batch, cfg["latency_runs"])
    lat = report["latency"]
    if lat["p99_ms"] > cfg["max_latency_ms"]:
        raise refuse(
            DeploymentRefusedError,
            f"latency SLA not met: p99 {lat['p99_ms']:.3f} ms (p50 {lat['p50_ms']:.3f} ms) over "
            f"{lat['runs']} runs at batch_size={cfg['batch_size']} on {used[0]}, above "
            f"max_latency_ms={cfg['max_latency_ms']:g}",
        )

    # 6. record the deployment with its artifact
    tmp = kept_temp_dir(prefix="mlu-deploy-")  # registered: it keeps its modes
    try:
        (tmp / _ONNX_FILE).write_bytes(model_bytes)
        (tmp / "deployment.json").write_text(
            json.dumps(
                {
                    "name": name,
                    "version": version,
                    "score_output": export.score_output,
                    "input_name": export.input_name,
                    "flatten": export.flatten,
                    "task": task,
                    "classes": handle.classes,
                    "providers": [p if isinstance(p, str) else p[0] for p in providers],
                    "graph_optimization": level,
                },
                indent=1,
            )
        )
        record = registry.record_deployment(
            name,
            version,
            status="deployed",
            config=recorded_cfg,
            report=report,
            artifact_folder=tmp,
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    logger.info("deployed %s v%d: %s", name, version, lat)
    return DeployedModel(handle, served, record)
