"""PredictionService replicas on Ray Serve (the ``ray`` extra): scale out behind one endpoint.

Each replica is a Ray actor process holding its own :class:`PredictionService` (its model
cache and native dynamic batcher: concurrent rows sent to one replica share model calls).
Ray Serve's HTTP proxy spreads requests over the replicas, on one machine or a cluster; point
every replica at the same registry (``registry_url``, ``artifact_root``) and, to share cached
results, at the same Redis (``config={"redis_url": ...}``).

The replicas answer the HTTP routes of ``ml-utilities serve`` (``POST
/v1/models/{name}:predict``, ``GET /health``, ``GET /ready``, ``GET /v1/models``, ``GET
/metrics``: each replica's own registry), with the functions that serve answers them
(:func:`ml_utilities.serving.routes.handle`), so with the same documents and statuses, and expose
``predict_batch`` / ``predict`` / ``loaded_models`` to Python callers through a
``DeploymentHandle``.

Examples
--------
>>> import ray
>>> from ray import serve
>>> from ml_utilities.serving.ray_serve import prediction_app
>>> ray.init(num_cpus=4)                                            # doctest: +SKIP
>>> serve.start(http_options={"host": "0.0.0.0", "port": 8000})     # doctest: +SKIP
>>> app = prediction_app(registry_url="postgresql://.../registry",
...                      artifact_root="s3://models/artifacts",
...                      config={"batch_size": 64, "max_latency_ms": 5},
...                      num_replicas=4)                            # doctest: +SKIP
>>> handle = serve.run(app, name="predictions", route_prefix="/")   # doctest: +SKIP
>>> handle.predict_batch.remote("genre@champion", rows).result()    # doctest: +SKIP
"""

from __future__ import annotations

import os
from typing import Any

from .._validators import integer

__all__ = ["PredictionReplica", "prediction_app", "prediction_deployment"]


def _serve() -> Any:
    from ..models.adapters.base import require

    require("ray", purpose="Ray Serve replicas of the PredictionService")
    try:
        from ray import serve
    except ImportError as err:
        raise ImportError(
            f"ray.serve cannot be imported ({err}): install the extra with "
            "`pip install 'ml_utilities[ray]'` (ray[serve])"
        ) from err
    return serve


class PredictionReplica:
    """One Ray Serve replica: a :class:`PredictionService` on the given registry.

    Parameters
    ----------
    registry_url : str, optional
        SQLAlchemy URL of the model registry (default: the ``ML_UTILITIES_HOME`` one).
    artifact_root : str, optional
        Folder or fsspec URL of the artifacts.
    config : dict, optional
        The service's configuration (:meth:`PredictionService.configure`).
    """

    def __init__(
        self,
        registry_url: str | None = None,
        artifact_root: str | None = None,
        config: dict[str, Any] | None = None,
    ) -> None:
        from ..models import ModelManager
        from .service import PredictionService

        try:  # small serving batches run fastest on one intra-op thread per process
            import torch

            torch.set_num_threads(1)
        except ImportError:  # pragma: no cover - torch is optional
            pass
        manager = ModelManager(registry_url=registry_url, artifact_root=artifact_root)
        self.service = PredictionService(manager, config=dict(config or {}))
        self._pid = str(os.getpid()).encode()

    async def __call__(self, request: Any) -> Any:
        """The HTTP routes of ``ml-utilities serve`` (a Starlette request from Ray's proxy),
        answered by :func:`ml_utilities.serving.routes.handle`."""
        from starlette.responses import Response

        from .routes import handle

        answer = handle(self.service, request.method, request.url.path, await request.body())
        if not isinstance(answer, tuple):
            answer = await answer
        status, payload, headers, content_type = answer
        out = {k.decode(): v.decode() for k, v in headers or []}
        out["x-mlu-replica"] = self._pid.decode()
        return Response(payload, status_code=status, media_type=content_type.decode(), headers=out)

    async def predict_batch(
        self,
        model_name: str,
        features: Any,
        options: dict[str, bool] | None = None,
        version: int | str | None = None,
    ) -> dict[str, Any]:
        """:meth:`PredictionService.predict_batch` on this replica."""
        return await self.service.predict_batch(model_name, features, options, version=version)

    async def predict(
        self,
        model_name: str,
        features: Any,
        options: dict[str, bool] | None = None,
        version: int | str | None = None,
    ) -> dict[str, Any]:
        """:meth:`PredictionService.predict` on this replica."""
        return await self.service.predict(model_name, features, options, version=version)

    def loaded_models(self) -> list[dict[str, Any]]:
        """The models this replica holds, with its process id."""
        return [{**m, "replica_pid": os.getpid()} for m in self.service.loaded_models()]

    def check_health(self) -> None:
        """Ray Serve's health check: the registry answers (raises otherwise)."""
        self.service.registry.list_models()

    def __del__(self) -> None:
        service = getattr(self, "service", None)
        if service is not None:
            service.close_sync()


def prediction_deployment(
    *,
    num_replicas: int = 1,
    ray_actor_options: dict[str, Any] | None = None,
    max_ongoing_requests: int = 256,
    name: str = "PredictionService",
) -> Any:
    """The Ray Serve ``Deployment`` of :class:`PredictionReplica`.

    ``max_ongoing_requests`` per replica must exceed the batch size for batches to form (Ray's
    default, 5, would cap every batch at 5 rows).
    """
    for key, value in (
        ("num_replicas", num_replicas),
        ("max_ongoing_requests", max_ongoing_requests),
    ):
        integer(key, value, minimum=1)
    serve = _serve()
    return serve.deployment(
        PredictionReplica,
        name=name,
        num_replicas=num_replicas,
        ray_actor_options=dict(ray_actor_options or {"num_cpus": 1}),
        max_ongoing_requests=max_ongoing_requests,
    )


def prediction_app(
    registry_url: str | None = None,
    artifact_root: str | None = None,
    config: dict[str, Any] | None = None,
    **deployment_options: Any,
) -> Any:
    """A Ray Serve application (``serve.run(app)``) of PredictionService replicas.

    Parameters
    ----------
    registry_url, artifact_root, config
        For each :class:`PredictionReplica`.
    **deployment_options
        ``num_replicas``, ``ray_actor_options``, ``max_ongoing_requests``, ``name``
        (:func:`prediction_deployment`).

    Raises
    ------
    ParameterError
        A bad configuration key or value (checked here, before any replica starts).
    """
    from .config import ServiceConfig

    ServiceConfig().updated(dict(config or {}))
    return prediction_deployment(**deployment_options).bind(registry_url, artifact_root, config)
