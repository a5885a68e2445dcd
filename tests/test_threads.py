"""The core releases the GIL and gives the same answer from 1 thread or 8 at once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from ml_utilities import _core
from ml_utilities.audio import melspectrogram, mfcc, stft


@pytest.fixture
def signals():
    rng = np.random.default_rng(7)
    return [rng.standard_normal(22050 * 2 + i * 333).astype(np.float32) for i in range(16)]


def test_eight_threads_give_identical_results(signals):
    sequential = [mfcc(y=y, sr=22050, n_mfcc=13) for y in signals]
    with ThreadPoolExecutor(max_workers=8) as pool:
        concurrent = list(pool.map(lambda y: mfcc(y=y, sr=22050, n_mfcc=13), signals))
    for a, b in zip(sequential, concurrent, strict=True):
        np.testing.assert_array_equal(a, b)


def test_pool_size_does_not_change_results(signals):
    before = _core.threads()
    try:
        _core.set_threads(1)
        one = [stft(y) for y in signals[:4]] + [melspectrogram(y=y) for y in signals[:4]]
        _core.set_threads(4)
        four = [stft(y) for y in signals[:4]] + [melspectrogram(y=y) for y in signals[:4]]
    finally:
        _core.set_threads(before)
    for a, b in zip(one, four, strict=True):
        np.testing.assert_array_equal(a, b)


def test_simd_levels_agree(signals):
    info = _core.build_info()
    y = signals[0]
    reference = stft(y)
    try:
        _core.set_simd_level("generic")
        from ml_utilities.audio import _plans

        _plans._stft_plan.cache_clear()
        generic = stft(y)
    finally:
        _core.set_simd_level(info["simd_detected"])
        _plans._stft_plan.cache_clear()
    np.testing.assert_allclose(np.abs(generic), np.abs(reference), rtol=1e-4, atol=1e-3)
    with pytest.raises(ValueError, match="unknown SIMD level"):
        _core.set_simd_level("sse9")
