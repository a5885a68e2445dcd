"""
ml_utilities compiled core (private: use ml_utilities.audio)
"""

from __future__ import annotations

import typing

from . import features, fft, filters, harmonic, rhythm, serving, spectrum

__all__: list[str] = [
    "build_info",
    "features",
    "fft",
    "filters",
    "harmonic",
    "rhythm",
    "serving",
    "set_simd_level",
    "set_threads",
    "spectrum",
    "threads",
]

def build_info() -> dict: ...
def set_simd_level(level: str) -> None:
    """
    Lower the SIMD level new plans use ('generic', 'avx2', 'avx512').
    """

def set_threads(n_threads: typing.SupportsInt | typing.SupportsIndex) -> None:
    """
    Resize the default thread pool (1 runs everything on the calling thread).
    """

def threads() -> int: ...
