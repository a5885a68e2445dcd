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
422 wrong feature count, NaN or inf, bad shape; 400 a body that is not JSON (or nests too
deeply to be read), a value in the rows that is not a number (``"1.5"``, ``true``, ``null``:
``FeatureValueError``, naming the value and its row and feature) and other bad parameters;
503 overloaded (with ``Retry-After``); 504 timeout; 500 ``ArtifactIntegrityError``, a model
whose stored files fail their sha256 check (the server's copy is damaged or was tampered
with: the client can do nothing about it, and the model is not loaded) and other errors of
the service.

The predict route is the hot path: :class:`ServingApp` answers it in its own ``__call__``,
before FastAPI's middleware stack (no request model, no ``jsonable_encoder``), with ``orjson``
for the body and the answer when it is installed; the common request (one row, no options)
takes :meth:`PredictionService.predict_json`, whose answers are encoded once per batch. The
other routes go through FastAPI. ``ml-utilities serve`` runs this app behind its HTTP front end
(:mod:`ml_utilities.serving.frontend`), which answers the predict route itself, without the ASGI
layer (with :func:`start_predict` where the service's callback path takes the request, else
:func:`predict_response`), and hands every other request to the app.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from ..exceptions import ParameterError
from ._json import dumps as _dumps
from ._json import loads as _loads
from .errors import (
    FeatureValueError,
    ModelInputError,
    Overloaded,
    RequestTimeoutError,
    ServingError,
)
from .metrics import render

__all__ = [
    "ServingApp",
    "create_app",
    "error_response",
    "predict_response",
    "start_predict",
    "status_of",
]

logger = logging.getLogger(__name__)


def create_app(service: Any, *, close_service: bool = True) -> Any:
    """A FastAPI app (a :class:`ServingApp`) serving ``service`` (a :class:`PredictionService`).

    ``close_service``: drain and close the service when the app shuts down.
    """
    from ..models.errors import ArtifactIntegrityError, ModelNotFoundError

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        yield
        if close_service:
            await service.close()

    app = ServingApp(service, title="ml_utilities prediction service", lifespan=lifespan)
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

    @app.exception_handler(FeatureValueError)
    async def _bad_value(request: Request, err: FeatureValueError) -> Any:
        return error(400, err)

    @app.exception_handler(ParameterError)
    async def _bad_parameter(request: Request, err: ParameterError) -> Any:
        return error(400, err)

    @app.exception_handler(ArtifactIntegrityError)
    async def _damaged(request: Request, err: ArtifactIntegrityError) -> Any:
        _status, payload, _headers = error_response(err)  # type: ignore[misc]
        return Response(payload, status_code=500, media_type="application/json")

    @app.exception_handler(Overloaded)
    async def _overloaded(request: Request, err: Overloaded) -> Any:
        return error(503, err, {"Retry-After": "1"})

    @app.exception_handler(RequestTimeoutError)
    async def _timeout(request: Request, err: RequestTimeoutError) -> Any:
        return error(504, err)

    @app.exception_handler(ServingError)
    async def _serving(request: Request, err: ServingError) -> Any:
        return error(500, err)

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


