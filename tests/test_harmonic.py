"""Harmonic features against librosa 0.11 on real audio, and known answers on synthetic tones."""

from __future__ import annotations

import threading
import warnings

import librosa
import numpy as np
import pytest
from helpers import chirp, relative_error

from ml_utilities.audio.chroma import chroma_cqt, chroma_stft, tonnetz
from ml_utilities.audio.constantq import cqt
from ml_utilities.audio.decompose import effects_hpss, harmonicity, hpss
from ml_utilities.audio.pitch import estimate_tuning, piptrack, pitch_tuning

TRUMPET = "sorohanro_-_solo-trumpet-06.ogg"
JAZZ = "Kevin_MacLeod_-_Vibe_Ace.ogg"
SPEECH = "198-209-0000.ogg"
PARITY_CLIPS = [TRUMPET, JAZZ, SPEECH]
SR = 22050


def tone(freq: float, seconds: float = 2.0, sr: int = SR, dtype=np.float32) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(dtype)


def excerpt(clip_cache, name: str, seconds: float | None = None) -> tuple[np.ndarray, int]:
    y, sr = clip_cache[name]
    if seconds is not None:
        y = np.ascontiguousarray(y[: int(seconds * sr)])
    return y, sr


# ------------------------------------------------------------------------------ tuning


@pytest.mark.parametrize("clip", PARITY_CLIPS)
def test_estimate_tuning_identical(clip_cache, clip):
    y, sr = clip_cache[clip]
    assert estimate_tuning(y=y, sr=sr) == librosa.estimate_tuning(y=y, sr=sr)
    S = np.abs(librosa.stft(y)) ** 2
    for bpo in (12, 36):
        expected = librosa.estimate_tuning(S=S, sr=sr, bins_per_octave=bpo)
        assert estimate_tuning(S=S, sr=sr, bins_per_octave=bpo) == expected


def test_piptrack_matches_librosa(clip_cache):
    y, sr = clip_cache[TRUMPET]
    p_ref, m_ref = librosa.piptrack(y=y, sr=sr)
    p, m = piptrack(y=y, sr=sr)
    assert p.shape == p_ref.shape and p.dtype == p_ref.dtype
    np.testing.assert_array_equal(p > 0, p_ref > 0)
    assert relative_error(p, p_ref) <= 1e-6
    assert relative_error(m, m_ref) <= 1e-5


def test_piptrack_options():
    y = chirp(dtype=np.float64)
    S = np.abs(librosa.stft(y, n_fft=1024))
    for kwargs in (
        dict(fmin=50.0, fmax=8000.0, threshold=0.2),
        dict(ref=np.mean, threshold=1.0),
        dict(ref=0.5),
    ):
        p_ref, m_ref = librosa.piptrack(S=S, sr=SR, **kwargs)
        p, m = piptrack(S=S, sr=SR, **kwargs)
        np.testing.assert_array_equal(p > 0, p_ref > 0)
        np.testing.assert_allclose(p, p_ref, rtol=1e-12, atol=1e-9)
        np.testing.assert_allclose(m, m_ref, rtol=1e-12, atol=1e-9)


@pytest.mark.parametrize("freq", [440.0, 443.0, 436.0, 261.63])
def test_tuning_of_pure_tones(freq):
    y = tone(freq)
    expected = librosa.estimate_tuning(y=y, sr=SR)
    assert estimate_tuning(y=y, sr=SR) == expected
    if freq == 443.0:
        # 443 Hz is 11.8 cents sharp of A440: librosa reports +0.1 of a semitone
        assert abs(expected - 0.1) < 1e-9


def test_pitch_tuning():
    freqs = librosa.cqt_frequencies(n_bins=24, fmin=55, tuning=0.25)
    assert pitch_tuning(freqs) == librosa.pitch_tuning(freqs) == 0.25
    rng = np.random.default_rng(3)
    freqs = rng.uniform(50, 5000, 500)
    for kwargs in (dict(), dict(resolution=0.001), dict(bins_per_octave=36)):
        assert pitch_tuning(freqs, **kwargs) == librosa.pitch_tuning(freqs, **kwargs)
    with pytest.warns(UserWarning, match="empty frequency set"):
        assert pitch_tuning([0.0, -1.0]) == 0.0


# ------------------------------------------------------------------------------ chroma


@pytest.mark.parametrize("clip", PARITY_CLIPS)
def test_chroma_stft_parity(clip_cache, clip):
    y, sr = clip_cache[clip]
    expected = librosa.feature.chroma_stft(y=y, sr=sr)
    actual = chroma_stft(y=y, sr=sr)
    assert actual.shape == expected.shape and actual.dtype == expected.dtype
    assert relative_error(actual, expected) <= 1e-3


