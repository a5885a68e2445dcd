"""The native dynamic batcher: batches form, every answer belongs to its own request, errors,
overload, timeouts and shutdown never lose a request."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from ml_utilities.exceptions import ParameterError
from ml_utilities.serving.batching import DynamicBatcher
from ml_utilities.serving.errors import (
    BatcherClosedError,
    BatchError,
    Overloaded,
    RequestTimeoutError,
)

N_FEATURES = 8
RNG = np.random.default_rng(0)
W = RNG.standard_normal((N_FEATURES, 3)).astype(np.float32)


def linear(x: np.ndarray) -> np.ndarray:
    """A model whose every output row depends only on its input row."""
    return x @ W + x[:, :1] ** 2


class Recorder:
    """Wraps a model and records the size of each batch it is called with."""

    def __init__(self, fn=linear) -> None:  # noqa: ANN001
        self.fn = fn
        self.sizes: list[int] = []
        self.lock = threading.Lock()

    def __call__(self, x: np.ndarray) -> np.ndarray:
        assert x.dtype == np.float32 and x.ndim == 2 and x.flags.c_contiguous
        with self.lock:
            self.sizes.append(len(x))
        return self.fn(x)


class Gate:
    """A model that blocks until released, to hold a batch in flight."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.calls = 0

    def __call__(self, x: np.ndarray) -> np.ndarray:
        self.calls += 1
        self.entered.set()
        assert self.release.wait(20), "the test never released the gate"
        return linear(x)


def rows(n: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, N_FEATURES)).astype(np.float32)


def test_threads_get_their_own_rows_and_batches_form() -> None:
    model = Recorder()
    x = rows(4000)
    expected = linear(x)
    with DynamicBatcher(model, N_FEATURES, max_batch_size=32, max_queue_delay_us=2000) as b:

        def client(start: int) -> list[tuple[int, np.ndarray]]:
            return [(i, b.predict(x[i])) for i in range(start, len(x), 32)]

        with ThreadPoolExecutor(32) as pool:
            answers = [a for part in pool.map(client, range(32)) for a in part]
        stats = b.stats()
    assert len(answers) == len(x)
    assert sorted(i for i, _ in answers) == list(range(len(x)))
    for i, y in answers:
        np.testing.assert_allclose(y, expected[i], rtol=1e-5, atol=1e-5)
    assert sum(model.sizes) == len(x)
    assert max(model.sizes) > 1, "concurrent rows were never batched together"
    assert max(model.sizes) <= 32
    assert stats["completed"] == len(x) and stats["batches"] == len(model.sizes)
    assert stats["batched_rows"] == len(x) and stats["failed"] == 0


def test_asyncio_clients_get_their_own_rows() -> None:
    model = Recorder()
    x = rows(1500, seed=2)
    expected = linear(x)

    async def main(b: DynamicBatcher) -> list[np.ndarray]:
        return await asyncio.gather(*(b.predict_async(r) for r in x))

    with DynamicBatcher(model, N_FEATURES, max_batch_size=64, max_queue_delay_us=500) as b:
        out = asyncio.run(main(b))
    np.testing.assert_allclose(np.stack(out), expected, rtol=1e-5, atol=1e-5)
    assert max(model.sizes) > 1


def test_await_does_not_block_the_event_loop() -> None:
    # The model waits for an event that only another coroutine on the same loop sets: if
    # awaiting the batcher blocked the loop, the model would never be released.
    gate = Gate()

    async def main(b: DynamicBatcher) -> np.ndarray:
        async def release() -> None:
            while not gate.entered.is_set():
                await asyncio.sleep(0.001)
            gate.release.set()

        y, _ = await asyncio.gather(b.predict_async(rows(1)[0]), release())
        return y

    with DynamicBatcher(gate, N_FEATURES) as b:
        y = asyncio.run(main(b))
    np.testing.assert_allclose(y, linear(rows(1))[0], rtol=1e-5, atol=1e-5)


