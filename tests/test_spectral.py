"""Spectral and temporal features against librosa 0.11, and known answers on synthetic tones."""

from __future__ import annotations

import librosa
import numpy as np
import pytest
from helpers import CLIPS, chirp, relative_error

from ml_utilities import ParameterError, audio

SPECTRAL = ["spectral_centroid", "spectral_bandwidth", "spectral_rolloff", "spectral_contrast"]


@pytest.mark.parametrize("clip", CLIPS)
def test_every_feature_on_real_audio(clip_cache, clip):
    y, sr = clip_cache[clip]
    for name in SPECTRAL:
        expected = getattr(librosa.feature, name)(y=y, sr=sr)
        actual = getattr(audio, name)(y=y, sr=sr)
        assert actual.shape == expected.shape and actual.dtype == expected.dtype, name
        assert relative_error(actual, expected) <= 1e-4, name
    for name in ("spectral_flatness", "rms"):
        expected = getattr(librosa.feature, name)(y=y)
        actual = getattr(audio, name)(y=y)
        assert actual.shape == expected.shape and actual.dtype == expected.dtype, name
        assert relative_error(actual, expected) <= 1e-4, name
    expected = librosa.feature.zero_crossing_rate(y)
    actual = audio.zero_crossing_rate(y)
    assert actual.dtype == expected.dtype
    np.testing.assert_array_equal(actual, expected)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(n_fft=1024, hop_length=256),
        dict(n_fft=2048, hop_length=512, center=False),
        dict(n_fft=2048, window="hamming", pad_mode="reflect"),
    ],
)
def test_non_default_framing(kwargs):
    y = chirp()
    for name in SPECTRAL:
        expected = getattr(librosa.feature, name)(y=y, sr=22050, **kwargs)
        actual = getattr(audio, name)(y=y, sr=22050, **kwargs)
        assert relative_error(actual, expected) <= 1e-4, name


def test_feature_options():
    y = chirp(dtype=np.float64)
    S = np.abs(librosa.stft(y))
    cases = [
        ("spectral_bandwidth", dict(p=1, norm=False)),
        ("spectral_bandwidth", dict(p=3)),
        ("spectral_rolloff", dict(roll_percent=0.5)),
        ("spectral_contrast", dict(fmin=100.0, n_bands=4, quantile=0.1)),
        ("spectral_contrast", dict(linear=True)),
        # the native selection: q <= 16 eight frames at a time (q reaches 12 here), larger q
        # per frame, and q past half the band (the two sets overlap)
        ("spectral_contrast", dict(quantile=0.03)),
        ("spectral_contrast", dict(quantile=0.2)),
        ("spectral_contrast", dict(quantile=0.49, n_bands=3)),
    ]
    for name, kw in cases:
        expected = getattr(librosa.feature, name)(S=S, sr=22050, **kw)
        actual = getattr(audio, name)(S=S, sr=22050, **kw)
        assert relative_error(actual, expected) <= 1e-6, (name, kw)
    np.testing.assert_allclose(
        audio.spectral_flatness(S=S, power=1.0, amin=1e-6),
        librosa.feature.spectral_flatness(S=S, power=1.0, amin=1e-6),
        rtol=1e-6,
    )
    np.testing.assert_allclose(audio.rms(S=S), librosa.feature.rms(S=S), rtol=1e-6)
    # rms and energy from the signal: frames that are whole runs of hops (block sums) and not
    for kw in (dict(), dict(frame_length=1000, hop_length=300), dict(center=False)):
        np.testing.assert_allclose(audio.rms(y=y, **kw), librosa.feature.rms(y=y, **kw), rtol=1e-6)
    # flatness over a spectrum spanning 1e-30 to 1e30 (the running product's renormalisation)
    wide = np.abs(S) * np.logspace(-30, 30, S.shape[0])[:, None]
    for power in (2.0, 1.0, 3.0):
        np.testing.assert_allclose(
            audio.spectral_flatness(S=wide, power=power),
            librosa.feature.spectral_flatness(S=wide, power=power),
            rtol=1e-6,
        )
    for kw in (
        dict(frame_length=1024, hop_length=128),
        dict(center=False),
        dict(threshold=0.01),
        dict(zero_pos=False),
    ):
        np.testing.assert_array_equal(
            audio.zero_crossing_rate(y, **kw), librosa.feature.zero_crossing_rate(y, **kw)
        )
    np.testing.assert_allclose(
        audio.rms(y=y, pad_mode="reflect", frame_length=1000, hop_length=300),
        librosa.feature.rms(y=y, pad_mode="reflect", frame_length=1000, hop_length=300),
        rtol=1e-6,
    )


