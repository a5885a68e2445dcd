"""
float32 / complex64 kernels
"""

from __future__ import annotations

import typing

import numpy
import numpy.typing

__all__: list[str] = [
    "apply_bank",
    "median_filters",
    "piptrack",
    "piptrack_peaks",
    "softmask",
    "softmask_sum",
    "sparse_product",
]

def apply_bank(
    arg0: numpy.ndarray,
    arg1: numpy.ndarray,
    arg2: typing.SupportsFloat | typing.SupportsIndex,
    arg3: typing.SupportsFloat | typing.SupportsIndex,
) -> numpy.typing.NDArray[numpy.float32]: ...
def median_filters(
    arg0: numpy.ndarray,
    arg1: typing.SupportsInt | typing.SupportsIndex,
    arg2: typing.SupportsInt | typing.SupportsIndex,
) -> tuple[numpy.typing.NDArray[numpy.float32], numpy.typing.NDArray[numpy.float32]]: ...
def piptrack(
    arg0: numpy.ndarray,
    arg1: typing.SupportsFloat | typing.SupportsIndex,
    arg2: typing.SupportsInt | typing.SupportsIndex,
    arg3: typing.SupportsFloat | typing.SupportsIndex,
    arg4: typing.SupportsFloat | typing.SupportsIndex,
    arg5: typing.SupportsFloat | typing.SupportsIndex,
    arg6: typing.Any,
) -> tuple[numpy.typing.NDArray[numpy.float32], numpy.typing.NDArray[numpy.float32]]: ...
def piptrack_peaks(
    arg0: numpy.ndarray,
    arg1: typing.SupportsFloat | typing.SupportsIndex,
    arg2: typing.SupportsInt | typing.SupportsIndex,
    arg3: typing.SupportsFloat | typing.SupportsIndex,
    arg4: typing.SupportsFloat | typing.SupportsIndex,
    arg5: typing.SupportsFloat | typing.SupportsIndex,
    arg6: typing.Any,
) -> tuple[numpy.typing.NDArray[numpy.float32], numpy.typing.NDArray[numpy.float32]]: ...
def softmask(
    arg0: numpy.ndarray,
    arg1: numpy.ndarray,
    arg2: typing.SupportsFloat | typing.SupportsIndex,
    arg3: typing.SupportsFloat | typing.SupportsIndex,
    arg4: bool,
) -> numpy.typing.NDArray[numpy.float32]: ...
def softmask_sum(
    arg0: numpy.ndarray,
    arg1: numpy.ndarray,
    arg2: numpy.ndarray,
    arg3: typing.SupportsFloat | typing.SupportsIndex,
    arg4: typing.SupportsFloat | typing.SupportsIndex,
    arg5: bool,
) -> float: ...
def sparse_product(
    arg0: numpy.ndarray, arg1: numpy.ndarray, arg2: numpy.ndarray, arg3: numpy.ndarray
) -> numpy.typing.NDArray[numpy.complex64]: ...
