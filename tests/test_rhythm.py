"""Onset strength, onset detection, tempo and beat tracking against librosa 0.11."""

from __future__ import annotations

import threading

import librosa
import numpy as np
import pytest
from helpers import CLIPS, relative_error

from ml_utilities.audio import beat_track, onset_detect, onset_strength, peak_pick, tempo
from ml_utilities.audio.onset import onset_backtrack, onset_strength_multi
from ml_utilities.audio.tempo_estimation import tempo_frequencies, tempogram

SR = 22050


def click_track(bpm: float, seconds: float = 10.0, sr: int = SR) -> np.ndarray:
    """Unit impulses every 60/bpm seconds, starting at 0."""
    y = np.zeros(int(seconds * sr), dtype=np.float32)
    y[:: int(round(60.0 * sr / bpm))] = 1.0
    return y


def within_one_frame(ours: np.ndarray, ref: np.ndarray) -> float:
    """Fraction of ref's events with one of ours at most one frame away."""
    if len(ref) == 0:
        return 1.0
    if len(ours) == 0:
        return 0.0
    dist = np.abs(np.asarray(ref)[:, None] - np.asarray(ours)[None, :]).min(axis=1)
    return float(np.mean(dist <= 1))


@pytest.fixture(scope="module")
def references(clip_cache):
    """librosa's results per clip, computed once: (y, sr, oenv, oenv_median, S_db, dict)."""
    out = {}
    for name in CLIPS:
        y, sr = clip_cache[name]
        S = librosa.power_to_db(librosa.feature.melspectrogram(y=y, sr=sr, fmax=0.5 * sr))
        oenv = librosa.onset.onset_strength(S=S, sr=sr)
        oenv_med = librosa.onset.onset_strength(S=S, sr=sr, aggregate=np.median)
        out[name] = dict(
            y=y,
            sr=sr,
            S=S,
            oenv=oenv,
            oenv_med=oenv_med,
            onsets=librosa.onset.onset_detect(onset_envelope=oenv, sr=sr),
            tempo=librosa.feature.tempo(onset_envelope=oenv_med, sr=sr),
            beats=librosa.beat.beat_track(onset_envelope=oenv_med, sr=sr),
        )
    return out


# ---------------------------------------------------------------------------- onset strength


@pytest.mark.parametrize("clip", CLIPS)
def test_onset_strength_real_audio(references, clip):
    ref = references[clip]
    oenv = onset_strength(y=ref["y"], sr=ref["sr"])
    expected = librosa.onset.onset_strength(y=ref["y"], sr=ref["sr"])
    assert oenv.shape == expected.shape and oenv.dtype == expected.dtype == np.float32
    assert relative_error(oenv, expected) <= 1e-4
    # From the same log-mel spectrogram the native flux is librosa's to the bit.
    assert np.array_equal(onset_strength(S=ref["S"], sr=ref["sr"]), ref["oenv"])
    assert np.array_equal(
        onset_strength(S=ref["S"], sr=ref["sr"], aggregate=np.median), ref["oenv_med"]
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(lag=2),
        dict(max_size=3),
        dict(max_size=4, lag=3),
        dict(center=False),
        dict(detrend=True),
        dict(aggregate=np.max),
        dict(aggregate=np.median, lag=2, max_size=5, detrend=True, center=False),
    ],
)
def test_onset_strength_options(references, kwargs):
    ref = references[CLIPS[0]] if CLIPS else None
    S = ref["S"]
    ours = onset_strength(S=S, sr=ref["sr"], **kwargs)
    expected = librosa.onset.onset_strength(S=S, sr=ref["sr"], **kwargs)
    assert ours.shape == expected.shape and ours.dtype == expected.dtype
    np.testing.assert_array_equal(ours, expected)


def test_onset_strength_ref_hop_and_mel_options(clip_cache):
    y, sr = clip_cache[CLIPS[0]]
    S = librosa.power_to_db(librosa.feature.melspectrogram(y=y, sr=sr))
    R = np.roll(S, 1, axis=0)
    np.testing.assert_array_equal(
        onset_strength(S=S, ref=R, lag=2), librosa.onset.onset_strength(S=S, ref=R, lag=2)
    )
    kw = dict(hop_length=256, n_fft=1024, n_mels=64, fmax=8000.0)
    ours = onset_strength(y=y, sr=sr, **kw)
    expected = librosa.onset.onset_strength(y=y, sr=sr, **kw)
    assert ours.shape == expected.shape
    assert relative_error(ours, expected) <= 1e-4


