"""load, resample, get_duration, get_samplerate: the arrays and errors librosa 0.11 gives."""

from __future__ import annotations

import gc
import io
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ml_utilities.audio import get_duration, get_samplerate, load, resample
from ml_utilities.audio.io import SOXR_TYPES
from ml_utilities.exceptions import AudioFileError, ParameterError

librosa = pytest.importorskip("librosa")

HQ = "sorohanro_-_solo-trumpet-06.hq.ogg"
MONO_CLIPS = [
    "sorohanro_-_solo-trumpet-06.ogg",
    "198-209-0000.ogg",
    "456440__inspectorj__bird-whistling-robin-single-13.ogg",
]

LOAD_CASES = [
    {},
    {"sr": None},
    {"sr": None, "mono": False},
    {"mono": False},
    {"sr": 16000},
    {"sr": 48000, "mono": False},
    {"sr": 22050.0},
    {"offset": 1.0, "duration": 2.0},
    {"offset": 0.33, "duration": 1.234, "sr": None},
    {"offset": 1.5},
    {"duration": 0.5, "mono": False, "sr": 8000},
    {"dtype": np.float64},
    {"res_type": "soxr_vhq"},
    {"res_type": "soxr_mq", "sr": 11025},
    {"res_type": "soxr_lq"},
    {"res_type": "soxr_qq", "mono": False},
]


def case_id(kwargs: dict) -> str:
    return ",".join(f"{k}={getattr(v, '__name__', v)}" for k, v in kwargs.items()) or "defaults"


def assert_same_load(actual, expected):
    y, sr = actual
    y_ref, sr_ref = expected
    assert sr == sr_ref and type(sr) is type(sr_ref)
    assert y.dtype == y_ref.dtype and y.shape == y_ref.shape
    np.testing.assert_array_equal(y, y_ref)


# -- synthetic files: the same code paths without ../shared ----------------------------------


@pytest.fixture(scope="module")
def wav_files(tmp_path_factory) -> dict[str, Path]:
    """A stereo 44.1 kHz float WAV (3 s), a mono 16-bit 16 kHz WAV (3 s), a stereo FLAC (2 s)."""
    folder = tmp_path_factory.mktemp("audio")
    rng = np.random.default_rng(7)
    t = np.arange(44100 * 3) / 44100
    stereo = np.stack([0.4 * np.sin(2 * np.pi * 440 * t), 0.3 * np.sin(2 * np.pi * 660 * t)], 1)
    stereo += 0.01 * rng.standard_normal(stereo.shape)
    files = {
        "stereo_44k.wav": (stereo.astype(np.float32), 44100, "FLOAT"),
        "mono_16k.wav": (0.5 * np.sin(2 * np.pi * 300 * t[: 16000 * 3]), 16000, "PCM_16"),
        "stereo_48k.flac": (stereo[: 48000 * 2], 48000, "PCM_24"),
    }
    paths = {}
    for name, (data, sr, subtype) in files.items():
        paths[name] = folder / name
        sf.write(paths[name], data, sr, subtype=subtype)
    return paths


@pytest.mark.parametrize("name", ["stereo_44k.wav", "mono_16k.wav", "stereo_48k.flac"])
@pytest.mark.parametrize("kwargs", LOAD_CASES, ids=case_id)
def test_load_matches_librosa_synthetic(wav_files, name, kwargs):
    path = wav_files[name]
    assert_same_load(load(path, **kwargs), librosa.load(path, **kwargs))


def test_load_path_types(wav_files):
    path = wav_files["stereo_44k.wav"]
    expected = librosa.load(path, sr=16000, mono=False)
    assert_same_load(load(str(path), sr=16000, mono=False), expected)
    assert_same_load(load(Path(path), sr=16000, mono=False), expected)
    assert_same_load(load(io.BytesIO(path.read_bytes()), sr=16000, mono=False), expected)
    with open(path, "rb") as handle:
        assert_same_load(load(handle, sr=16000, mono=False), expected)
    fd = os.open(path, os.O_RDONLY)
    try:
        assert_same_load(load(fd, sr=16000, mono=False), expected)
    finally:
        # soundfile closes a descriptor it was given only with closefd (default True).
        try:
            os.close(fd)
        except OSError:
            pass