def test_callback_exception_fails_every_request_of_its_batch() -> None:
    def model(x: np.ndarray) -> np.ndarray:
        if np.any(x[:, 0] == 999.0):
            raise ZeroDivisionError("poisoned row in this batch")
        return linear(x)

    gate = Gate()
    calls = []

    def gated(x: np.ndarray) -> np.ndarray:
        calls.append(len(x))
        if len(calls) == 1:
            return gate(x)
        return model(x)

    with DynamicBatcher(gated, N_FEATURES, max_batch_size=4, max_queue_delay_us=10_000) as b:
        first = b.submit(rows(1)[0])  # holds the worker so the next four queue together
        assert gate.entered.wait(10)
        x = rows(8, seed=3)
        x[1, 0] = 999.0
        poisoned = [b.submit(r) for r in x[:4]]
        healthy = [b.submit(r) for r in x[4:]]
        gate.release.set()
        first.result()
        for t in poisoned:
            with pytest.raises(ZeroDivisionError, match="poisoned row"):
                t.result()
            assert t.state == "failed" and t.batch_size == 4
        for t, r in zip(healthy, x[4:], strict=True):
            np.testing.assert_allclose(t.result(), linear(r[None])[0], rtol=1e-5, atol=1e-5)
        assert b.stats()["failed"] == 4


@pytest.mark.parametrize(
    ("bad_model", "message"),
    [
        (lambda x: linear(x)[:-1], r"returned \d+ rows for a batch of \d+"),
        (lambda x: linear(x)[None], r"shape \(1, \d+, 3\)"),
        (lambda x: "not an array", r"expected an array"),
    ],
)
def test_wrong_model_output_fails_the_batch(bad_model, message: str) -> None:  # noqa: ANN001
    with DynamicBatcher(bad_model, N_FEATURES, max_batch_size=8) as b:
        tickets = [b.submit(r) for r in rows(5)]
        for t in tickets:
            with pytest.raises(BatchError, match=message):
                t.result()


def test_one_dimensional_output_is_one_column() -> None:
    with DynamicBatcher(lambda x: x.sum(axis=1), N_FEATURES) as b:
        r = rows(1)[0]
        np.testing.assert_allclose(b.predict(r), [r.sum()], rtol=1e-5)


def test_full_queue_is_refused_at_once() -> None:
    gate = Gate()
    b = DynamicBatcher(gate, N_FEATURES, max_batch_size=1, max_queue_size=5)
    running = b.submit(rows(1)[0])
    assert gate.entered.wait(10)
    queued = [b.submit(r) for r in rows(5, seed=4)]
    with pytest.raises(Overloaded, match=r"queue is full \(5 rows queued, max_queue_size=5\)"):
        b.submit(rows(1)[0])
    assert b.stats()["rejected"] == 1
    gate.release.set()
    running.result()
    for t, r in zip(queued, rows(5, seed=4), strict=True):
        np.testing.assert_allclose(t.result(), linear(r[None])[0], rtol=1e-5, atol=1e-5)
    b.close()


def test_timeouts_while_running_and_while_queued() -> None:
    gate = Gate()
    fired: list[str] = []
    b = DynamicBatcher(gate, N_FEATURES, max_batch_size=1)
    running = b.submit(rows(1)[0], timeout=0.05)
    assert gate.entered.wait(10)
    queued = b.submit(rows(1)[0], timeout=0.01, callback=lambda t: fired.append(t.state))
    with pytest.raises(RequestTimeoutError, match=r"request \d+ timed out after \d+ us"):
        running.result()
    assert running.state == "timed_out"
    gate.release.set()
    # the queued row's deadline passed before the worker reached it: it never runs
    with pytest.raises(RequestTimeoutError, match="timed out"):
        queued.result(5.0)
    b.close()
    assert fired == ["timed_out"]
    assert gate.calls == 1


def test_async_timeout_and_cancel() -> None:
    gate = Gate()

    async def main(b: DynamicBatcher) -> None:
        with pytest.raises(RequestTimeoutError):
            await b.predict_async(rows(1)[0], timeout=0.05)
        task = asyncio.ensure_future(b.predict_async(rows(1)[0]))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    b = DynamicBatcher(gate, N_FEATURES, max_batch_size=1)
    asyncio.run(main(b))
    gate.release.set()
    b.close()
    assert b.stats()["completed"] <= 1


