"""The native dynamic batcher's Python face: synchronous, ``await``-able and callback submission.

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
from typing import Any

import numpy as np

from .._native import core
from .._validators import integer
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

    A batch's answers reach the loop in one ``call_soon_threadsafe`` (one write to the loop's
    self-pipe) that resolves all of that loop's futures of the batch. Deadlines wait in one heap
    with a single loop timer armed for the earliest (instead of a timer handle per request); a
    future whose deadline passes resolves to :data:`_TIMED_OUT`.
    """

    __slots__ = ("_deadlines", "_seq", "_timer", "_timer_at", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._deadlines: list[tuple[float, int, asyncio.Future[Any]]] = []
        self._seq = 0
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0

    def resolve(self, tokens: list[tuple[asyncio.Future[Any], Any]], values: Any) -> None:
        """On the loop: future ``i`` of ``tokens`` gets ``values[i]``."""
        for (fut, _), value in zip(tokens, values, strict=True):
            if not fut.done():
                fut.set_result(value)
        heap = self._deadlines
        while heap and heap[0][2].done():
            heapq.heappop(heap)

    @staticmethod
    def fail(failed: list[tuple[tuple[asyncio.Future[Any], Any], BaseException]]) -> None:
        """On the loop: each future raises its request's exception."""
        for (fut, _), err in failed:
            if not fut.done():
                fut.set_exception(err)

    def post(self, fn: Callable[..., None], *args: Any) -> None:
        """Run ``fn(*args)`` on the loop (from any thread); dropped if the loop is closed, since
        nobody awaits its futures any more."""
        try:
            self.loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:
            pass

    def watch(self, fut: asyncio.Future[Any], timeout: float) -> None:
        """Resolve ``fut`` with :data:`_TIMED_OUT` if it is still pending ``timeout`` seconds
        from now (called on the loop's thread)."""
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
                fut.set_result(_TIMED_OUT)
        if heap:
            self._arm(heap[0][0])


class _Pending:
    """A request of :meth:`DynamicBatcher.submit_callback`: in place of the future of
    :meth:`DynamicBatcher.submit_async` (for :class:`_Waker` and ``_on_batch``: ``get_loop``,
    ``done``, ``set_result``, ``set_exception``), it hands the request's outcome to a callback
    on the loop, without a task to resume."""

    __slots__ = ("_callback", "_done", "_loop", "_native", "rid", "timeout")

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        callback: Callable[[Any, BaseException | None], None],
        native: Any,
        timeout: float | None,
    ) -> None:
        self._loop = loop
        self._callback = callback
        self._native = native
        self._done = False
        self.rid = 0
        self.timeout = timeout

    def get_loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def done(self) -> bool:
        return self._done

    def set_result(self, value: Any) -> None:
        if value is _TIMED_OUT:  # as submit_async: cancel it if still queued, and fail it
            self._native.cancel_token(self.rid)
            err = RequestTimeoutError(f"request {self.rid} timed out after {self.timeout:g} s")
            self._finish(None, err)
        else:
            self._finish(value, None)

    def set_exception(self, err: BaseException) -> None:
        self._finish(None, err)

    def _finish(self, value: Any, err: BaseException | None) -> None:
        if self._done:
            return
        self._done = True
        try:
            self._callback(value, err)
        except Exception as exc:  # noqa: BLE001 - reported like an exception of a loop callback
            self._loop.call_exception_handler(
                {"message": "a submit_callback callback raised", "exception": exc}
            )


#: what a future watched by :meth:`_Waker.watch` resolves to when its deadline passes
_TIMED_OUT = object()
#: loop timers may fire this early (event loops with millisecond clocks)
_TIMER_SLACK_S = 1e-3
_wakers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Waker] = weakref.WeakKeyDictionary()


#: the waker :func:`_waker` gave last (a server has one loop: no weak-key lookup per request)
_last_waker: _Waker | None = None


def _waker(loop: asyncio.AbstractEventLoop) -> _Waker:
    global _last_waker
    waker = _last_waker
    if waker is not None and waker.loop is loop:
        return waker
    waker = _wakers.get(loop)
    if waker is None:
        with _open_lock:
            waker = _wakers.setdefault(loop, _Waker(loop))
    _last_waker = waker
    return waker


