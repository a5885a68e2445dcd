"""Bad input to the harmonic features: the same refusals as librosa 0.11, as ParameterError."""

from __future__ import annotations

import numpy as np
import pytest

from ml_utilities import ParameterError
from ml_utilities.audio.chroma import chroma_cqt, chroma_stft, tonnetz
from ml_utilities.audio.constantq import cqt
from ml_utilities.audio.decompose import effects_hpss, harmonicity, hpss
from ml_utilities.audio.pitch import estimate_tuning, piptrack, pitch_tuning

SR = 22050
Y = (0.5 * np.sin(2 * np.pi * 440 * np.arange(SR) / SR)).astype(np.float32)
S = np.abs(np.random.default_rng(0).standard_normal((1025, 20))).astype(np.float32)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: cqt(Y, sr=SR, fmin=-10.0), "strictly positive"),
        (lambda: cqt(Y, sr=SR, fmin=0.0), "strictly positive"),
        (lambda: cqt(Y, sr=SR, bins_per_octave=0), "bins_per_octave=0"),
        (lambda: cqt(Y, sr=SR, n_bins=0), "n_bins=0"),
        (lambda: cqt(Y, sr=SR, n_bins=120), "Nyquist"),
        (lambda: cqt(Y, sr=SR, filter_scale=0), "filter_scale=0"),
        (lambda: cqt(Y, sr=SR, sparsity=1.0), "Invalid quantile"),
        (lambda: cqt(Y, sr=SR, hop_length=0), "hop_length=0"),
        (lambda: cqt(np.arange(5000), sr=SR), "floating-point"),
        (lambda: cqt(np.full(5000, np.nan, np.float32), sr=SR), "not finite"),
        (lambda: cqt(Y, sr=SR, dtype=np.float32), "not a complex dtype"),
        (lambda: chroma_cqt(y=Y, bins_per_octave=13), "integer multiple"),
        (lambda: chroma_cqt(), "At least one of C or y"),
        (lambda: chroma_cqt(y=Y, cqt_mode="hybrid"), "not supported"),
        (lambda: tonnetz(), "Either the audio samples or the chromagram"),
        (lambda: chroma_stft(), "Input signal must be provided"),
        (lambda: chroma_stft(y=Y, n_fft=None), "n_fft=None"),
        (lambda: chroma_stft(y=Y, n_chroma=0), "n_chroma=0"),
        (lambda: chroma_stft(y=np.arange(5000)), "floating-point"),
        (lambda: chroma_stft(y=Y, norm="x"), "Unsupported norm"),
        (lambda: chroma_stft(y=Y, hop_length=0), "hop_length=0"),
        (lambda: chroma_stft(y=Y, octwidth=-1.0), "octwidth"),
        (lambda: estimate_tuning(), "Input signal must be provided"),
        (lambda: piptrack(y=Y, n_fft=0), "n_fft=0"),
        (lambda: piptrack(y=Y.astype(np.int16)), "floating-point"),
        (lambda: hpss(S, margin=0.5), "Margins must be >= 1.0"),
        (lambda: hpss(S, margin=(1.0, 0.9)), "Margins must be >= 1.0"),
        (lambda: hpss(S, power=0), "power must be strictly positive"),
        (lambda: hpss(-S), "non-negative"),
        (lambda: hpss(S, kernel_size=0), "kernel size=0"),
        (lambda: hpss(np.full((4, 4), np.inf)), "finite"),
        (lambda: hpss(np.ones(10)), "2-dimensional"),
        (lambda: effects_hpss(np.arange(5000)), "floating-point"),
        (lambda: harmonicity(), "Input signal must be provided"),
    ],
)
def test_parameter_errors(call, match):
    with pytest.raises(ParameterError, match=match):
        call()


def test_parameter_error_is_value_error():
    with pytest.raises(ValueError):
        cqt(Y, sr=SR, fmin=-1.0)


def test_resolution_zero_fails_as_librosa():
    # librosa divides by the resolution: the same ZeroDivisionError
    with pytest.raises(ZeroDivisionError):
        pitch_tuning([440.0], resolution=0)


def test_native_checks_shapes():
    from ml_utilities._native import core

    with pytest.raises(ValueError, match="dtype"):
        core.harmonic.f32.piptrack(
            S[None].astype(np.float64), 22050.0, 2048, 150.0, 4000.0, 0.1, None
        )
    with pytest.raises(ValueError):
        core.harmonic.f32.apply_bank(S[None], np.ones((12, 10), np.float32), -1.0, 0.0)
    with pytest.raises(ValueError, match="out of range"):
        core.harmonic.f32.sparse_product(
            np.array([0, 1], np.int64),
            np.array([5000], np.int64),
            np.ones(1, np.complex64),
            np.ones((1, 10, 3), np.complex64),
        )
    with pytest.raises(ValueError, match="n_chroma"):
        core.harmonic.chroma_filterbank(22050.0, 2048, 0, 0.0, 5.0, 2.0, 2.0, True)