_PREFIX = "/v1/models/"
_SUFFIX = ":predict"
_FIELDS = frozenset(("features", "instances", "options", "version"))
#: exception class -> HTTP status of its JSON answer (the most derived class registered wins)
_STATUS: dict[type[BaseException], int] = {
    FeatureValueError: 400,
    ModelInputError: 422,
    ParameterError: 400,
    Overloaded: 503,
    RequestTimeoutError: 504,
    ServingError: 500,
}
_JSON_HEADERS = [(b"content-type", b"application/json")]

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class ServingApp(FastAPI):
    """The FastAPI app of :func:`create_app`, which answers ``POST /v1/models/{name}:predict``
    itself, ahead of FastAPI's routing and middleware; every other request goes to FastAPI.

    Parameters
    ----------
    service : PredictionService
        Whose ``predict_json`` / ``predict_batch`` answer.
    **kwargs
        For :class:`fastapi.FastAPI`.
    """

    def __init__(self, service: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            if path.startswith(_PREFIX) and path.endswith(_SUFFIX):
                name = path[len(_PREFIX) : -len(_SUFFIX)]
                if name and "/" not in name:
                    if scope["method"] == "POST":
                        await self.predict(name, receive, send)
                    else:
                        doc = {"detail": "Method Not Allowed"}
                        await _answer(send, 405, _dumps(doc), [(b"allow", b"POST")])
                    return
        await super().__call__(scope, receive, send)

    async def predict(self, name: str, receive: Receive, send: Send) -> None:
        message = await receive()
        if message["type"] != "http.request":  # the client went away
            return
        body = message.get("body", b"")
        while message.get("more_body", False):
            message = await receive()
            if message["type"] != "http.request":
                return
            body += message.get("body", b"")
        status, payload, headers = await predict_response(self.service, name, body)
        await _answer(send, status, payload, headers)


async def predict_response(
    service: Any, name: str, body: bytes
) -> tuple[int, bytes, list[tuple[bytes, bytes]] | None]:
    """``(status, JSON payload, extra headers)`` answering a predict request's ``body`` for
    model ``name`` (the predict route of :class:`ServingApp`, and of the Ray Serve replicas).
    Errors of the service become their status with ``{"error", "detail"}``; any other
    exception propagates (a 500 from the server)."""
    try:
        doc = _decode(body)
        payload = await service.predict_json(name, doc)
        if payload is None:
            payload = _dumps(await service.predict_batch(**_arguments(name, doc)))
    except Exception as err:  # noqa: BLE001 - mapped to its status, or re-raised
        answer = error_response(err, name)
        if answer is None:
            raise
        return answer
    return 200, payload, None


def error_response(
    err: BaseException, model_name: str | None = None
) -> tuple[int, bytes, list[tuple[bytes, bytes]] | None] | None:
    """``(status, JSON payload, extra headers)`` of a service error (``{"error", "detail"}``,
    with ``Retry-After`` on a 503), or None for an exception that is not one (a 500 from the
    server). A 500 is logged; the detail of an ``ArtifactIntegrityError`` (a model whose
    stored files fail their sha256 check, for ``model_name``) names the model and the problem
    but not the server's paths, which only the log has."""
    status = status_of(err)
    if status is None:
        return None
    detail = str(err)
    if status == 500:
        from ..models.errors import ArtifactIntegrityError

        logger.error("a predict request failed: %s: %s", type(err).__name__, err)
        if isinstance(err, ArtifactIntegrityError):
            model = "the model" if model_name is None else f"model {model_name!r}"
            detail = (
                f"{model} cannot be loaded: its stored files fail their integrity check "
                "(sha256); the server log names the file"
            )
    headers = [(b"retry-after", b"1")] if status == 503 else None
    return status, _dumps({"error": type(err).__name__, "detail": detail}), headers


def start_predict(
    service: Any, name: str, body: bytes, callback: Callable[[bytes | None, Any], None]
) -> bool:
    """Begin answering a predict request without a coroutine, where the service's
    ``predict_json_nowait`` takes it: True, and then ``callback(payload, None)`` with the
    answer of :func:`predict_response` for a 200, ``callback(None, err)`` with the exception
    whose answer :func:`error_response` gives (or that :func:`predict_response` would
    raise), or ``callback(None, None)``: answer it with :func:`predict_response` after all.
    False where :func:`predict_response` must answer it (a body that is not strict JSON
    included). An error at submission is raised here."""
    nowait = getattr(service, "predict_json_nowait", None)
    if nowait is None:
        return False
    try:
        doc = _loads(body)
    except (ValueError, RecursionError):  # predict_response says why
        return False
    return bool(nowait(name, doc, callback))


_status_by_class: dict[type[BaseException], int] = {}


def status_of(err: BaseException) -> int | None:
    """The HTTP status of a service error (the most derived class registered wins), or None."""
    if not _status_by_class:
        from ..models.errors import ArtifactIntegrityError, ModelNotFoundError

        _status_by_class.update({ModelNotFoundError: 404, ArtifactIntegrityError: 500, **_STATUS})
    for cls in type(err).__mro__:
        status = _status_by_class.get(cls)
        if status is not None:
            return status
    return None


def _decode(body: bytes) -> Any:
    """The request body as JSON."""
    try:
        return _loads(body)
    except (ValueError, RecursionError):
        # orjson is strict JSON; the standard library also reads NaN and Infinity, which then
        # fail validation with the row and feature named (422) rather than as "not JSON"
        try:
            return json.loads(body)
        except ValueError as err:
            raise ParameterError(f"the request body is not JSON ({err})") from None
        except RecursionError:  # the standard library's parser recurses per nesting level
            raise ParameterError(
                "the request body nests arrays or objects too deeply to be read"
            ) from None


def _arguments(name: str, doc: Any) -> dict[str, Any]:
    """``predict_batch``'s keyword arguments from the decoded request body."""
    if not isinstance(doc, dict):
        raise ParameterError("the request body must be a JSON object with 'features'")
    if not _FIELDS.issuperset(doc):
        unknown = sorted(set(doc) - _FIELDS)
        raise ParameterError(f"unknown field(s) {unknown}; accepted: features, options, version")
    features = doc.get("features", doc.get("instances"))
    if features is None:
        raise ModelInputError("the request has no 'features' (a list of rows)")
    return {
        "model_name": name,
        "features": features,
        "options": doc.get("options"),
        "version": doc.get("version"),
    }


async def _answer(
    send: Send, status: int, payload: bytes, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    head = [*_JSON_HEADERS, (b"content-length", b"%d" % len(payload))]
    if headers:
        head.extend(headers)
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": payload})
