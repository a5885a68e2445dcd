"""ModelHandle: a trained model, its class names, validation metrics and provenance."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from ._data import LabelCodec, as_features, check_signature
from ._files import atomic_folder, check_manifest, write_manifest
from .adapters import Adapter, adapter_class
from .errors import ParameterError

__all__ = ["ModelHandle"]

FORMAT_VERSION = 1
_META = "mlu_model.json"
_HOLDOUT = "holdout.npz"
_REFERENCE = "reference.npz"
#: rows of the training inputs kept as a version's reference sample (validation and drift)
REFERENCE_ROWS = 2000
_MODEL_DIR = "model"


class ModelHandle:
    """A trained model, returned by :meth:`ModelManager.train_model`.

    Attributes
    ----------
    name : str
        Registry name (``config['name']``, or ``"<framework>-<architecture>-<task>"``).
    version : int or None
        Registry version once registered.
    framework, architecture, task : str
        From the training configuration (``task`` as given: ``audio_classification`` stays).
    metrics : dict
        Validation metrics: ``accuracy``, ``f1_weighted``, ``log_loss`` (classification) or
        ``rmse``, ``mae``, ``r2`` (regression), plus ``n_train`` and ``n_validation``.
    training : dict
        ``history`` (per-epoch or per-round validation losses), ``best_iteration``,
        ``duration_s``, ``device``, ``seed``...
    signature : dict
        ``{"inputs": {"dtype", "shape"}, "classes": [...] or None}``.
    fingerprint : str
        sha256 of the training features and labels.
    reference : dict or None
        The version's reference sample, for validation and drift monitoring: ``x`` (up to
        :data:`REFERENCE_ROWS` training rows, float32), ``predictions`` (the model's outputs on
        them: class indices or values) and, where known, ``y``. Stored as ``reference.npz``
        beside the weights (its sha256 in the manifest); :attr:`reference_fingerprint` is the
        sha256 of its arrays.
    """

    def __init__(
        self,
        adapter: Adapter,
        *,
        name: str,
        task: str,
        config: dict[str, Any],
        codec: LabelCodec | None,
        metrics: dict[str, Any],
        training: dict[str, Any],
        signature: dict[str, Any],
        fingerprint: str,
        holdout: tuple[np.ndarray, np.ndarray] | None = None,
        created_at: float | None = None,
        reference: dict[str, np.ndarray] | None = None,
    ) -> None:
        self.adapter = adapter
        self.name = name
        self.version: int | None = None
        self.task = task
        self.config = config
        self.codec = codec
        self.metrics = metrics
        self.training = training
        self.signature = signature
        self.fingerprint = fingerprint
        self.holdout = holdout
        self.created_at = time.time() if created_at is None else created_at
        self.reference = reference

    def init_kwargs(self) -> dict[str, Any]:
        """The constructor's arguments that rebuild this handle (a subclass's ``cls(**...)``
        wraps the same trained model; ``version`` is set apart, after registration)."""
        return {
            "adapter": self.adapter,
            "name": self.name,
            "task": self.task,
            "config": self.config,
            "codec": self.codec,
            "metrics": self.metrics,
            "training": self.training,
            "signature": self.signature,
            "fingerprint": self.fingerprint,
            "holdout": self.holdout,
            "created_at": self.created_at,
            "reference": self.reference,
        }

    @property
    def framework(self) -> str:
        return self.adapter.framework

    @property
    def architecture(self) -> str:
        return self.adapter.architecture

    @property
    def classes(self) -> list[Any] | None:
        return None if self.codec is None else list(self.codec.classes)

    def __repr__(self) -> str:
        v = "" if self.version is None else f" v{self.version}"
        return (
            f"<ModelHandle {self.name}{v} {self.framework}/{self.architecture} "
            f"{self.task} metrics={self.metrics}>"
        )

    # -- inference -------------------------------------------------------------------------------
    def _features(self, features: Any) -> np.ndarray:
        x = as_features(features, min_ndim=1 + len(self.adapter.input_shape))
        check_signature(x, self.signature["inputs"], name="features")
        return x

    def predict(self, features: Any) -> np.ndarray:
        """Class labels (as given in training) or regression values, one per sample."""
        out = self.adapter.predict(self._features(features))
        return self.codec.decode(out) if self.codec is not None else out

    def predict_proba(self, features: Any) -> np.ndarray:
        """Class probabilities ``(n, n_classes)``, columns in the order of :attr:`classes`."""
        return self.adapter.predict_proba(self._features(features))

    def set_reference(
        self, features: Any, labels: Any = None, *, max_rows: int = REFERENCE_ROWS, seed: int = 0
    ) -> dict[str, np.ndarray]:
        """Keep a reference sample of ``features`` (up to ``max_rows`` rows drawn without
        replacement, seeded) with this model's predictions on them and ``labels`` where given.

        Raises
        ------
        ParameterError
            Features of the wrong shape or with NaN/inf, labels of another length.
        """
        x = self._features(features)
        if len(x) == 0:
            raise ParameterError("the reference sample needs at least one row")
        flat = x.reshape(len(x), -1)
        if not np.isfinite(flat).all():
            r = int(np.argwhere(~np.isfinite(flat))[0][0])
            raise ParameterError(f"the reference features hold NaN or inf (row {r})")
        y = None if labels is None else np.asarray(labels)
        if y is not None and len(y) != len(x):
            raise ParameterError(f"reference labels have {len(y)} rows, the features {len(x)}")
        if int(max_rows) < 1:
            raise ParameterError(f"max_rows={max_rows!r}: expected a positive count")
        if len(x) > max_rows:
            keep = np.sort(np.random.default_rng(seed).choice(len(x), int(max_rows), False))
            x = x[keep]
            y = None if y is None else y[keep]
        raw = self.adapter.predict(x)
        ref = {"x": np.ascontiguousarray(x, dtype=np.float32), "predictions": np.asarray(raw)}
        if y is not None:
            ref["y"] = y.astype(str) if y.dtype == object else y
        self.reference = ref
        return ref

    @property
    def reference_fingerprint(self) -> str | None:
        """sha256 of the reference sample's arrays (names, dtypes, shapes and bytes)."""
        if self.reference is None:
            return None
        import hashlib

        h = hashlib.sha256()
        for key in sorted(self.reference):
            arr = np.ascontiguousarray(self.reference[key])
            h.update(f"{key}:{arr.dtype.str}:{arr.shape};".encode())
            h.update(arr.tobytes())
        return h.hexdigest()

    # -- persistence -------------------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        """Everything but the weights, as JSON-friendly values."""
        return {
            "format_version": FORMAT_VERSION,
            "name": self.name,
            "framework": self.framework,
            "architecture": self.architecture,
            "task": self.task,
            "config": self.config,
            "classes": self.classes,
            "metrics": self.metrics,
            "training": self.training,
            "signature": self.signature,
            "fingerprint": self.fingerprint,
            "reference_fingerprint": self.reference_fingerprint,
            "adapter": self.adapter.spec(),
            "created_at": self.created_at,
        }

    def write_folder(self, folder: Path, *, allow_pickle: bool = False) -> dict[str, str]:
        """Write the model into an existing empty folder; returns its sha256 manifest."""
        (folder / _MODEL_DIR).mkdir()
        self.adapter.save(folder / _MODEL_DIR, allow_pickle=allow_pickle)
        (folder / _META).write_text(
            json.dumps(self.describe(), indent=1, sort_keys=True, default=_json_default)
        )
        if self.holdout is not None:
            x, y = self.holdout
            y_arr = np.asarray(y)
            if y_arr.dtype == object:
                y_arr = y_arr.astype(str)
            np.savez(folder / _HOLDOUT, x=x, y=y_arr)
        if self.reference is not None:
            np.savez(folder / _REFERENCE, **self.reference)
        return write_manifest(folder)

    def save(
        self, path: str | Path, *, overwrite: bool = False, allow_pickle: bool = False
    ) -> Path:
        """Save into folder ``path`` atomically (written beside it, then renamed into place).

        Formats: skops (scikit-learn), UBJSON (XGBoost), text (LightGBM), safetensors plus JSON
        (PyTorch), Keras' ``.keras``, ``save_pretrained`` (transformers); a sha256 manifest of
        every file is written beside them and checked by :meth:`load`.
        """
        path = Path(path)
        with atomic_folder(path, overwrite=overwrite) as tmp:
            self.write_folder(tmp, allow_pickle=allow_pickle)
        return path

    @classmethod
    def load(
        cls,
        path: str | Path,
        *,
        allow_pickle: bool = False,
        manifest: dict[str, str] | None = None,
        device: str | None = None,
    ) -> ModelHandle:
        """Load a folder written by :meth:`save`, after checking every file's sha256.

        Raises
        ------
        ArtifactIntegrityError
            If a file was changed, removed or added since it was saved, or if the model needs
            pickle and ``allow_pickle`` is False.
        """
        folder = Path(path)
        if not folder.is_dir():
            raise ParameterError(f"{folder} is not a saved model folder")
        check_manifest(folder, manifest)
        meta = json.loads((folder / _META).read_text())
        if meta.get("format_version") != FORMAT_VERSION:
            raise ParameterError(
                f"{folder} has format_version={meta.get('format_version')!r}; this version of "
                f"ml_utilities reads {FORMAT_VERSION}"
            )
        adapter = adapter_class(meta["adapter"]["framework"]).from_spec(meta["adapter"])
        if device is not None and hasattr(adapter, "device"):
            from .adapters.torch import torch_device

            adapter.device = torch_device(device)
        adapter.load_files(folder / _MODEL_DIR, allow_pickle=allow_pickle)
        holdout = None
        if (folder / _HOLDOUT).is_file():
            with np.load(folder / _HOLDOUT, allow_pickle=False) as data:
                holdout = (data["x"], data["y"])
        reference = None
        if (folder / _REFERENCE).is_file():
            with np.load(folder / _REFERENCE, allow_pickle=False) as data:
                reference = {k: data[k] for k in data.files}
        codec = LabelCodec(meta["classes"]) if meta["classes"] is not None else None
        sig = meta["signature"]
        sig["inputs"]["shape"] = list(sig["inputs"]["shape"])
        return cls(
            adapter,
            name=meta["name"],
            task=meta["task"],
            config=meta["config"],
            codec=codec,
            metrics=meta["metrics"],
            training=meta["training"],
            signature=sig,
            fingerprint=meta["fingerprint"],
            holdout=holdout,
            created_at=meta["created_at"],
            reference=reference,
        )


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
