"""Hugging Face transformers: an Audio Spectrogram Transformer over frame-level features.

The model is built from a configuration (randomly initialised, nothing downloaded), trained with
the PyTorch adapter's loop, saved with ``save_pretrained`` (config.json + safetensors) and loaded
with ``from_pretrained(..., local_files_only=True, use_safetensors=True)``: never a pickled
``pytorch_model.bin``.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import ParameterError
from .base import check_hyperparameters, require
from .torch import TRAINING_DEFAULTS, TorchAdapter

__all__ = ["TransformersAdapter"]

# ASTConfig's own names, with their defaults here (smaller than AST's 768/12/12)
AST_DEFAULTS: dict[str, Any] = {
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": None,  # 4 x hidden_size
    "hidden_dropout_prob": 0.1,
    "attention_probs_dropout_prob": 0.1,
    "patch_size": 16,
    "frequency_stride": 10,
    "time_stride": 10,
}
# the specification's names, accepted as aliases
SPEC_NAMES = {
    "num_layers": "num_hidden_layers",
    "num_heads": "num_attention_heads",
    "dropout": "hidden_dropout_prob",
}
_HF_DIR = "hf"
_NORM = "input_norm.safetensors"


class TransformersAdapter(TorchAdapter):
    """``transformers.ASTForAudioClassification`` over ``(n, n_frames, n_features)``.

    Hyperparameters: ASTConfig's ``hidden_size``, ``num_hidden_layers`` (or ``num_layers``),
    ``num_attention_heads`` (or ``num_heads``), ``intermediate_size``, ``hidden_dropout_prob``
    (or ``dropout``), ``attention_probs_dropout_prob``, ``patch_size``, ``frequency_stride``,
    ``time_stride``; and the PyTorch adapter's ``epochs``, ``batch_size``, ``learning_rate``,
    ``weight_decay``.
    """

    framework = "transformers"
    architectures = ("audio_spectrogram_transformer", "ast")
    onnx_exporter = "torch.onnx"

    def _check(self) -> None:
        require("transformers", purpose="Hugging Face models")
        allowed = set(AST_DEFAULTS) | set(SPEC_NAMES) | set(TRAINING_DEFAULTS)
        check_hyperparameters(self.framework, self.architecture, self.hyperparameters, allowed)
        if len(self.input_shape) != 2:
            raise ParameterError(
                f"the Audio Spectrogram Transformer expects samples of shape (n_frames, "
                f"n_features); got {self.input_shape}"
            )

    def _config(self) -> Any:
        from transformers import ASTConfig

        params = dict(AST_DEFAULTS)
        for key, value in self._arch_params().items():
            params[SPEC_NAMES.get(key, key)] = value
        if params["intermediate_size"] is None:
            params["intermediate_size"] = 4 * params["hidden_size"]
        if params["hidden_size"] % params["num_attention_heads"]:
            raise ParameterError(
                f"hidden_size={params['hidden_size']} is not a multiple of "
                f"num_attention_heads={params['num_attention_heads']}"
            )
        n_frames, n_features = self.input_shape
        if params["patch_size"] > min(n_frames, n_features):
            raise ParameterError(
                f"patch_size={params['patch_size']} exceeds the input's {n_frames} frames x "
                f"{n_features} features; pass a smaller patch_size"
            )
        make: Any = ASTConfig  # num_labels and attn_implementation reach PretrainedConfig
        return make(
            max_length=n_frames,
            num_mel_bins=n_features,
            num_labels=self._n_outputs(),
            attn_implementation="eager",
            **params,
        )

    def build(self) -> Any:
        from transformers import ASTForAudioClassification

        return _WithNorm(ASTForAudioClassification(self._config()), self.input_shape[1])

    def save(self, directory: Path, *, allow_pickle: bool = False) -> None:
        from safetensors.torch import save_file

        with _quiet():
            self.net.model.save_pretrained(directory / _HF_DIR)
        save_file(
            {k: v.detach().cpu().contiguous() for k, v in self.net.norm.state_dict().items()},
            str(directory / _NORM),
        )
        (directory / "architecture.json").write_text(
            json.dumps(self.spec(), indent=1, sort_keys=True)
        )

    def load_files(self, directory: Path, *, allow_pickle: bool = False) -> None:
        from safetensors.torch import load_file
        from transformers import ASTForAudioClassification

        with _quiet():
            # safetensors only (a pytorch_model.bin beside it is a pickle), nothing downloaded; a
            # concrete model class never runs code from the folder (only Auto classes can)
            model = ASTForAudioClassification.from_pretrained(
                directory / _HF_DIR,
                local_files_only=True,
                use_safetensors=True,
                attn_implementation="eager",
            )
        net = _WithNorm(model, self.input_shape[1])
        net.norm.load_state_dict(load_file(str(directory / _NORM)))
        net.eval()
        self.net = net.to(self.device)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """No progress bars from transformers (library code does not print)."""
    from transformers.utils import logging as hf_logging

    enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            hf_logging.enable_progress_bar()


def _WithNorm(model: Any, n_features: int) -> Any:  # noqa: N802 - builds a torch module
    """The AST model behind a fitted per-feature standardisation (saved beside it)."""
    import torch

    from ..torch_nets import Standardize

    class WithNorm(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.norm = Standardize((1, 1, n_features))
            self.model = model

        def fit_input(self, x: Any) -> None:
            self.norm.fit(x, (0, 1))

        def forward(self, features: Any) -> Any:
            return self.model(input_values=self.norm(features)).logits

    return WithNorm()
