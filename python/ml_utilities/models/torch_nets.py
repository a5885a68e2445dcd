"""PyTorch architectures of the model manager: MLP, CNN over mel spectrograms, MusicTransformer.

Importing this module imports torch. Every network starts with a :class:`Standardize` layer whose
mean and scale are fitted on the training rows and saved with the weights, so a saved or exported
model takes raw features.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import torch
from torch import nn

from .._validators import integer
from .errors import ParameterError

__all__ = [
    "MelCNN",
    "MLP",
    "MusicTransformer",
    "MusicTransformerConfig",
    "Standardize",
    "build_network",
]


class Standardize(nn.Module):
    """``(x - mean) / scale`` with buffers fitted on the training rows (per input feature)."""

    mean: torch.Tensor
    scale: torch.Tensor

    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(shape))
        self.register_buffer("scale", torch.ones(shape))

    def fit(self, x: torch.Tensor, reduce_dims: tuple[int, ...]) -> None:
        with torch.no_grad():
            self.mean.copy_(x.mean(dim=reduce_dims).reshape(self.mean.shape))
            std = x.std(dim=reduce_dims).reshape(self.scale.shape)
            self.scale.copy_(torch.where(std > 1e-8, std, torch.ones_like(std)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.scale


class MLP(nn.Module):
    """Fully connected layers over ``(n, n_features)``."""

    def __init__(
        self,
        n_features: int,
        n_outputs: int,
        hidden_sizes: list[int],
        dropout: float,
        activation: str = "relu",
    ) -> None:
        super().__init__()
        acts = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh}
        if activation not in acts:
            raise ParameterError(f"activation={activation!r}: choose one of {sorted(acts)}")
        self.norm = Standardize((n_features,))
        layers: list[nn.Module] = []
        width = n_features
        for h in hidden_sizes:
            layers += [nn.Linear(width, h), acts[activation](), nn.Dropout(dropout)]
            width = h
        layers.append(nn.Linear(width, n_outputs))
        self.body = nn.Sequential(*layers)

    def fit_input(self, x: torch.Tensor) -> None:
        self.norm.fit(x, (0,))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.body(self.norm(features.flatten(1)))


class MelCNN(nn.Module):
    """2-D convolutions over mel spectrograms ``(n, n_mels, n_frames)`` or ``(n, c, n_mels,
    n_frames)``, then global average pooling and a linear head."""

    def __init__(
        self,
        input_shape: tuple[int, ...],
        n_outputs: int,
        channels: list[int],
        kernel_size: int,
        dropout: float,
    ) -> None:
        super().__init__()
        if len(input_shape) == 2:
            in_ch, n_mels = 1, input_shape[0]
        elif len(input_shape) == 3:
            in_ch, n_mels = input_shape[0], input_shape[1]
        else:
            raise ParameterError(
                f"cnn expects samples of shape (n_mels, n_frames) or (channels, n_mels, "
                f"n_frames); got {tuple(input_shape)}"
            )
        self.add_channel = len(input_shape) == 2
        # one mean/scale per mel band (and channel): the scale of mel energies varies by band
        self.norm = Standardize((in_ch, n_mels, 1))
        blocks: list[nn.Module] = []
        prev = in_ch
        for ch in channels:
            blocks += [
                nn.Conv2d(prev, ch, kernel_size, padding=kernel_size // 2),
                nn.BatchNorm2d(ch),
                nn.ReLU(),
                nn.MaxPool2d(2, ceil_mode=True),
            ]
            prev = ch
        self.features = nn.Sequential(*blocks)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(prev, n_outputs))

    def _shape(self, x: torch.Tensor) -> torch.Tensor:
        return x.unsqueeze(1) if self.add_channel else x

    def fit_input(self, x: torch.Tensor) -> None:
        self.norm.fit(self._shape(x), (0, 3))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        h = self.features(self.norm(self._shape(features)))
        return self.head(h.mean(dim=(2, 3)))


@dataclasses.dataclass
class MusicTransformerConfig:
    """Hyperparameters of :class:`MusicTransformer` (the specification's names).

    ``input_size`` is the number of features per frame and ``max_len`` the number of frames.
    """

    input_size: int
    num_classes: int
    max_len: int
    hidden_size: int = 256
    num_layers: int = 4
    num_heads: int = 4
    dropout: float = 0.1
    ff_size: int | None = None

    def __post_init__(self) -> None:
        for name in (
            "input_size",
            "num_classes",
            "max_len",
            "hidden_size",
            "num_layers",
            "num_heads",
        ):
            setattr(self, name, integer(name, getattr(self, name), minimum=1))
        if self.hidden_size % self.num_heads:
            raise ParameterError(
                f"hidden_size={self.hidden_size} is not a multiple of num_heads={self.num_heads}"
            )
        if not 0.0 <= float(self.dropout) < 1.0:
            raise ParameterError(f"dropout={self.dropout!r}: expected a float in [0, 1)")


class TransformerEncoder(nn.Module):
    """Frame features -> hidden size, learned positions, pre-norm encoder layers, mean pool."""

    def __init__(self, config: MusicTransformerConfig) -> None:
        super().__init__()
        self.norm_in = Standardize((1, 1, config.input_size))
        self.project = nn.Linear(config.input_size, config.hidden_size)
        self.position = nn.Parameter(torch.zeros(1, config.max_len, config.hidden_size))
        nn.init.normal_(self.position, std=0.02)
        layer = nn.TransformerEncoderLayer(
            d_model=config.hidden_size,
            nhead=config.num_heads,
            dim_feedforward=config.ff_size or 4 * config.hidden_size,
            dropout=config.dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.layers = nn.TransformerEncoder(layer, config.num_layers, enable_nested_tensor=False)
        self.norm_out = nn.LayerNorm(config.hidden_size)
        self.scale = math.sqrt(config.hidden_size)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        h = self.project(self.norm_in(features)) + self.position[:, : features.shape[1]]
        h = self.layers(h)
        return self.norm_out(h.mean(dim=1))


class MusicTransformer(nn.Module):
    """The specification's MusicTransformer: a transformer encoder over frame-level features
    ``(n, n_frames, n_features)`` and a linear classifier over the pooled encoding."""

    def __init__(self, config: MusicTransformerConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = TransformerEncoder(config)
        self.classifier = nn.Linear(config.hidden_size, config.num_classes)

    def fit_input(self, x: torch.Tensor) -> None:
        self.encoder.norm_in.fit(x, (0, 1))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        encoded = self.encoder(features)
        return self.classifier(encoded)


# architecture -> (accepted hyperparameters with defaults)
ARCHITECTURE_DEFAULTS: dict[str, dict[str, Any]] = {
    "mlp": {"hidden_sizes": [128, 64], "dropout": 0.1, "activation": "relu"},
    "cnn": {"channels": [16, 32, 64], "kernel_size": 3, "dropout": 0.2},
    "transformer": {
        "hidden_size": 256,
        "num_layers": 4,
        "num_heads": 4,
        "dropout": 0.1,
        "ff_size": None,
    },
}


def build_network(
    architecture: str, input_shape: tuple[int, ...], n_outputs: int, params: dict[str, Any]
) -> nn.Module:
    """Build the named architecture for samples of ``input_shape``."""
    p = {**ARCHITECTURE_DEFAULTS[architecture], **params}
    if architecture == "mlp":
        sizes = p["hidden_sizes"]
        if not isinstance(sizes, (list, tuple)) or not all(
            isinstance(h, int) and h > 0 for h in sizes
        ):
            raise ParameterError(f"hidden_sizes={sizes!r}: expected a list of positive integers")
        return MLP(
            int(math.prod(input_shape)),
            n_outputs,
            list(sizes),
            float(p["dropout"]),
            p["activation"],
        )
    if architecture == "cnn":
        return MelCNN(
            input_shape, n_outputs, list(p["channels"]), int(p["kernel_size"]), float(p["dropout"])
        )
    if len(input_shape) != 2:
        raise ParameterError(
            f"transformer expects samples of shape (n_frames, n_features); got {input_shape}"
        )
    config = MusicTransformerConfig(
        input_size=input_shape[1],
        num_classes=n_outputs,
        max_len=input_shape[0],
        hidden_size=p["hidden_size"],
        num_layers=p["num_layers"],
        num_heads=p["num_heads"],
        dropout=p["dropout"],
        ff_size=p["ff_size"],
    )
    return MusicTransformer(config)
