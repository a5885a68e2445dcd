"""STFT and decibel conversions against librosa 0.11: real clips, drawn signals, every pad mode."""

from __future__ import annotations

import warnings

import librosa
import numpy as np
import pytest
from helpers import CLIPS, chirp, relative_error
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ml_utilities import ParameterError
from ml_utilities.audio import amplitude_to_db, db_to_amplitude, db_to_power, power_to_db, stft

PAD_MODES = ["constant", "edge", "reflect", "symmetric", "linear_ramp"]


def assert_stft_matches(y: np.ndarray, **kwargs) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        expected = librosa.stft(y, **kwargs)
        actual = stft(y, **kwargs)
    assert actual.shape == expected.shape
    assert actual.dtype == expected.dtype
    assert relative_error(np.abs(actual), np.abs(expected)) <= 1e-5
    # The phase too, where the magnitude is well above rounding.
    assert relative_error(actual, expected) <= 1e-4


@pytest.mark.parametrize("clip", CLIPS)
def test_stft_real_audio_defaults(clip_cache, clip):
    y, _ = clip_cache[clip]
    assert_stft_matches(y)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(n_fft=1024, hop_length=256),
        dict(n_fft=2048, hop_length=512, win_length=1500, window="hamming"),
        dict(n_fft=512, hop_length=128, center=False),
        dict(n_fft=2048, pad_mode="reflect"),
        dict(n_fft=1000, hop_length=333, window=("kaiser", 8.0)),
        dict(n_fft=4096, hop_length=1024, window="blackmanharris", pad_mode="edge"),
    ],
)
def test_stft_real_audio_non_defaults(clip_cache, kwargs):
    y, _ = clip_cache["Kevin_MacLeod_-_Vibe_Ace.ogg"]
    assert_stft_matches(y[: 22050 * 10], **kwargs)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("pad_mode", PAD_MODES)
def test_stft_synthetic_every_pad_mode(dtype, pad_mode):
    assert_stft_matches(chirp(dtype=dtype), n_fft=2048, hop_length=512, pad_mode=pad_mode)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(1, 3000),
    n_fft=st.sampled_from([1, 2, 8, 15, 16, 31, 64, 100, 256, 512]),
    hop_frac=st.floats(0.05, 1.0),
    center=st.booleans(),
    pad_mode=st.sampled_from(PAD_MODES),
    dtype=st.sampled_from([np.float32, np.float64]),
    lead=st.sampled_from([(), (2,), (2, 3)]),
    seed=st.integers(0, 2**32 - 1),
)
def test_stft_drawn_signals(n, n_fft, hop_frac, center, pad_mode, dtype, lead, seed):
    if not center and n_fft > n:
        return  # an error in both: covered by test_failures
    hop = max(1, int(n_fft * hop_frac))
    y = np.random.default_rng(seed).standard_normal((*lead, n)).astype(dtype)
    assert_stft_matches(y, n_fft=n_fft, hop_length=hop, center=center, pad_mode=pad_mode)


def test_stft_short_signals_give_one_frame():
    for n in (0, 1):
        y = np.zeros(n, dtype=np.float32)
        with pytest.warns(UserWarning, match="too large for input signal"):
            D = stft(y)
        assert D.shape == (1025, 1)


def test_stft_out_argument():
    y = chirp()
    expected = stft(y)
    out = np.zeros((1025, expected.shape[1] + 5), dtype=np.complex64)
    result = stft(y, out=out)
    np.testing.assert_array_equal(result, expected)
    np.testing.assert_array_equal(out[:, : expected.shape[1]], expected)
    assert np.all(out[:, expected.shape[1] :] == 0)
    # A Fortran-ordered out (librosa's own layout) is filled too.
    out_f = np.zeros(expected.shape, dtype=np.complex128, order="F")
    stft(y, out=out_f)
    np.testing.assert_allclose(out_f, expected, rtol=0, atol=0)


def test_stft_dtype_argument():
    y = chirp()
    D = stft(y, dtype=np.complex128)
    assert D.dtype == np.complex128
    assert relative_error(np.abs(D), np.abs(librosa.stft(y, dtype=np.complex128))) <= 1e-7


