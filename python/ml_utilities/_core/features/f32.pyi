"""
float32 inputs
"""

from __future__ import annotations

import collections.abc
import typing

import numpy
import numpy.typing

__all__: list[str] = [
    "rms_energy",
    "spectral_bandwidth",
    "spectral_centroid",
    "spectral_contrast",
    "spectral_flatness",
    "spectral_flux",
    "spectral_rolloff",
    "zero_crossing_rate",
]

def rms_energy(
    arg0: numpy.ndarray,
    arg1: typing.SupportsInt | typing.SupportsIndex,
    arg2: typing.SupportsInt | typing.SupportsIndex,
    arg3: bool,
) -> tuple[numpy.typing.NDArray[numpy.float32], numpy.typing.NDArray[numpy.float32]]: ...
def spectral_bandwidth(
    arg0: numpy.ndarray,
    arg1: numpy.ndarray,
    arg2: numpy.ndarray,
    arg3: typing.SupportsFloat | typing.SupportsIndex,
    arg4: bool,
) -> numpy.typing.NDArray[numpy.float64]: ...
def spectral_centroid(
    arg0: numpy.ndarray, arg1: numpy.ndarray
) -> numpy.typing.NDArray[numpy.float64]: ...
def spectral_contrast(
    arg0: numpy.ndarray,
    arg1: collections.abc.Sequence[
        tuple[
            typing.SupportsInt | typing.SupportsIndex,
            typing.SupportsInt | typing.SupportsIndex,
            typing.SupportsInt | typing.SupportsIndex,
        ]
    ],
) -> tuple[numpy.typing.NDArray[numpy.float64], numpy.typing.NDArray[numpy.float64]]: ...
def spectral_flatness(
    arg0: numpy.ndarray,
    arg1: typing.SupportsFloat | typing.SupportsIndex,
    arg2: typing.SupportsFloat | typing.SupportsIndex,
) -> numpy.typing.NDArray[numpy.float32]: ...
def spectral_flux(arg0: numpy.ndarray) -> numpy.typing.NDArray[numpy.float32]: ...
def spectral_rolloff(
    arg0: numpy.ndarray, arg1: numpy.ndarray, arg2: typing.SupportsFloat | typing.SupportsIndex
) -> numpy.typing.NDArray[numpy.float64]: ...
def zero_crossing_rate(
    arg0: numpy.ndarray,
    arg1: typing.SupportsInt | typing.SupportsIndex,
    arg2: typing.SupportsInt | typing.SupportsIndex,
    arg3: bool,
    arg4: typing.SupportsFloat | typing.SupportsIndex,
    arg5: bool,
) -> numpy.typing.NDArray[numpy.float64]: ...
