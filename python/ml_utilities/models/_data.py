"""Input checks, label encoding, splits, signatures and fingerprints of training data."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from .errors import ParameterError

__all__ = [
    "LabelCodec",
    "as_features",
    "fingerprint",
    "input_signature",
    "split_train_validation",
]


def as_features(features: Any, *, name: str = "features", min_ndim: int = 2) -> np.ndarray:
    """Convert ``features`` to a C-contiguous float32 array of at least ``min_ndim`` axes."""
    if features is None:
        raise ParameterError(f"{name} is None: expected an array of shape (n_samples, ...)")
    if isinstance(features, Sequence) and not isinstance(features, np.ndarray):
        try:
            features = np.stack([np.asarray(f) for f in features])
        except ValueError as err:
            raise ParameterError(
                f"{name} is a sequence of arrays of different shapes ({err}); pad or crop them "
                "to one shape first"
            ) from None
    arr = np.asarray(features)
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.bool_)
    ):
        raise ParameterError(f"{name} has dtype {arr.dtype}: expected a numeric array")
    if arr.ndim < min_ndim:
        raise ParameterError(
            f"{name} has shape {arr.shape}: expected at least {min_ndim} axes (n_samples first)"
        )
    if arr.shape[0] == 0:
        raise ParameterError(f"{name} has shape {arr.shape}: no samples")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    if not np.all(np.isfinite(arr)):
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise ParameterError(f"{name} holds {bad} non-finite values (NaN or inf)")
    return arr


class LabelCodec:
    """Maps class labels of any JSON-friendly kind to 0..K-1 and back."""

    def __init__(self, classes: Sequence[Any]) -> None:
        self.classes = [_plain(c) for c in classes]
        self._index = {c: i for i, c in enumerate(self.classes)}

    @classmethod
    def fit(cls, labels: np.ndarray) -> LabelCodec:
        return cls(np.unique(labels).tolist())

    def encode(self, labels: np.ndarray) -> np.ndarray:
        out = np.empty(len(labels), dtype=np.int64)
        for i, lab in enumerate(np.asarray(labels).tolist()):
            try:
                out[i] = self._index[_plain(lab)]
            except KeyError:
                raise ParameterError(
                    f"label {lab!r} was not seen in training (classes: {self.classes})"
                ) from None
        return out

    def decode(self, indices: np.ndarray) -> np.ndarray:
        return np.asarray(self.classes)[np.asarray(indices, dtype=np.int64)]


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return value


def as_labels(labels: Any, n_samples: int, task: str) -> np.ndarray:
    if labels is None:
        raise ParameterError("labels is None: expected one label per sample")
    arr = np.asarray(labels)
    if arr.ndim != 1:
        raise ParameterError(f"labels has shape {arr.shape}: expected (n_samples,)")
    if arr.shape[0] != n_samples:
        raise ParameterError(
            f"labels has {arr.shape[0]} entries but features has {n_samples} samples"
        )
    if task == "regression":
        if not np.issubdtype(arr.dtype, np.number):
            raise ParameterError(f"regression labels have dtype {arr.dtype}: expected numbers")
        arr = arr.astype(np.float32)
        if not np.all(np.isfinite(arr)):
            raise ParameterError("regression labels hold non-finite values (NaN or inf)")
        return arr
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise ParameterError("labels hold non-finite values (NaN or inf)")
    if arr.dtype == object:
        arr = arr.astype(str)
    if np.unique(arr).size < 2:
        raise ParameterError(
            f"classification needs at least 2 classes; labels hold {np.unique(arr)}"
        )
    return arr


def split_train_validation(
    n_samples: int, validation_split: float, seed: int, stratify: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the training and validation rows (stratified when labels allow it)."""
    if isinstance(validation_split, bool) or not isinstance(validation_split, (int, float)):
        raise ParameterError(f"validation_split={validation_split!r}: expected a float in (0, 1)")
    if not 0.0 < float(validation_split) < 1.0:
        raise ParameterError(f"validation_split={validation_split!r}: expected a float in (0, 1)")
    n_val = int(round(n_samples * float(validation_split)))
    if n_val < 1 or n_samples - n_val < 1:
        raise ParameterError(
            f"validation_split={validation_split!r} of {n_samples} samples leaves an empty "
            "training or validation set"
        )
    rng = np.random.default_rng(seed)
    if stratify is not None:
        _, inverse, counts = np.unique(stratify, return_inverse=True, return_counts=True)
        if counts.min() >= 2 and n_val >= counts.size and n_samples - n_val >= counts.size:
            val: list[int] = []
            # per class, a share proportional to its size (at least one row each)
            quotas = np.maximum(1, np.floor(counts * n_val / n_samples)).astype(int)
            while quotas.sum() < n_val:
                quotas[np.argmax(counts - quotas)] += 1
            while quotas.sum() > n_val:
                quotas[np.argmax(quotas)] -= 1
            for k, q in enumerate(quotas):
                members = np.flatnonzero(inverse == k)
                val.extend(rng.permutation(members)[:q].tolist())
            val_idx = np.sort(np.asarray(val, dtype=np.int64))
            train_idx = np.setdiff1d(np.arange(n_samples), val_idx)
            return rng.permutation(train_idx), val_idx
    perm = rng.permutation(n_samples)
    return perm[n_val:], np.sort(perm[:n_val])


def fingerprint(features: np.ndarray, labels: np.ndarray | None = None) -> str:
    """sha256 of the training data: dtype, shape and bytes of features and labels."""
    h = hashlib.sha256()
    for arr in (features, labels):
        if arr is None:
            continue
        a = np.ascontiguousarray(arr)
        if a.dtype.kind in "OUS":
            a = np.asarray(a.astype(str))
            h.update(b"str")
            h.update(repr(a.shape).encode())
            for item in a.ravel().tolist():
                h.update(item.encode("utf-8") + b"\0")
            continue
        h.update(str(a.dtype).encode() + repr(a.shape).encode())
        h.update(a.tobytes())
    return "sha256:" + h.hexdigest()


def input_signature(features: np.ndarray) -> dict[str, Any]:
    """The input's dtype and shape with the batch axis left free (``None``)."""
    return {"dtype": str(features.dtype), "shape": [None, *features.shape[1:]]}


def check_signature(features: np.ndarray, signature: dict[str, Any], *, name: str) -> None:
    expected = signature["shape"]
    if features.ndim != len(expected) or any(
        e is not None and e != s for e, s in zip(expected, features.shape, strict=True)
    ):
        shown = tuple("n" if e is None else e for e in expected)
        raise ParameterError(f"{name} has shape {features.shape}: this model expects {shown}")
