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
import heapq
import threading
import weakref
from collections.abc import Callable
from functools import partial
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


class _Waker:
    """Completes the futures of one event loop from batcher threads, and times them out.

    Completions wake the loop once per burst: the first schedules :meth:`_drain` through
    ``call_soon_threadsafe`` (one write to the loop's self-pipe), the others of the same batch
    only join the pending list. Deadlines wait in one heap with a single loop timer armed for
    the earliest (instead of a timer handle per request).
    """

    __slots__ = ("_deadlines", "_lock", "_pending", "_seq", "_timer", "_timer_at", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._pending: list[asyncio.Future[bool]] = []
        self._lock = threading.Lock()
        self._deadlines: list[tuple[float, int, asyncio.Future[bool]]] = []
        self._seq = 0
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0

    def __call__(self, fut: asyncio.Future[bool], ticket: Any) -> None:
        """The request's completion callback (a batcher thread, or ``submit`` itself)."""
        with self._lock:
            first = not self._pending
            self._pending.append(fut)
        if first:
            try:
                self.loop.call_soon_threadsafe(self._drain)
            except RuntimeError:  # the loop is closed: nobody awaits these futures any more
                with self._lock:
                    self._pending.clear()

    def _drain(self) -> None:
        with self._lock:
            done, self._pending = self._pending, []
        for fut in done:
            if not fut.done():
                fut.set_result(True)
        heap = self._deadlines
        while heap and heap[0][2].done():
            heapq.heappop(heap)

    def watch(self, fut: asyncio.Future[bool], timeout: float) -> None:
        """Resolve ``fut`` with False if it is still pending ``timeout`` seconds from now
        (called on the loop's thread)."""
        deadline = self.loop.time() + timeout
        self._seq += 1
        heapq.heappush(self._deadlines, (deadline, self._seq, fut))
        if self._timer is None or deadline < self._timer_at:
            self._arm(deadline)

    def _arm(self, deadline: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self.loop.call_at(deadline, self._sweep)
        self._timer_at = deadline

    def _sweep(self) -> None:
        self._timer = None
        now = self.loop.time() + _TIMER_SLACK_S
        heap = self._deadlines
        while heap and (heap[0][0] <= now or heap[0][2].done()):
            fut = heapq.heappop(heap)[2]
            if not fut.done():
                fut.set_result(False)
        if heap:
            self._arm(heap[0][0])


#: loop timers may fire this early (event loops with millisecond clocks)
_TIMER_SLACK_S = 1e-3
_wakers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Waker] = weakref.WeakKeyDictionary()


def _waker(loop: asyncio.AbstractEventLoop) -> _Waker:
    waker = _wakers.get(loop)
    if waker is None:
        with _open_lock:
            waker = _wakers.setdefault(loop, _Waker(loop))
    return waker


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
        completes an :class:`asyncio.Future`, waking the loop once per batch (one
        ``loop.call_soon_threadsafe`` for all the batch's requests of that loop)."""
        loop = asyncio.get_running_loop()
        waker = _waker(loop)
        fut: asyncio.Future[bool] = loop.create_future()
        ticket = self._native.submit(row, timeout=timeout, callback=partial(waker, fut))
        if timeout is not None:
            # the queue enforces the deadline for queued rows; this bounds a running batch
            waker.watch(fut, timeout)
        try:
            finished = await fut
        except asyncio.CancelledError:
            ticket.cancel()
            raise
        if not finished and ticket.cancel():
            raise RequestTimeoutError(f"request {ticket.id} timed out after {timeout:g} s")
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
