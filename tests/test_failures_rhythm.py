"""Bad input to onset_strength, peak_pick, onset_detect, tempo and beat_track: a ParameterError
(a ValueError) with librosa's message wherever librosa raises one, and never a crash in the core."""

from __future__ import annotations

import librosa
import numpy as np
import pytest

from ml_utilities import ParameterError, _core
from ml_utilities.audio import beat_track, onset_detect, onset_strength, peak_pick, tempo
from ml_utilities.audio.onset import onset_strength_multi
from ml_utilities.audio.tempo_estimation import tempogram

LibrosaError = librosa.util.exceptions.ParameterError

SR = 22050
Y = np.random.default_rng(1).standard_normal(SR).astype(np.float32)
ENV = np.abs(np.random.default_rng(2).standard_normal(200)).astype(np.float32)
PEAKS = dict(pre_max=1, post_max=1, pre_avg=1, post_avg=1, delta=0.1, wait=1)


def both_raise(ours, theirs, match: str) -> None:
    """Ours raises ParameterError matching `match`; librosa raises its ParameterError too."""
    with pytest.raises(ParameterError, match=match):
        ours()
    with pytest.raises(LibrosaError, match=match):
        theirs()


# ----------------------------------------------------------------------------- onset strength


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(lag=0), "lag=0 must be a positive integer"),
        (dict(lag=1.5), "lag=1.5 must be a positive integer"),
        (dict(max_size=0), "max_size=0 must be a positive integer"),
        (dict(max_size=2.0), "max_size=2.0 must be a positive integer"),
        (dict(aggregate=False), "aggregate parameter cannot be False"),
        (dict(hop_length=0), "hop_length=0 must be a positive integer"),
    ],
)
def test_onset_strength_bad_parameters(kwargs, match):
    both_raise(
        lambda: onset_strength(y=Y, sr=SR, **kwargs),
        lambda: librosa.onset.onset_strength(y=Y, sr=SR, **kwargs),
        match,
    )


def test_onset_strength_bad_reference_and_no_input():
    S = np.zeros((16, 30), dtype=np.float32)
    ref = np.zeros((16, 29), dtype=np.float32)
    both_raise(
        lambda: onset_strength(S=S, ref=ref),
        lambda: librosa.onset.onset_strength(S=S, ref=ref),
        r"Reference spectrum shape \(16, 29\) must match input spectrum \(16, 30\)",
    )
    with pytest.raises(ParameterError):
        onset_strength()
    with pytest.raises(ParameterError):
        onset_strength_multi(S=np.zeros((8, 20)), channels=["a", "b"])


def test_onset_strength_short_input_is_padding_only():
    S = np.ones((4, 1), dtype=np.float32)
    np.testing.assert_array_equal(onset_strength(S=S), librosa.onset.onset_strength(S=S))


# ------------------------------------------------------------------------------- peak picking


@pytest.mark.parametrize(
    "change, match",
    [
        (dict(pre_max=-1), "pre_max must be non-negative"),
        (dict(pre_avg=-1), "pre_avg must be non-negative"),
        (dict(delta=-0.1), "delta must be non-negative"),
        (dict(wait=-1), "wait must be non-negative"),
        (dict(post_max=0), "post_max must be positive"),
        (dict(post_avg=0), "post_avg must be positive"),
    ],
)
def test_peak_pick_bad_parameters(change, match):
    params = {**PEAKS, **change}
    both_raise(
        lambda: peak_pick(ENV, **params), lambda: librosa.util.peak_pick(ENV, **params), match
    )


def test_peak_pick_sparse_needs_1d_and_data():
    x = np.zeros((2, 10), dtype=np.float32)
    both_raise(
        lambda: peak_pick(x, **PEAKS),
        lambda: librosa.util.peak_pick(x, **PEAKS),
        "sparse=True \\(default\\) does not support 2-dimensional inputs",
    )
    with pytest.raises(ParameterError, match="non-empty"):
        peak_pick(np.zeros(0, dtype=np.float32), **PEAKS)
    with pytest.raises(ValueError):  # librosa: numba's zero-size reduction error
        librosa.util.peak_pick(np.zeros(0, dtype=np.float32), **PEAKS)


# ---------------------------------------------------------------------------- onset detection


def test_onset_detect_bad_input():
    both_raise(
        lambda: onset_detect(),
        lambda: librosa.onset.onset_detect(),
        "y or onset_envelope must be provided",
    )
    both_raise(
        lambda: onset_detect(onset_envelope=ENV, units="beats"),
        lambda: librosa.onset.onset_detect(onset_envelope=ENV, units="beats"),
        "Invalid unit type: beats",
    )
    both_raise(
        lambda: onset_detect(onset_envelope=ENV, backtrack=True, sparse=False),
        lambda: librosa.onset.onset_detect(onset_envelope=ENV, backtrack=True, sparse=False),
        "onset backtracking is only supported if sparse=True",
    )
    both_raise(
        lambda: onset_detect(onset_envelope=ENV, pre_max=-1),
        lambda: librosa.onset.onset_detect(onset_envelope=ENV, pre_max=-1),
        "pre_max must be non-negative",
    )


def test_onset_detect_empty_envelope_and_bad_hop():
    with pytest.raises(ParameterError, match="at least one frame"):
        onset_detect(onset_envelope=np.zeros(0, dtype=np.float32))
    with pytest.raises(ValueError):  # librosa: numpy's zero-size reduction error
        librosa.onset.onset_detect(onset_envelope=np.zeros(0, dtype=np.float32))
    with pytest.raises(ParameterError, match="hop_length=0 must be a positive integer"):
        onset_detect(onset_envelope=ENV, hop_length=0)
    with pytest.raises(ParameterError, match="hop_length=-512 must be a positive integer"):
        onset_detect(y=Y, hop_length=-512)


