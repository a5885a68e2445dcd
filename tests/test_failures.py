"""Bad input to the spectral functions: a clear ParameterError (a ValueError) naming the bad
value, raised wherever librosa raises, and never a crash."""

from __future__ import annotations

import librosa
import numpy as np
import pytest
from helpers import chirp

from ml_utilities import ParameterError
from ml_utilities.audio import melspectrogram, mfcc, power_to_db, stft

Y = chirp(seconds=0.5)


def both_raise(fn_ours, fn_ref, match, **kwargs):
    """Ours raises ParameterError with `match`; librosa raises its ParameterError there too."""
    with pytest.raises(ParameterError, match=match):
        fn_ours(**kwargs)
    with pytest.raises(librosa.util.exceptions.ParameterError):
        fn_ref(**kwargs)


@pytest.mark.parametrize(
    "y, match",
    [
        (np.arange(100), "floating-point"),
        (np.array(1.0, dtype=np.float32), "at least one-dimensional"),
        (np.array([0.0, np.nan, 1.0], dtype=np.float32), "not finite"),
        (np.array([0.0, np.inf], dtype=np.float64), "not finite"),
        ([0.0, 1.0], "numpy.ndarray"),
    ],
)
def test_bad_audio(y, match):
    with pytest.raises(ParameterError, match=match):
        stft(y)
    with pytest.raises(ParameterError, match=match):
        mfcc(y=y, sr=22050)
    with pytest.raises(librosa.util.exceptions.ParameterError):
        librosa.stft(y)


@pytest.mark.parametrize("hop", [0, -5, 1.5, "512"])
def test_bad_hop_length(hop):
    both_raise(
        lambda **k: stft(Y, **k),
        lambda **k: librosa.stft(Y, **k),
        f"hop_length={hop}",
        hop_length=hop,
    )


def test_window_longer_than_n_fft():
    both_raise(
        lambda **k: stft(Y, **k),
        lambda **k: librosa.stft(Y, **k),
        "Target size",
        n_fft=512,
        win_length=1024,
    )


@pytest.mark.parametrize("mode", ["wrap", "maximum", "mean", "median", "minimum"])
def test_unsupported_pad_mode(mode):
    both_raise(
        lambda **k: stft(Y, **k),
        lambda **k: librosa.stft(Y, **k),
        f"pad_mode='{mode}'",
        pad_mode=mode,
    )


def test_unknown_pad_mode_is_a_value_error():
    with pytest.raises(ValueError, match="bogus"):
        stft(Y, pad_mode="bogus")


def test_uncentered_signal_too_short():
    both_raise(
        lambda **k: stft(Y[:100], **k),
        lambda **k: librosa.stft(Y[:100], **k),
        "n_fft=2048 is too large for uncentered analysis",
        center=False,
    )


@pytest.mark.parametrize("n_fft", [0, -1, 2.5])
def test_bad_n_fft(n_fft):
    with pytest.raises(ParameterError, match=f"n_fft={n_fft}"):
        stft(Y, n_fft=n_fft)


def test_bad_out_arrays():
    frames = stft(Y).shape[-1]
    with pytest.raises(ParameterError, match="Shape mismatch"):
        stft(Y, out=np.zeros((1024, frames), dtype=np.complex64))
    with pytest.raises(ParameterError, match="Shape mismatch"):
        stft(Y, out=np.zeros((1025, frames - 1), dtype=np.complex64))
    with pytest.raises(ParameterError, match="not of complex type"):
        stft(Y, out=np.zeros((1025, frames), dtype=np.float32))


def test_bad_db_arguments():
    S = np.ones((4, 4), dtype=np.float32)
    with pytest.raises(ParameterError, match="amin"):
        power_to_db(S, amin=0)
    with pytest.raises(ParameterError, match="top_db"):
        power_to_db(S, top_db=-1.0)


def test_bad_mfcc_arguments():
    with pytest.raises(ParameterError, match="lifter=-1"):
        mfcc(y=Y, sr=22050, lifter=-1)
    both_raise(mfcc, librosa.feature.mfcc, "Input signal must be provided", sr=22050)
    both_raise(
        melspectrogram, librosa.feature.melspectrogram, "Input signal must be provided", sr=22050
    )


def test_bad_mel_parameters():
    # librosa only warns of empty filters for a negative rate; we refuse it outright.
    with pytest.raises(ParameterError, match="sr=-1"):
        melspectrogram(y=Y, sr=-1)
    # No mel bands is an empty result in both.
    assert melspectrogram(y=Y, sr=22050, n_mels=0).shape == (
        librosa.feature.melspectrogram(y=Y, sr=22050, n_mels=0).shape
    )
