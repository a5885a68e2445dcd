"""Time, frame, sample and frequency conversions: bit-identical to librosa 0.11."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ml_utilities.audio import convert

librosa = pytest.importorskip("librosa")


def assert_same(actual, expected):
    """Same Python type (numpy scalar vs array), dtype, shape and bits."""
    assert type(actual) is type(expected), (type(actual), type(expected))
    a, e = np.asarray(actual), np.asarray(expected)
    assert a.dtype == e.dtype, (a.dtype, e.dtype)
    assert a.shape == e.shape, (a.shape, e.shape)
    np.testing.assert_array_equal(a, e, strict=True)


def both(name, *args, **kwargs):
    """Call ml_utilities' and librosa's function of that name (numpy warnings alike ignored)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return getattr(convert, name)(*args, **kwargs), getattr(librosa, name)(*args, **kwargs)


INPUTS = [
    0,
    5,
    1000,
    1500.5,
    -3,
    np.int64(7),
    np.float32(1200.0),
    np.array(2000.0),
    [],
    [0, 1, 2],
    (3, 4),
    np.arange(10),
    np.arange(10, dtype=np.float32) * 300,
    np.linspace(0, 20000, 50),
    np.array([[1, 2], [3, 4]]),
    np.array([0.5, 999.999, 1000.0, 1000.001]),
]


@pytest.mark.parametrize("x", INPUTS, ids=repr)
@pytest.mark.parametrize("htk", [False, True])
def test_mel_scale(x, htk):
    assert_same(*both("hz_to_mel", x, htk=htk))
    assert_same(*both("mel_to_hz", x, htk=htk))


@pytest.mark.parametrize("x", INPUTS, ids=repr)
@pytest.mark.parametrize("n_fft", [None, 2048, 1023])
@pytest.mark.parametrize("hop_length", [512, 1, 100])
def test_frames_and_samples(x, n_fft, hop_length):
    kw = {"hop_length": hop_length, "n_fft": n_fft}
    assert_same(*both("frames_to_samples", x, **kw))
    assert_same(*both("samples_to_frames", x, **kw))
    assert_same(*both("frames_to_time", x, sr=16000, **kw))
    assert_same(*both("time_to_frames", x, sr=44100.0, **kw))


@pytest.mark.parametrize("x", INPUTS, ids=repr)
@pytest.mark.parametrize("sr", [22050, 8000, 44100.0])
def test_time_and_samples(x, sr):
    assert_same(*both("time_to_samples", x, sr=sr))
    assert_same(*both("samples_to_time", x, sr=sr))


def test_defaults_match_librosa():
    assert_same(*both("frames_to_time", [0, 1, 43]))
    assert_same(*both("time_to_frames", [0.0, 1.0, 2.5]))
    assert_same(*both("fft_frequencies"))
    assert_same(*both("mel_frequencies"))


@pytest.mark.parametrize("sr", [22050, 16000.0, 44100, 8000])
@pytest.mark.parametrize("n_fft", [2048, 1, 2, 1023, 4096])
def test_fft_frequencies(sr, n_fft):
    freqs, expected = both("fft_frequencies", sr=sr, n_fft=n_fft)
    assert_same(freqs, expected)
    assert freqs.shape == (1 + n_fft // 2,)


@pytest.mark.parametrize("n_mels", [128, 40, 1, 0])
@pytest.mark.parametrize(
    "kwargs",
    [{}, {"fmin": 30.0, "fmax": 8000.0}, {"htk": True}, {"fmax": np.float32(4000.0)}],
    ids=["default", "band", "htk", "float32-fmax"],
)
def test_mel_frequencies(n_mels, kwargs):
    assert_same(*both("mel_frequencies", n_mels, **kwargs))


def test_keyword_only_like_librosa():
    with pytest.raises(TypeError):
        convert.frames_to_time([1], 22050)  # type: ignore[misc]
    with pytest.raises(TypeError):
        convert.fft_frequencies(22050)  # type: ignore[misc]
    with pytest.raises(TypeError):
        convert.hz_to_mel(440.0, True)  # type: ignore[misc]


def test_mel_round_trip():
    hz = np.linspace(0.0, 11025.0, 257)
    for htk in (False, True):
        np.testing.assert_allclose(convert.mel_to_hz(convert.hz_to_mel(hz, htk=htk), htk=htk), hz)


def test_exports():
    import ml_utilities.audio as audio

    for name in convert.__all__:
        assert getattr(audio, name) is getattr(convert, name)


finite_floats = st.floats(-1e6, 1e6, allow_nan=False, width=64)


@settings(max_examples=60, deadline=None)
@given(
    x=hnp.arrays(np.float64, hnp.array_shapes(max_dims=2, max_side=20), elements=finite_floats),
    htk=st.booleans(),
)
def test_mel_scale_hypothesis(x, htk):
    assert_same(*both("hz_to_mel", x, htk=htk))
    assert_same(*both("mel_to_hz", x / 100.0, htk=htk))


@settings(max_examples=60, deadline=None)
@given(
    frames=hnp.arrays(np.int64, st.integers(0, 30), elements=st.integers(-(10**6), 10**6)),
    hop_length=st.integers(1, 4096),
    n_fft=st.one_of(st.none(), st.integers(1, 8192)),
    sr=st.one_of(st.integers(1, 192000), st.floats(1.0, 192000.0)),
)
def test_frames_hypothesis(frames, hop_length, n_fft, sr):
    kw = {"hop_length": hop_length, "n_fft": n_fft}
    assert_same(*both("frames_to_samples", frames, **kw))
    assert_same(*both("samples_to_frames", frames, **kw))
    assert_same(*both("frames_to_time", frames, sr=sr, **kw))
    times = frames / 1000.0
    assert_same(*both("time_to_frames", times, sr=sr, **kw))
    assert_same(*both("time_to_samples", times, sr=sr))
    assert_same(*both("samples_to_time", frames, sr=sr))
