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
