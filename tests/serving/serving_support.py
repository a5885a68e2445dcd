"""Synthetic data shared by the serving tests and their conftest (a module of its own: test
modules must not import ``conftest``, whose name every test folder shares): 12 features, of which
the first three carry the signal. Also the HTTP front end on a loopback port (:class:`Running`)
and a raw-socket response reader (:class:`Responses`) of the front end's tests."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from typing import Any

import numpy as np

N_FEATURES = 12
FEATURE_NAMES = [f"feat_{i}" for i in range(N_FEATURES)]


def make_data(n: int, seed: int, task: str) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, N_FEATURES)).astype(np.float32)
    signal = 2.0 * x[:, 0] - 1.5 * x[:, 1] + x[:, 2] ** 2
    if task == "regression":
        return x, (signal + 0.5 * rng.standard_normal(n)).astype(np.float32)
    classes = np.array(["calm", "energetic", "sad"])
    idx = np.digitize(signal + 0.3 * rng.standard_normal(n), [-0.5, 1.5])
    return x, classes[idx]


def wait_ready(proc: Any, base: str, timeout_s: float) -> None:
    """Poll ``base + '/ready'`` until it answers 200; fail with the server's output if the
    process ``proc`` exits first, or after ``timeout_s`` seconds."""
    import time

    import httpx

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if httpx.get(base + "/ready", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert proc.poll() is None, proc.stdout.read().decode()
        assert time.monotonic() < deadline, "the server did not become ready"
        time.sleep(0.2)


def blocked_service(registry: Any, model_name: str = "xgb-reg") -> tuple[Any, Any, Any]:
    """A PredictionService with batches of one row, a queue of one and a 0.3 s request
    timeout, whose model ``model_name`` blocks in its first batch until released:
    ``(service, release, entered)``, the two ``threading.Event``s that release the model and
    say it has been entered. The caller sets ``release`` and closes the service."""
    import threading

    from ml_utilities.serving import PredictionService

    svc = PredictionService(
        registry=registry,
        config={
            "gpu_enabled": False,
            "prediction_cache_ttl": 0,
            "batch_size": 1,
            "max_queue_size": 1,
            "request_timeout_s": 0.3,
        },
    )
    model = svc.get_model(model_name)
    release, entered = threading.Event(), threading.Event()
    predict = model.predict_raw

    def slow(x: np.ndarray) -> np.ndarray:
        entered.set()
        release.wait(10)
        return predict(x)

    model.predict_raw = slow
    return svc, release, entered


class Running:
    """A :class:`FrontEnd` serving ``app`` on 127.0.0.1 from a thread with its own event loop."""

    def __init__(self, app, **options) -> None:
        try:
            import uvloop

            self.loop = uvloop.new_event_loop()
        except ImportError:  # pragma: no cover
            self.loop = asyncio.new_event_loop()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.base = f"http://127.0.0.1:{self.port}"
        from ml_utilities.serving.frontend import FrontEnd

        self.front = FrontEnd(app, **options)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.front.started:
            assert self.error is None, self.error
            assert time.monotonic() < deadline, "the front end did not start"
            time.sleep(0.01)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self.front.serve([self.sock]))
        except BaseException as err:  # noqa: BLE001 - reported by the test
            self.error = err
        finally:
            self.loop.close()

    def call(self, fn, *args) -> None:
        self.loop.call_soon_threadsafe(fn, *args)

    def shutdown(self) -> None:
        if self.thread.is_alive():
            self.call(self.front.request_shutdown)
            self.thread.join(60)
        assert not self.thread.is_alive(), "the front end did not shut down"
        assert self.error is None, self.error


class Responses:
    """Reads the HTTP responses of a raw socket, in order, with httptools' parser."""

    def __init__(self, sock: socket.socket) -> None:
        import httptools

        self.sock = sock
        self.parser = httptools.HttpResponseParser(self)
        self.done: list[dict] = []
        self.current: dict = {}
        self.eof = False

    def on_message_begin(self) -> None:
        self.current = {"headers": {}, "body": b""}

    def on_header(self, name: bytes, value: bytes) -> None:
        self.current["headers"][name.decode().lower()] = value.decode()

    def on_headers_complete(self) -> None:
        self.current["status"] = self.parser.get_status_code()

    def on_body(self, body: bytes) -> None:
        self.current["body"] += body

    def on_message_complete(self) -> None:
        self.done.append(self.current)

    def read(self, n: int = 1, timeout: float = 60) -> list[dict]:
        """The next ``n`` responses."""
        self.sock.settimeout(timeout)
        while len(self.done) < n:
            data = self.sock.recv(65536)
            if not data:
                self.eof = True
                break
            self.parser.feed_data(data)
        out, self.done = self.done[:n], self.done[n:]
        assert len(out) == n, f"the connection closed after {len(out)} of {n} responses"
        return out

    def closed(self, timeout: float = 30) -> bool:
        """Whether the server closes the connection (without sending anything more)."""
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except (ConnectionResetError, TimeoutError):
            return False
        return data == b""


def post(path: str, body: bytes, extra: bytes = b"", version: bytes = b"1.1") -> bytes:
    return (
        b"POST %s HTTP/%s\r\nHost: test\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n%s\r\n%s" % (path.encode(), version, len(body), extra, body)
    )