def test_load_soundfile_object_is_used_and_closed(wav_files):
    path = wav_files["stereo_44k.wav"]
    handle = sf.SoundFile(path)
    y, sr = load(handle, sr=None, mono=False, offset=0.5, duration=1.0)
    assert handle.closed  # librosa closes it too
    assert_same_load(
        (y, sr), librosa.load(sf.SoundFile(path), sr=None, mono=False, offset=0.5, duration=1.0)
    )
    assert y.shape == (2, 44100)


def test_load_integer_dtype(wav_files):
    path = wav_files["mono_16k.wav"]
    y, sr = load(path, sr=None, mono=False, dtype=np.int16)
    assert_same_load((y, sr), librosa.load(path, sr=None, mono=False, dtype=np.int16))
    assert y.dtype == np.int16
    # librosa rejects integer audio as soon as it is mixed down or resampled
    with pytest.raises(ParameterError, match="Audio data must be floating-point"):
        load(path, dtype=np.int16)
    with pytest.raises(librosa.ParameterError, match="Audio data must be floating-point"):
        librosa.load(path, dtype=np.int16)


def test_load_non_soxr_resampler_forwards(wav_files):
    path = wav_files["stereo_44k.wav"]
    for res_type in ("polyphase", "fft"):
        kwargs = {"sr": 22050, "mono": False, "res_type": res_type}
        assert_same_load(load(path, **kwargs), librosa.load(path, **kwargs))


# -- real clips --------------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs", LOAD_CASES, ids=case_id)
def test_load_hq_clip_matches_librosa(audio_dir, kwargs):
    path = audio_dir / HQ
    assert_same_load(load(path, **kwargs), librosa.load(path, **kwargs))


def test_load_hq_clip_is_stereo_44k(audio_dir):
    y, sr = load(audio_dir / HQ, sr=None, mono=False)
    assert sr == 44100 and y.ndim == 2 and y.shape[0] == 2 and y.dtype == np.float32


@pytest.mark.parametrize("name", MONO_CLIPS)
@pytest.mark.parametrize(
    "kwargs",
    [{}, {"sr": None}, {"sr": 16000}, {"offset": 0.5, "duration": 1.5}, {"sr": 44100}],
    ids=case_id,
)
def test_load_mono_clips_match_librosa(audio_dir, name, kwargs):
    path = audio_dir / name
    assert_same_load(load(path, **kwargs), librosa.load(path, **kwargs))


def test_load_matches_clip_cache(audio_dir, clip_cache):
    name = "sorohanro_-_solo-trumpet-06.ogg"
    y, sr = load(audio_dir / name, sr=None)
    cached, cached_sr = clip_cache[name]
    assert sr == cached_sr
    np.testing.assert_array_equal(y, cached)


def test_duration_and_samplerate_of_clips(audio_dir):
    for name in [HQ, *MONO_CLIPS]:
        path = audio_dir / name
        assert get_duration(path=path) == librosa.get_duration(path=path)
        assert get_samplerate(path) == librosa.get_samplerate(path)


# -- resample ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def noise() -> np.ndarray:
    return np.random.default_rng(3).standard_normal((3, 2, 5001)).astype(np.float32)


@pytest.mark.parametrize("res_type", SOXR_TYPES)
@pytest.mark.parametrize("rates", [(22050, 16000), (44100, 22050), (8000, 44100), (22050, 22051.5)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_resample_matches_librosa(noise, res_type, rates, dtype):
    y = noise[0, 0].astype(dtype)
    kw = {"orig_sr": rates[0], "target_sr": rates[1], "res_type": res_type}
    actual, expected = resample(y, **kw), librosa.resample(y, **kw)
    assert actual.dtype == expected.dtype == dtype
    np.testing.assert_array_equal(actual, expected)


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"fix": False},
        {"scale": True},
        {"fix": False, "scale": True},
        {"mode": "edge"},
        {"res_type": "soxr_qq", "scale": True},
    ],
    ids=case_id,
)
@pytest.mark.parametrize("target_sr", [16000, 30000])
def test_resample_options_multichannel(noise, kwargs, target_sr):
    kw = {"orig_sr": 22050, "target_sr": target_sr, **kwargs}
    actual, expected = resample(noise, **kw), librosa.resample(noise, **kw)
    assert actual.shape == expected.shape and actual.dtype == expected.dtype
    np.testing.assert_array_equal(actual, expected)