def test_chroma_stft_options():
    y = chirp()
    S = np.abs(librosa.stft(y, n_fft=4096, hop_length=1024)) ** 2
    cases = [
        dict(S=S, sr=SR, n_fft=4096),
        dict(y=y, sr=SR, n_fft=1024, hop_length=256, tuning=0.2),
        dict(y=y, sr=SR, norm=2, n_chroma=24),
        dict(y=y, sr=SR, norm=None, octwidth=None, base_c=False),
        dict(y=y.astype(np.float64), sr=16000, ctroct=4.0, norm=1),
        dict(y=y, sr=SR, norm=-np.inf),
    ]
    for kwargs in cases:
        expected = librosa.feature.chroma_stft(**kwargs)
        actual = chroma_stft(**kwargs)
        assert actual.shape == expected.shape and actual.dtype == expected.dtype, kwargs
        assert relative_error(actual, expected) <= 1e-3, kwargs


def test_chroma_stft_multichannel():
    y = np.stack([chirp(), tone(330.0, seconds=3.0)])
    expected = librosa.feature.chroma_stft(y=y, sr=SR)
    actual = chroma_stft(y=y, sr=SR)
    assert actual.shape == expected.shape == (2, 12, 130)
    assert relative_error(actual, expected) <= 1e-3


def test_pure_a4_gives_chroma_a():
    chroma = chroma_stft(y=tone(440.0), sr=SR)
    assert int(np.argmax(chroma.mean(axis=1))) == 9  # C, C#, ..., A
    assert np.all(np.argmax(chroma[:, 2:-2], axis=0) == 9)
    chroma = chroma_cqt(y=tone(440.0, seconds=4.0), sr=SR)
    assert int(np.argmax(chroma.mean(axis=1))) == 9


# --------------------------------------------------------------------------------- CQT


@pytest.mark.parametrize("clip", PARITY_CLIPS)
def test_cqt_parity(clip_cache, clip):
    y, sr = excerpt(clip_cache, clip, 20.0)
    expected = librosa.cqt(y, sr=sr)
    actual = cqt(y, sr=sr)
    assert actual.shape == expected.shape and actual.dtype == expected.dtype
    assert relative_error(np.abs(actual), np.abs(expected)) <= 1e-3


def test_cqt_options():
    y = chirp()
    cases = [
        dict(hop_length=256, n_bins=72, bins_per_octave=24, fmin=55.0),
        dict(tuning=None, filter_scale=0.8, sparsity=0.0),
        dict(hop_length=4096, n_bins=48, fmin=65.0),  # early downsampling
        dict(n_bins=1, fmin=440.0),
        dict(norm=2, scale=False, window="hamming"),
    ]
    for kwargs in cases:
        expected = librosa.cqt(y, sr=SR, **kwargs)
        actual = cqt(y, sr=SR, **kwargs)
        assert actual.shape == expected.shape and actual.dtype == expected.dtype, kwargs
        assert relative_error(np.abs(actual), np.abs(expected)) <= 1e-3, kwargs
    y64 = y.astype(np.float64)
    expected = librosa.cqt(y64, sr=SR, n_bins=60)
    actual = cqt(y64, sr=SR, n_bins=60)
    assert actual.dtype == expected.dtype == np.complex128
    assert relative_error(np.abs(actual), np.abs(expected)) <= 1e-6


def test_cqt_multichannel():
    y = np.stack([chirp(), tone(330.0, seconds=3.0)])[np.newaxis]
    expected = librosa.cqt(y, sr=SR, n_bins=72)
    actual = cqt(y, sr=SR, n_bins=72)
    assert actual.shape == expected.shape == (1, 2, 72, 130)
    assert relative_error(np.abs(actual), np.abs(expected)) <= 1e-3
    np.testing.assert_allclose(
        np.abs(actual[0, 1]), np.abs(cqt(y[0, 1], sr=SR, n_bins=72)), rtol=1e-5, atol=1e-7
    )


def test_cqt_of_a4_peaks_at_a4():
    C = np.abs(cqt(tone(440.0, seconds=4.0), sr=SR))
    assert int(np.argmax(C.mean(axis=1))) == 45  # MIDI 69 is 45 semitones above C1 (MIDI 24)


