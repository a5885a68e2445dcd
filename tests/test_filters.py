"""Filter banks, windows and DCT matrices against librosa 0.11 and scipy.

The mel bank is compared bit for bit: it is built with the same floating-point steps as
librosa, and numpy's float64 log/exp/pow are libm's on common builds. Where numpy uses its own
SIMD transcendental functions (AVX-512 builds), the comparison allows for their last-bit
differences instead.
"""

from __future__ import annotations

import math
import warnings

import librosa
import numpy as np
import pytest
import scipy.fft
import scipy.signal
from hypothesis import example, given, settings
from hypothesis import strategies as st

from ml_utilities.audio import filters

EMPTY_FILTERS = "Empty filters detected in mel frequency basis"


def _numpy_uses_libm() -> bool:
    x = np.linspace(1e-3, 60.0, 20001)
    pairs = [
        (np.exp(x), [math.exp(v) for v in x]),
        (np.log(x), [math.log(v) for v in x]),
        (np.log10(x), [math.log10(v) for v in x]),
        (np.power(10.0, x / 20), [math.pow(10.0, v / 20) for v in x]),
    ]
    return all(np.array_equal(a, np.array(b)) for a, b in pairs)


EXACT = _numpy_uses_libm()


def assert_same_bank(ours: np.ndarray, ref: np.ndarray, atol: float = 1e-12) -> None:
    assert ours.dtype == ref.dtype
    assert ours.shape == ref.shape
    assert ours.flags.c_contiguous
    if EXACT:
        np.testing.assert_array_equal(ours, ref)
    else:  # pragma: no cover - numpy with its own SIMD exp/log
        np.testing.assert_allclose(ours, ref, rtol=4 * np.finfo(ref.dtype).eps, atol=atol)


def mel_atol(ref: np.ndarray, **kwargs) -> float:
    """How far a last-bit difference in exp/log can move a weight of this mel bank.

    Each weight is a difference of two band-edge frequencies (Hz, up to fmax) over a band
    width, so an error of a few ulps in an edge is amplified by fmax / (narrowest band):
    0.4 Hz bands near 1.25 kHz (fmin=1231, fmax=1282, 123 bands) move by 1e-12 this way.
    The row normalisation scales that error and adds its own: first order in the weights,
    sum(u**(p-1)) / sum(u**p) for a p-norm, which is large for p < 1 and tiny weights.
    """
    kwargs = {**kwargs, "dtype": np.float64}
    norm = kwargs.pop("norm")
    n_mels, htk = kwargs["n_mels"], kwargs.get("htk", False)
    edges = librosa.mel_frequencies(n_mels + 2, fmin=kwargs["fmin"], fmax=kwargs["fmax"], htk=htk)
    narrowest = float(np.min(np.diff(edges))) if n_mels else 0.0
    if not narrowest > 0:
        return 1e-12
    unit = np.finfo(np.float64).eps * float(np.max(np.abs(edges))) / narrowest
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # empty filters: compared by the test itself
        plain = librosa.filters.mel(norm=None, **kwargs)
    worst = 0.0
    for u, r in zip(plain, np.abs(ref.astype(np.float64)), strict=True):
        u = u[u > 0]
        if u.size == 0:
            continue
        if norm is None or norm == "slaney" or norm == 0:
            rel = unit  # slaney: 2 / (band width), itself a difference of edges
        elif np.isinf(norm):
            rel = unit / u.max()
        else:
            rel = unit * float(np.sum(u ** (norm - 1)) / np.sum(u**norm))
        worst = max(worst, float(r.max()) / float(u.max()) * unit + float(r.max()) * rel)
    return max(1e-12, 8 * worst)


def mel_both(**kwargs):
    """(ours, librosa's, our warnings, librosa's warnings) for the same arguments."""
    with warnings.catch_warnings(record=True) as ours_w:
        warnings.simplefilter("always")
        ours = filters.mel(**kwargs)
    with warnings.catch_warnings(record=True) as ref_w:
        warnings.simplefilter("always")
        ref = librosa.filters.mel(**kwargs)
    return ours, ref, ours_w, ref_w


def same_warnings(ours_w, ref_w) -> None:
    assert [(w.category, str(w.message)) for w in ours_w] == [
        (w.category, str(w.message)) for w in ref_w
    ]


# ----------------------------------------------------------------------------- mel


