"""The key-invariant siamese encoder (PyTorch). Importing this module imports torch.

Chroma goes through 2-D convolutions whose pitch axis is circular (a transposition rotates the
input, and every layer's output rotates with it), then a max over the 12 pitch classes: the
encoding is exactly the same for all 12 transpositions of the input, by construction. The other
channels (MFCC, tonnetz, contrast) go through a 1-D convolution. Both are joined, convolved over
time (at half the frame rate, dilated: about 5 s of context), pooled over time (mean and max)
and projected to a unit-length embedding: any length of input gives one vector, and the cosine
of two is their inner product.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["KeyInvariantEncoder"]


def _circular_pitch(x: torch.Tensor, pad: int) -> torch.Tensor:
    """Pad the pitch axis (dim 2 of ``(n, c, 12, t)``) circularly by ``pad`` on each side."""
    return torch.cat([x[:, :, -pad:], x, x[:, :, :pad]], dim=2)


class KeyInvariantEncoder(nn.Module):
    """``(n, 12 + n_other, t)`` float32 sequences to ``(n, dim)`` unit embeddings.

    Parameters
    ----------
    n_other : int
        Non-chroma channels after the 12 chroma rows.
    dim : int
        Embedding size.
    width : int
        Channels of the chroma convolutions (the other branch has half as many).
    """

    def __init__(self, n_other: int, dim: int = 128, width: int = 32) -> None:
        super().__init__()
        self.n_other = int(n_other)
        w = int(width)
        self.c1 = nn.Conv2d(1, w, (3, 5), padding=(0, 2), stride=(1, 2))
        self.c2 = nn.Conv2d(w, w, (3, 5), padding=(0, 2))
        self.c3 = nn.Conv2d(w, w, (3, 3), padding=(0, 1), dilation=(4, 1))
        self.n1 = nn.BatchNorm2d(w)
        self.n2 = nn.BatchNorm2d(w)
        self.n3 = nn.BatchNorm2d(w)
        joined = w
        if self.n_other:
            self.other = nn.Conv1d(self.n_other, w // 2, 5, padding=2, stride=2)
            joined += w // 2
        self.t1 = nn.Conv1d(joined, 2 * w, 5, padding=4, dilation=2)
        self.t2 = nn.Conv1d(2 * w, 2 * w, 3, padding=4, dilation=4)
        self.nt = nn.BatchNorm1d(2 * w)
        self.project = nn.Linear(4 * w, int(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        chroma = x[:, :12].unsqueeze(1)  # (n, 1, 12, t)
        h = F.relu(self.n1(self.c1(_circular_pitch(chroma, 1))))
        h = F.relu(self.n2(self.c2(_circular_pitch(h, 1))))
        h = F.relu(self.n3(self.c3(_circular_pitch(h, 4))))
        h = h.amax(dim=2)  # (n, w, t): the same for every rotation of the chroma
        if self.n_other:
            h = torch.cat([h, F.relu(self.other(x[:, 12:]))], dim=1)
        h = F.relu(self.t1(h))
        h = F.relu(self.nt(self.t2(h)))
        pooled = torch.cat([h.mean(dim=2), h.amax(dim=2)], dim=1)
        return F.normalize(self.project(pooled), dim=1)
