"""Device arrays in and out: what the CUDA backend accepts and how it gives results back.

Nothing here imports CuPy or torch until an object from them arrives, and nothing imports the
compiled ``_cuda`` module except where a pointer's device must be asked of the driver, so all of
it is testable on a machine without a GPU (with stand-in objects).

Accepted: CuPy arrays, torch CUDA tensors, any object with ``__cuda_array_interface__`` (v2/v3)
and, through CuPy or torch, DLPack capsules of CUDA memory. Results come back as the same kind
of array on the same device (CuPy for a plain ``__cuda_array_interface__`` or DLPack object).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..exceptions import BackendUnavailableError, ParameterError
from .errors import DeviceMemoryError

__all__ = [
    "DeviceArray",
    "allocate",
    "as_dtype",
    "describe",
    "ensure_backend",
    "is_device_array",
    "reshape",
    "to_host",
]

# DLPack device types holding CUDA memory: kDLCUDA, kDLCUDAManaged.
_DLPACK_CUDA = (2, 13)
_LEGACY_STREAM = 1  # __cuda_array_interface__ v3: 1 is the legacy default stream


_backend_ready = False


def ensure_backend() -> None:
    """Load ``_cuda`` and check that a device is usable, once per process (success is cached).

    Raises
    ------
    BackendUnavailableError
        Built without CUDA, the module fails to load, no driver, or no device; the message
        says which.
    """
    global _backend_ready
    if _backend_ready:
        return
    from .._native import cuda

    module = cuda()
    try:
        count = int(module.device_count())
    except RuntimeError as err:
        raise BackendUnavailableError(
            f"a CUDA device array arrived but the CUDA backend cannot run here: {err}"
        ) from err
    if count < 1:
        raise BackendUnavailableError(
            "a CUDA device array arrived but the CUDA backend sees no CUDA device"
        )
    _backend_ready = True


def _module_root(obj: Any) -> str:
    return type(obj).__module__.split(".", 1)[0]


def is_device_array(x: Any) -> bool:
    """True for an array in CUDA device memory (CuPy, torch CUDA, ``__cuda_array_interface__``,
    DLPack of CUDA memory). Cheap and import-free for numpy arrays and host objects."""
    if type(x) is np.ndarray or x is None:
        return False
    root = _module_root(x)
    if root == "torch":
        return bool(getattr(x, "is_cuda", False))
    try:
        if hasattr(x, "__cuda_array_interface__"):
            return True
    except Exception:  # a property that raises (e.g. a host tensor) means "no"
        return False
    probe = getattr(x, "__dlpack_device__", None)
    if probe is not None and not isinstance(x, np.ndarray):
        try:
            return int(probe()[0]) in _DLPACK_CUDA
        except Exception:
            return False
    return False


@dataclass(frozen=True)
class DeviceArray:
    """A device array seen as ``(channels, n)`` rows for the plans.

    ``kind`` is how results are allocated: "torch" or "cupy". ``lead`` is the leading shape
    restored on outputs; strides are in elements.
    """

    obj: Any
    kind: str
    ptr: int
    dtype: np.dtype
    lead: tuple[int, ...]
    n: int
    stride_c: int
    stride_n: int
    device: int
    stream: int

    @property
    def channels(self) -> int:
        return int(np.prod(self.lead, dtype=np.int64)) if self.lead else 1

    def signal(self) -> dict[str, Any]:
        """The dict ``_cuda.FeaturePlan.execute`` reads."""
        return {
            "ptr": self.ptr,
            "f64": self.dtype == np.float64,
            "channels": self.channels,
            "n": self.n,
            "stride_c": self.stride_c,
            "stride_n": self.stride_n,
            "device": self.device,
        }


def _check_dtype(dtype: np.dtype) -> np.dtype:
    if not np.issubdtype(dtype, np.floating):
        raise ParameterError(f"Audio data must be floating-point, given y.dtype={dtype}")
    if dtype not in (np.float32, np.float64):
        raise ParameterError(
            f"the CUDA backend takes float32 or float64 audio, got {dtype}; convert it first"
        )
    return np.dtype(dtype)


def _rows(shape: tuple[int, ...], strides: tuple[int, ...]) -> tuple[int, int] | None:
    """(stride_c, stride_n) in elements when the leading axes collapse into one, else None."""
    if len(shape) == 0:
        raise ParameterError(f"Audio data must be at least one-dimensional, given y.shape={shape}")
    if any(s < 0 for s in strides):
        return None
    stride_n = strides[-1] if shape[-1] > 1 else 1
    if stride_n < 1:
        return None
    if len(shape) == 1:
        return 0, stride_n
    # the leading axes must form one evenly strided run of rows
    stride_c = strides[-2]
    for axis in range(len(shape) - 3, -1, -1):
        if shape[axis] == 1:
            continue
        if strides[axis] != strides[axis + 1] * shape[axis + 1]:
            return None
    return stride_c, stride_n


def _torch_view(x: Any) -> tuple[Any, int, tuple[int, ...], tuple[int, ...], np.dtype, int]:
    torch = importlib.import_module("torch")
    t = x.detach()
    dtype = {torch.float32: np.dtype(np.float32), torch.float64: np.dtype(np.float64)}.get(t.dtype)
    if dtype is None:
        if t.is_floating_point():
            raise ParameterError(
                f"the CUDA backend takes float32 or float64 audio, got {t.dtype}; convert it first"
            )
        raise ParameterError(f"Audio data must be floating-point, given y.dtype={t.dtype}")
    if _rows(tuple(t.shape), tuple(t.stride())) is None:
        t = t.contiguous()
    return t, int(t.data_ptr()), tuple(t.shape), tuple(t.stride()), dtype, int(t.device.index or 0)


def _cai_view(x: Any) -> tuple[int, tuple[int, ...], tuple[int, ...], np.dtype, int | None]:
    cai = x.__cuda_array_interface__
    dtype = np.dtype(cai["typestr"])
    shape = tuple(int(s) for s in cai["shape"])
    if cai.get("strides") is None:
        # C-contiguous: element strides from the shape
        el = []
        acc = 1
        for s in reversed(shape):
            el.append(acc)
            acc *= max(s, 1)
        strides = tuple(reversed(el))
    else:
        if any(int(s) % dtype.itemsize for s in cai["strides"]):
            raise ParameterError("the array's strides are not multiples of its item size")
        strides = tuple(int(s) // dtype.itemsize for s in cai["strides"])
    stream = cai.get("stream")
    return int(cai["data"][0]), shape, strides, dtype, (None if stream is None else int(stream))


def _cuda_device_of(ptr: int) -> int:
    from .._native import cuda

    return int(cuda().pointer_device(ptr))


def describe(x: Any) -> DeviceArray:
    """Look at a device array without copying it (a strided view whose leading axes cannot be
    collapsed is made contiguous on the device by its own library).

    Raises
    ------
    ParameterError
        Not a CUDA array, not float32/float64, or zero-dimensional.
    BackendUnavailableError
        The object needs the driver to tell its device and ``_cuda`` cannot load.
    """
    if not is_device_array(x):
        raise ParameterError(
            "expected a CUDA device array (CuPy, torch CUDA, __cuda_array_interface__ or "
            f"DLPack), got {type(x).__module__}.{type(x).__name__}"
        )
    ensure_backend()
    root = _module_root(x)
    if root == "torch" and getattr(x, "is_cuda", False):
        t, ptr, shape, strides, dtype, device = _torch_view(x)
        torch = importlib.import_module("torch")
        stream = int(torch.cuda.current_stream(t.device).cuda_stream)
        rows = _rows(shape, strides)
        assert rows is not None
        return DeviceArray(
            t, "torch", ptr, dtype, shape[:-1], shape[-1], rows[0], rows[1], device, stream
        )
    if root == "cupy":
        cp = importlib.import_module("cupy")
        arr = x
        dtype = _check_dtype(np.dtype(arr.dtype))
        shape = tuple(arr.shape)
        strides = tuple(s // dtype.itemsize for s in arr.strides)
        if len(shape) == 0:
            raise ParameterError(
                f"Audio data must be at least one-dimensional, given y.shape={shape}"
            )
        if _rows(shape, strides) is None:
            arr = cp.ascontiguousarray(arr)
            strides = tuple(s // dtype.itemsize for s in arr.strides)
        device = int(arr.device.id)
        with cp.cuda.Device(device):
            stream = int(cp.cuda.get_current_stream().ptr)
        rows = _rows(shape, strides)
        assert rows is not None
        return DeviceArray(
            arr,
            "cupy",
            int(arr.data.ptr),
            dtype,
            shape[:-1],
            shape[-1],
            rows[0],
            rows[1],
            device,
            stream,
        )
    if _has_cai(x):
        ptr, shape, strides, dtype, stream = _cai_view(x)
        dtype = _check_dtype(dtype)
        rows = _rows(shape, strides)
        if rows is None:
            # Re-enter through CuPy, which can make a contiguous copy of it.
            return describe(_cupy().ascontiguousarray(_cupy().asarray(x)))
        device = _cuda_device_of(ptr) if ptr else 0
        return DeviceArray(
            x,
            "cupy",
            ptr,
            dtype,
            shape[:-1],
            shape[-1],
            rows[0],
            rows[1],
            device,
            _LEGACY_STREAM if stream is None else stream,
        )
    probe = getattr(x, "__dlpack_device__", None)
    if probe is not None and int(probe()[0]) in _DLPACK_CUDA:
        lib = _dlpack_library()
        return describe(lib.from_dlpack(x))
    raise ParameterError(
        f"expected a CUDA device array (CuPy, torch CUDA, __cuda_array_interface__ or DLPack), "
        f"got {type(x).__module__}.{type(x).__name__}"
    )


def _has_cai(x: Any) -> bool:
    try:
        return hasattr(x, "__cuda_array_interface__")
    except Exception:
        return False


def _cupy() -> Any:
    try:
        return importlib.import_module("cupy")
    except ImportError as err:
        raise ParameterError(
            "this device array needs CuPy (pip install cupy-cuda12x) to allocate the results"
        ) from err


def _dlpack_library() -> Any:
    for name in ("cupy", "torch"):
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    raise ParameterError("DLPack device arrays need CuPy or torch installed to be read")


_TORCH_DTYPES = {
    "float32": "float32",
    "float64": "float64",
    "complex64": "complex64",
    "complex128": "complex128",
}


def allocate(like: DeviceArray, shape: tuple[int, ...], dtype: Any) -> Any:
    """An uninitialised array of ``like``'s kind on its device, on its stream.

    Raises
    ------
    DeviceMemoryError
        The library could not allocate it (its own out-of-memory error, re-raised with the
        requested size).
    """
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    try:
        if like.kind == "torch":
            torch = importlib.import_module("torch")
            return torch.empty(
                shape,
                dtype=getattr(torch, _TORCH_DTYPES[dtype.name]),
                device=torch.device("cuda", like.device),
            )
        cp = _cupy()
        with cp.cuda.Device(like.device):
            return cp.empty(shape, dtype=dtype)
    except MemoryError as err:  # CuPy's OutOfMemoryError is a MemoryError
        raise _oom(nbytes, like, err) from err
    except RuntimeError as err:  # torch.OutOfMemoryError is a RuntimeError
        if "out of memory" in str(err).lower():
            raise _oom(nbytes, like, err) from err
        raise


def _oom(nbytes: int, like: DeviceArray, err: BaseException) -> DeviceMemoryError:
    return DeviceMemoryError(
        f"could not allocate {nbytes / 2**20:.1f} MiB for a result on device {like.device} "
        f"(batch of {like.channels} signal(s) x {like.n} samples): split the batch ({err})"
    )


def pointer(arr: Any) -> int:
    """Device pointer of an array this module allocated."""
    if _module_root(arr) == "torch":
        return int(arr.data_ptr())
    return int(arr.data.ptr)


def reshape(arr: Any, shape: tuple[int, ...]) -> Any:
    return arr.reshape(shape)


def as_dtype(arr: Any, dtype: Any) -> Any:
    """``arr`` converted to ``dtype`` on the device (a no-op when it already is)."""
    dtype = np.dtype(dtype)
    if _module_root(arr) == "torch":
        torch = importlib.import_module("torch")
        target = getattr(torch, _TORCH_DTYPES[dtype.name])
        return arr if arr.dtype == target else arr.to(target)
    return arr if np.dtype(arr.dtype) == dtype else arr.astype(dtype)


def to_host(arr: Any) -> np.ndarray:
    """A small device array copied to the host (the onset envelope for beat tracking)."""
    if _module_root(arr) == "torch":
        return np.asarray(arr.detach().cpu().numpy())
    return np.asarray(arr.get())
