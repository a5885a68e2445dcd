"""Synthetic data shared by the serving tests and their conftest (a module of its own: test
modules must not import ``conftest``, whose name every test folder shares): 12 features, of which
the first three carry the signal."""

from __future__ import annotations

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
