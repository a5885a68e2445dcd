"""
Windows, filter banks, DCT, deltas
"""

from __future__ import annotations

import collections.abc
import typing

import numpy

__all__: list[str] = ["dct_matrix", "delta", "get_window", "mel"]

def dct_matrix(
    type: typing.SupportsInt | typing.SupportsIndex,
    n_out: typing.SupportsInt | typing.SupportsIndex,
    n_in: typing.SupportsInt | typing.SupportsIndex,
    ortho: bool,
) -> numpy.ndarray:
    """
    (n_out, n_in) float64 M with M @ x == scipy.fft.dct(x, type, norm)[:n_out].
    """

def delta(
    x: typing.Any,
    out: typing.Any,
    width: typing.SupportsInt | typing.SupportsIndex,
    order: typing.SupportsInt | typing.SupportsIndex,
) -> None:
    """
    Savitzky-Golay derivative (librosa.feature.delta, mode='interp') of each row of a C-contiguous (rows, length) float32/float64 array, written into `out` (same shape and dtype, not overlapping x). Nothing is copied; the GIL is released.
    """

def get_window(
    name: str,
    params: collections.abc.Sequence[typing.SupportsFloat | typing.SupportsIndex],
    n: typing.SupportsInt | typing.SupportsIndex,
    fftbins: bool = True,
) -> numpy.ndarray:
    """
    scipy.signal.get_window((name, *params), n, fftbins) as a float64 array. For 'exponential', a NaN center stands for center=None.
    """

def mel(
    sr: typing.SupportsFloat | typing.SupportsIndex,
    n_fft: typing.SupportsInt | typing.SupportsIndex,
    n_mels: typing.SupportsInt | typing.SupportsIndex,
    fmin: typing.SupportsFloat | typing.SupportsIndex,
    fmax: typing.SupportsFloat | typing.SupportsIndex,
    htk: bool,
    norm_kind: str,
    p: typing.SupportsFloat | typing.SupportsIndex,
    dtype: str,
) -> tuple:
    """
    librosa.filters.mel as ((n_mels, 1 + n_fft//2) array, empty_filters flag). norm_kind: 'none', 'slaney' or 'lp' (with p, which may be +-inf or 0).
    """