def test_onset_strength_multichannel_and_float64(clip_cache):
    y, sr = clip_cache[CLIPS[0]]
    y = y[: 5 * sr]
    stereo = np.stack([y, 0.5 * y[::-1]])
    ours = onset_strength(y=stereo, sr=sr)
    expected = librosa.onset.onset_strength(y=stereo, sr=sr)
    assert ours.shape == expected.shape == (2, expected.shape[-1])
    assert relative_error(ours, expected) <= 1e-4
    y64 = y.astype(np.float64)
    ours64 = onset_strength(y=y64, sr=sr)
    expected64 = librosa.onset.onset_strength(y=y64, sr=sr)
    assert ours64.dtype == expected64.dtype == np.float64
    assert relative_error(ours64, expected64) <= 1e-6


def test_onset_strength_multi_channels(references):
    ref = references[CLIPS[0]]
    for channels in ([0, 32, 64, 96, 128], [slice(0, 10), slice(10, 128)]):
        ours = onset_strength_multi(S=ref["S"], channels=channels)
        expected = librosa.onset.onset_strength_multi(S=ref["S"], channels=channels)
        np.testing.assert_array_equal(ours, expected)
    ours = onset_strength_multi(S=ref["S"], aggregate=False)
    np.testing.assert_array_equal(
        ours, librosa.onset.onset_strength_multi(S=ref["S"], aggregate=False)
    )


# ------------------------------------------------------------------------------- peak picking


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "params",
    [
        dict(pre_max=1, post_max=1, pre_avg=4, post_avg=5, delta=0.07, wait=1),
        dict(pre_max=3, post_max=3, pre_avg=3, post_avg=5, delta=0.5, wait=10),
        dict(pre_max=0, post_max=1, pre_avg=0, post_avg=1, delta=0.0, wait=0),
        dict(pre_max=2.5, post_max=1.2, pre_avg=7.1, post_avg=2, delta=0.01, wait=0.5),
    ],
)
def test_peak_pick_matches_librosa(rng, dtype, params):
    x = rng.random(500).astype(dtype)
    expected = librosa.util.peak_pick(x, **params)
    np.testing.assert_array_equal(peak_pick(x, **params), expected)


def test_peak_pick_dense_along_axis(rng):
    x = rng.random((300, 3)).astype(np.float32)
    params = dict(pre_max=2, post_max=2, pre_avg=5, post_avg=5, delta=0.1, wait=3)
    ours = peak_pick(x, sparse=False, axis=0, **params)
    expected = librosa.util.peak_pick(x, sparse=False, axis=0, **params)
    assert ours.dtype == expected.dtype == bool and ours.shape == x.shape
    np.testing.assert_array_equal(ours, expected)


# ---------------------------------------------------------------------------- onset detection


@pytest.mark.parametrize("clip", CLIPS)
def test_onset_detect_real_audio(references, clip):
    ref = references[clip]
    # From librosa's envelope: the same onsets.
    np.testing.assert_array_equal(
        onset_detect(onset_envelope=ref["oenv"], sr=ref["sr"]), ref["onsets"]
    )
    # End to end on audio: at least 95% within one frame (identical on these clips).
    ours = onset_detect(y=ref["y"], sr=ref["sr"])
    assert within_one_frame(ours, ref["onsets"]) >= 0.95
    assert len(ours) == len(ref["onsets"])


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(units="time"),
        dict(units="samples"),
        dict(backtrack=True),
        dict(normalize=False, delta=0.5),
        dict(sparse=False),
        dict(pre_max=3, post_max=3, wait=5),
    ],
)
def test_onset_detect_options(references, kwargs):
    ref = references[CLIPS[0]]
    ours = onset_detect(onset_envelope=ref["oenv"], sr=ref["sr"], **kwargs)
    expected = librosa.onset.onset_detect(onset_envelope=ref["oenv"], sr=ref["sr"], **kwargs)
    assert ours.dtype == expected.dtype
    np.testing.assert_array_equal(ours, expected)


def test_onset_backtrack_with_energy(references):
    ref = references[CLIPS[0]]
    events = librosa.onset.onset_detect(onset_envelope=ref["oenv"], sr=ref["sr"])
    rms = librosa.feature.rms(y=ref["y"])[0]
    np.testing.assert_array_equal(
        onset_backtrack(events, rms), librosa.onset.onset_backtrack(events, rms)
    )


