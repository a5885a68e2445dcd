"""The native dynamic batcher's Python face: synchronous and ``await``-able submission.

Rows submitted from any thread or coroutine wait in a C++ queue without the GIL; a batcher
thread cuts a batch when ``max_batch_size`` rows are queued or ``max_queue_delay_us`` after the
batch's first row arrived, calls the model once with a ``(rows, n_features)`` float32 array
(taking the GIL for that call only) and hands each request its own output row.

Examples
--------
>>> import numpy as np
>>> batcher = DynamicBatcher(lambda x: x.sum(axis=1, keepdims=True), n_features=3)
>>> batcher.predict(np.array([1.0, 2.0, 3.0]))
array([6.], dtype=float32)
>>> batcher.close()
"""

from __future__ import annotations

import asyncio
import atexit
import threading
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np

from .._native import core
from ..exceptions import ParameterError
from .errors import RequestTimeoutError

__all__ = ["DynamicBatcher", "Ticket"]

Ticket = core.serving.Ticket

_open: weakref.WeakSet[DynamicBatcher] = weakref.WeakSet()
_open_lock = threading.Lock()


@atexit.register
def _close_all() -> None:
    # Batcher threads take the GIL to run the model: stop them before the interpreter finalises.
    with _open_lock:
        batchers = list(_open)
    for b in batchers:
        b.close(drain=False)


def _resolve(fut: asyncio.Future[None], ticket: Any) -> None:
    if not fut.done():
        fut.set_result(None)


class DynamicBatcher:
    """Batch concurrent single-row requests into calls of one model.

    Parameters
    ----------
    model : callable
        ``model(x) -> y`` with ``x`` a C-contiguous float32 array ``(rows, n_features)`` and
        ``y`` array-like ``(rows, n_outputs)`` or ``(rows,)``; row ``i`` of ``y`` answers row
        ``i`` of ``x``. Called from a batcher thread. An exception fails every request of the
        batch with that exception; a wrong row count fails them with :class:`BatchError`.
    n_features : int
        Values per row.
    max_batch_size : int, default 64
        Rows per model call at most.
    max_queue_delay_us : float, default 1000
        How long (microseconds) a batch waits for more rows after its first row arrived.
    max_queue_size : int, default 4096
        Queued rows beyond which :meth:`submit` raises :class:`Overloaded` at once.
    n_workers : int, default 1
        Batcher threads (more than one lets a model that releases the GIL run batches in
        parallel).
    observe : callable, optional
        ``observe(ticket)`` after each request answered through :meth:`predict` or
        :meth:`predict_async` (for metrics: ``ticket.queue_time_us``, ``ticket.batch_size``).
    """

    def __init__(
        self,
        model: Callable[[np.ndarray], Any],
        n_features: int,
        *,
        max_batch_size: int = 64,
        max_queue_delay_us: float = 1000.0,
        max_queue_size: int = 4096,
        n_workers: int = 1,
        observe: Callable[[Any], None] | None = None,
    ) -> None:
        for name, value, low in (
            ("n_features", n_features, 1),
            ("max_batch_size", max_batch_size, 1),
            ("max_queue_size", max_queue_size, 1),
            ("n_workers", n_workers, 1),
        ):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise ParameterError(f"{name}={value!r}: expected an integer >= {low}")
        self._native = core.serving.DynamicBatcher(
            model,
            int(n_features),
            max_batch_size=int(max_batch_size),
            max_queue_delay_us=float(max_queue_delay_us),
            max_queue_size=int(max_queue_size),
            n_workers=int(n_workers),
        )
        self.n_features = int(n_features)
        self.max_batch_size = int(max_batch_size)
        self.max_queue_delay_us = float(max_queue_delay_us)
        self._observe = observe
        with _open_lock:
            _open.add(self)

    def __repr__(self) -> str:
        return (
            f"DynamicBatcher(n_features={self.n_features}, max_batch_size={self.max_batch_size}, "
            f"max_queue_delay_us={self.max_queue_delay_us:g}, closed={self.closed})"
        )

    @property
    def closed(self) -> bool:
        return bool(self._native.closed)

    def stats(self) -> dict[str, int]:
        """Counters: ``submitted``, ``completed``, ``failed``, ``timed_out``, ``rejected``,
        ``batches``, ``batched_rows``, ``queued``, ``max_batch_seen``."""
        return dict(self._native.stats())

    def submit(
        self,
        row: np.ndarray,
        *,
        timeout: float | None = None,
        callback: Callable[[Any], None] | None = None,
    ) -> Any:
        """Queue one row ``(n_features,)``; returns a :class:`Ticket`.

        ``timeout`` (seconds) is the request's deadline: a row still queued past it fails with
        :class:`RequestTimeoutError`, and ``ticket.result()`` waits at most until then.
        ``callback(ticket)`` runs once when the request finishes (on a batcher thread).
        """
        return self._native.submit(row, timeout=timeout, callback=callback)

    def predict(self, row: np.ndarray, *, timeout: float | None = None) -> np.ndarray:
        """Submit one row and wait (without the GIL) for its output row ``(n_outputs,)``."""
        if self._observe is None:
            return self._native.predict(row, timeout=timeout)
        ticket = self._native.submit(row, timeout=timeout)
        try:
            return ticket.result()
        finally:
            self._observe(ticket)

    async def predict_async(self, row: np.ndarray, *, timeout: float | None = None) -> np.ndarray:
        """Coroutine of :meth:`predict`: the event loop never blocks; the batcher thread
        completes an :class:`asyncio.Future` through ``loop.call_soon_threadsafe``."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()

        def done(ticket: Any) -> None:
            loop.call_soon_threadsafe(_resolve, fut, ticket)

        ticket = self._native.submit(row, timeout=timeout, callback=done)
        try:
            if timeout is None:
                await fut
            else:
                # the queue enforces the deadline for queued rows; this bounds a running batch
                await asyncio.wait_for(asyncio.shield(fut), timeout)
        except asyncio.TimeoutError:
            if ticket.cancel():
                raise RequestTimeoutError(
                    f"request {ticket.id} timed out after {timeout:g} s"
                ) from None
        except asyncio.CancelledError:
            ticket.cancel()
            raise
        if self._observe is not None:
            self._observe(ticket)
        return ticket.result(0.0)

    def close(self, drain: bool = True) -> None:
        """Stop accepting rows; run (``drain=True``) or fail with :class:`BatcherClosedError`
        (``drain=False``) every queued row; wait for the running batch; join the threads."""
        self._native.close(drain)
        with _open_lock:
            _open.discard(self)

    def __enter__(self) -> DynamicBatcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