@pytest.mark.parametrize("sr", [8000, 16000, 22050, 44100, 48000, 22050.5])
@pytest.mark.parametrize("n_fft", [256, 1000, 2048, 4096])
@pytest.mark.parametrize("htk", [False, True])
@pytest.mark.parametrize("norm", ["slaney", None, 1, 2, 2.0, np.inf, -np.inf, 0, 3.5])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_mel_bit_exact(sr, n_fft, htk, norm, dtype):
    for n_mels, fmin, fmax in [(128, 0.0, None), (40, 30.0, 8000.0), (64, 1200.0, None)]:
        ours, ref, ours_w, ref_w = mel_both(
            sr=sr,
            n_fft=n_fft,
            n_mels=n_mels,
            fmin=fmin,
            fmax=fmax,
            htk=htk,
            norm=norm,
            dtype=dtype,
        )
        assert_same_bank(ours, ref)
        same_warnings(ours_w, ref_w)


def test_mel_defaults():
    ours = filters.mel(sr=22050, n_fft=2048)
    ref = librosa.filters.mel(sr=22050, n_fft=2048)
    assert ours.shape == (128, 1025)
    assert ours.dtype == np.float32
    assert_same_bank(ours, ref)


@settings(max_examples=60, deadline=None)
@given(
    sr=st.sampled_from([4000, 8000, 11025, 16000, 22050, 32000, 44100, 48000, 96000]),
    n_fft=st.integers(min_value=16, max_value=4096),
    n_mels=st.integers(min_value=1, max_value=160),
    fmin=st.floats(min_value=0.0, max_value=2000.0),
    span=st.floats(min_value=50.0, max_value=30000.0),
    htk=st.booleans(),
    norm=st.sampled_from(["slaney", None, 1, 2, np.inf, 0.5]),
    dtype=st.sampled_from([np.float32, np.float64]),
)
# 0.4 Hz bands near 1.25 kHz: numpy's SIMD exp moves a weight by 1e-12 (CI, 2026-12-07)
@example(
    sr=4000,
    n_fft=253,
    n_mels=123,
    fmin=1231.0,
    span=51.0,
    htk=False,
    norm="slaney",
    dtype=np.float64,
)
def test_mel_matches_librosa_everywhere(sr, n_fft, n_mels, fmin, span, htk, norm, dtype):
    ours, ref, ours_w, ref_w = mel_both(
        sr=sr,
        n_fft=n_fft,
        n_mels=n_mels,
        fmin=fmin,
        fmax=fmin + span,
        htk=htk,
        norm=norm,
        dtype=dtype,
    )
    atol = mel_atol(
        ref, sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmin + span, htk=htk, norm=norm
    )
    assert_same_bank(ours, ref, atol)
    same_warnings(ours_w, ref_w)


def test_mel_warns_on_empty_filters_like_librosa():
    kwargs = dict(sr=8000, n_fft=64, n_mels=128)
    with pytest.warns(UserWarning, match=EMPTY_FILTERS) as record:
        ours = filters.mel(**kwargs)
    with pytest.warns(UserWarning, match=EMPTY_FILTERS):
        ref = librosa.filters.mel(**kwargs)
    assert_same_bank(ours, ref)
    # the warning points at the caller, not at the library
    assert record[0].filename == __file__


def test_mel_no_warning_when_fmin_is_zero_and_only_the_first_filter_is_empty():
    # librosa only checks filters whose lower edge is above 0 Hz.
    ours, ref, ours_w, ref_w = mel_both(sr=22050, n_fft=64, n_mels=4, fmin=0.0, fmax=100.0)
    assert_same_bank(ours, ref)
    same_warnings(ours_w, ref_w)


@pytest.mark.parametrize("norm", ["slaney", None, 2])
@pytest.mark.parametrize(
    "fmin, fmax", [(500.0, 500.0), (4000.0, 1000.0), (0.0, 30000.0), (-100.0, 300.0)]
)
def test_mel_degenerate_ranges_match_librosa(fmin, fmax, norm):
    # Zero-width, reversed or beyond-Nyquist ranges: same numbers (NaN included), same
    # UserWarning; librosa's numpy RuntimeWarnings (divide by zero) are not reproduced.
    kwargs = dict(sr=22050, n_fft=512, n_mels=16, fmin=fmin, fmax=fmax, norm=norm)
    with warnings.catch_warnings(record=True) as ours_w:
        warnings.simplefilter("always")
        ours = filters.mel(**kwargs)
    with warnings.catch_warnings(record=True) as ref_w:
        warnings.simplefilter("always")
        ref = librosa.filters.mel(**kwargs)
    assert ours.dtype == ref.dtype and ours.shape == ref.shape
    np.testing.assert_array_equal(ours, ref)  # NaNs compare equal here
    ref_w = [w for w in ref_w if w.category is not RuntimeWarning]
    same_warnings(ours_w, ref_w)


