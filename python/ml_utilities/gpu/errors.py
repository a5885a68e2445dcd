"""Exceptions of the CUDA backend (the compiled ``_cuda`` module raises these)."""

from __future__ import annotations

from ..exceptions import MLUtilitiesError

__all__ = ["DeviceError", "DeviceMemoryError"]


class DeviceError(MLUtilitiesError, RuntimeError):
    """A CUDA call failed (a launch, the runtime, cuFFT); the message has CUDA's reason."""


class DeviceMemoryError(DeviceError, MemoryError):
    """The device ran out of memory for this batch: the message says how much was needed and
    how much was free; split the batch."""
