"""PyTorch networks (mlp, cnn, transformer): weights in safetensors beside their configuration.

torch is imported when an adapter is built, not when this module is imported. A network trained
by its caller (AutoML's MLP) is handed over with :meth:`TorchAdapter.adopt`, possibly with a
scikit-learn preprocessor in front (saved with skops) and a regression target's scale.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import warnings
from pathlib import Path
from typing import Any, ClassVar, cast

import numpy as np

from ..errors import ParameterError
from ..skops_io import dump_skops, load_skops
from .base import Adapter, OnnxExport, TrainingResult, check_hyperparameters, require

__all__ = ["TorchAdapter", "torch_device"]

logger = logging.getLogger(__name__)

TRAINING_DEFAULTS: dict[str, Any] = {
    "epochs": 50,
    "batch_size": 32,
    "learning_rate": None,  # 1e-3, or 3e-4 for transformers
    "weight_decay": 0.01,
}
_WEIGHTS = "model.safetensors"
_ARCH = "architecture.json"
_PREPROCESSOR = "preprocessor.skops"


def torch_device(requested: str | None = None) -> str:
    """``"cuda"`` when a GPU is there and allowed (ML_UTILITIES_GPU_ENABLED), else ``"cpu"``."""
    torch = require("torch", purpose="PyTorch models")
    if requested not in (None, "auto"):
        if requested == "cuda" and not torch.cuda.is_available():
            raise ParameterError("device='cuda' was asked for but torch sees no CUDA device")
        if requested not in ("cpu", "cuda") and not str(requested).startswith("cuda:"):
            raise ParameterError(f"device={requested!r}: expected 'auto', 'cpu' or 'cuda[:N]'")
        return str(requested)
    from ...config import get_settings

    if get_settings().gpu_enabled and torch.cuda.is_available():
        return "cuda"
    return "cpu"


class TorchAdapter(Adapter):
    """Trains a :mod:`~ml_utilities.models.torch_nets` network with AdamW and early stopping.

    Training hyperparameters beside the architecture's own: ``epochs`` (50), ``batch_size`` (32),
    ``learning_rate`` (1e-3; 3e-4 for the transformer), ``weight_decay`` (0.01).
    """

    framework = "pytorch"
    architectures: ClassVar[tuple[str, ...]] = ("mlp", "cnn", "transformer")
    onnx_exporter = "torch.onnx"

    def __init__(self, architecture: str, task: str, hyperparameters: dict[str, Any], **kw: Any):
        super().__init__(architecture, task, hyperparameters, **kw)
        self.torch = require("torch", purpose="PyTorch models")
        self._check()
        self.device = "cpu"
        self.mixed_precision = False
        self.net: Any = None
        #: a fitted scikit-learn transformer the rows pass through before the network
        self.preprocessor: Any = None
        #: ``(mean, std)`` of a regression target the network learnt standardised
        self.target_scale: tuple[float, float] | None = None

    # -- what subclasses (transformers) change -------------------------------------------------
    def _check(self) -> None:
        from ..torch_nets import ARCHITECTURE_DEFAULTS

        allowed = set(ARCHITECTURE_DEFAULTS[self.architecture]) | set(TRAINING_DEFAULTS)
        check_hyperparameters(self.framework, self.architecture, self.hyperparameters, allowed)

    def _arch_params(self) -> dict[str, Any]:
        return {k: v for k, v in self.hyperparameters.items() if k not in TRAINING_DEFAULTS}

    def build(self) -> Any:
        from ..torch_nets import build_network

        return build_network(
            self.architecture, self.input_shape, self._n_outputs(), self._arch_params()
        )

    def forward(self, net: Any, x: Any) -> Any:
        return net(x)

    # -------------------------------------------------------------------------------------------
    def _n_outputs(self) -> int:
        return self._classes() if self.task == "classification" else 1

    def _train_param(self, name: str) -> Any:
        value = self.hyperparameters.get(name, TRAINING_DEFAULTS[name])
        if name == "learning_rate" and value is None:
            value = 3e-4 if self.architecture == "transformer" else 1e-3
        if name in ("epochs", "batch_size") and (
            isinstance(value, bool) or not isinstance(value, int) or value < 1
        ):
            raise ParameterError(f"{name}={value!r}: expected an integer >= 1")
        if name in ("learning_rate", "weight_decay") and (
            not isinstance(value, (int, float)) or value < 0
        ):
            raise ParameterError(f"{name}={value!r}: expected a number >= 0")
        return value

    def _loss(self, out: Any, target: Any) -> Any:
        f = self.torch.nn.functional
        if self.task == "classification":
            return f.cross_entropy(out.float(), target)
        return f.mse_loss(out.float().reshape(-1), target)

    def _autocast(self) -> Any:
        if self.mixed_precision and self.device.startswith("cuda"):
            dtype = (
                self.torch.bfloat16 if self.torch.cuda.is_bf16_supported() else self.torch.float16
            )
            return self.torch.autocast("cuda", dtype=dtype)
        return contextlib.nullcontext()

    def fit(self, x, y, x_val, y_val, *, patience):  # noqa: ANN001 - see Adapter.fit
        torch = self.torch
        torch.manual_seed(self.seed)
        gen = torch.Generator().manual_seed(self.seed)
        epochs = self._train_param("epochs")
        batch = self._train_param("batch_size")
        net = self.build()
        xt = torch.from_numpy(x)
        if hasattr(net, "fit_input"):
            net.fit_input(xt)
        net.to(self.device)
        yt = torch.from_numpy(y.astype(np.int64 if self.task == "classification" else np.float32))
        xv = torch.from_numpy(x_val).to(self.device)
        yv = torch.from_numpy(
            y_val.astype(np.int64 if self.task == "classification" else np.float32)
        ).to(self.device)
        opt = torch.optim.AdamW(
            net.parameters(),
            lr=self._train_param("learning_rate"),
            weight_decay=self._train_param("weight_decay"),
        )
        scaler = None
        if (
            self.mixed_precision
            and self.device.startswith("cuda")
            and not (torch.cuda.is_bf16_supported())
        ):
            scaler = torch.amp.GradScaler("cuda")
        history: dict[str, list[float]] = {"train_loss": [], "val_loss": []}
        best_loss, best_epoch, best_state, waited = float("inf"), 0, None, 0
        for epoch in range(epochs):
            net.train()
            order = torch.randperm(len(xt), generator=gen)
            total = 0.0
            for start in range(0, len(order), batch):
                idx = order[start : start + batch]
                if len(idx) < 2 and len(order) > 1:  # batch norm needs two rows
                    continue
                xb, yb = xt[idx].to(self.device), yt[idx].to(self.device)
                opt.zero_grad(set_to_none=True)
                with self._autocast():
                    loss = self._loss(self.forward(net, xb), yb)
                if scaler is not None:
                    scaler.scale(loss).backward()
                    scaler.step(opt)
                    scaler.update()
                else:
                    loss.backward()
                    opt.step()
                total += float(loss.detach()) * len(idx)
            val_loss = self._evaluate(net, xv, yv)
            history["train_loss"].append(total / len(order))
            history["val_loss"].append(val_loss)
            if val_loss < best_loss - 1e-7:
                best_loss, best_epoch, waited = val_loss, epoch, 0
                best_state = copy.deepcopy(net.state_dict())
            else:
                waited += 1
                if patience and waited >= patience:
                    logger.info("early stop after epoch %d (best %d)", epoch + 1, best_epoch + 1)
                    break
        if best_state is not None:
            net.load_state_dict(best_state)
        net.eval()
        self.net = net
        self.preprocessor, self.target_scale = None, None  # fit learns from the rows as given
        return TrainingResult(
            best_iteration=best_epoch,
            history=history,
            epochs_run=len(history["val_loss"]),
            device=self.device,
            mixed_precision=bool(self.mixed_precision and self.device.startswith("cuda")),
        )

    def adopt(
        self,
        model: Any,
        *,
        preprocessor: Any = None,
        target_scale: tuple[float, float] | None = None,
    ) -> TorchAdapter:
        """Hold a trained network of :meth:`build`'s architecture (see :meth:`Adapter.adopt`).

        ``preprocessor`` is a fitted scikit-learn transformer applied to the rows before the
        network; ``target_scale`` the ``(mean, std)`` of a regression target the network learnt
        standardised: predictions are ``output * std + mean``.
        """
        if target_scale is not None and self.task != "regression":
            raise ParameterError("target_scale is only defined for regression networks")
        model.eval()
        self.net = model.to(self.device)
        self.preprocessor = preprocessor
        self.target_scale = None
        if target_scale is not None:
            self.target_scale = (float(target_scale[0]), float(target_scale[1]))
        return self

    def _evaluate(self, net: Any, xv: Any, yv: Any) -> float:
        net.eval()
        total = 0.0
        with self.torch.no_grad(), self._autocast():
            for start in range(0, len(xv), 256):
                out = self.forward(net, xv[start : start + 256])
                total += float(self._loss(out, yv[start : start + 256])) * len(out)
        return total / len(xv)

    def predict_raw(self, x: np.ndarray) -> np.ndarray:
        torch = self.torch
        if self.preprocessor is not None:
            x = np.asarray(self.preprocessor.transform(x), dtype=np.float32)
        self.net.eval()
        outs = []
        with torch.no_grad():
            for start in range(0, len(x), 256):
                xb = torch.from_numpy(np.ascontiguousarray(x[start : start + 256])).to(self.device)
                out = self.forward(self.net, xb).float()
                if self.task == "classification":
                    out = torch.softmax(out, dim=1)
                outs.append(out.cpu().numpy())
        raw = np.concatenate(outs).astype(np.float32)
        if self.task == "classification":
            return raw
        raw = raw.reshape(-1)
        if self.target_scale is not None:
            mean, std = self.target_scale
            raw = raw * std + mean  # in float32: the scale is held as Python floats
        return raw

    def save(self, directory: Path, *, allow_pickle: bool = False) -> None:
        from safetensors.torch import save_file

        state = {k: v.detach().cpu().contiguous() for k, v in self.net.state_dict().items()}
        save_file(state, str(directory / _WEIGHTS))
        spec = self.spec()
        if self.target_scale is not None:
            spec["target_scale"] = list(self.target_scale)
        (directory / _ARCH).write_text(json.dumps(spec, indent=1, sort_keys=True))
        if self.preprocessor is not None:
            dump_skops(self.preprocessor, directory / _PREPROCESSOR)

    def load_files(self, directory: Path, *, allow_pickle: bool = False) -> None:
        from safetensors.torch import load_file

        if (directory / _PREPROCESSOR).exists():
            self.preprocessor = load_skops(directory / _PREPROCESSOR, allow_pickle=allow_pickle)
        scale = None
        if (directory / _ARCH).exists():
            scale = json.loads((directory / _ARCH).read_text()).get("target_scale")
        self.target_scale = None if scale is None else (float(scale[0]), float(scale[1]))
        self.load_state(load_file(str(directory / _WEIGHTS)))

    def load_state(self, state: dict[str, Any]) -> None:
        """Build the network and load the weights ``state`` (a state dict) into it."""
        net = self.build()
        net.load_state_dict(state)
        net.eval()
        self.net = net.to(self.device)

    @classmethod
    def read(cls, directory: Path, *, allow_pickle: bool = False) -> TorchAdapter:
        """What :meth:`save` wrote into ``directory``, rebuilt from its own ``architecture.json``
        (for callers that keep no spec of their own, as AutoML's fold models)."""
        adapter = cast(TorchAdapter, cls.from_spec(json.loads((directory / _ARCH).read_text())))
        adapter.load_files(directory, allow_pickle=allow_pickle)
        return adapter

    def to_onnx(self, sample: np.ndarray, *, opset: int | None = None) -> OnnxExport:
        import torch

        if self.preprocessor is not None:
            raise ParameterError(
                "this network reads the output of a scikit-learn preprocessor; it has no ONNX "
                "export"
            )
        require("onnx", purpose="ONNX export")
        import io

        adapter = self

        class _Export(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.net = copy.deepcopy(adapter.net).cpu().eval()

            def forward(self, features: Any) -> Any:
                out = adapter.forward(self.net, features)
                if adapter.task == "classification":
                    return torch.softmax(out, dim=1)
                out = out.reshape(-1)
                if adapter.target_scale is not None:
                    mean, std = adapter.target_scale
                    out = out * std + mean
                return out

        module = _Export()
        example = torch.from_numpy(np.ascontiguousarray(sample[:2]))
        buf = io.BytesIO()
        with warnings.catch_warnings():
            # the TorchScript-based exporter is deprecated in favour of dynamo, which needs
            # onnxscript; it is the one that handles every layer used here
            warnings.simplefilter("ignore")
            torch.onnx.export(
                module,
                (example,),
                buf,  # type: ignore[arg-type]  # a file object works, the stub says path
                input_names=["input"],
                output_names=["scores"],
                dynamic_axes={"input": {0: "batch"}, "scores": {0: "batch"}},
                opset_version=opset or 17,
                dynamo=False,
            )
        import onnx

        return OnnxExport(onnx.load_from_string(buf.getvalue()), "scores", "input")