# -------------------------------------------------------------------------------------- tempo


def test_tempo_bad_input():
    both_raise(
        lambda: tempo(onset_envelope=ENV, start_bpm=0),
        lambda: librosa.feature.tempo(onset_envelope=ENV, start_bpm=0),
        "start_bpm must be strictly positive",
    )
    both_raise(
        lambda: tempogram(onset_envelope=ENV, win_length=0),
        lambda: librosa.feature.tempogram(onset_envelope=ENV, win_length=0),
        "win_length must be a positive integer",
    )
    both_raise(
        lambda: tempogram(),
        lambda: librosa.feature.tempogram(),
        "Either y or onset_envelope must be provided",
    )
    both_raise(
        lambda: tempogram(onset_envelope=ENV[:10], win_length=20, center=False),
        lambda: librosa.feature.tempogram(onset_envelope=ENV[:10], win_length=20, center=False),
        r"Input is too short \(n=10\) for frame_length=20",
    )
    bad = ENV.copy()
    bad[3] = np.nan
    with pytest.raises(ParameterError, match="Input must be finite"):
        tempo(onset_envelope=bad)
    with pytest.raises(ParameterError, match="at least one frame"):
        tempo(onset_envelope=np.zeros(0, dtype=np.float32))
    with pytest.raises(ParameterError, match="hop_length=0 must be a positive integer"):
        tempo(onset_envelope=ENV, hop_length=0)
    with pytest.raises(ParameterError, match="Unsupported norm"):
        tempogram(onset_envelope=ENV, norm="l2")


# -------------------------------------------------------------------------------------- beats


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(tightness=0), "tightness must be strictly positive"),
        (dict(tightness=-100), "tightness must be strictly positive"),
        (dict(bpm=-120.0), "must be strictly positive"),
        (dict(bpm=0.0), "must be strictly positive"),
        (dict(bpm=np.full(7, 120.0)), "Invalid bpm shape"),
        (dict(units="bars"), "Invalid unit type: bars"),
    ],
)
def test_beat_track_bad_parameters(kwargs, match):
    both_raise(
        lambda: beat_track(onset_envelope=ENV, sr=SR, **kwargs),
        lambda: librosa.beat.beat_track(onset_envelope=ENV, sr=SR, **kwargs),
        match,
    )


def test_beat_track_bad_input():
    both_raise(
        lambda: beat_track(),
        lambda: librosa.beat.beat_track(),
        "y or onset_envelope must be provided",
    )
    env2 = np.stack([ENV, ENV])
    both_raise(
        lambda: beat_track(onset_envelope=env2),
        lambda: librosa.beat.beat_track(onset_envelope=env2),
        "sparse=True \\(default\\) does not support 2-dimensional inputs",
    )
    with pytest.raises(ParameterError, match="hop_length=0 must be a positive integer"):
        beat_track(onset_envelope=ENV, hop_length=0)
    # Fewer than 2 frames per beat: librosa's tracker never returns; ours refuses.
    with pytest.raises(ParameterError, match="too fast"):
        beat_track(onset_envelope=ENV, sr=SR, bpm=4000.0)
    # An empty envelope has no onsets: no tempo and no beats, as librosa.
    bpm, beats = beat_track(onset_envelope=np.zeros(0, dtype=np.float32))
    assert bpm == 0.0 and beats.size == 0


# ------------------------------------------------------------------------------ core checks


def test_core_rejects_bad_arrays():
    rhythm = _core.rhythm
    S = np.zeros((1, 4, 10), dtype=np.float32)
    with pytest.raises(ParameterError, match="longer than the envelope"):
        rhythm.onset_flux(S, None, 1, False, 2, np.zeros((1, 100), dtype=np.float32))
    with pytest.raises(ParameterError, match="shape"):
        rhythm.onset_flux(S, None, 1, False, 2, np.zeros((2, 10), dtype=np.float32))
    with pytest.raises(ParameterError, match="dtype"):
        rhythm.onset_flux(S, None, 1, False, 2, np.zeros((1, 10), dtype=np.float64))
    with pytest.raises(ParameterError, match="lag"):
        rhythm.onset_flux(S, None, 0, False, 2, np.zeros((1, 10), dtype=np.float32))
    with pytest.raises(ParameterError, match="post_max"):
        rhythm.peak_pick(np.zeros((1, 5)), 1, 0, 1, 1, 0.1, 1, np.zeros((1, 5), dtype=np.uint8))
    with pytest.raises(ParameterError, match="read-only"):
        out = np.zeros((1, 5), dtype=np.uint8)
        out.setflags(write=False)
        rhythm.peak_pick(np.zeros((1, 5)), 1, 1, 1, 1, 0.1, 1, out)
    with pytest.raises(ParameterError, match="too short"):
        rhythm.tempogram(np.zeros((1, 5)), 10, np.ones(4), True, np.zeros((1, 4, 10)))
    with pytest.raises(ParameterError, match="frames_per_beat"):
        rhythm.beat_track(
            np.ones((1, 10)), np.ones((1, 3)), 100.0, True, np.zeros((1, 10), dtype=np.uint8)
        )
    with pytest.raises(ParameterError, match="too fast"):
        rhythm.beat_track(
            np.ones((1, 10)), np.zeros((1, 1)), 100.0, True, np.zeros((1, 10), dtype=np.uint8)
        )
