"""A channel's features do not depend on what else is in the batch: for every function with a
batch axis, the rows of a batched call are identical (bit for bit) to the calls on each row
alone, on real clips and on synthetic signals.

The exceptions are librosa's own definitions, followed here (and checked against librosa):
chroma_stft, chroma_cqt and tonnetz with ``tuning=None`` estimate one tuning over the whole
batch; and from audio, mfcc, onset_strength and tempogram convert to decibels with
``power_to_db``, whose ``top_db`` floor (``ref=np.max`` too, for onsets) is taken over the whole
batch. Given their spectrogram in decibels (``S=``) or a tuning, they are batch-invariant too.
"""

from __future__ import annotations

import librosa
import numpy as np
import pytest
from helpers import chirp

from ml_utilities import audio

SR = 22050

FUNCTIONS = {
    "stft": lambda y: audio.stft(y),
    "spectrogram": lambda y: audio.spectrogram(y),
    "melspectrogram": lambda y: audio.melspectrogram(y=y, sr=SR),
    "mfcc (S in dB)": lambda y: audio.mfcc(S=_db(y)),
    "delta": lambda y: audio.delta(audio.mfcc(S=_db(y)), order=2),
    "spectral_centroid": lambda y: audio.spectral_centroid(y=y, sr=SR),
    "spectral_bandwidth": lambda y: audio.spectral_bandwidth(y=y, sr=SR),
    "spectral_rolloff": lambda y: audio.spectral_rolloff(y=y, sr=SR),
    "spectral_contrast": lambda y: audio.spectral_contrast(y=y, sr=SR),
    "spectral_flatness": lambda y: audio.spectral_flatness(y=y),
    "rms": lambda y: audio.rms(y=y),
    "zero_crossing_rate": lambda y: audio.zero_crossing_rate(y),
    "chroma_stft (tuning given)": lambda y: audio.chroma_stft(y=y, sr=SR, tuning=0.0),
    "chroma_cqt (tuning given)": lambda y: audio.chroma_cqt(y=y, sr=SR, tuning=0.0),
    "tonnetz (tuning given)": lambda y: audio.tonnetz(
        chroma=audio.chroma_cqt(y=y, sr=SR, tuning=0.0)
    ),
    "cqt": lambda y: audio.cqt(y, sr=SR),
    "onset_strength (S in dB)": lambda y: audio.onset_strength(S=_db(y), sr=SR),
    "tempogram (S in dB)": lambda y: audio.tempogram(
        onset_envelope=audio.onset_strength(S=_db(y), sr=SR), sr=SR
    ),
    "tempo": lambda y: audio.tempo(y=y, sr=SR),
    "piptrack": lambda y: audio.piptrack(y=y, sr=SR)[1],
    "hpss": lambda y: audio.hpss(np.abs(audio.stft(y)))[0],
    "effects_hpss": lambda y: audio.effects_hpss(y)[1],
}


def _db(y: np.ndarray) -> np.ndarray:
    """A mel spectrogram in decibels, value by value (no floor taken over the batch)."""
    return 10.0 * np.log10(np.maximum(audio.melspectrogram(y=y, sr=SR), 1e-10))


def _synthetic() -> np.ndarray:
    rng = np.random.default_rng(7)
    t = np.arange(3 * SR) / SR
    tone = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.02 * rng.standard_normal(t.size)
    return np.stack([tone, 0.1 * rng.standard_normal(t.size), chirp(SR, 3.0)]).astype(np.float32)


@pytest.fixture(scope="module")
def batches(request) -> list[np.ndarray]:
    """Three-row batches: synthetic signals, and the first 4 s of three real clips (resampled
    to 22,050 Hz) where the shared audio is present."""
    out = [_synthetic()]
    try:
        clip_cache = request.getfixturevalue("clip_cache")
    except pytest.skip.Exception:
        return out
    rows = []
    for y, sr in list(clip_cache.values())[:3]:
        rows.append(librosa.resample(y[: 4 * sr], orig_sr=sr, target_sr=SR)[: 4 * SR])
    if len(rows) == 3:
        n = min(len(r) for r in rows)
        out.append(np.stack([r[:n] for r in rows]).astype(np.float32))
    return out


# the low octaves of the CQT on 4 s clips are shorter than n_fft: librosa warns the same
@pytest.mark.filterwarnings("ignore:n_fft=.* is too large for input signal:UserWarning")
@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_rows_of_a_batch_equal_the_rows_alone(batches, name):
    f = FUNCTIONS[name]
    for batch in batches:
        together = np.asarray(f(batch))
        for i, row in enumerate(batch):
            alone = np.asarray(f(row))
            assert together[i].shape == alone.shape and together.dtype == alone.dtype
            np.testing.assert_array_equal(together[i], alone, err_msg=f"{name}, row {i}")


@pytest.mark.parametrize(
    "name, ours, theirs",
    [
        ("chroma_stft", audio.chroma_stft, librosa.feature.chroma_stft),
        ("chroma_cqt", audio.chroma_cqt, librosa.feature.chroma_cqt),
        ("tonnetz", audio.tonnetz, librosa.feature.tonnetz),
        ("onset_strength", audio.onset_strength, librosa.onset.onset_strength),
        ("tempogram", audio.tempogram, librosa.feature.tempogram),
    ],
)
def test_batch_wide_steps_follow_librosa(name, ours, theirs):
    # a tuning estimated, or a decibel floor taken, over the whole batch: as librosa does
    batch = _synthetic()
    np.testing.assert_allclose(ours(y=batch, sr=SR), theirs(y=batch, sr=SR), rtol=1e-4, atol=1e-5)
