"""ModelManager: the specification's entry point to train, register, load and deploy models."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from .errors import ParameterError
from .handle import ModelHandle

__all__ = ["ModelManager"]

logger = logging.getLogger(__name__)


class ModelManager:
    """Train models of any supported framework from one configuration, version them, deploy them.

    Every public method is a coroutine (as in the specification) with a synchronous twin of the
    same name ending in ``_sync``; the coroutines run the work in a worker thread
    (:func:`asyncio.to_thread`) so the event loop stays free.

    Parameters
    ----------
    registry : ModelRegistry, optional
        Where models and deployments are recorded. Default: built on first use from
        ``registry_url`` and ``artifact_root``.
    registry_url : str, optional
        SQLAlchemy URL of the registry database (default SQLite under ``ML_UTILITIES_HOME``;
        ``postgresql+psycopg://user@host/db`` for PostgreSQL).
    artifact_root : str or pathlib.Path, optional
        Folder or fsspec URL of the artifacts (default ``$ML_UTILITIES_HOME/artifacts``).
    storage_options : dict, optional
        fsspec options of a remote artifact store.

    Examples
    --------
    >>> manager = ModelManager()
    >>> model = await manager.train_model(  # doctest: +SKIP
    ...     features=training_features, labels=training_labels,
    ...     config={"framework": "pytorch", "architecture": "transformer",
    ...             "task": "audio_classification",
    ...             "hyperparameters": {"hidden_size": 768, "num_layers": 12,
    ...                                 "num_heads": 12, "dropout": 0.1}},
    ...     validation_split=0.2)
    """

    def __init__(
        self,
        registry: Any = None,
        *,
        registry_url: str | None = None,
        artifact_root: str | Path | None = None,
        storage_options: dict[str, Any] | None = None,
    ) -> None:
        if registry is not None and (registry_url or artifact_root):
            raise ParameterError("pass either registry or registry_url/artifact_root, not both")
        self._registry = registry
        self._registry_args = (registry_url, artifact_root, storage_options)

    @property
    def registry(self) -> Any:
        """The :class:`ModelRegistry` (opened on first use)."""
        if self._registry is None:
            from .registry import ModelRegistry

            url, root, options = self._registry_args
            self._registry = ModelRegistry(url, root, storage_options=options)
        return self._registry

    # -- training ------------------------------------------------------------------------------
    def train_model_sync(
        self, features: Any, labels: Any, config: dict[str, Any], validation_split: float = 0.2
    ) -> ModelHandle:
        """Train a model; the synchronous twin of :meth:`train_model`."""
        from .training import train

        return train(features, labels, config, validation_split)

    async def train_model(
        self, features: Any, labels: Any, config: dict[str, Any], validation_split: float = 0.2
    ) -> ModelHandle:
        """Train a model from a configuration dictionary, with early stopping on a validation split.

        Parameters
        ----------
        features : array-like, float
            ``(n, n_features)`` for tabular models and ``mlp``; ``(n, n_mels, n_frames)`` (or
            ``(n, channels, n_mels, n_frames)``) for ``cnn``; ``(n, n_frames, n_features)`` for
            ``transformer`` and the transformers adapter's Audio Spectrogram Transformer.
        labels : array-like, shape (n,)
            Class labels of any kind (classification) or numbers (regression).
        config : dict
            ``framework`` (``sklearn``, ``xgboost``, ``lightgbm``, ``pytorch``, ``tensorflow``,
            ``transformers``), ``architecture``, ``task`` (``classification``,
            ``regression``, ``audio_classification``), ``hyperparameters`` (a dict), and
            optionally ``name``, ``seed`` (0), ``early_stopping_patience`` (10, the
            specification's ``ML_CONFIG``; 0 disables it), ``device`` (``auto``/``cpu``/
            ``cuda``) and ``mixed_precision`` (True: bf16/fp16 autocast on CUDA only).
        validation_split : float in (0, 1)
            Share of the rows held out (stratified for classification) for early stopping and
            the returned metrics.

        Returns
        -------
        ModelHandle
            With ``metrics`` measured on the validation rows.

        Raises
        ------
        ParameterError
            For a bad configuration, shapes or labels; the message names the bad value.
        BackendUnavailableError
            If the framework's package is not installed.
        """
        return await asyncio.to_thread(
            self.train_model_sync, features, labels, config, validation_split
        )

    # -- registry --------------------------------------------------------------------------------
    def register_model_sync(
        self,
        model: ModelHandle,
        *,
        name: str | None = None,
        metadata: dict[str, Any] | None = None,
        aliases: list[str] | tuple[str, ...] = (),
        allow_pickle: bool = False,
    ) -> Any:
        """Register ``model`` as the next version of ``name`` (:meth:`ModelRegistry.register`)."""
        return self.registry.register(
            model, name=name, metadata=metadata, aliases=aliases, allow_pickle=allow_pickle
        )

    async def register_model(
        self,
        model: ModelHandle,
        *,
        name: str | None = None,
        metadata: dict[str, Any] | None = None,
        aliases: list[str] | tuple[str, ...] = (),
        allow_pickle: bool = False,
    ) -> Any:
        """Coroutine of :meth:`register_model_sync`; returns a :class:`ModelVersion`."""
        return await asyncio.to_thread(
            self.register_model_sync,
            model,
            name=name,
            metadata=metadata,
            aliases=aliases,
            allow_pickle=allow_pickle,
        )

    def load_model_sync(
        self,
        name: str,
        version: int | str | None = None,
        *,
        allow_pickle: bool = False,
        device: str | None = None,
    ) -> ModelHandle:
        """Load ``name`` at ``version`` (int, alias such as ``"champion"``, or latest)."""
        return self.registry.load(name, version, allow_pickle=allow_pickle, device=device)

    async def load_model(
        self,
        name: str,
        version: int | str | None = None,
        *,
        allow_pickle: bool = False,
        device: str | None = None,
    ) -> ModelHandle:
        """Coroutine of :meth:`load_model_sync`."""
        return await asyncio.to_thread(
            self.load_model_sync, name, version, allow_pickle=allow_pickle, device=device
        )

    # -- deployment ------------------------------------------------------------------------------
    def deploy_model_sync(self, model: ModelHandle, deployment_config: dict[str, Any]) -> Any:
        """Deploy ``model``; the synchronous twin of :meth:`deploy_model`."""
        from .deploy import deploy

        return deploy(self.registry, model, deployment_config)

    async def deploy_model(self, model: ModelHandle, deployment_config: dict[str, Any]) -> Any:
        """Export, verify, optimise and time a model, then record the deployment.

        Steps: register the model if it is not yet (so a deployment always names a version);
        export it to ONNX (skl2onnx, onnxmltools, ``torch.onnx``); check the export against the
        original on the held-out rows (max relative error <= ``tolerance``, 1e-5); quantise as
        asked (``int8``: ONNX Runtime's dynamic quantizer, static QDQ under TensorRT; ``fp16``)
        and measure its accuracy against the original; measure p50/p99 latency at
        ``batch_size``; refuse if p99 > ``max_latency_ms``. Every attempt is recorded in the
        registry (deployed or refused, with the reason and the measurements).

        Parameters
        ----------
        model : ModelHandle
        deployment_config : dict
            ``optimization``: ``"onnxruntime"`` (default; CUDA when available, else CPU) or
            ``"tensorrt"`` (ONNX Runtime's TensorRT provider, never a silent fallback);
            ``quantization``: None, ``"int8"`` or ``"fp16"``; ``batch_size`` (default
            ``ML_UTILITIES_BATCH_SIZE``); ``max_latency_ms`` (default
            ``ML_UTILITIES_MAX_LATENCY_MS``); optionally ``tolerance`` (1e-5),
            ``max_accuracy_drop`` (0.02), ``latency_runs`` (200), ``opset``,
            ``validation_data`` (rows to verify on, for models without held-out rows).

        Returns
        -------
        DeployedModel
            With ``report`` (verification, accuracy after optimisation, latency) and
            ``deployment`` (the registry record).

        Raises
        ------
        BackendUnavailableError
            ``optimization='tensorrt'`` where TensorRT cannot run; the message names what is
            missing (the refusal is recorded).
        DeploymentRefusedError
            p99 latency above ``max_latency_ms`` (message and ``report`` hold the measured
            p50/p99), or quantisation costing more than ``max_accuracy_drop``.
        ExportVerificationError
            The ONNX export does not reproduce the original within ``tolerance``.
        """
        return await asyncio.to_thread(self.deploy_model_sync, model, deployment_config)