def test_mel_zero_bands():
    ours = filters.mel(sr=22050, n_fft=512, n_mels=0)
    ref = librosa.filters.mel(sr=22050, n_fft=512, n_mels=0)
    assert ours.shape == ref.shape == (0, 257)
    assert ours.dtype == ref.dtype


def test_mel_norm_false_is_norm_zero():
    # librosa's util.normalize tests `norm == 0` first, so False counts as the l0 "norm".
    ours, ref, *_ = mel_both(sr=22050, n_fft=512, n_mels=20, norm=False)
    assert_same_bank(ours, ref)


# -------------------------------------------------------------------------- windows

PLAIN_WINDOWS = [
    "hann",
    "han",
    "hamming",
    "hamm",
    "ham",
    "blackman",
    "black",
    "blk",
    "blackmanharris",
    "blackharr",
    "bkh",
    "nuttall",
    "nutl",
    "nut",
    "flattop",
    "flat",
    "flt",
    "bartlett",
    "bart",
    "brt",
    "triang",
    "triangle",
    "tri",
    "boxcar",
    "box",
    "ones",
    "rect",
    "rectangular",
    "bohman",
    "bman",
    "bmn",
    "cosine",
    "halfcosine",
    "parzen",
    "parz",
    "par",
    "barthann",
    "brthan",
    "bth",
    "lanczos",
    "sinc",
    "tukey",
    "tuk",
    "exponential",
    "poisson",
]

PARAM_WINDOWS = [
    ("kaiser", 0.0),
    ("kaiser", 4.0),
    ("kaiser", 8.6),
    ("kaiser", 14.0),
    ("ksr", 30.0),
    ("kaiser", 60.0),
    ("tukey", 0.0),
    ("tukey", 0.25),
    ("tukey", 0.5),
    ("tukey", 0.9),
    ("tukey", 1.0),
    ("tukey", 1.7),
    ("tukey", -0.5),
    ("gaussian", 0.7),
    ("gauss", 7.0),
    ("gss", 100.0),
    ("general_gaussian", 1.5, 7.0),
    ("general gaussian", 0.5, 3.0),
    ("ggs", 1.0, 2.0),
    ("general_gauss", 3, 20),
    ("general_hamming", 0.6),
    ("general hamming", 0.5),
    ("exponential", None, 3.0),
    ("exponential", None),
    ("poisson", None, 0.5),
    ("general_cosine", [0.5, 0.3, 0.2]),
    ("general cosine", (1.0,)),
]

SIZES = [1, 2, 3, 4, 5, 8, 17, 64, 255, 1024, 2048]


def assert_window_close(ours: np.ndarray, ref: np.ndarray) -> None:
    assert ours.dtype == ref.dtype == np.float64
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, rtol=4e-15, atol=4e-16)


@pytest.mark.parametrize("window", PLAIN_WINDOWS + PARAM_WINDOWS, ids=str)
@pytest.mark.parametrize("fftbins", [True, False])
def test_window_matches_scipy(window, fftbins):
    for n in SIZES:
        ours = filters.get_window(window, n, fftbins=fftbins)
        assert_window_close(ours, scipy.signal.get_window(window, n, fftbins=fftbins))
        assert_window_close(ours, librosa.filters.get_window(window, n, fftbins=fftbins))


@pytest.mark.parametrize("name", ["hann", "hamming", "kaiser", "tukey", "blackman", "triang"])
@pytest.mark.parametrize("suffix", ["_symmetric", "_periodic"])
def test_window_suffix_overrides_fftbins(name, suffix):
    window = (name + suffix, 5.0) if name == "kaiser" else name + suffix
    for fftbins in (True, False):
        for n in (7, 8, 512):
            ours = filters.get_window(window, n, fftbins=fftbins)
            assert_window_close(ours, scipy.signal.get_window(window, n, fftbins=fftbins))


@pytest.mark.parametrize("window", [("kbd", 4.0), ("kaiser_bessel_derived", 9.0)])
def test_kaiser_bessel_derived_symmetric(window):
    for n in (2, 8, 64, 1024):
        ours = filters.get_window(window, n, fftbins=False)
        assert_window_close(ours, scipy.signal.get_window(window, n, fftbins=False))


def test_exponential_with_center_periodic():
    for n in (5, 16):
        ours = filters.get_window(("exponential", 2.0, 3.0), n)
        assert_window_close(ours, scipy.signal.get_window(("exponential", 2.0, 3.0), n))