def test_onset_detect_click_track():
    y = click_track(120.0)
    onsets = onset_detect(y=y, sr=SR)
    clicks = np.arange(0, len(y), SR // 2)[1:] / 512  # the click at 0 has no rise to detect
    assert len(onsets) == len(clicks)
    # Each click shows up in the first frame whose (centred) window reaches past it.
    assert np.all((onsets - clicks >= 0) & (onsets - clicks <= 1.5))


def test_onset_detect_silence():
    assert onset_detect(y=np.zeros(SR, dtype=np.float32), sr=SR).size == 0
    dense = onset_detect(y=np.zeros(SR, dtype=np.float32), sr=SR, sparse=False)
    assert dense.dtype == bool and not dense.any()


# -------------------------------------------------------------------------------------- tempo


@pytest.mark.parametrize("clip", CLIPS)
def test_tempo_real_audio(references, clip):
    ref = references[clip]
    bpm = tempo(onset_envelope=ref["oenv_med"], sr=ref["sr"])
    assert bpm.shape == ref["tempo"].shape == (1,) and bpm.dtype == np.float64
    np.testing.assert_array_equal(bpm, ref["tempo"])


def test_tempo_from_audio_and_options(references):
    ref = references[CLIPS[0]]
    y, sr = ref["y"], ref["sr"]
    np.testing.assert_array_equal(tempo(y=y, sr=sr), librosa.feature.tempo(y=y, sr=sr))
    oenv = ref["oenv"]
    for kwargs in (
        dict(aggregate=None),
        dict(aggregate=np.median),
        dict(start_bpm=60, std_bpm=0.5),
        dict(ac_size=4.0, max_tempo=None),
    ):
        np.testing.assert_array_equal(
            tempo(onset_envelope=oenv, sr=sr, **kwargs),
            librosa.feature.tempo(onset_envelope=oenv, sr=sr, **kwargs),
        )


def test_tempogram_matches_librosa(references):
    ref = references[CLIPS[0]]
    for kwargs in (dict(), dict(win_length=101, center=False), dict(norm=None), dict(norm=2)):
        ours = tempogram(onset_envelope=ref["oenv"], sr=ref["sr"], **kwargs)
        expected = librosa.feature.tempogram(onset_envelope=ref["oenv"], sr=ref["sr"], **kwargs)
        assert ours.shape == expected.shape and ours.dtype == expected.dtype
        assert relative_error(ours, expected) <= 1e-12
    np.testing.assert_array_equal(
        tempo_frequencies(384, hop_length=256, sr=44100),
        librosa.tempo_frequencies(384, hop_length=256, sr=44100),
    )


def test_tempo_click_track_lands_on_lag_grid():
    bpm = tempo(y=click_track(120.0), sr=SR)
    assert bpm.shape == (1,)
    assert bpm[0] == pytest.approx(117.45383523, abs=1e-6)
    assert bpm[0] == 60.0 * SR / (512 * 22)


# -------------------------------------------------------------------------------------- beats


@pytest.mark.parametrize("clip", CLIPS)
def test_beat_track_real_audio(references, clip):
    ref = references[clip]
    bpm_ref, beats_ref = ref["beats"]
    bpm, beats = beat_track(onset_envelope=ref["oenv_med"], sr=ref["sr"])
    np.testing.assert_array_equal(bpm, bpm_ref)
    np.testing.assert_array_equal(beats, beats_ref)
    # End to end from audio (our own mel spectrogram): same tempo, >= 95% within one frame.
    bpm_y, beats_y = beat_track(y=ref["y"], sr=ref["sr"])
    np.testing.assert_array_equal(bpm_y, bpm_ref)
    assert within_one_frame(beats_y, beats_ref) >= 0.95


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(trim=False),
        dict(tightness=400),
        dict(tightness=0.5, start_bpm=90.0),
        dict(bpm=100.0),
        dict(units="time"),
        dict(units="samples"),
        dict(hop_length=256),
    ],
)
def test_beat_track_options(references, kwargs):
    ref = references[CLIPS[0]]
    ours = beat_track(onset_envelope=ref["oenv"], sr=ref["sr"], **kwargs)
    expected = librosa.beat.beat_track(onset_envelope=ref["oenv"], sr=ref["sr"], **kwargs)
    np.testing.assert_array_equal(ours[0], expected[0])
    np.testing.assert_array_equal(ours[1], expected[1])