@pytest.mark.parametrize("axis", [0, 1, -1, -2])
def test_resample_axis(noise, axis):
    y = np.ascontiguousarray(np.moveaxis(noise, -1, axis))
    kw = {"orig_sr": 22050, "target_sr": 16000, "axis": axis}
    actual, expected = resample(y, **kw), librosa.resample(y, **kw)
    assert actual.shape == expected.shape
    assert actual.shape[axis] == int(np.ceil(5001 * 16000 / 22050))
    np.testing.assert_array_equal(actual, expected)


def test_resample_channels_are_independent(noise):
    together = resample(noise, orig_sr=22050, target_sr=16000)
    alone = resample(noise[1, 0], orig_sr=22050, target_sr=16000)
    np.testing.assert_array_equal(together[1, 0], alone)


def test_resample_same_rate_returns_input(noise):
    assert resample(noise, orig_sr=22050, target_sr=22050) is noise
    assert resample(noise, orig_sr=22050, target_sr=22050.0) is noise


def test_resample_short_signals():
    for n in (1, 2, 7):
        y = np.ones(n, dtype=np.float32)
        kw = {"orig_sr": 22050, "target_sr": 8000}
        np.testing.assert_array_equal(resample(y, **kw), librosa.resample(y, **kw))


def test_resample_non_soxr_forwards(noise):
    kw = {"orig_sr": 22050, "target_sr": 16000, "res_type": "polyphase"}
    np.testing.assert_array_equal(resample(noise, **kw), librosa.resample(noise, **kw))


def test_resample_non_soxr_without_librosa(noise, monkeypatch):
    monkeypatch.setitem(sys.modules, "librosa", None)
    with pytest.raises(ParameterError, match="'kaiser_best'.*librosa"):
        resample(noise, orig_sr=22050, target_sr=16000, res_type="kaiser_best")
    # the soxr types never need librosa
    assert resample(noise, orig_sr=22050, target_sr=16000).shape[-1] == 3629


@pytest.mark.parametrize(
    ("y", "message"),
    [
        (np.arange(10), "Audio data must be floating-point"),
        (np.ones((), dtype=np.float32), "at least one-dimensional"),
        (np.array([0.0, np.nan]), "not finite everywhere"),
        (np.array([0.0, np.inf], dtype=np.float32), "not finite everywhere"),
        ([0.0, 1.0], "must be of type numpy.ndarray"),
    ],
)
def test_resample_rejects_bad_audio_like_librosa(y, message):
    with pytest.raises(ParameterError, match=message):
        resample(y, orig_sr=22050, target_sr=16000)
    with pytest.raises(librosa.ParameterError, match=message):
        librosa.resample(y, orig_sr=22050, target_sr=16000)


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf"), "fast"])
def test_resample_rejects_bad_rates(noise, bad):
    with pytest.raises(ParameterError, match="target_sr"):
        resample(noise, orig_sr=22050, target_sr=bad)
    with pytest.raises(ParameterError, match="orig_sr"):
        resample(noise, orig_sr=bad, target_sr=22050)


# -- errors of load ----------------------------------------------------------------------------


def test_missing_file_raises_like_librosa(tmp_path):
    missing = tmp_path / "missing.wav"
    with pytest.raises(FileNotFoundError) as ours:
        load(missing)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # librosa warns before trying audioread
        with pytest.raises(FileNotFoundError) as theirs:
            librosa.load(missing)
    assert str(ours.value) == str(theirs.value)
    with pytest.raises(FileNotFoundError):
        get_duration(path=missing)
    with pytest.raises(FileNotFoundError):
        get_samplerate(str(missing))


@pytest.mark.parametrize("bad", [0, -22050, float("nan"), "22050"])
def test_load_rejects_bad_sr(wav_files, bad):
    with pytest.raises(ParameterError, match="sr="):
        load(wav_files["mono_16k.wav"], sr=bad)