def test_stft_callable_window_and_pad():
    y = chirp()[:5000]

    def pad(vector, iaxis_pad_width, iaxis, kwargs):
        vector[: iaxis_pad_width[0]] = 0.5
        if iaxis_pad_width[1]:
            vector[-iaxis_pad_width[1] :] = -0.5

    assert_stft_matches(y, n_fft=256, window=np.hanning, pad_mode=pad)
    assert_stft_matches(y, n_fft=256, win_length=200, window=np.ones(200))


def test_stft_multichannel_matches_per_channel():
    y = np.stack([chirp(), chirp()[::-1].copy()])
    D = stft(y)
    for c in range(2):
        np.testing.assert_array_equal(D[c], stft(y[c]))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_power_to_db(dtype):
    S = np.abs(librosa.stft(chirp(dtype=dtype))) ** 2
    for kwargs in (
        {},
        dict(ref=np.max),
        dict(ref=0.5, amin=1e-6, top_db=None),
        dict(top_db=40.0),
    ):
        expected = librosa.power_to_db(S, **kwargs)
        actual = power_to_db(S, **kwargs)
        assert actual.dtype == expected.dtype
        np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-4)


def test_power_to_db_scalars_and_complex():
    assert power_to_db(10.0) == pytest.approx(librosa.power_to_db(10.0))
    np.testing.assert_allclose(power_to_db([1.0, 100.0]), librosa.power_to_db([1.0, 100.0]))
    z = np.array([1 + 1j, 2.0 + 0j], dtype=np.complex64)
    with pytest.warns(UserWarning, match="complex input"):
        got = power_to_db(z)
    with pytest.warns(UserWarning, match="complex input"):
        want = librosa.power_to_db(z)
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_power_to_db_top_db_over_all_channels():
    loud = np.full((4, 10), 1.0, dtype=np.float32)
    quiet = np.full((4, 10), 1e-12, dtype=np.float32)
    S = np.stack([loud, quiet])
    np.testing.assert_allclose(power_to_db(S), librosa.power_to_db(S))
    assert power_to_db(S)[1].min() == pytest.approx(-80.0)


def test_amplitude_and_inverse_conversions():
    S = np.abs(librosa.stft(chirp()))
    np.testing.assert_allclose(
        amplitude_to_db(S, ref=np.max), librosa.amplitude_to_db(S, ref=np.max), rtol=1e-5, atol=1e-4
    )
    db = librosa.power_to_db(S**2)
    np.testing.assert_allclose(db_to_power(db), librosa.db_to_power(db), rtol=1e-6)
    np.testing.assert_allclose(db_to_amplitude(db), librosa.db_to_amplitude(db), rtol=1e-6)


def test_parameter_error_is_value_error():
    assert issubclass(ParameterError, ValueError)


@pytest.mark.parametrize("power", [1.0, 2.0, 1.5])
def test_spectrogram_is_abs_stft_to_the_power(power):
    from ml_utilities.audio import spectrogram

    y = np.stack([chirp(), chirp()[::-1].copy()])
    expected = np.abs(librosa.stft(y, n_fft=1024, hop_length=256)) ** power
    actual = spectrogram(y, n_fft=1024, hop_length=256, power=power)
    assert actual.shape == expected.shape and actual.dtype == expected.dtype
    assert relative_error(actual, expected) <= 1e-5
    with pytest.raises(ParameterError, match="power=0"):
        spectrogram(y, power=0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_power_to_db_over_the_whole_range(dtype):
    # the native log (a series, eight values at a time, for float32) against numpy's log10:
    # amin, tiny, huge, the largest finite value, infinity, and odd lengths for the tail
    rng = np.random.default_rng(11)
    for n in (1, 7, 8, 9, 1000, 4099):
        S = (10.0 ** rng.uniform(-12, 38, n)).astype(dtype)
        S[: min(n, 4)] = np.array([1e-10, 0.0, np.finfo(np.float32).max, np.inf])[: min(n, 4)]
        actual = power_to_db(S, top_db=None)
        expected = 10.0 * np.log10(np.maximum(1e-10, S.astype(np.float64)))
        finite = np.isfinite(expected)
        assert actual.dtype == dtype
        np.testing.assert_array_equal(np.isinf(actual), ~finite)
        np.testing.assert_allclose(actual[finite], expected[finite], rtol=2e-7, atol=1e-5)