def test_async_deadlines_in_any_order() -> None:
    # One loop timer serves every deadline: a later request with an earlier deadline re-arms
    # it, and requests without a deadline, or with a far one, are left alone.
    gate = Gate()

    async def main(b: DynamicBatcher) -> list[np.ndarray]:
        far = asyncio.ensure_future(b.predict_async(rows(1)[0], timeout=60))
        forever = asyncio.ensure_future(b.predict_async(rows(1)[0]))
        await asyncio.sleep(0)
        with pytest.raises(RequestTimeoutError, match="timed out"):
            await b.predict_async(rows(1)[0], timeout=0.05)
        with pytest.raises(RequestTimeoutError, match="timed out"):
            await b.predict_async(rows(1)[0], timeout=0.02)
        assert not far.done() and not forever.done()
        gate.release.set()
        return list(await asyncio.gather(far, forever))

    with DynamicBatcher(gate, N_FEATURES, max_batch_size=1) as b:
        out = asyncio.run(main(b))
    np.testing.assert_allclose(np.stack(out), linear(rows(1)).repeat(2, 0), rtol=1e-5, atol=1e-5)


def test_cancel_a_queued_request() -> None:
    gate = Gate()
    b = DynamicBatcher(gate, N_FEATURES, max_batch_size=1)
    b.submit(rows(1)[0])
    assert gate.entered.wait(10)
    t = b.submit(rows(1)[0])
    assert t.cancel() is True
    assert t.cancel() is False
    with pytest.raises(BatchError, match="cancelled by its caller"):
        t.result()
    gate.release.set()
    b.close()
    assert gate.calls == 1


@pytest.mark.parametrize("drain", [True, False])
def test_shutdown_answers_or_fails_every_request(drain: bool) -> None:
    gate = Gate()
    finished: list[int] = []
    b = DynamicBatcher(gate, N_FEATURES, max_batch_size=4, max_queue_delay_us=0)
    x = rows(200, seed=5)
    first = b.submit(x[0], callback=lambda t: finished.append(t.id))
    assert gate.entered.wait(10)
    rest = [b.submit(r, callback=lambda t: finished.append(t.id)) for r in x[1:]]
    closer = threading.Thread(target=b.close, kwargs={"drain": drain})
    closer.start()
    while not b.closed:  # shutdown has begun before the running batch returns
        threading.Event().wait(0.001)
    gate.release.set()
    closer.join(20)
    assert not closer.is_alive()
    with pytest.raises(BatcherClosedError):
        b.submit(x[0])
    tickets = [first, *rest]
    assert all(t.done() for t in tickets), "a request was left pending after shutdown"
    answered = 0
    for t, r in zip(tickets, x, strict=True):
        if t.state == "done":
            np.testing.assert_allclose(t.result(), linear(r[None])[0], rtol=1e-5, atol=1e-5)
            answered += 1
        else:
            with pytest.raises(BatcherClosedError, match="shut down before request"):
                t.result()
    assert sorted(finished) == sorted(t.id for t in tickets)
    assert answered == (200 if drain else 1)


def test_bad_arguments() -> None:
    with pytest.raises(ParameterError, match="n_features=0"):
        DynamicBatcher(linear, 0)
    with pytest.raises(ParameterError, match="model must be callable"):
        DynamicBatcher(42, 3)  # type: ignore[arg-type]
    with DynamicBatcher(linear, N_FEATURES) as b:
        with pytest.raises(ParameterError, match="a row has 3 values; this batcher expects"):
            b.submit(np.zeros(3, np.float32))
        with pytest.raises(ParameterError, match="row must be 1-D"):
            b.submit(np.zeros((2, N_FEATURES), np.float32))
        with pytest.raises(ParameterError, match="timeout=-1"):
            b.submit(np.zeros(N_FEATURES, np.float32), timeout=-1)


def test_real_model_through_the_batcher() -> None:
    xgb = pytest.importorskip("xgboost")
    x = rows(600, seed=6)
    y = (x[:, 0] + x[:, 1] ** 2 > 0.5).astype(int)
    clf = xgb.XGBClassifier(n_estimators=20, max_depth=3, n_jobs=1).fit(x, y)
    expected = clf.predict_proba(x)
    with DynamicBatcher(clf.predict_proba, N_FEATURES, max_batch_size=64) as b:
        with ThreadPoolExecutor(16) as pool:
            out = list(pool.map(b.predict, x))
    np.testing.assert_allclose(np.stack(out), expected, rtol=1e-6, atol=1e-7)