@pytest.fixture
def corrupt_file(tmp_path) -> Path:
    path = tmp_path / "corrupt.wav"
    path.write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunk" * 8)
    return path


def test_corrupt_file_without_librosa(corrupt_file, monkeypatch):
    monkeypatch.setitem(sys.modules, "librosa", None)
    with pytest.raises(AudioFileError, match="corrupt.wav") as info:
        load(corrupt_file)
    assert isinstance(info.value, OSError)
    assert isinstance(info.value.__cause__, sf.LibsndfileError)
    with pytest.raises(AudioFileError, match="corrupt.wav"):
        get_duration(path=corrupt_file)
    with pytest.raises(AudioFileError, match="corrupt.wav"):
        get_samplerate(corrupt_file)


def test_corrupt_file_with_librosa_raises_audio_file_error(corrupt_file):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # librosa's audioread fallback warns
        with pytest.raises(Exception) as theirs:
            librosa.load(corrupt_file)
        with pytest.raises(AudioFileError) as ours:
            load(corrupt_file)
        gc.collect()  # audioread leaves the file open on failure: let it warn in here
    # librosa's last decoder's error (often with an empty message) is chained; ours names the
    # file and both decoders' reasons.
    assert type(ours.value.__cause__) is type(theirs.value)
    assert str(corrupt_file) in str(ours.value) and "audioread" in str(ours.value)


def test_offset_past_the_end_fails_like_librosa(wav_files):
    path = wav_files["stereo_48k.flac"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(Exception) as theirs:
            librosa.load(path, offset=10.0)
        with pytest.raises(AudioFileError) as ours:
            load(path, offset=10.0)
        gc.collect()
    assert type(ours.value.__cause__) is type(theirs.value)


def test_corrupt_file_like_raises_audio_file_error():
    with pytest.raises(AudioFileError, match="BytesIO") as info:
        load(io.BytesIO(b"not audio at all" * 10))
    assert isinstance(info.value.__cause__, sf.LibsndfileError)


# -- get_duration, get_samplerate ------------------------------------------------------------


def test_get_duration_of_signal_and_spectrogram():
    y = np.zeros((2, 44101), dtype=np.float32)
    for sr in (22050, 16000.0):
        assert get_duration(y=y, sr=sr) == librosa.get_duration(y=y, sr=sr)
    for center in (True, False):
        for n_frames in (1, 44, 100):
            S = np.zeros((3, 1025, n_frames))
            kw = {"S": S, "sr": 22050, "n_fft": 2048, "hop_length": 256, "center": center}
            assert get_duration(**kw) == librosa.get_duration(**kw)
    assert isinstance(get_duration(y=y), float)


def test_get_duration_precedence(wav_files):
    path = wav_files["mono_16k.wav"]
    y = np.zeros(10, dtype=np.float32)
    S = np.zeros((1025, 3))
    assert get_duration(y=y, S=S, path=path) == 3.0
    assert get_duration(y=y, S=S) == librosa.get_duration(y=y, S=S)


def test_get_duration_errors():
    with pytest.raises(ParameterError, match="At least one of"):
        get_duration()
    with pytest.raises(ParameterError, match="sr="):
        get_duration(y=np.zeros(10, dtype=np.float32), sr=0)
    with pytest.raises(TypeError):
        get_duration(np.zeros(10))  # type: ignore[misc]


def test_get_duration_filename_is_deprecated(wav_files):
    path = wav_files["mono_16k.wav"]
    with pytest.warns(FutureWarning, match="renamed to 'path'"):
        assert get_duration(filename=path) == 3.0


def test_file_info_matches_librosa(wav_files):
    for path in wav_files.values():
        assert get_duration(path=path) == librosa.get_duration(path=path)
        assert get_samplerate(path) == librosa.get_samplerate(path)
        assert get_samplerate(io.BytesIO(path.read_bytes())) == librosa.get_samplerate(path)
        with sf.SoundFile(path) as handle:
            assert get_samplerate(handle) == handle.samplerate
    assert get_samplerate(wav_files["mono_16k.wav"]) == 16000


def test_io_imports_lazily():
    code = (
        "import sys, ml_utilities.audio.io as m; "
        "bad = [n for n in ('soundfile', 'soxr', 'librosa', 'scipy') if n in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