def _weak_on_batch(batcher: DynamicBatcher) -> Callable[..., None]:
    """``batcher._on_batch`` through a weak reference: the native batcher must not keep its
    Python face alive (a cycle would delay closing an abandoned batcher to a GC pass)."""
    ref = weakref.WeakMethod(batcher._on_batch)

    def on_batch(*args: Any) -> None:
        method = ref()
        if method is not None:
            method(*args)

    return on_batch


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
        ``observe(queue_us)`` with the queue times (int64 microseconds, one per request) of
        requests answered through :meth:`predict`, :meth:`predict_async`,
        :meth:`submit_async` or :meth:`submit_callback`: once per batch for all but
        :meth:`predict` (for metrics).
    encode : callable, optional
        ``encode(tokens, out) -> values``, run once per batch on the batcher thread for the
        requests of :meth:`submit_async` and :meth:`submit_callback`: ``tokens`` are their
        ``(future, tag)`` pairs (a stand-in for the future with :meth:`submit_callback`),
        ``out`` their output rows ``(k, n_outputs)`` float32; ``values[i]`` is what request
        ``i``'s coroutine returns, or its callback gets. It must return ``out[i]`` for a tag
        of None (:meth:`predict_async`). Without it every request gets its output row.
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
        observe: Callable[[np.ndarray], None] | None = None,
        encode: Callable[[list[Any], np.ndarray], Any] | None = None,
    ) -> None:
        for name, value, low in (
            ("n_features", n_features, 1),
            ("max_batch_size", max_batch_size, 1),
            ("max_queue_size", max_queue_size, 1),
            ("n_workers", n_workers, 1),
        ):
            integer(name, value, minimum=low)
        self._native = core.serving.DynamicBatcher(
            model,
            int(n_features),
            max_batch_size=int(max_batch_size),
            max_queue_delay_us=float(max_queue_delay_us),
            max_queue_size=int(max_queue_size),
            n_workers=int(n_workers),
            on_batch=_weak_on_batch(self),
        )
        self.n_features = int(n_features)
        self.max_batch_size = int(max_batch_size)
        self.max_queue_delay_us = float(max_queue_delay_us)
        self._observe = observe
        self._encode = encode
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
            self.observe_tickets([ticket])

    def observe_tickets(self, tickets: list[Any]) -> None:
        """Report the queue times of finished tickets to ``observe``."""
        if self._observe is not None:
            queued = np.fromiter((t.queue_time_us for t in tickets), np.int64, len(tickets))
            queued = queued[queued >= 0]
            if len(queued):
                self._observe(queued)

    async def predict_async(self, row: Any, *, timeout: float | None = None) -> np.ndarray:
        """Coroutine of :meth:`predict`: the event loop never blocks; once per batch, the
        batcher thread hands the loop all of its requests' answers in one
        ``loop.call_soon_threadsafe``."""
        return await self.submit_async(row, None, timeout=timeout)  # type: ignore[no-any-return]

    async def submit_async(self, row: Any, tag: Any, *, timeout: float | None = None) -> Any:
        """Queue one row (``(n_features,)`` array, or a list of numbers) and await its answer:
        ``encode``'s value for it (see the class), or its output row when ``tag`` is None or
        the batcher has no ``encode``.

        Raises
        ------
        ParameterError
            A row of the wrong length, or with a value that is not a finite number.
        Overloaded
            The queue is full.
        RequestTimeoutError
            No answer ``timeout`` seconds after submission.
        """
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        rid = self._native.submit_token(row, (fut, tag), timeout)
        if timeout is not None:
            # the queue enforces the deadline for queued rows; this bounds a running batch
            _waker(loop).watch(fut, timeout)
        try:
            value = await fut
        except asyncio.CancelledError:
            self._native.cancel_token(rid)
            raise
        if value is _TIMED_OUT:
            self._native.cancel_token(rid)
            raise RequestTimeoutError(f"request {rid} timed out after {timeout:g} s")
        return value

    def submit_callback(
        self,
        row: Any,
        tag: Any,
        callback: Callable[[Any, BaseException | None], None],
        *,
        timeout: float | None = None,
    ) -> int:
        """:meth:`submit_async` without a coroutine: queue one row and return its request id;
        ``callback(value, None)`` with the value :meth:`submit_async` would return, or
        ``callback(None, err)`` with the exception it would raise (a failed batch,
        :class:`RequestTimeoutError`), runs once on the running event loop's thread, in the
        loop's wake-up for the whole batch. Call it on that thread.

        Raises
        ------
        ParameterError
            A row of the wrong length, or with a value that is not a finite number.
        Overloaded
            The queue is full.
        """
        loop = asyncio.get_running_loop()
        pending = _Pending(loop, callback, self._native, timeout)
        pending.rid = self._native.submit_token(row, (pending, tag), timeout)
        if timeout is not None:
            # the queue enforces the deadline for queued rows; this bounds a running batch
            _waker(loop).watch(pending, timeout)  # type: ignore[arg-type]
        return pending.rid  # type: ignore[no-any-return]

    def _on_batch(
        self,
        tokens: list[tuple[asyncio.Future[Any], Any]],
        out: np.ndarray,
        queue_us: np.ndarray,
        failed: list[tuple[tuple[asyncio.Future[Any], Any], BaseException]],
    ) -> None:
        # batcher thread, GIL held: once per batch
        if tokens:
            if self._observe is not None:
                self._observe(queue_us)
            try:
                values = self._encode(tokens, out) if self._encode is not None else out
            except Exception as err:  # noqa: BLE001 - the batch's requests raise it
                failed = [*failed, *((token, err) for token in tokens)]
                tokens = []
        if tokens:
            loop = tokens[0][0].get_loop()
            if all(t[0].get_loop() is loop for t in tokens):
                waker = _waker(loop)
                waker.post(waker.resolve, tokens, values)
            else:  # requests of several event loops (threads) in one batch
                by_loop: dict[Any, tuple[list[Any], list[Any]]] = {}
                for token, value in zip(tokens, values, strict=True):
                    pair = by_loop.setdefault(token[0].get_loop(), ([], []))
                    pair[0].append(token)
                    pair[1].append(value)
                for lp, (toks, vals) in by_loop.items():
                    waker = _waker(lp)
                    waker.post(waker.resolve, toks, vals)
        if failed:
            groups: dict[Any, list[Any]] = {}
            for item in failed:
                groups.setdefault(item[0][0].get_loop(), []).append(item)
            for lp, items in groups.items():
                _waker(lp).post(_Waker.fail, items)

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