def test_beat_track_time_varying_and_multichannel(references):
    ref = references[CLIPS[0]]
    oenv, sr = ref["oenv"], ref["sr"]
    local = librosa.feature.tempo(onset_envelope=oenv, sr=sr, aggregate=None)
    np.testing.assert_array_equal(
        beat_track(onset_envelope=oenv, sr=sr, bpm=local)[1],
        librosa.beat.beat_track(onset_envelope=oenv, sr=sr, bpm=local)[1],
    )
    stacked = np.stack([oenv, oenv[::-1].copy()])
    ours_bpm, ours = beat_track(onset_envelope=stacked, sr=sr, sparse=False)
    exp_bpm, expected = librosa.beat.beat_track(onset_envelope=stacked, sr=sr, sparse=False)
    assert ours.shape == expected.shape and ours.dtype == expected.dtype == bool
    np.testing.assert_array_equal(ours_bpm, exp_bpm)
    np.testing.assert_array_equal(ours, expected)


def test_beat_track_click_track():
    y = click_track(120.0)
    bpm, beats = beat_track(y=y, sr=SR)
    assert bpm[0] == pytest.approx(117.45383523, abs=1e-6)
    exp_bpm, expected = librosa.beat.beat_track(y=y, sr=SR)
    np.testing.assert_array_equal(bpm, exp_bpm)
    np.testing.assert_array_equal(beats, expected)
    clicks = np.arange(0, len(y), SR // 2) / 512
    dist = np.abs(beats[:, None] - clicks[None, :]).min(axis=1)
    assert len(beats) >= 18 and np.all(dist <= 1.5)


def test_beat_track_silence():
    bpm, beats = beat_track(y=np.zeros(SR, dtype=np.float32), sr=SR)
    assert bpm == 0.0 and beats.size == 0


def test_threads_release_the_gil(references):
    """Concurrent calls from threads give the same answers as serial ones."""
    ref = references[CLIPS[0]]
    expected = beat_track(y=ref["y"], sr=ref["sr"])[1]
    results: list[np.ndarray] = []

    def work() -> None:
        results.append(beat_track(y=ref["y"], sr=ref["sr"])[1])

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 4
    for r in results:
        np.testing.assert_array_equal(r, expected)


def test_tempo_native_mean_equals_full_tempogram(references):
    """The streamed time average matches the mean of the stored tempogram."""
    ref = references[CLIPS[0]]
    stacked = np.stack([ref["oenv"], ref["oenv_med"]])
    fast = tempo(onset_envelope=stacked, sr=ref["sr"])
    tg = tempogram(onset_envelope=stacked, sr=ref["sr"], win_length=344)
    full = tempo(tg=tg, sr=ref["sr"])
    assert fast.shape == full.shape == (2, 1)
    np.testing.assert_array_equal(fast, full)
    np.testing.assert_array_equal(fast, librosa.feature.tempo(onset_envelope=stacked, sr=ref["sr"]))


def test_beat_track_stereo_float64_and_prior(clip_cache):
    scipy_stats = pytest.importorskip("scipy.stats")
    y, sr = clip_cache[CLIPS[0]]
    y = y[: 8 * sr]
    stereo = np.stack([y, np.roll(y, 3000) * 0.7])
    bpm, beats = beat_track(y=stereo, sr=sr, sparse=False)
    exp_bpm, expected = librosa.beat.beat_track(y=stereo, sr=sr, sparse=False)
    np.testing.assert_array_equal(bpm, exp_bpm)
    for ours_row, ref_row in zip(beats, expected, strict=True):
        assert within_one_frame(np.flatnonzero(ours_row), np.flatnonzero(ref_row)) >= 0.95
    oenv = librosa.onset.onset_strength(y=y, sr=sr).astype(np.float64)
    for kwargs in (dict(), dict(prior=scipy_stats.uniform(30, 300))):
        ours = beat_track(onset_envelope=oenv, sr=sr, **kwargs)
        theirs = librosa.beat.beat_track(onset_envelope=oenv, sr=sr, **kwargs)
        np.testing.assert_array_equal(ours[0], theirs[0])
        np.testing.assert_array_equal(ours[1], theirs[1])
    np.testing.assert_array_equal(
        onset_detect(onset_envelope=oenv, sr=sr),
        librosa.onset.onset_detect(onset_envelope=oenv, sr=sr),
    )