def test_pure_tone_centroid_and_silence():
    sr = 22050
    t = np.arange(sr) / sr
    y = np.sin(2 * np.pi * 1000.0 * t).astype(np.float32)
    centroid = audio.spectral_centroid(y=y, sr=sr)[0, 5:-5]
    assert np.all(np.abs(centroid - 1000.0) < 15.0)
    silent = np.zeros(sr, dtype=np.float32)
    assert np.all(audio.spectral_centroid(y=silent, sr=sr) == 0)
    assert np.all(audio.spectral_rolloff(y=silent, sr=sr) == 0)
    assert np.all(audio.spectral_flux(y=silent) == 0)
    # An alternating signal crosses zero at every sample.
    alt = np.tile(np.array([1.0, -1.0], dtype=np.float32), 2048)
    zcr = audio.zero_crossing_rate(alt, center=False)
    np.testing.assert_allclose(zcr, (2048 - 1) / 2048)


def test_spectral_flux_definition():
    y = chirp()
    S = np.abs(librosa.stft(y))
    diff = np.maximum(0.0, np.diff(S.astype(np.float64), axis=-1))
    expected = np.concatenate([[0.0], np.sqrt((diff**2).sum(axis=0))])
    actual = audio.spectral_flux(S=S)
    assert actual.shape == (1, S.shape[-1])
    np.testing.assert_allclose(actual[0], expected, rtol=1e-5)
    # A step in loudness is a single flux spike.
    step = np.concatenate([np.zeros(22050), np.ones(22050) * 0.5]).astype(np.float32)
    step *= np.sin(2 * np.pi * 440 * np.arange(step.size) / 22050).astype(np.float32)
    flux = audio.spectral_flux(y=step)[0]
    assert abs(int(np.argmax(flux)) - 22050 // 512) <= 2


def test_frame_energy_matches_rms():
    y = chirp()
    energy = audio.frame_energy(y)
    np.testing.assert_allclose(energy, audio.rms(y=y) ** 2 * 2048, rtol=1e-4)


def test_multichannel_features():
    y = np.stack([chirp(), chirp()[::-1].copy()])
    for name in SPECTRAL:
        expected = getattr(librosa.feature, name)(y=y, sr=22050)
        actual = getattr(audio, name)(y=y, sr=22050)
        assert actual.shape == expected.shape
        assert relative_error(actual, expected) <= 1e-4


def test_bad_inputs():
    y = chirp(seconds=0.5)
    S = np.abs(librosa.stft(y))
    with pytest.raises(ParameterError, match="non-negative"):
        audio.spectral_centroid(S=-S)
    with pytest.raises(ParameterError, match="real-valued"):
        audio.spectral_bandwidth(S=S.astype(np.complex64))
    with pytest.raises(ParameterError, match="roll_percent"):
        audio.spectral_rolloff(y=y, roll_percent=1.5)
    with pytest.raises(ParameterError, match="amin"):
        audio.spectral_flatness(y=y, amin=0)
    with pytest.raises(ParameterError, match="quantile"):
        audio.spectral_contrast(y=y, quantile=0)
    with pytest.raises(ParameterError, match="Nyquist"):
        audio.spectral_contrast(y=y, sr=8000, fmin=1000.0)
    with pytest.raises(ParameterError, match="n_bands"):
        audio.spectral_contrast(y=y, n_bands=0)
    with pytest.raises(ParameterError, match="not finite"):
        audio.rms(y=np.array([0.0, np.nan], dtype=np.float32))
    with pytest.raises(ParameterError, match="Invalid hop_length"):
        audio.zero_crossing_rate(y, hop_length=0)
    with pytest.raises(ParameterError, match="Either"):
        audio.rms()
    with pytest.raises(ParameterError, match="frame_length is expected"):
        audio.rms(S=S, frame_length=1000)


# ------------------------------------ a frequency per bin and frame (librosa's 2-D freq)


def _reassigned_like(S: np.ndarray, sr: float, seed: int) -> np.ndarray:
    """A frequency per bin and frame near each bin's centre, as reassigned spectrograms give."""
    rng = np.random.default_rng(seed)
    centres = librosa.fft_frequencies(sr=sr, n_fft=2 * (S.shape[-2] - 1))[:, None]
    return centres + rng.uniform(-0.5, 0.5, S.shape[-2:]) * sr / (2 * (S.shape[-2] - 1))


def _same(actual: np.ndarray, expected: np.ndarray) -> None:
    assert actual.shape == expected.shape and actual.dtype == expected.dtype
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-8, equal_nan=True)


