"""Numbers at the edges of float32 (issue 17, item 5) and the audio API gaps of item 7.

float32 audio near 1e17 (|X|^2 past float32's range) or near 1e-40 (denormal samples, squares
that underflow) must give librosa's numbers element by element, not NaN or 0; NaN or infinite
parameters are refused with a ParameterError naming the value.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from ml_utilities import audio
from ml_utilities.exceptions import ParameterError

librosa = pytest.importorskip("librosa")

SR = 22050


@pytest.fixture(scope="module")
def noise() -> np.ndarray:
    return np.random.default_rng(20261207).standard_normal(SR).astype(np.float32)


@pytest.fixture(scope="module")
def tone() -> np.ndarray:
    t = np.arange(SR) / SR
    return np.sin(2 * np.pi * 440.0 * t).astype(np.float32)


def _scaled(y: np.ndarray, scale: float) -> np.ndarray:
    out = (y * np.float32(scale)).astype(np.float32)
    assert np.isfinite(out).all() and np.abs(out).max() > 0
    return out


# ------------------------------------------------------------------- loud and denormal audio


MAGNITUDE_FEATURES = ["spectral_centroid", "spectral_bandwidth", "spectral_rolloff"]


@pytest.mark.parametrize("name", MAGNITUDE_FEATURES)
@pytest.mark.parametrize(("signal", "scale"), [("tone", 1e17), ("noise", 1e18), ("noise", 1e-40)])
def test_magnitude_features_match_librosa_at_float32_extremes(request, name, signal, scale):
    # |X| of the loud tone reaches 5e19: its square overflows float32, |X| itself does not
    # (librosa takes np.abs, a hypot); the denormal noise's squares underflow to zero.
    y = _scaled(request.getfixturevalue(signal), scale)
    actual = getattr(audio, name)(y=y, sr=SR)
    expected = getattr(librosa.feature, name)(y=y, sr=SR)
    assert np.isfinite(expected).all()
    assert actual.dtype == expected.dtype
    assert np.allclose(actual, expected), (name, signal, scale)


def test_stft_of_denormal_audio_matches_librosa(noise):
    y = _scaled(noise, 1e-40)
    actual = audio.stft(y)
    expected = librosa.stft(y)
    assert actual.dtype == expected.dtype == np.complex64
    # denormal float32 values: compare on their own grid (2**-149), not relative to them
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=2.0**-149 * 4)
    assert np.allclose(np.abs(actual).sum(axis=0), np.abs(expected).sum(axis=0))


def test_flatness_of_loud_audio_is_librosa_computed_without_overflow(tone):
    # librosa squares float32 magnitudes and gets inf (flatness 0 or NaN); its answer without
    # the overflow is the float64 one, which is what float32 audio must give here too.
    y = _scaled(tone, 1e17)
    actual = audio.spectral_flatness(y=y)
    expected = librosa.feature.spectral_flatness(y=y.astype(np.float64))
    assert actual.dtype == np.float32
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=0)
    # denormal audio: the squares underflow to amin in both, flatness 1
    y = _scaled(tone, 1e-40)
    np.testing.assert_allclose(
        audio.spectral_flatness(y=y), librosa.feature.spectral_flatness(y=y), rtol=1e-5
    )


@pytest.mark.filterwarnings("ignore:Trying to estimate tuning")
def test_chroma_at_float32_extremes(noise):
    # librosa's float32 path overflows in |X|^2 and the chroma bank's sums, then refuses; the
    # chroma is scale-free, so float64 gives the answer.
    y = _scaled(noise, 1e17)
    actual = audio.chroma_stft(y=y, sr=SR)
    expected = librosa.feature.chroma_stft(y=y.astype(np.float64), sr=SR)
    assert actual.dtype == np.float32
    assert np.isfinite(actual).all()
    assert np.allclose(actual, expected, rtol=1e-5, atol=1e-7)
    # denormal audio: |X|^2 underflows to zero in librosa's float32 too, chroma zero
    y = _scaled(noise, 1e-40)
    actual = audio.chroma_stft(y=y, sr=SR)
    expected = librosa.feature.chroma_stft(y=y, sr=SR)
    assert actual.dtype == expected.dtype
    assert np.allclose(actual, expected)


@pytest.mark.parametrize(("magnitude_scale", "power_scale"), [(1e18, 1e17), (1e-30, 1e-40)])
def test_mel_spectrogram_matches_librosa_at_float32_extremes(noise, magnitude_scale, power_scale):
    # power=1: |X| is in float32's range, |X|^2 is not; power=2 as far as librosa's float32
    # power stays finite. atol=0 so tiny values count too.
    for scale, power in ((magnitude_scale, 1.0), (power_scale, 2.0)):
        y = _scaled(noise, scale)
        actual = audio.melspectrogram(y=y, sr=SR, power=power)
        expected = librosa.feature.melspectrogram(y=y, sr=SR, power=power)
        assert actual.dtype == expected.dtype == np.float32
        assert np.isfinite(expected).all()
        np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=0)


def _mfcc_close(actual: np.ndarray, expected: np.ndarray) -> bool:
    # element by element; the absolute floor is one float32 rounding of the largest dB value
    # (coefficients are sums of values up to ~400 dB, far above a small coefficient)
    return bool(np.allclose(actual, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max()))


def test_mfcc_at_float32_extremes(tone):
    y = _scaled(tone, 1e17)
    actual = audio.mfcc(y=y, sr=SR)
    expected = librosa.feature.mfcc(y=y.astype(np.float64), sr=SR)
    assert actual.dtype == np.float32
    assert np.isfinite(actual).all()
    assert _mfcc_close(actual, expected)
    for power in (1.0, 2.0):  # quiet audio: the mel energies underflow as librosa's do
        y = _scaled(tone, 1e-30)
        actual = audio.mfcc(y=y, sr=SR, power=power)
        expected = librosa.feature.mfcc(y=y, sr=SR, power=power)
        assert actual.dtype == expected.dtype
        assert _mfcc_close(actual, expected)


def test_onset_strength_and_tempo_of_loud_audio(noise):
    # librosa's float32 mel energies overflow (NaN envelope, tempo refused); the float64 ones
    # give the envelope, which fits float32
    y = _scaled(noise, 1e18)
    actual = audio.onset_strength(y=y, sr=SR)
    expected = librosa.onset.onset_strength(y=y.astype(np.float64), sr=SR)
    assert actual.dtype == np.float32
    assert np.allclose(actual, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())
    np.testing.assert_array_equal(
        audio.tempo(y=y, sr=SR), librosa.feature.tempo(y=y.astype(np.float64), sr=SR)
    )


def test_normal_audio_takes_the_float32_path(noise):
    from ml_utilities.audio.spectrum import _float32_out_of_range

    assert not _float32_out_of_range(noise, 2048)
    assert not _float32_out_of_range(noise.astype(np.float64) * 1e30, 2048)
    assert not _float32_out_of_range(np.zeros(16, np.float32), 2048)
    assert _float32_out_of_range(_scaled(noise, 1e17), 2048)
    assert _float32_out_of_range(_scaled(noise, 1e-40), 2048)


# ------------------------------------------------------------------- non-finite parameters


def _y() -> np.ndarray:
    return np.random.default_rng(1).standard_normal(8192).astype(np.float32) * 0.1


BAD_PARAMETERS = [
    (audio.chroma_stft, {"sr": np.inf}, "sr=inf"),
    (audio.spectral_centroid, {"sr": np.inf}, "sr=inf"),
    (audio.spectral_rolloff, {"sr": np.nan}, "sr=nan"),
    (audio.spectral_contrast, {"sr": np.inf}, "sr=inf"),
    (audio.spectral_contrast, {"fmin": np.nan}, "fmin=nan"),
    (audio.estimate_tuning, {"sr": np.inf}, "sr=inf"),
    (audio.estimate_tuning, {"resolution": np.nan}, "resolution=nan"),
    (audio.piptrack, {"sr": np.inf}, "sr=inf"),
    (audio.onset_strength, {"sr": np.inf}, "sr=inf"),
    (audio.tempo, {"sr": np.nan}, "sr=nan"),
    (audio.tempo, {"ac_size": np.nan}, "ac_size=nan"),
    (audio.tempo, {"start_bpm": np.inf}, "start_bpm=inf"),
    (audio.beat_track, {"bpm": np.nan}, "bpm=nan"),
    (audio.mfcc, {"lifter": np.nan}, "lifter=nan"),
    (audio.mfcc, {"lifter": np.inf}, "lifter=inf"),
    (audio.mfcc, {"power": np.nan}, "power=nan"),
    (audio.mfcc, {"fmin": np.nan}, "fmin=nan"),
    (audio.melspectrogram, {"power": np.inf}, "power=inf"),
    (audio.melspectrogram, {"fmax": np.inf}, "fmax=inf"),
    (audio.spectral_flatness, {"power": np.nan}, "power=nan"),
    (audio.chroma_stft, {"ctroct": np.nan}, "ctroct=nan"),
    (audio.chroma_cqt, {"tuning": np.nan}, "tuning=nan"),
    (audio.cqt, {"fmin": np.inf}, "fmin=inf"),
    (audio.tonnetz, {"sr": np.inf}, "sr=inf"),
]


@pytest.mark.parametrize(("func", "kwargs", "text"), BAD_PARAMETERS)
def test_non_finite_parameters_raise_naming_the_value(func, kwargs, text):
    call = dict(kwargs)
    if func in (audio.cqt,):
        args: tuple = (_y(),)
    else:
        args = ()
        call["y"] = _y()
    with pytest.raises(ParameterError, match=text.replace("(", r"\(")):
        func(*args, **call)


@pytest.mark.parametrize(
    ("func", "kwargs", "text"),
    [
        (audio.fft_frequencies, {"sr": np.inf}, "sr=inf"),
        (audio.frames_to_time, {"frames": np.arange(3), "sr": np.nan}, "sr=nan"),
        (audio.time_to_samples, {"times": np.arange(3.0), "sr": 0.0}, "sr=0.0"),
        (audio.mel, {"sr": 22050, "n_fft": 2048, "fmin": np.nan}, "fmin=nan"),
        (audio.tempo_frequencies, {"n_bins": 8, "sr": np.inf}, "sr=inf"),
        (audio.power_to_db, {"S": np.ones((4, 4)), "ref": np.nan}, "ref=nan"),
        (audio.amplitude_to_db, {"S": np.ones((4, 4)), "ref": np.inf}, "ref=inf"),
        (audio.hpss, {"S": np.ones((9, 9)), "margin": np.nan}, "margin=nan"),
        (audio.stft, {"y": np.zeros(4096, np.float32), "center": "no"}, "center='no'"),
        (audio.spectrogram, {"y": np.zeros(4096, np.float32), "center": "no"}, "center='no'"),
        (audio.melspectrogram, {"y": np.zeros(4096, np.float32), "center": "no"}, "center='no'"),
        (audio.rms, {"y": np.zeros(4096, np.float32), "center": "no"}, "center='no'"),
    ],
)
def test_bad_values_without_audio_raise_naming_the_value(func, kwargs, text):
    with pytest.raises(ParameterError, match=text):
        func(**kwargs)


# ------------------------------------------------------------------- API gaps


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n_fft": 1024},
        {"n_fft": 1024, "hop_length": 256, "win_length": 512},
        {"n_fft": 1024, "margin": 2.0, "kernel_size": 17},
    ],
)
def test_effects_hpss_takes_stft_arguments(noise, kwargs):
    actual = audio.effects_hpss(noise, **kwargs)
    expected = librosa.effects.hpss(noise, **kwargs)
    for a, e in zip(actual, expected, strict=True):
        assert a.shape == e.shape and a.dtype == e.dtype
        assert np.allclose(a, e, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("pad", [False, True])
@pytest.mark.parametrize("center", [False, True])
def test_zero_crossing_rate_pad(noise, pad, center):
    actual = audio.zero_crossing_rate(noise, pad=pad, center=center)
    expected = librosa.feature.zero_crossing_rate(noise, pad=pad, center=center)
    assert actual.shape == expected.shape
    assert np.allclose(actual, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    "y", [np.zeros(0, np.float32), np.zeros(0), np.zeros((2, 0), np.float32)], ids=str
)
def test_rms_of_an_empty_signal(y):
    actual = audio.rms(y=y)
    expected = librosa.feature.rms(y=y)
    assert actual.shape == expected.shape and actual.dtype == expected.dtype
    np.testing.assert_array_equal(actual, expected)
    np.testing.assert_array_equal(audio.frame_energy(y), np.zeros_like(expected))
    # and of a spectrogram without frames
    S = np.zeros((*y.shape[:-1], 1025, 0), y.dtype)
    actual = audio.rms(S=S)
    expected = librosa.feature.rms(S=S)
    assert actual.shape == expected.shape and actual.dtype == expected.dtype


def test_rms_of_an_empty_signal_uncentred_is_refused():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(librosa.util.exceptions.ParameterError):
            librosa.feature.rms(y=np.zeros(0, np.float32), center=False)
    with pytest.raises(ParameterError, match="n=0"):
        audio.rms(y=np.zeros(0, np.float32), center=False)
