"""GPU test fixtures: tests marked ``gpu`` are skipped, with the reason, where the CUDA backend
cannot run (not built, no driver, no device, neither CuPy nor torch with CUDA)."""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np
import pytest


def _gpu_state() -> tuple[bool, str]:
    import ml_utilities

    info = ml_utilities.build_info()
    if not info["cuda_built"]:
        return False, str(info["cuda_error"])  # "ml_utilities was built without CUDA (...)"
    if not info["cuda_loads"]:
        return False, f"the CUDA module does not run here: {info['cuda_error']}"
    if info["cuda_devices"] < 1:
        return False, "no CUDA device"
    return True, ""


_STATE: tuple[bool, str] | None = None


def gpu_state() -> tuple[bool, str]:
    global _STATE
    if _STATE is None:
        _STATE = _gpu_state()
    return _STATE


def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    ready, reason = gpu_state()
    if ready:
        return
    for item in items:
        if item.get_closest_marker("gpu") is not None:
            item.add_marker(pytest.mark.skip(reason=reason))


class Lib:
    """One array library's face for the tests: host <-> device and type checks."""

    def __init__(self, name: str):
        self.name = name
        self.mod = importlib.import_module(name)

    def to_device(self, x: np.ndarray) -> Any:
        if self.name == "cupy":
            return self.mod.asarray(x)
        return self.mod.from_numpy(np.ascontiguousarray(x)).to("cuda")

    def to_host(self, x: Any) -> np.ndarray:
        if self.name == "cupy":
            return np.asarray(x.get())
        return x.detach().cpu().numpy()

    def is_native(self, x: Any) -> bool:
        if self.name == "cupy":
            return isinstance(x, self.mod.ndarray)
        return isinstance(x, self.mod.Tensor) and x.is_cuda

    def synchronize(self) -> None:
        if self.name == "cupy":
            self.mod.cuda.get_current_stream().synchronize()
        else:
            self.mod.cuda.synchronize()


def _lib_or_skip(name: str) -> Lib:
    try:
        lib = Lib(name)
    except ImportError:
        pytest.skip(f"{name} is not installed")
    if name == "torch" and not lib.mod.cuda.is_available():
        pytest.skip("torch has no CUDA here")
    if name == "cupy":
        try:
            if lib.mod.cuda.runtime.getDeviceCount() < 1:
                pytest.skip("CuPy sees no CUDA device")
        except Exception as err:  # CUDARuntimeError without a driver
            pytest.skip(f"CuPy cannot use CUDA here: {err}")
    return lib


@pytest.fixture(params=["cupy", "torch"])
def lib(request: Any) -> Lib:
    ready, reason = gpu_state()
    if not ready:
        pytest.skip(reason)
    return _lib_or_skip(request.param)


@pytest.fixture
def torch_lib() -> Lib:
    ready, reason = gpu_state()
    if not ready:
        pytest.skip(reason)
    return _lib_or_skip("torch")


@pytest.fixture(scope="session")
def music() -> np.ndarray:
    """8 s of a music-like synthetic clip (notes with onsets, bass, noise), float32."""
    from ml_utilities.bench import synthetic_clip

    return synthetic_clip(seconds=8.0, seed=3)


@pytest.fixture(scope="session")
def music_batch(music: np.ndarray) -> np.ndarray:
    """(4, n): four different clips (shifted, scaled, and one with its own noise)."""
    from ml_utilities.bench import synthetic_clip

    rows = [
        music,
        np.roll(music, 12345) * 0.5,
        synthetic_clip(seconds=8.0, seed=11),
        music[::-1].copy() * 0.8,
    ]
    return np.ascontiguousarray(np.stack(rows).astype(np.float32))