@pytest.mark.parametrize("beta", [0, 1, 4.5, 14, np.float32(3.0)])
def test_number_is_kaiser_beta(beta):
    ours = filters.get_window(beta, 100)
    assert_window_close(ours, librosa.filters.get_window(beta, 100))
    assert_window_close(ours, scipy.signal.get_window(("kaiser", float(beta)), 100))


@pytest.mark.parametrize(
    "window", [("chebwin", 60), ("dpss", 3.0), "taylor", ("taylor", 5, 35), ("cheb", 80)], ids=str
)
def test_scipy_only_windows_delegate_to_scipy(window):
    for fftbins in (True, False):
        ours = filters.get_window(window, 64, fftbins=fftbins)
        np.testing.assert_array_equal(ours, scipy.signal.get_window(window, 64, fftbins=fftbins))


def test_window_callable_and_arrays_pass_through():
    ours = filters.get_window(np.hanning, 16)
    np.testing.assert_array_equal(ours, librosa.filters.get_window(np.hanning, 16))
    arr = np.arange(8.0)
    assert filters.get_window(arr, 8) is arr
    assert librosa.filters.get_window(arr, 8) is arr
    lst = [1, 2, 3]
    ours = filters.get_window(lst, 3)
    ref = librosa.filters.get_window(lst, 3)
    np.testing.assert_array_equal(ours, ref)
    assert ours.dtype == ref.dtype


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(min_value=1, max_value=5000),
    fftbins=st.booleans(),
    window=st.one_of(
        st.sampled_from(PLAIN_WINDOWS),
        st.tuples(st.just("kaiser"), st.floats(min_value=0.0, max_value=40.0)),
        # (scipy itself overflows, with a RuntimeWarning, for a subnormal alpha)
        st.tuples(
            st.just("tukey"),
            st.floats(min_value=-0.5, max_value=1.5).filter(lambda a: a == 0 or abs(a) > 1e-9),
        ),
        st.tuples(st.just("gaussian"), st.floats(min_value=0.1, max_value=1000.0)),
        st.tuples(st.just("general_hamming"), st.floats(min_value=0.0, max_value=1.0)),
    ),
)
def test_window_matches_scipy_everywhere(n, fftbins, window):
    ours = filters.get_window(window, n, fftbins=fftbins)
    assert_window_close(ours, scipy.signal.get_window(window, n, fftbins=fftbins))


# ------------------------------------------------------------------------------ DCT


@pytest.mark.parametrize("dct_type", [1, 2, 3])
@pytest.mark.parametrize("norm", [None, "ortho"])
@pytest.mark.parametrize("n_in", [2, 3, 4, 5, 13, 40, 128, 257])
def test_dct_matrix_matches_scipy(dct_type, norm, n_in, rng):
    from ml_utilities import _core

    x = rng.standard_normal((n_in, 6))
    ref = scipy.fft.dct(x, type=dct_type, norm=norm, axis=0)
    for n_out in sorted({1, n_in // 2, n_in}):
        m = _core.filters.dct_matrix(dct_type, n_out, n_in, norm == "ortho")
        assert m.shape == (n_out, n_in)
        assert m.dtype == np.float64
        scale = np.abs(ref).max()
        np.testing.assert_allclose(m @ x, ref[:n_out], rtol=0, atol=1e-13 * scale)
        basis = scipy.fft.dct(np.eye(n_in), type=dct_type, norm=norm, axis=0)[:n_out]
        np.testing.assert_allclose(m, basis, rtol=0, atol=2e-15 * max(1.0, np.abs(basis).max()))


@pytest.mark.parametrize("n_filters, n_input", [(1, 1), (13, 128), (20, 40), (64, 64)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dct_is_the_orthonormal_dct2_basis(n_filters, n_input, dtype):
    basis = filters.dct(n_filters, n_input, dtype=dtype)
    assert basis.shape == (n_filters, n_input)
    assert basis.dtype == dtype
    ref = scipy.fft.dct(np.eye(n_input), type=2, norm="ortho", axis=0)[:n_filters]
    np.testing.assert_allclose(basis, ref.astype(dtype), rtol=0, atol=4 * np.finfo(dtype).eps)
    # the rows are orthonormal
    np.testing.assert_allclose(
        basis.astype(np.float64) @ basis.T.astype(np.float64),
        np.eye(n_filters),
        atol=16 * np.finfo(dtype).eps * n_input,
    )


def test_filters_module_exports():
    assert sorted(filters.__all__) == ["dct", "get_window", "mel"]