@pytest.mark.parametrize("clip", PARITY_CLIPS)
def test_chroma_cqt_and_tonnetz_parity(clip_cache, clip):
    y, sr = excerpt(clip_cache, clip, 20.0)
    expected = librosa.feature.chroma_cqt(y=y, sr=sr)
    actual = chroma_cqt(y=y, sr=sr)
    assert actual.shape == expected.shape and actual.dtype == expected.dtype
    assert relative_error(actual, expected) <= 1e-3
    expected_t = librosa.feature.tonnetz(y=y, sr=sr)
    actual_t = tonnetz(y=y, sr=sr)
    assert actual_t.shape == expected_t.shape and actual_t.dtype == expected_t.dtype
    assert relative_error(actual_t, expected_t) <= 1e-3
    # from a given chromagram
    expected_t = librosa.feature.tonnetz(chroma=expected)
    assert relative_error(tonnetz(chroma=expected), expected_t) <= 1e-6


def test_chroma_cqt_options():
    y = chirp()
    C = np.abs(librosa.cqt(y, sr=SR, n_bins=84, bins_per_octave=12))
    cases = [
        dict(C=C, bins_per_octave=12),
        dict(y=y, sr=SR, n_chroma=12, bins_per_octave=24, n_octaves=6, threshold=0.1),
        dict(y=y, sr=SR, norm=2, tuning=0.0, fmin=55.0),
    ]
    for kwargs in cases:
        expected = librosa.feature.chroma_cqt(**kwargs)
        actual = chroma_cqt(**kwargs)
        assert actual.shape == expected.shape, kwargs
        assert relative_error(actual, expected) <= 1e-3, kwargs


# -------------------------------------------------------------------------------- HPSS


@pytest.mark.parametrize("clip", PARITY_CLIPS)
def test_hpss_parity(clip_cache, clip):
    y, sr = excerpt(clip_cache, clip, 12.0)
    S = np.abs(librosa.stft(y)) ** 2
    H_ref, P_ref = librosa.decompose.hpss(S)
    H, P = hpss(S)
    assert H.dtype == H_ref.dtype and H.shape == H_ref.shape
    assert relative_error(H, H_ref) <= 1e-4
    assert relative_error(P, P_ref) <= 1e-4


def test_hpss_options():
    D = librosa.stft(chirp() + tone(220.0, seconds=3.0), n_fft=1024)
    S = np.abs(D)
    cases = [
        dict(),
        dict(kernel_size=(17, 9), margin=(1.0, 3.0)),
        dict(kernel_size=8, power=1.0, margin=2.0),
        dict(mask=True),
        dict(power=np.inf),
        dict(power=np.inf, mask=True),
        dict(kernel_size=[5, 30], power=0.5),
    ]
    for X in (S, D, S.astype(np.float64)):
        for kwargs in cases:
            expected = librosa.decompose.hpss(X, **kwargs)
            actual = hpss(X, **kwargs)
            for a, e in zip(actual, expected, strict=True):
                assert a.shape == e.shape and a.dtype == e.dtype, kwargs
                assert relative_error(a, e) <= 1e-4, kwargs


