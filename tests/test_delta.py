"""delta against librosa.feature.delta (scipy's Savitzky-Golay filter).

Our coefficients are exact to the last bit (discrete orthogonal polynomials in long double);
scipy solves an unscaled Vandermonde least-squares problem whose error grows with
width**order. So float64 results agree with librosa to ~1e-13 for the usual widths and orders,
and to scipy's own error beyond. For float32 input scipy also fits the edges in float32; ours
are the float64 answer rounded once, so float32 edges are compared with a float32-sized
tolerance and against librosa run in float64.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction

import librosa
import numpy as np
import pytest
import scipy.signal
from hypothesis import given, settings
from hypothesis import strategies as st

from ml_utilities.audio import delta
from ml_utilities.audio import feature as feature_module


def assert_close_to_librosa(ours: np.ndarray, data: np.ndarray, **kwargs) -> None:
    ref = librosa.feature.delta(data, **kwargs)
    assert ours.dtype == ref.dtype
    assert ours.shape == ref.shape
    assert ours.flags.c_contiguous == ref.flags.c_contiguous
    # rounding scales with the input as much as with the output (a constant row has delta 0)
    magnitude = np.abs(np.asarray(data, dtype=np.float64))
    scale = max(float(np.abs(ref).max()), float(magnitude.max()) if magnitude.size else 0.0, 1e-300)
    if ref.dtype == np.float64:
        np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-12 * scale)
    else:
        # scipy's float32 edge fit is float32 arithmetic; ours rounds the float64 answer once.
        np.testing.assert_allclose(ours, ref, rtol=0, atol=2e-5 * scale)
        exact = librosa.feature.delta(data.astype(np.float64), **kwargs)
        np.testing.assert_allclose(ours, exact, rtol=0, atol=2e-7 * scale)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "width, order",
    [(w, o) for w in (3, 5, 9, 11, 21) for o in (1, 2, 3) if o < w],
)
def test_delta_matches_librosa_2d(dtype, width, order, rng):
    data = rng.standard_normal((13, 300)).astype(dtype)
    ours = delta(data, width=width, order=order)
    assert_close_to_librosa(ours, data, width=width, order=order)


def test_delta_defaults_match_librosa(rng):
    mfcc = rng.standard_normal((20, 431)).astype(np.float32) * 50
    assert_close_to_librosa(delta(mfcc), mfcc)
    assert_close_to_librosa(delta(mfcc, order=2), mfcc, order=2)


def test_interior_float64_is_within_rounding():
    # Away from the edges both sides compute sum_j (x[i-j] - x[i+j]) c_j in double, in different
    # orders: a few ulps of the largest value apart (data of its own, so that the outcome does
    # not depend on what other tests drew from the shared generator before).
    for seed in range(8):
        data = np.random.default_rng(seed).standard_normal((4, 1000))
        ours = delta(data)
        ref = librosa.feature.delta(data)
        scale = np.abs(ref).max()
        np.testing.assert_allclose(ours[:, 4:-4], ref[:, 4:-4], rtol=0, atol=8 * 2.0**-52 * scale)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(50,), (7, 40), (3, 11, 30), (2, 3, 4, 25)])
def test_delta_every_axis(dtype, shape, rng):
    data = rng.standard_normal(shape).astype(dtype)
    for axis in range(-data.ndim, data.ndim):
        if data.shape[axis] < 3:
            continue
        width = min(9, data.shape[axis] - (1 - data.shape[axis] % 2))
        ours = delta(data, width=width, axis=axis)
        assert_close_to_librosa(ours, data, width=width, axis=axis)


def test_delta_non_contiguous_and_fortran_input(rng):
    base = rng.standard_normal((30, 200))
    for data in (base[::2, ::3], np.asfortranarray(base), base.T, base[:, 10:150]):
        for axis in (0, 1, -1):
            ours = delta(data, width=5, axis=axis)
            assert_close_to_librosa(ours, data, width=5, axis=axis)


@pytest.mark.parametrize(
    "dtype", [np.int16, np.int64, np.uint8, np.float16, np.dtype(">f4"), np.dtype(">f8"), bool]
)
def test_delta_dtype_rules_follow_scipy(dtype, rng):
    data = (rng.standard_normal((3, 40)) * 10).astype(dtype)
    ours = delta(data, width=5)
    assert ours.dtype == np.float64
    assert_close_to_librosa(ours, data, width=5)


def test_delta_scalar_and_list_input():
    data = [0.0, 1.0, 4.0, 9.0, 16.0, 25.0, 36.0, 49.0, 64.0, 81.0]
    ours = delta(data, width=3)
    assert_close_to_librosa(ours, np.asarray(data), width=3)


def test_delta_of_polynomials_is_exact():
    # A degree-`order` polynomial has a constant order-th derivative: order! * leading coef.
    t = np.arange(100, dtype=np.float64)
    for order in (1, 2, 3):
        y = 0.5 * t**order + 3 * t
        d = delta(y, width=9, order=order)
        np.testing.assert_allclose(
            d, 0.5 * math.factorial(order) + (3 if order == 1 else 0), rtol=1e-12
        )


def exact_coefficients(width: int, order: int) -> list[Fraction]:
    """Savitzky-Golay order-th derivative weights for a degree-order fit, in exact arithmetic."""
    h = width // 2
    t = [Fraction(v) for v in range(-h, h + 1)]
    polys = [[Fraction(1)] * width, list(t)]
    for k in range(1, order):
        beta = sum(v * v for v in polys[k]) / sum(v * v for v in polys[k - 1])
        polys.append([t[i] * polys[k][i] - beta * polys[k - 1][i] for i in range(width)])
    p = polys[order]
    norm = sum(v * v for v in p)
    return [math.factorial(order) * v / norm for v in p]


@pytest.mark.parametrize("width, order", [(3, 1), (9, 1), (9, 2), (9, 4), (21, 6), (51, 6)])
def test_coefficients_are_exact(width, order):
    # Impulses placed in the interior read the filter weights back out.
    h = width // 2
    impulses = np.zeros((width, 3 * width))
    impulses[np.arange(width), width + np.arange(width)] = 1.0
    ours = delta(impulses, width=width, order=order)[:, width + h]
    exact = np.array([float(c) for c in exact_coefficients(width, order)])
    np.testing.assert_allclose(ours, exact, rtol=1e-15, atol=1e-300)
    # scipy's least-squares coefficients agree with them to its own accuracy
    ref = scipy.signal.savgol_coeffs(width, order, deriv=order, use="dot")
    np.testing.assert_allclose(ref, exact, rtol=0, atol=1e-8 * np.abs(exact).max())


def test_edges_are_the_fit_at_the_first_and_last_window(rng):
    data = rng.standard_normal(60)
    ours = delta(data, width=7, order=2)
    assert np.all(ours[:3] == ours[3])
    assert np.all(ours[-3:] == ours[-4])


def test_width_equal_to_length(rng):
    data = rng.standard_normal((2, 9))
    assert_close_to_librosa(delta(data, width=9), data, width=9)


def test_other_modes_and_kwargs_fall_back_to_scipy(rng):
    data = rng.standard_normal((4, 50)).astype(np.float32)
    for mode in ("nearest", "mirror", "constant", "wrap"):
        np.testing.assert_array_equal(
            delta(data, mode=mode), librosa.feature.delta(data, mode=mode)
        )
    np.testing.assert_array_equal(
        delta(data, polyorder=3, order=2), librosa.feature.delta(data, polyorder=3, order=2)
    )
    np.testing.assert_array_equal(
        delta(data, mode="constant", cval=2.0, width=3),
        librosa.feature.delta(data, mode="constant", cval=2.0, width=3),
    )
    # "deriv" is dropped as librosa drops it, so the native path still runs
    assert_close_to_librosa(delta(data, deriv=5), data, deriv=5)


def test_zero_rows(rng):
    data = np.zeros((0, 20), dtype=np.float32)
    ours = delta(data)
    assert ours.shape == (0, 20)
    assert ours.dtype == np.float32


def test_non_finite_values_propagate_like_scipy():
    data = np.linspace(0, 1, 40)
    data[20] = np.nan
    ours = delta(data, width=5)
    ref = librosa.feature.delta(data, width=5)
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(ref))


def test_feature_module_exports_this_delta():
    assert feature_module.delta is delta


@settings(max_examples=60, deadline=None)
@given(
    shape=st.lists(st.integers(min_value=1, max_value=24), min_size=1, max_size=3),
    length=st.integers(min_value=3, max_value=200),
    half_width=st.integers(min_value=1, max_value=8),
    order=st.integers(min_value=1, max_value=3),
    dtype=st.sampled_from([np.float32, np.float64]),
    data=st.data(),
)
def test_delta_matches_librosa_everywhere(shape, length, half_width, order, dtype, data):
    width = 2 * half_width + 1
    if width > length or order >= width:
        return
    axis = data.draw(st.integers(min_value=-len(shape) - 1, max_value=len(shape)))
    full = list(shape)
    full.insert(axis if axis >= 0 else len(full) + axis + 1, length)
    x = np.random.default_rng(len(full) * 1000 + length).standard_normal(full).astype(dtype)
    ours = delta(x, width=width, order=order, axis=axis)
    assert_close_to_librosa(ours, x, width=width, order=order, axis=axis)


def test_eight_threads_give_identical_results(rng):
    inputs = [rng.standard_normal((40, 5000 + 37 * i)).astype(np.float32) for i in range(16)]
    inputs += [x.astype(np.float64) for x in inputs[:8]]
    sequential = [delta(x, order=1 + i % 2) for i, x in enumerate(inputs)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        concurrent = list(pool.map(lambda ix: delta(ix[1], order=1 + ix[0] % 2), enumerate(inputs)))
    for a, b in zip(sequential, concurrent, strict=True):
        np.testing.assert_array_equal(a, b)
