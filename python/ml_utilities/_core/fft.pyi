"""
Batched real FFT plans
"""

from __future__ import annotations

import typing

import numpy

__all__: list[str] = ["lanes", "rfft_rows"]

def lanes(dtype: str, n: typing.SupportsInt | typing.SupportsIndex = 2) -> int:
    """
    Frames per SIMD block for this dtype at the active level.
    """

def rfft_rows(x: numpy.ndarray) -> numpy.ndarray:
    """
    Real FFT of each row of a C-contiguous (rows, n) float32/float64 array -> (rows, n//2+1).
    """