def _reflect_median(x: np.ndarray, size: int, axis: int) -> np.ndarray:
    """scipy.ndimage.median_filter(mode="reflect") along one axis, in plain numpy: numpy's
    "symmetric" padding reflects as often as a window wider than the axis needs."""
    pad = [(0, 0)] * x.ndim
    pad[axis] = (size // 2, size - 1 - size // 2)
    windows = np.lib.stride_tricks.sliding_window_view(np.pad(x, pad, mode="symmetric"), size, axis)
    return np.sort(windows, axis=-1)[..., size // 2]


def test_hpss_median_filter_edges():
    # windows wider than the axis reflect more than once, as scipy's reflect mode does. scipy
    # 1.17's median_filter itself is not reliable there: for the (7, 5) input with kernels of
    # 64 and 90 it returns values that change with the input's address (seen in about 1 call
    # in 4 at a 48-byte offset), so the reference for those is librosa's own soft mask over
    # medians computed in plain numpy; librosa's hpss is compared directly wherever the window
    # reflects at most once.
    rng = np.random.default_rng(1)
    for shape in ((7, 5), (150, 120)):
        S = rng.random(shape).astype(np.float32)
        S[:, 3] = S[:, 4]  # ties
        for kernel in (3, 4, 11, 31, 32, 45, 64, 90):
            actual = hpss(S, kernel_size=kernel, mask=True)
            harm = _reflect_median(S, kernel, axis=1)
            perc = _reflect_median(S, kernel, axis=0)
            expected = (
                librosa.util.softmask(harm, perc, power=2.0, split_zeros=True),
                librosa.util.softmask(perc, harm, power=2.0, split_zeros=True),
            )
            for a, e in zip(actual, expected, strict=True):
                np.testing.assert_allclose(a, e, rtol=1e-6, atol=1e-7)
            if kernel // 2 <= min(shape):
                direct = librosa.decompose.hpss(S, kernel_size=kernel, mask=True)
                for a, e in zip(actual, direct, strict=True):
                    np.testing.assert_allclose(a, e, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_native_median_filters_equal_scipy(dtype):
    # every window class of the native running median (registers of 16, 32 and 64 values, the
    # general case past 64), ties, zeros and infinities: a median is one of the inputs, so the
    # results must be identical to scipy's, not just close
    from scipy.ndimage import median_filter

    from ml_utilities._native import core

    kern = core.harmonic.f32 if dtype == np.float32 else core.harmonic.f64
    rng = np.random.default_rng(5)
    S = np.round(rng.random((1, 70, 90)) ** 3, 2).astype(dtype)  # many ties
    S[0, :, 10:14] = 0.0
    S[0, 5, 40] = np.inf
    S[0, 60:62, 20] = np.inf
    for size in (2, 3, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 101):
        harm, perc = kern.median_filters(S, size, size)
        np.testing.assert_array_equal(harm, median_filter(S, size=(1, 1, size), mode="reflect"))
        np.testing.assert_array_equal(perc, median_filter(S, size=(1, size, 1), mode="reflect"))


def test_effects_hpss_parity(clip_cache):
    y, _ = excerpt(clip_cache, TRUMPET, 4.0)
    h_ref, p_ref = librosa.effects.hpss(y)
    h, p = effects_hpss(y)
    assert h.shape == h_ref.shape and h.dtype == h_ref.dtype
    assert relative_error(h, h_ref) <= 1e-4
    assert relative_error(p, p_ref) <= 1e-4
    h_ref, p_ref = librosa.effects.hpss(y, margin=3.0)
    h, p = effects_hpss(y, margin=3.0)
    assert relative_error(h, h_ref) <= 1e-4


def test_harmonicity():
    steady = harmonicity(tone(440.0))
    rng = np.random.default_rng(0)
    clicks = np.zeros(2 * SR, dtype=np.float32)
    clicks[:: SR // 8] = 1.0
    clicky = harmonicity(clicks + 1e-4 * rng.standard_normal(clicks.size).astype(np.float32))
    assert 0.9 < steady <= 1.0
    assert 0.0 <= clicky < 0.3
    # the definition: harmonic energy of HPSS on the power spectrogram over the total
    S = np.abs(librosa.stft(tone(440.0))) ** 2
    H, _ = librosa.decompose.hpss(S)
    assert harmonicity(S=S) == pytest.approx(
        float(H.sum(dtype=np.float64) / S.sum(dtype=np.float64)), rel=1e-5
    )
    assert harmonicity(np.zeros(4096, dtype=np.float32)) == 0.0


# ------------------------------------------------------------------------- threads, API


@pytest.mark.parametrize(
    "function",
    [
        lambda y: chroma_stft(y=y, sr=SR),
        lambda y: hpss(np.abs(librosa.stft(y)))[0],
        lambda y: np.abs(cqt(y, sr=SR, n_bins=60)),
    ],
    ids=["chroma_stft", "hpss", "cqt"],
)
def test_threads_give_the_same_answers(function):
    y = chirp()
    expected = function(y)
    results: list[np.ndarray] = []

    def work() -> None:
        results.append(function(y))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 4
    for r in results:
        np.testing.assert_array_equal(r, expected)


def test_exports():
    from ml_utilities import audio
    from ml_utilities.audio import chroma, constantq, decompose, pitch

    for module, name in (
        (pitch, "piptrack"),
        (pitch, "estimate_tuning"),
        (pitch, "pitch_tuning"),
        (chroma, "chroma_stft"),
        (constantq, "cqt"),
        (chroma, "chroma_cqt"),
        (chroma, "tonnetz"),
        (decompose, "hpss"),
        (decompose, "harmonicity"),
    ):
        exported = getattr(audio, name)
        # functions with a CUDA twin are handed out wrapped by the device dispatch
        assert getattr(exported, "__wrapped__", exported) is getattr(module, name)
        assert name in module.__all__
    assert "effects_hpss" in decompose.__all__


def test_short_input_warns_like_librosa():
    y = tone(440.0, seconds=0.05)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = librosa.feature.chroma_stft(y=y, sr=SR, tuning=0.0)
    with pytest.warns(UserWarning, match="n_fft=2048 is too large"):
        actual = chroma_stft(y=y, sr=SR, tuning=0.0)
    assert relative_error(actual, expected) <= 1e-3
