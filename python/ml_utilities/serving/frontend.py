"""The HTTP/1.1 front end of ``ml-utilities serve``: an asyncio protocol on ``httptools``.

The connection's protocol parses requests with ``httptools`` (llhttp) and answers each one
from the routes of :mod:`ml_utilities.serving.routes` (the functions the ASGI app of
:func:`~ml_utilities.serving.app.create_app` calls too), in one socket write, with no ASGI scope,
messages or task: ``/health``, ``/metrics``, ``/v1/models``, 404 and 405 are answered at once,
``/ready`` (which asks the registry from a worker thread) in a task.

The predict route (``POST /v1/models/{name}:predict``) is the hot path. Under uvicorn, each
request cost about 65 us of server CPU in uvicorn and its ASGI plumbing (a task, the scope and
message dictionaries, two socket writes), more than the batched prediction itself. A predict
request is answered through the service's callback path where it applies
(:func:`~ml_utilities.serving.routes.start_predict`: one row, no options, no result cache): its
row goes to the dynamic batcher, and the batch's wake-up of the loop writes the answer, with no
task, future or coroutine per request; any other goes to
:func:`~ml_utilities.serving.routes.predict_response` in a task. Both give the documents,
statuses, error bodies and metrics of the ASGI app. The predict requests read in one loop
iteration are started together at its end (:meth:`FrontEnd.defer_predict`). A predict path
with a query string or percent-encoding is decoded and answered by
:func:`~ml_utilities.serving.routes.handle`, in a task.

HTTP/1.1 handling: keep-alive (closed after ``keep_alive_timeout`` idle seconds), pipelining
(requests of a connection are answered one after the other, in order; past 64 queued requests
the connection stops being read until they are answered), ``Content-Length`` and chunked
request bodies, ``Expect: 100-continue``, ``Connection: close`` and HTTP/1.0 (closed after the
answer unless it asked for keep-alive). A malformed request is answered 400, a body over
``max_body_size`` 413, a URL or headers over 64 KiB 414 or 431, each with a JSON
``{"error", "detail"}`` body, and the connection is closed after the answers to the requests
before it.

Clients that hold connections: a client that half-closes (``shutdown(SHUT_WR)``, EOF) after
its requests gets their answers, then the connection closes (``eof_received`` keeps the
transport open for writing until then). A request's line and headers must arrive within
``header_timeout`` seconds of their first byte, its body within ``body_timeout`` seconds of the
end of its headers (``ML_UTILITIES_HTTP_HEADER_TIMEOUT``, 10, and
``ML_UTILITIES_HTTP_BODY_TIMEOUT``, 30, by default); a late one is answered 408
(``RequestTimeout``) and the connection closed. The deadlines are checked on the clock tick
that also keeps the Date header (once a second, or four times per shortest deadline), from
times read off that clock, so that parsing a request adds no clock call: a request gets at
least its full time and is answered at most two ticks past it. At most ``max_connections``
connections are served (``ML_UTILITIES_HTTP_MAX_CONNECTIONS``, 1000); one more is answered 503
(``TooManyConnections``) and closed at once. Both are counted in
``ml_serving_connections_closed_total`` (reasons ``limit``, ``header_timeout``,
``body_timeout``).

Shutdown (SIGINT, SIGTERM or :meth:`FrontEnd.request_shutdown`) stops accepting, closes idle
connections, answers every request already received, then drains and closes the service (where
the app was made with ``close_service=True``, the default).

Use :func:`run` (what ``ml-utilities serve`` calls), or :class:`FrontEnd` in a running loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import socket
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable
from email.utils import formatdate
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote

import httptools

from ..exceptions import ParameterError
from ._json import dumps as _dumps
from .metrics import metrics
from .routes import (
    _PREFIX,
    _SUFFIX,
    INTERNAL_ERROR,
    error_response,
    handle,
    internal_error,
    predict_response,
    start_predict,
)

__all__ = ["FrontEnd", "run"]

logger = logging.getLogger(__name__)

#: the reason phrase of each status, as it goes in a status line
_STATUS_LINES = {
    int(s): b"HTTP/1.1 %d %s\r\n" % (int(s), s.phrase.encode("latin-1")) for s in HTTPStatus
}
_JSON_HEAD = b"content-type: application/json\r\ncontent-length: "
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
#: pipelined requests queued on a connection before it stops reading
_PIPELINE_LIMIT = 64
#: bytes of request line and headers accepted (llhttp itself sets no limit)
_HEAD_LIMIT = 64 * 1024
_CLOSED_LIMIT = metrics.connections_closed.labels("limit")
_CLOSED_HEADER = metrics.connections_closed.labels("header_timeout")
_CLOSED_BODY = metrics.connections_closed.labels("body_timeout")


def _status_line(status: int) -> bytes:
    line = _STATUS_LINES.get(status)
    return line if line is not None else b"HTTP/1.1 %d \r\n" % status


class _Reject(Exception):
    """Raised in a parser callback to stop parsing: the request is answered ``status`` and the
    connection closed."""

    def __init__(self, status: int, error: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.error = error
        self.detail = detail


class _Request:
    """A parsed request; ``error`` is the status of a request answered with ``body`` as its
    JSON error (a malformed or oversized one), which closes the connection."""

    __slots__ = ("method", "url", "body", "keep_alive", "http_version", "error")

    def __init__(
        self, method: bytes, url: bytes, body: bytes, keep_alive: bool, http_version: str
    ) -> None:
        self.method = method
        self.url = url
        self.body = body
        self.keep_alive = keep_alive
        self.http_version = http_version
        self.error = 0


class _Protocol(asyncio.Protocol):
    """One client connection: parses requests, answers them in order."""

    def __init__(self, front: FrontEnd) -> None:
        self.front = front
        self.loop = front.loop
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        # the request being parsed
        self.in_message = False
        self.in_body = False  # the request being parsed has its headers
        self.head_started = 0.0  # FrontEnd.now when its first byte was parsed
        self.body_started = 0.0  # FrontEnd.now when its headers were
        self.url = b""
        self.head_size = 0
        self.body: list[bytes] = []
        self.body_size = 0
        self.keep_alive = True
        self.expect_continue = False
        # requests parsed and not yet answered (the first one is being answered when busy)
        self.queue: deque[_Request] = deque()
        self.busy = False
        self.task: asyncio.Future[Any] | None = None
        self.reading_paused = False
        self.writing_paused = False
        self.closing = False  # shutting down: close once the received requests are answered
        self.broken = False  # stop parsing: a malformed or oversized request was answered
        self.routing = False  # in _route: a request it answers at once starts the next one
        self.route_again = False  # _route was asked (within _route) to answer the next one
        self.last_active = 0.0

    # asyncio callbacks ------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        front = self.front
        if len(front.connections) >= front.max_connections:
            # over the cap: answered 503 and closed at once, before reading anything
            self.broken = True
            _CLOSED_LIMIT.inc()
            payload = _dumps(
                {
                    "error": "TooManyConnections",
                    "detail": f"the server holds {len(front.connections)} connections, its "
                    f"limit (max_connections); retry later",
                }
            )
            transport.write(  # type: ignore[attr-defined]
                _status_line(503)
                + _JSON_HEAD
                + b"%d\r\n" % len(payload)
                + front.date_header
                + b"retry-after: 1\r\nconnection: close\r\n\r\n"
                + payload
            )
            transport.close()
            return
        self.last_active = self.loop.time()
        self.front.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.front.connections.discard(self)
        self.queue.clear()
        self.broken = True

    def data_received(self, data: bytes) -> None:
        if self.broken:
            return
        self.last_active = self.front.now
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # no protocol switches here: answer what was received, then close
            self.keep_alive = False
            if self.queue:
                self.queue[-1].keep_alive = False
            self.broken = True
        except httptools.HttpParserCallbackError as err:
            reject = err.__context__
            if not isinstance(reject, _Reject):
                logger.error("a parser callback raised: %r", reject)
                reject = _Reject(400, "BadRequest", "the request could not be read")
            self._reject(reject)
        except httptools.HttpParserError as err:
            self._reject(_Reject(400, "BadRequest", f"malformed HTTP request ({err})"))

    def eof_received(self) -> bool:
        """The client half-closed the connection (``shutdown(SHUT_WR)``): answer the requests
        it sent (True keeps the transport open for writing), then close; a request cut short
        by the EOF is dropped."""
        self.closing = True  # close once the requests received are answered
        self.in_message = self.in_body = False
        self.broken = True  # nothing more to parse
        if not self.busy and not self.queue:
            return False  # nothing to answer: asyncio closes the transport
        if self.queue:
            self.queue[-1].keep_alive = False
        return True

    def pause_writing(self) -> None:
        self.writing_paused = True

    def resume_writing(self) -> None:
        self.writing_paused = False
        if not self.busy and self.queue:
            self._next()

    # parser callbacks -------------------------------------------------------------------------
    def on_message_begin(self) -> None:
        self.in_message = True
        self.head_started = self.front.now
        self.url = b""
        self.head_size = 0
        self.body = []
        self.body_size = 0
        self.expect_continue = False

    def on_url(self, url: bytes) -> None:
        self.url += url
        if len(self.url) > _HEAD_LIMIT:
            raise _Reject(414, "URITooLong", f"the request URL is over {_HEAD_LIMIT} bytes")

    def on_header(self, name: bytes, value: bytes) -> None:
        self.head_size += len(name) + len(value) + 4
        if self.head_size > _HEAD_LIMIT:
            raise _Reject(
                431, "HeadersTooLarge", f"the request headers are over {_HEAD_LIMIT} bytes"
            )
        if len(name) == 14 and name.lower() == b"content-length":
            try:
                size = int(value)
            except ValueError:
                size = 0  # the parser refuses it
            if size > self.front.max_body_size:
                raise _Reject(413, "PayloadTooLarge", self._too_large(size))
        elif len(name) == 6 and name.lower() == b"expect":
            self.expect_continue = value.lower() == b"100-continue"

    def on_headers_complete(self) -> None:
        self.in_body = True
        self.body_started = self.front.now
        self.keep_alive = self.parser.should_keep_alive()
        if self.expect_continue and not self.busy and not self.queue:
            self.transport.write(_CONTINUE)  # type: ignore[union-attr]

    def on_body(self, body: bytes) -> None:
        self.body_size += len(body)
        if self.body_size > self.front.max_body_size:
            raise _Reject(413, "PayloadTooLarge", self._too_large(self.body_size, chunked=True))
        self.body.append(body)

    def on_message_complete(self) -> None:
        self.in_message = self.in_body = False
        body = self.body
        request = _Request(
            self.parser.get_method(),
            self.url,
            body[0] if len(body) == 1 else b"".join(body),
            self.keep_alive and not self.closing,
            self.parser.get_http_version(),
        )
        self.queue.append(request)
        if not self.busy:
            if not self.writing_paused:
                self._next()
        elif len(self.queue) > _PIPELINE_LIMIT and not self.reading_paused:
            self.reading_paused = True
            self.transport.pause_reading()  # type: ignore[union-attr]

    # answering --------------------------------------------------------------------------------
    def _next(self) -> None:
        """Start answering the first queued request."""
        request = self.queue[0]
        if request.error:
            self._answer_error(request)
            return
        self.busy = True
        url = request.url
        if (
            request.method == b"POST"
            and self.front.service is not None
            and url.startswith(_PREFIX_B)
            and url.endswith(_SUFFIX_B)
            and b"%" not in url
            and b"?" not in url
        ):
            name = url[_PREFIX_LEN:-_SUFFIX_LEN]
            if name and b"/" not in name:
                self.front.defer_predict(self, name.decode("latin-1"), request)
                return
        self._route(request)

    def _finished(self, keep_alive: bool) -> None:
        """The first queued request is answered: close, or go on with the next one."""
        self.busy = False
        self.task = None
        transport = self.transport
        if self.queue:
            self.queue.popleft()
        if not keep_alive or (self.closing and not self.queue):
            self.queue.clear()
            self.broken = True
            transport.close()  # type: ignore[union-attr]
            return
        if self.reading_paused and len(self.queue) <= _PIPELINE_LIMIT // 2:
            self.reading_paused = False
            transport.resume_reading()  # type: ignore[union-attr]
        if self.queue and not self.writing_paused:
            self._next()

    def start_predict(self, name: str, request: _Request) -> None:
        """Answer the predict request being answered: through the service's callback path
        where it takes it, else with :meth:`_predict` in a task."""
        if not self._predict_nowait(name, request):
            self.task = self.loop.create_task(self._predict(name, request))

    def _predict_nowait(self, name: str, request: _Request) -> bool:
        """Answer a predict request through the service's callback path
        (:func:`~ml_utilities.serving.routes.start_predict`: no task, future or coroutine per
        request); False where :meth:`_predict` must answer it."""

        def done(payload: bytes | None, err: BaseException | None) -> None:
            if payload is None and err is None:  # the service leaves it to predict_response
                self.task = self.loop.create_task(self._predict(name, request))
            else:
                self._respond(name, request, payload, err)

        try:
            return start_predict(self.front.service, name, request.body, done)
        except Exception as err:  # noqa: BLE001 - refused at submission (Overloaded, ...)
            # answered from the loop, as an awaited error would be (not within _next)
            self.loop.call_soon(self._respond, name, request, None, err)
            return True

    def _respond(
        self, name: str, request: _Request, payload: bytes | None, err: BaseException | None
    ) -> None:
        """Write the answer of :meth:`_predict_nowait`: ``payload`` (200) or ``err``'s."""
        if err is None:
            self._write_answer(request, 200, payload, None)  # type: ignore[arg-type]
            return
        answer = error_response(err, name)
        self._write_answer(request, *(internal_error(name, err) if answer is None else answer))

    async def _predict(self, name: str, request: _Request) -> None:
        try:
            answer = await predict_response(self.front.service, name, request.body)
        except Exception as err:  # noqa: BLE001 - a plain-text 500, logged
            answer = internal_error(name, err)
        self._write_answer(request, *answer)

    def _write_answer(
        self,
        request: _Request,
        status: int,
        payload: bytes,
        extra: list[tuple[bytes, bytes]] | None,
        content_type: bytes | None = None,
    ) -> None:
        """Send the answer to the first queued request (JSON unless ``content_type``; the
        routes' answers always name it, and a ``HEAD`` request gets their head only), then go
        on with the next one."""
        keep_alive = request.keep_alive
        transport = self.transport
        if transport is None or transport.is_closing():
            self._finished(False)
            return
        keep_alive = keep_alive and not (self.closing and len(self.queue) <= 1)
        if content_type is None:
            head = _JSON_HEAD + b"%d\r\n" % len(payload)
        else:
            head = b"content-type: %s\r\ncontent-length: %d\r\n" % (content_type, len(payload))
            if request.method == b"HEAD":
                payload = b""
        parts = [_status_line(status), head, self.front.date_header]
        if extra:
            parts.extend(b"%s: %s\r\n" % pair for pair in extra)
        if not keep_alive:
            parts.append(b"connection: close\r\n")
        elif request.http_version == "1.0":  # HTTP/1.0 closes unless told otherwise
            parts.append(b"connection: keep-alive\r\n")
        parts.append(b"\r\n")
        parts.append(payload)
        transport.write(b"".join(parts))
        self._finished(keep_alive)

    def _reject(self, reject: _Reject) -> None:
        """Answer the requests received so far, then ``reject``'s error, then close."""
        self.broken = True
        self.in_message = self.in_body = False
        payload = _dumps({"error": reject.error, "detail": reject.detail})
        request = _Request(b"", b"", payload, False, "1.1")
        request.error = reject.status
        self.queue.append(request)
        if not self.busy:
            self._next()

    def timed_out(self) -> None:
        """The request being read missed its deadline (headers or body): answer the requests
        before it, then 408, then close."""
        front = self.front
        if self.in_body:
            _CLOSED_BODY.inc()
            what, limit, option = "body", front.body_timeout, "body_timeout"
        else:
            _CLOSED_HEADER.inc()
            what, limit, option = "line and headers", front.header_timeout, "header_timeout"
        self._reject(
            _Reject(
                408,
                "RequestTimeout",
                f"the request {what} did not arrive within {limit:g} s ({option})",
            )
        )

    def _too_large(self, size: int, chunked: bool = False) -> str:
        what = "more than " if chunked else ""
        return (
            f"the request body is {what}{size} bytes; the limit is "
            f"{self.front.max_body_size} (max_body_size)"
        )

    def _answer_error(self, request: _Request) -> None:
        self.queue.clear()
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        payload = request.body
        transport.write(
            _status_line(request.error)
            + _JSON_HEAD
            + b"%d\r\n" % len(payload)
            + self.front.date_header
            + b"connection: close\r\n\r\n"
            + payload
        )
        transport.close()

    def _route(self, request: _Request) -> None:
        """Answer the first queued request, not one for the predict fast path, from
        :func:`~ml_utilities.serving.routes.handle`: at once, or in a task for a route that
        waits. The requests queued behind one answered at once are answered in this loop
        rather than by recursion (a pipeline can queue thousands of them)."""
        if self.routing:  # called back from the answer written below: go on from there
            self.route_again = True
            return
        if not self.in_message and self.queue[-1] is request and self.parser.should_upgrade():
            # answered within the read of an upgrade request, before the parser stops at it
            # (data_received closes after the requests queued then): close after this one
            request.keep_alive = False
        self.routing = True
        try:
            while True:
                raw_path = request.url.partition(b"?")[0]
                answer = handle(
                    self.front.service,
                    request.method.decode("ascii", "replace"),
                    unquote(raw_path.decode("ascii", "replace")),
                    request.body,
                )
                if type(answer) is not tuple:
                    self.task = self.loop.create_task(self._answer_later(request, answer))
                    return
                self.route_again = False
                self._write_answer(request, *answer)
                if not self.route_again:
                    return
                request = self.queue[0]
        finally:
            self.routing = False

    async def _answer_later(self, request: _Request, pending: Any) -> None:
        """Write the answer of a route that waits (``pending``, its coroutine)."""
        try:
            answer = await pending
        except Exception:  # noqa: BLE001 - the routes answer their errors; a bug is a 500
            logger.exception("the route of %r raised", request.url)
            answer = INTERNAL_ERROR
        self._write_answer(request, *answer)


