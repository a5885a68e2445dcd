"""The prediction service as an ASGI app, for uvicorn or any ASGI server (or to mount in one's
own app): :func:`create_app`.

``ml-utilities serve`` does not go through it: its HTTP/1.1 front end
(:mod:`ml_utilities.serving.frontend`) calls the routes itself. Both answer with the same
functions, those of :mod:`ml_utilities.serving.routes` (the routes, documents, statuses and
errors are listed there), so the bodies, statuses and headers are the same byte for byte.

Examples
--------
>>> from ml_utilities.serving import PredictionService, create_app
>>> app = create_app(PredictionService())          # doctest: +SKIP
>>> import uvicorn; uvicorn.run(app, port=8000)    # doctest: +SKIP
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from .routes import handle

__all__ = ["ServingApp", "create_app"]

logger = logging.getLogger(__name__)

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def create_app(service: Any, *, close_service: bool = True) -> ServingApp:
    """The ASGI app (a :class:`ServingApp`) serving ``service`` (a :class:`PredictionService`).

    ``close_service``: drain and close the service at the app's lifespan shutdown (and when
    :class:`~ml_utilities.serving.frontend.FrontEnd` serving it shuts down).
    """
    return ServingApp(service, close_service=close_service)


class ServingApp:
    """An ASGI 3 application: each HTTP request is answered by
    :func:`ml_utilities.serving.routes.handle`; the lifespan shutdown closes the service when
    ``close_service``. A WebSocket is refused.

    Parameters
    ----------
    service : PredictionService
        Whose routes it serves (:attr:`service`).
    close_service : bool
        Drain and close ``service`` at shutdown (default True).
    """

    def __init__(self, service: Any, *, close_service: bool = True) -> None:
        self.service = service
        self.close_service = close_service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        elif kind == "websocket":
            await send({"type": "websocket.close", "code": 1000})

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = b""
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
        answer = handle(self.service, scope["method"], _route_path(scope), body)
        if type(answer) is not tuple:
            answer = await answer
        status, payload, extra, content_type = answer  # type: ignore[misc]
        headers = [(b"content-type", content_type), (b"content-length", b"%d" % len(payload))]
        if extra:
            headers.extend(extra)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                try:
                    if self.close_service:
                        await self.service.close()
                except Exception as err:  # noqa: BLE001 - reported to the server
                    logger.exception("closing the service at shutdown failed")
                    await send({"type": "lifespan.shutdown.failed", "message": repr(err)})
                    return
                await send({"type": "lifespan.shutdown.complete"})
                return


def _route_path(scope: Scope) -> str:
    """The request's path below the app's mount point: ``path`` without ``root_path`` where
    the server includes it (as Starlette reads it, so that the app can be mounted)."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):
        if path == root:
            return ""
        if path[len(root)] == "/":
            return path[len(root) :]
    return path
