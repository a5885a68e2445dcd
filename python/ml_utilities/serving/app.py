"""The HTTP face of the PredictionService: a FastAPI (ASGI) app, served by ``ml-utilities serve``.

Routes
------
``POST /v1/models/{name}:predict``
    Body ``{"features": [[...], ...], "options": {...}, "version": 3 | "champion"}``
    (``"instances"`` is accepted for ``"features"``); answers ``predict_batch``'s dictionary.
    ``name`` may carry a version: ``genre:3`` is not possible in this path, use ``genre@3`` or
    ``genre@champion``.
``GET /health``
    Liveness: 200 while the process serves.
``GET /ready``
    Readiness: 200 once the registry answers (and Redis, when configured), else 503.
``GET /metrics``
    Prometheus text format (:mod:`ml_utilities.serving.metrics`).
``GET /v1/models``
    Models held in memory, with their backend, device and batcher counters.

Errors are JSON ``{"error": <class>, "detail": <reason>}``: 404 unknown model, version or alias;
422 wrong feature count, NaN or inf, bad shape; 400 other bad parameters; 503 overloaded
(with ``Retry-After``); 504 timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from ..exceptions import ParameterError
from .errors import ModelInputError, Overloaded, RequestTimeoutError, ServingError
from .metrics import render

__all__ = ["create_app"]

logger = logging.getLogger(__name__)


def create_app(service: Any, *, close_service: bool = True) -> Any:
    """A FastAPI app serving ``service`` (a :class:`PredictionService`).

    ``close_service``: drain and close the service when the app shuts down.
    """
    from ..models.errors import ModelNotFoundError

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        yield
        if close_service:
            await service.close()

    app = FastAPI(title="ml_utilities prediction service", lifespan=lifespan)
    app.state.service = service

    def error(status: int, err: BaseException, headers: dict[str, str] | None = None) -> Any:
        return JSONResponse(
            {"error": type(err).__name__, "detail": str(err)}, status_code=status, headers=headers
        )

    @app.exception_handler(ModelNotFoundError)
    async def _not_found(request: Request, err: ModelNotFoundError) -> Any:
        return error(404, err)

    @app.exception_handler(ModelInputError)
    async def _bad_input(request: Request, err: ModelInputError) -> Any:
        return error(422, err)

    @app.exception_handler(ParameterError)
    async def _bad_parameter(request: Request, err: ParameterError) -> Any:
        return error(400, err)

    @app.exception_handler(Overloaded)
    async def _overloaded(request: Request, err: Overloaded) -> Any:
        return error(503, err, {"Retry-After": "1"})

    @app.exception_handler(RequestTimeoutError)
    async def _timeout(request: Request, err: RequestTimeoutError) -> Any:
        return error(504, err)

    @app.exception_handler(ServingError)
    async def _serving(request: Request, err: ServingError) -> Any:
        return error(500, err)

    @app.post("/v1/models/{name}:predict")
    async def predict(name: str, request: Request) -> Any:
        try:
            body = await request.json()
        except ValueError as err:
            raise ParameterError(f"the request body is not JSON ({err})") from None
        if not isinstance(body, dict):
            raise ParameterError("the request body must be a JSON object with 'features'")
        unknown = sorted(set(body) - {"features", "instances", "options", "version"})
        if unknown:
            raise ParameterError(
                f"unknown field(s) {unknown}; accepted: features, options, version"
            )
        features = body.get("features", body.get("instances"))
        if features is None:
            raise ModelInputError("the request has no 'features' (a list of rows)")
        return await service.predict_batch(
            model_name=name,
            features=features,
            options=body.get("options"),
            version=body.get("version"),
        )

    @app.get("/v1/models")
    async def models() -> Any:
        return {"models": service.loaded_models()}

    @app.get("/health")
    async def health() -> Any:
        return {"status": "ok"}

    @app.get("/ready")
    async def ready() -> Any:
        try:
            await asyncio.to_thread(_check_ready, service)
        except Exception as err:  # noqa: BLE001 - readiness reports any failure
            return JSONResponse({"status": "not ready", "detail": str(err)}, status_code=503)
        return {"status": "ready"}

    @app.get("/metrics")
    async def prometheus() -> Any:
        return Response(render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    return app


def _check_ready(service: Any) -> None:
    service.registry.list_models()
    cache = service._results
    if cache is not None and getattr(cache, "kind", "") == "redis":
        cache.ping()