_PREFIX_B = _PREFIX.encode()
_SUFFIX_B = _SUFFIX.encode()
_PREFIX_LEN = len(_PREFIX_B)
_SUFFIX_LEN = len(_SUFFIX_B)


class FrontEnd:
    """Serves the routes of :mod:`ml_utilities.serving.routes` for a service over HTTP/1.1.

    Parameters
    ----------
    app : ServingApp
        :func:`~ml_utilities.serving.app.create_app`'s (or any object with its attributes):
        its ``service`` (a :class:`PredictionService`) is served, and closed at shutdown where
        its ``close_service`` is true. The app itself is not called.
    max_body_size : int
        Largest request body in bytes (default 16 MiB); a larger one is answered 413.
    keep_alive_timeout : float
        Seconds an idle keep-alive connection stays open (default 5, as uvicorn).
    graceful_timeout : float
        Seconds shutdown waits for the requests already received to be answered (default 30).
    header_timeout : float, optional
        Seconds a request's line and headers may take to arrive, from their first byte
        (default ``ML_UTILITIES_HTTP_HEADER_TIMEOUT``, 10); past it the request is answered
        408 and the connection closed.
    body_timeout : float, optional
        Seconds a request's body may take to arrive, from the end of its headers (default
        ``ML_UTILITIES_HTTP_BODY_TIMEOUT``, 30); past it, 408 and closed.
    max_connections : int, optional
        Connections served at once (default ``ML_UTILITIES_HTTP_MAX_CONNECTIONS``, 1000); a
        connection beyond them is answered 503 and closed at once.

    Raises
    ------
    ParameterError
        A size, timeout or count that is not positive.
    """

    def __init__(
        self,
        app: Any,
        *,
        max_body_size: int = 16 * 1024 * 1024,
        keep_alive_timeout: float = 5.0,
        graceful_timeout: float = 30.0,
        header_timeout: float | None = None,
        body_timeout: float | None = None,
        max_connections: int | None = None,
    ) -> None:
        if header_timeout is None or body_timeout is None or max_connections is None:
            from ..config import get_settings

            settings = get_settings()
            if header_timeout is None:
                header_timeout = settings.http_header_timeout
            if body_timeout is None:
                body_timeout = settings.http_body_timeout
            if max_connections is None:
                max_connections = settings.http_max_connections
        for key, value in (
            ("max_body_size", max_body_size),
            ("keep_alive_timeout", keep_alive_timeout),
            ("graceful_timeout", graceful_timeout),
            ("header_timeout", header_timeout),
            ("body_timeout", body_timeout),
        ):
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not 0 < value < float("inf")
            ):
                raise ParameterError(f"{key}={value!r}: expected a positive number")
        if isinstance(max_connections, bool) or not isinstance(max_connections, int):
            raise ParameterError(f"max_connections={max_connections!r}: expected an integer >= 1")
        if max_connections < 1:
            raise ParameterError(f"max_connections={max_connections!r}: expected an integer >= 1")
        self.app = app
        self.service = getattr(app, "service", None)
        self.close_service = bool(getattr(app, "close_service", False))
        self.max_body_size = int(max_body_size)
        self.keep_alive_timeout = float(keep_alive_timeout)
        self.graceful_timeout = float(graceful_timeout)
        self.header_timeout = float(header_timeout)
        self.body_timeout = float(body_timeout)
        self.max_connections = int(max_connections)
        #: the clock's period: a second, or a quarter of the shortest deadline
        self.tick_s = min(1.0, self.header_timeout / 4, self.body_timeout / 4)
        self.connections: set[_Protocol] = set()
        self.date_header = b""
        self.now = 0.0
        self.loop: asyncio.AbstractEventLoop = None  # type: ignore[assignment]
        self._servers: list[asyncio.base_events.Server] = []
        self._exit: asyncio.Event | None = None
        self._ticker: asyncio.TimerHandle | None = None
        self._deferred: list[tuple[_Protocol, str, _Request]] = []
        self.started = False

    # lifecycle --------------------------------------------------------------------------------
    async def start(self, sockets: list[socket.socket]) -> None:
        """Accept connections on ``sockets``."""
        self.loop = asyncio.get_running_loop()
        self._exit = asyncio.Event()
        self._tick()
        for sock in sockets:
            server = await self.loop.create_server(lambda: _Protocol(self), sock=sock, backlog=2048)
            self._servers.append(server)
        self.started = True

    def request_shutdown(self) -> None:
        """Begin a graceful shutdown (safe to call from a signal handler of the loop)."""
        if self._exit is not None:
            self._exit.set()

    async def serve(self, sockets: list[socket.socket]) -> None:
        """:meth:`start`, wait for :meth:`request_shutdown`, then :meth:`shutdown`."""
        await self.start(sockets)
        assert self._exit is not None
        await self._exit.wait()
        await self.shutdown()

    async def shutdown(self) -> None:
        """Stop accepting, answer the requests already received (up to ``graceful_timeout``
        seconds), close every connection, then drain and close the service (where
        ``close_service``)."""
        for server in self._servers:
            server.close()
        for conn in list(self.connections):
            conn.closing = True
            if not conn.busy and not conn.queue and not conn.in_message:
                conn.broken = True
                conn.transport.close()  # type: ignore[union-attr]
        deadline = self.loop.time() + self.graceful_timeout
        while self.connections and self.loop.time() < deadline:
            await asyncio.sleep(0.01)
        for conn in list(self.connections):
            logger.warning("closing a connection with a request not answered at shutdown")
            conn.transport.close()  # type: ignore[union-attr]
            if conn.task is not None:
                conn.task.cancel()
        for server in self._servers:
            with contextlib.suppress(Exception):
                await server.wait_closed()
        if self._ticker is not None:
            self._ticker.cancel()
        if self.close_service and self.service is not None:
            try:
                await self.service.close()
            except Exception:  # noqa: BLE001 - the server stops all the same
                logger.exception("closing the service at shutdown failed")

    def defer_predict(self, conn: _Protocol, name: str, request: _Request) -> None:
        """Start answering a predict request of ``conn`` at the end of this loop iteration,
        with the other predict requests read in it (one ``call_soon`` for all of them).

        The batcher's queue delay starts with the first row queued: rows queued as their
        requests are read would spread over the whole read of the iteration (about 20 us of
        parsing per request, over a millisecond for 64 clients), and the delay would cut
        their batch before the last ones are read. Queued together, the requests that
        arrived together share a batch, as when each one's task started in the next
        iteration."""
        if not self._deferred:
            self.loop.call_soon(self._start_deferred)
        self._deferred.append((conn, name, request))

    def _start_deferred(self) -> None:
        deferred, self._deferred = self._deferred, []
        for conn, name, request in deferred:
            conn.start_predict(name, request)

    def _tick(self) -> None:
        """Every ``tick_s`` (a second, or less for deadlines under 4 s): the clock
        (:attr:`now`) and the Date header; idle keep-alive connections closed; requests whose
        headers or body missed their deadline answered 408 and their connections closed.

        The times a request's parts began are read from :attr:`now` (no clock call per
        request), up to one tick early: a deadline is enforced one tick late, so a request
        always has its full time and is answered 408 at most two ticks past it."""
        now = self.now = self.loop.time()
        self.date_header = b"date: %s\r\nserver: ml-utilities\r\n" % formatdate(usegmt=True).encode(
            "latin-1"
        )
        idle = now - self.keep_alive_timeout
        head = now - self.header_timeout - self.tick_s
        body = now - self.body_timeout - self.tick_s
        for conn in list(self.connections):
            if conn.in_message:
                # not while reading is paused (a full pipeline): the client is not the slow one
                if conn.broken or conn.reading_paused:
                    continue
                if conn.body_started < body if conn.in_body else conn.head_started < head:
                    conn.timed_out()
            elif not conn.busy and not conn.queue and conn.last_active < idle:
                conn.broken = True
                conn.transport.close()  # type: ignore[union-attr]
        metrics.connections_open.set(len(self.connections))
        self._ticker = self.loop.call_later(self.tick_s, self._tick)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def _event_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is in the serving extra (not on Windows)
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()  # type: ignore[no-any-return]


