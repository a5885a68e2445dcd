"""Cached native plans: one STFT plan per (dtype, n_fft, hop, window) and one sparse mel bank
per filter-bank parameter set, built once and reused by every call."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from .._native import core
from ..exceptions import ParameterError

__all__ = ["dct_matrix", "mel_bank", "stft_plan"]


@lru_cache(maxsize=64)
def _stft_plan(dtype_char: str, n_fft: int, hop_length: int, window_bytes: bytes) -> Any:
    window = np.frombuffer(window_bytes, dtype=np.float64)
    cls = core.spectrum.StftPlanF32 if dtype_char == "f" else core.spectrum.StftPlanF64
    return cls(n_fft, hop_length, window)


def stft_plan(dtype: np.dtype, n_fft: int, hop_length: int, window: np.ndarray) -> Any:
    """The plan for this parameter set; ``window`` is the float64 window padded to ``n_fft``."""
    window = np.ascontiguousarray(window, dtype=np.float64)
    return _stft_plan(np.dtype(dtype).char, int(n_fft), int(hop_length), window.tobytes())


@lru_cache(maxsize=32)
def _mel_bank(sr: float, n_fft: int, key: tuple[tuple[str, Any], ...]) -> tuple[np.ndarray, Any]:
    from .filters import mel

    basis = mel(sr=sr, n_fft=n_fft, **dict(key))
    basis.setflags(write=False)
    dense = np.ascontiguousarray(basis)
    cls = core.spectrum.FilterBankF32 if dense.dtype == np.float32 else core.spectrum.FilterBankF64
    return basis, cls(dense)


def mel_bank(sr: float, n_fft: int, kwargs: dict[str, Any]) -> tuple[np.ndarray, Any]:
    """``(basis, sparse_bank)`` for ``filters.mel(sr=sr, n_fft=n_fft, **kwargs)``, cached when
    every argument is hashable."""
    try:
        key = tuple(sorted(kwargs.items()))
        hash(key)
    except TypeError:
        return _mel_bank.__wrapped__(sr, n_fft, tuple(sorted(kwargs.items())))
    try:
        n_fft_int = int(n_fft)
    except (TypeError, ValueError, OverflowError):
        raise ParameterError(f"n_fft={n_fft!r} must be a positive integer") from None
    return _mel_bank(float(sr), n_fft_int, key)


@lru_cache(maxsize=64)
def dct_matrix(dct_type: int, n_out: int, n_in: int, ortho: bool) -> np.ndarray:
    """(n_out, n_in) float64 matrix M with M @ x == scipy.fft.dct(x, type, norm)[:n_out]."""
    m = np.asarray(core.filters.dct_matrix(int(dct_type), int(n_out), int(n_in), bool(ortho)))
    m = m.reshape(n_out, n_in)
    m.setflags(write=False)
    return m
