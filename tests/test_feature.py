"""Mel spectrogram and MFCC against librosa 0.11 on real clips and synthetic signals."""

from __future__ import annotations

import librosa
import numpy as np
import pytest
from helpers import CLIPS, chirp, relative_error

from ml_utilities.audio import melspectrogram, mfcc


@pytest.mark.parametrize("clip", CLIPS)
def test_melspectrogram_and_mfcc_real_audio(clip_cache, clip):
    y, sr = clip_cache[clip]
    M_ref = librosa.feature.melspectrogram(y=y, sr=sr)
    M = melspectrogram(y=y, sr=sr)
    assert M.shape == M_ref.shape and M.dtype == M_ref.dtype
    assert relative_error(M, M_ref) <= 1e-4
    C_ref = librosa.feature.mfcc(y=y, sr=sr, n_mfcc=13)
    C = mfcc(y=y, sr=sr, n_mfcc=13)
    assert C.shape == C_ref.shape and C.dtype == C_ref.dtype
    assert relative_error(C, C_ref) <= 1e-4


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(n_mfcc=20),
        dict(n_mfcc=13, n_fft=1024, hop_length=256, n_mels=64),
        dict(n_mfcc=40, n_mels=40, fmin=50.0, fmax=8000.0, htk=True),
        dict(n_mfcc=13, lifter=22),
        dict(n_mfcc=13, dct_type=3, norm=None),
        dict(n_mfcc=13, dct_type=1),
        dict(n_mfcc=13, mel_norm=None, power=1.0),
        dict(n_mfcc=13, window="hamming", win_length=1024, center=False),
        dict(n_mfcc=13, pad_mode="reflect"),
    ],
)
def test_mfcc_non_defaults(clip_cache, kwargs):
    y, sr = clip_cache["198-209-0000.ogg"]
    expected = librosa.feature.mfcc(y=y, sr=sr, **kwargs)
    actual = mfcc(y=y, sr=sr, **kwargs)
    assert actual.shape == expected.shape and actual.dtype == expected.dtype
    assert relative_error(actual, expected) <= 1e-4


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_synthetic_float_types(dtype):
    y = chirp(dtype=dtype)
    for fn_ours, fn_ref in (
        (melspectrogram, librosa.feature.melspectrogram),
        (mfcc, librosa.feature.mfcc),
    ):
        expected = fn_ref(y=y, sr=22050)
        actual = fn_ours(y=y, sr=22050)
        assert actual.dtype == expected.dtype
        assert relative_error(actual, expected) <= 1e-4


def test_float64_mel_basis_with_float32_audio():
    y = chirp()
    expected = librosa.feature.melspectrogram(y=y, sr=22050, dtype=np.float64)
    actual = melspectrogram(y=y, sr=22050, dtype=np.float64)
    assert actual.dtype == expected.dtype == np.float64
    assert relative_error(actual, expected) <= 1e-5


def test_multichannel_top_db_spans_channels():
    # A loud and a near-silent channel: librosa floors at 80 dB below the loudest of both.
    y = np.stack([chirp(), chirp() * 1e-5, np.zeros_like(chirp())])
    expected = librosa.feature.mfcc(y=y, sr=22050, n_mfcc=13)
    actual = mfcc(y=y, sr=22050, n_mfcc=13)
    assert actual.shape == expected.shape == (3, 13, expected.shape[-1])
    assert relative_error(actual, expected) <= 1e-4


def test_batch_of_clips_matches_one_by_one():
    rng = np.random.default_rng(1)
    batch = rng.standard_normal((4, 2, 22050)).astype(np.float32)
    M = melspectrogram(y=batch, sr=22050)
    assert M.shape == (4, 2, 128, 44)
    np.testing.assert_array_equal(M[3, 1], melspectrogram(y=batch[3, 1], sr=22050))


def test_from_precomputed_spectrograms():
    y = chirp()
    S = np.abs(librosa.stft(y)) ** 2
    np.testing.assert_allclose(
        melspectrogram(S=S, sr=22050), librosa.feature.melspectrogram(S=S, sr=22050), rtol=1e-5
    )
    logmel = librosa.power_to_db(librosa.feature.melspectrogram(y=y, sr=22050))
    for kwargs in (dict(n_mfcc=13), dict(n_mfcc=200), dict(n_mfcc=13, dct_type=2, norm=None)):
        expected = librosa.feature.mfcc(S=logmel, **kwargs)
        actual = mfcc(S=logmel, **kwargs)
        assert actual.shape == expected.shape and actual.dtype == expected.dtype
        assert relative_error(actual, expected) <= 1e-5