def _serve_socket(
    app_factory: Callable[[], Any], sock: socket.socket, options: dict[str, Any]
) -> None:
    """One process: build the app, serve ``sock`` until SIGINT or SIGTERM."""
    loop = _event_loop()
    asyncio.set_event_loop(loop)
    try:
        front = FrontEnd(app_factory(), **options)

        async def main() -> None:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, front.request_shutdown)
            await front.serve([sock])

        loop.run_until_complete(main())
    finally:
        loop.close()
        sock.close()


def run(
    app_factory: Callable[[], Any],
    *,
    factory_path: str,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    **options: Any,
) -> int:
    """Serve the app of ``app_factory()`` on ``host:port`` until SIGINT or SIGTERM.

    With ``workers > 1``, the socket is bound here and ``workers`` processes
    (``python -m ml_utilities.serving.frontend``) accept on it, each building its own app from
    ``factory_path`` (``"module:function"``); a signal is passed on to them, and if one exits
    on its own, the others are stopped. ``options`` go to :class:`FrontEnd`.
    """
    FrontEnd(None, **options)  # check the options before binding anything
    sock = _bind(host, port)
    if workers <= 1:
        _serve_socket(app_factory, sock, options)
        return 0
    level = logging.getLevelName(logging.getLogger().getEffectiveLevel())
    cmd = [
        sys.executable,
        "-m",
        "ml_utilities.serving.frontend",
        factory_path,
        str(sock.fileno()),
        json.dumps(options),
        str(level),
    ]
    procs = [subprocess.Popen(cmd, pass_fds=(sock.fileno(),)) for _ in range(workers)]
    sock.close()
    stopping = False

    def stop(signum: int, frame: Any) -> None:
        nonlocal stopping
        stopping = True
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while True:
            codes = [proc.poll() for proc in procs]
            if all(code is not None for code in codes):
                break
            if not stopping and any(code is not None for code in codes):
                logger.error("a worker process exited (%s): stopping the others", codes)
                stop(signal.SIGTERM, None)
            time.sleep(0.2)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0 if stopping else 1


def _worker_main(argv: list[str]) -> int:
    """A worker process of :func:`run`: ``python -m ml_utilities.serving.frontend
    module:function fd options-as-JSON log-level``."""
    import importlib

    factory_path, fd, options, level = argv
    logging.basicConfig(level=level)
    module, _, name = factory_path.partition(":")
    app_factory = getattr(importlib.import_module(module), name)
    sock = socket.socket(fileno=int(fd))
    _serve_socket(app_factory, sock, json.loads(options))
    return 0


if __name__ == "__main__":  # pragma: no cover - the worker processes of run()
    raise SystemExit(_worker_main(sys.argv[1:]))