@pytest.mark.parametrize("clip", CLIPS)
def test_two_dimensional_freq_on_real_audio(clip_cache, clip):
    y, sr = clip_cache[clip]
    S = np.abs(librosa.stft(y[: 10 * sr]))
    freq = _reassigned_like(S, sr, seed=len(clip))
    for name, kwargs in [
        ("spectral_centroid", {}),
        ("spectral_bandwidth", {}),
        ("spectral_bandwidth", {"p": 1, "norm": False}),
        ("spectral_rolloff", {}),
        ("spectral_rolloff", {"roll_percent": 0.3}),
    ]:
        expected = getattr(librosa.feature, name)(S=S, sr=sr, freq=freq, **kwargs)
        _same(getattr(audio, name)(S=S, sr=sr, freq=freq, **kwargs), expected)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("seed", range(4))
def test_frequency_grids_and_unordered_axes(dtype, seed):
    # drawn spectrograms (silent frames included) with a frequency per bin and frame, one per
    # channel, or a 1-D axis out of order (rolloff takes the lowest frequency past the threshold)
    rng = np.random.default_rng(seed)
    S = (np.abs(rng.standard_normal((2, 257, 30))) ** 3).astype(dtype)
    S[:, :, 4] = 0.0
    axis = librosa.fft_frequencies(sr=16000, n_fft=512)
    grids = [
        rng.uniform(0, 8000, (257, 30)),
        rng.uniform(0, 8000, (2, 257, 30)),
        rng.permutation(axis),
        axis[::-1].copy(),
    ]
    for freq in grids:
        cen = librosa.feature.spectral_centroid(S=S, sr=16000, freq=freq)
        _same(audio.spectral_centroid(S=S, sr=16000, freq=freq), cen)
        for kwargs in ({}, {"p": 3}, {"centroid": cen, "norm": False}):
            expected = librosa.feature.spectral_bandwidth(S=S, sr=16000, freq=freq, **kwargs)
            _same(audio.spectral_bandwidth(S=S, sr=16000, freq=freq, **kwargs), expected)
        expected = librosa.feature.spectral_rolloff(S=S, sr=16000, freq=freq, roll_percent=0.6)
        _same(audio.spectral_rolloff(S=S, sr=16000, freq=freq, roll_percent=0.6), expected)


def test_freq_grid_of_the_wrong_shape_is_refused():
    S = np.ones((257, 10))
    with pytest.raises(ParameterError, match=r"freq of shape \(100, 10\)"):
        audio.spectral_centroid(S=S, freq=np.ones((100, 10)))
