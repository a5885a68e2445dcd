"""
STFT plans: spectra, mel, MFCC
"""

from __future__ import annotations

import collections.abc
import typing

import numpy

__all__: list[str] = [
    "FilterBankF32",
    "FilterBankF64",
    "StftPlanF32",
    "StftPlanF64",
    "apply_dct",
    "power_to_db_inplace",
]

class FilterBankF32:
    def __init__(self, dense: numpy.ndarray) -> None: ...
    @property
    def nnz(self) -> int: ...
    @property
    def shape(self) -> tuple[int, int]: ...

class StftPlanF32:
    def __init__(
        self,
        n_fft: typing.SupportsInt | typing.SupportsIndex,
        hop_length: typing.SupportsInt | typing.SupportsIndex,
        window: collections.abc.Sequence[typing.SupportsFloat | typing.SupportsIndex],
    ) -> None: ...
    def execute(
        self,
        y: numpy.ndarray,
        center: bool,
        head: typing.Any = None,
        tail: typing.Any = None,
        stft: typing.Any = None,
        spectrum: typing.Any = None,
        spectrum_power: typing.SupportsFloat | typing.SupportsIndex = 2.0,
        mel: typing.Any = None,
        mel_bank: FilterBankF32 = None,
        mel_power: typing.SupportsFloat | typing.SupportsIndex = 2.0,
    ) -> None:
        """
        Run the plan on (channels, n) samples, filling each output given (None: skipped).
        """
    def n_frames(self, n: typing.SupportsInt | typing.SupportsIndex, center: bool) -> int: ...
    @property
    def hop_length(self) -> int: ...
    @property
    def n_bins(self) -> int: ...
    @property
    def n_fft(self) -> int: ...

class FilterBankF64:
    def __init__(self, dense: numpy.ndarray) -> None: ...
    @property
    def nnz(self) -> int: ...
    @property
    def shape(self) -> tuple[int, int]: ...

class StftPlanF64:
    def __init__(
        self,
        n_fft: typing.SupportsInt | typing.SupportsIndex,
        hop_length: typing.SupportsInt | typing.SupportsIndex,
        window: collections.abc.Sequence[typing.SupportsFloat | typing.SupportsIndex],
    ) -> None: ...
    def execute(
        self,
        y: numpy.ndarray,
        center: bool,
        head: typing.Any = None,
        tail: typing.Any = None,
        stft: typing.Any = None,
        spectrum: typing.Any = None,
        spectrum_power: typing.SupportsFloat | typing.SupportsIndex = 2.0,
        mel: typing.Any = None,
        mel_bank: FilterBankF64 = None,
        mel_power: typing.SupportsFloat | typing.SupportsIndex = 2.0,
    ) -> None:
        """
        Run the plan on (channels, n) samples, filling each output given (None: skipped).
        """
    def n_frames(self, n: typing.SupportsInt | typing.SupportsIndex, center: bool) -> int: ...
    @property
    def hop_length(self) -> int: ...
    @property
    def n_bins(self) -> int: ...
    @property
    def n_fft(self) -> int: ...

def apply_dct(
    x: numpy.ndarray,
    out: numpy.ndarray,
    matrix: collections.abc.Sequence[typing.SupportsFloat | typing.SupportsIndex],
    n_out: typing.SupportsInt | typing.SupportsIndex,
    lifter: typing.SupportsFloat | typing.SupportsIndex = 0.0,
) -> None:
    """
    out[c, i, t] = sum_j matrix[i, j] x[c, j, t], with optional MFCC liftering.
    """

def power_to_db_inplace(
    S: numpy.ndarray,
    amin: typing.SupportsFloat | typing.SupportsIndex,
    ref_db: typing.SupportsFloat | typing.SupportsIndex,
    top_db: typing.SupportsFloat | typing.SupportsIndex,
) -> None:
    """
    In place: 10 log10(max(amin, S)) - ref_db, floored at max - top_db when top_db >= 0.
    """
