"""
Tuning, chroma, CQT, HPSS
"""

from __future__ import annotations

import typing

import numpy
import numpy.typing

from . import f32, f64

__all__: list[str] = ["chroma_filterbank", "f32", "f64"]

def chroma_filterbank(
    arg0: typing.SupportsFloat | typing.SupportsIndex,
    arg1: typing.SupportsInt | typing.SupportsIndex,
    arg2: typing.SupportsInt | typing.SupportsIndex,
    arg3: typing.SupportsFloat | typing.SupportsIndex,
    arg4: typing.SupportsFloat | typing.SupportsIndex,
    arg5: typing.SupportsFloat | typing.SupportsIndex,
    arg6: typing.SupportsFloat | typing.SupportsIndex,
    arg7: bool,
) -> numpy.typing.NDArray[numpy.float64]: ...
