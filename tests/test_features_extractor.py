"""FeatureExtractor: the specification's example, its dictionary, parity per feature, catalogs."""

from __future__ import annotations

import asyncio
import shutil

import librosa
import numpy as np
import pytest
import soundfile as sf
from helpers import chirp, relative_error

from ml_utilities import ParameterError
from ml_utilities.features import FeatureExtractor, TrackFeatures, extract_catalog

SPEC_CONFIG = {
    "mfcc": {"n_mfcc": 13, "n_fft": 2048},
    "chroma": {"n_chroma": 12, "harmonic": True},
    "spectral": {"features": ["centroid", "bandwidth", "rolloff"]},
    "rhythm": {"tempo_estimation": True, "beat_tracking": True},
}


def click_track(sr=22050, bpm=120.0, seconds=8.0):
    y = np.zeros(int(sr * seconds), dtype=np.float32)
    click = np.sin(2 * np.pi * 1000 * np.arange(int(0.02 * sr)) / sr).astype(np.float32)
    for start in np.arange(0, seconds, 60.0 / bpm):
        i = int(start * sr)
        y[i : i + click.size] += click[: y.size - i]
    return y


def test_specification_example_runs_as_written(audio_dir):
    # The specification's call, on a real 44.1 kHz recording.
    audio_array, _ = librosa.load(audio_dir / "sorohanro_-_solo-trumpet-06.hq.ogg", sr=44100)

    async def main():
        extractor = FeatureExtractor()
        features = await extractor.extract_comprehensive_features(
            audio_data=audio_array,
            sample_rate=44100,
            feature_config={
                "mfcc": {"n_mfcc": 13, "n_fft": 2048},
                "chroma": {"n_chroma": 12, "harmonic": True},
                "spectral": {"features": ["centroid", "bandwidth", "rolloff"]},
                "rhythm": {"tempo_estimation": True, "beat_tracking": True},
            },
        )
        return features

    features = asyncio.run(main())
    assert sorted(features) == ["harmonic", "rhythm", "spectral", "temporal", "timbre"]
    n_frames = 1 + audio_array.size // 512
    assert sorted(features["temporal"]) == ["energy", "rms", "zcr"]
    assert sorted(features["spectral"]) == ["bandwidth", "centroid", "flux", "rolloff"]
    assert features["spectral"]["flux"] is None  # not asked for in this configuration
    for name in ("centroid", "bandwidth", "rolloff"):
        assert features["spectral"][name].shape == (1, n_frames)
    assert features["harmonic"]["chroma"].shape == (12, n_frames)
    assert features["harmonic"]["tonnetz"].shape == (6, n_frames)
    assert isinstance(features["harmonic"]["harmonicity"], float)
    assert 0.0 < features["harmonic"]["harmonicity"] < 1.0
    assert isinstance(features["rhythm"]["tempo"], float) and features["rhythm"]["tempo"] > 0
    assert features["rhythm"]["beats"].ndim == 1 and features["rhythm"]["onsets"].ndim == 1
    assert features["timbre"]["mfcc"].shape == (13, n_frames)
    assert features["timbre"]["mfcc_delta"].shape == (13, n_frames)
    assert features["timbre"]["mfcc_delta2"].shape == (13, n_frames)
    assert features["timbre"]["mel_spectrogram"].shape == (128, n_frames)


def test_each_feature_matches_librosa(clip_cache):
    y, sr = clip_cache["Kevin_MacLeod_-_Vibe_Ace.ogg"]
    f = FeatureExtractor().extract_comprehensive_features_sync(y, sr)
    S = np.abs(librosa.stft(y))
    checks = {
        ("temporal", "zcr"): librosa.feature.zero_crossing_rate(y),
        ("temporal", "rms"): librosa.feature.rms(y=y),
        ("spectral", "centroid"): librosa.feature.spectral_centroid(y=y, sr=sr),
        ("spectral", "bandwidth"): librosa.feature.spectral_bandwidth(y=y, sr=sr),
        ("spectral", "rolloff"): librosa.feature.spectral_rolloff(y=y, sr=sr),
        ("timbre", "mel_spectrogram"): librosa.feature.melspectrogram(y=y, sr=sr),
        ("timbre", "mfcc"): librosa.feature.mfcc(y=y, sr=sr, n_mfcc=13),
        ("harmonic", "chroma"): librosa.feature.chroma_stft(S=S**2, sr=sr),
    }
    m = checks[("timbre", "mfcc")]
    checks[("timbre", "mfcc_delta")] = librosa.feature.delta(m)
    checks[("timbre", "mfcc_delta2")] = librosa.feature.delta(m, order=2)
    for (group, name), expected in checks.items():
        actual = f[group][name]
        assert actual.shape == expected.shape, name
        tol = 1e-3 if name == "chroma" else 1e-4
        assert relative_error(actual, expected) <= tol, name
    tempo, beats = librosa.beat.beat_track(y=y, sr=sr)
    assert f["rhythm"]["tempo"] == pytest.approx(float(np.asarray(tempo).reshape(-1)[0]))
    assert len(np.intersect1d(f["rhythm"]["beats"], beats)) >= 0.95 * len(beats)
    onsets = librosa.onset.onset_detect(y=y, sr=sr)
    assert len(np.intersect1d(f["rhythm"]["onsets"], onsets)) >= 0.95 * len(onsets)
    np.testing.assert_allclose(f["temporal"]["energy"], f["temporal"]["rms"] ** 2 * 2048, rtol=1e-4)


def test_click_track_tempo_and_synthetic_input():
    y = click_track()
    f = FeatureExtractor().extract_comprehensive_features_sync(y, 22050)
    assert f["rhythm"]["tempo"] == pytest.approx(117.45, abs=0.01)
    assert f["rhythm"]["onsets"].size >= 14


def test_sync_and_async_agree_and_config_switches():
    y = chirp()
    ex = FeatureExtractor()
    a = ex.extract_comprehensive_features_sync(y, 22050, {"rhythm": {"beat_tracking": False}})
    b = asyncio.run(
        ex.extract_comprehensive_features(y, 22050, {"rhythm": {"beat_tracking": False}})
    )
    np.testing.assert_array_equal(a["timbre"]["mfcc"], b["timbre"]["mfcc"])
    assert a["rhythm"]["beats"] is None and a["rhythm"]["tempo"] is not None
    c = ex.extract_comprehensive_features_sync(
        y,
        22050,
        {"spectral": {"features": ["contrast", "flatness", "flux"]}, "mfcc": {"n_mfcc": 20}},
    )
    assert c["spectral"]["contrast"].shape[0] == 7 and c["spectral"]["centroid"] is None
    assert c["timbre"]["mfcc"].shape[0] == 20


@pytest.mark.parametrize(
    "config, match",
    [
        ({"mfccs": {}}, "unknown feature_config section 'mfccs'"),
        ({"mfcc": {"n_mfc": 13}}, "unknown key 'n_mfc'"),
        ({"mfcc": {"n_mfcc": "13"}}, "n_mfcc"),
        ({"mfcc": {"n_mfcc": 0}}, "must be positive"),
        ({"spectral": {"features": ["centroid", "brightness"]}}, "brightness"),
        ({"spectral": {"roll_percent": 1.5}}, "roll_percent"),
        ({"mfcc": {"n_fft": 2048}, "chroma": {"n_fft": 4096}}, "shares one STFT"),
        ({"rhythm": {"tempo_estimation": "yes"}}, "tempo_estimation"),
        ("mfcc", "must be a dict"),
    ],
)
def test_bad_feature_config(config, match):
    with pytest.raises(ParameterError, match=match):
        FeatureExtractor().extract_comprehensive_features_sync(chirp(seconds=1.0), 22050, config)


def test_bad_audio_and_rate():
    ex = FeatureExtractor()
    with pytest.raises(ParameterError, match="sample_rate"):
        ex.extract_comprehensive_features_sync(chirp(), 0)
    with pytest.raises(ParameterError, match="not finite"):
        ex.extract_comprehensive_features_sync(
            np.array([0.0, np.nan] * 2000, dtype=np.float32), 22050
        )


def test_summary_vector_has_stable_named_columns():
    ex = FeatureExtractor()
    names1, v1 = ex.summarize(ex.extract_comprehensive_features_sync(chirp(), 22050))
    names2, v2 = ex.summarize(ex.extract_comprehensive_features_sync(chirp(seconds=5.0), 22050))
    assert names1 == names2 and v1.shape == v2.shape == (len(names1),)
    assert "timbre.mfcc.0.mean" in names1 and "rhythm.tempo" in names1
    assert np.all(np.isfinite(v1))


def test_perceptual_features():
    ex = FeatureExtractor()
    rows = asyncio.run(
        ex.extract_perceptual_features(
            [chirp(), chirp(seconds=2.0)],
            features=["chroma_cqt", "tonnetz", "mfcc", "spectral_contrast"],
        )
    )
    assert len(rows) == 2
    assert rows[0]["chroma_cqt"].shape[0] == 12 and rows[0]["tonnetz"].shape[0] == 6
    assert rows[1]["mfcc"].shape[0] == 13 and rows[1]["spectral_contrast"].shape[0] == 7
    with pytest.raises(ParameterError, match="unknown perceptual"):
        ex.extract_perceptual_features_sync([chirp()], features=["timbre"])


@pytest.fixture
def mixed_folder(tmp_path, audio_dir):
    folder = tmp_path / "music"
    folder.mkdir()
    shutil.copy(audio_dir / "sorohanro_-_solo-trumpet-06.hq.ogg", folder / "stereo44k.ogg")
    shutil.copy(
        audio_dir / "456440__inspectorj__bird-whistling-robin-single-13.ogg", folder / "bird.ogg"
    )
    sf.write(folder / "tone.wav", chirp(seconds=2.0), 22050)
    (folder / "corrupt.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot really audio")
    sf.write(folder / "empty.flac", np.zeros(0, dtype=np.float32), 22050)
    (folder / "notes.txt").write_text("not audio")
    return folder


def test_catalog_with_bad_files_and_resume(mixed_folder, tmp_path):
    out = tmp_path / "features.parquet"
    table = extract_catalog(mixed_folder, out=out, max_workers=2, progress=False)
    ok = {p.split("/")[-1] for p in table.ids}
    assert ok == {"stereo44k.ogg", "bird.ogg", "tone.wav"}
    assert {p.split("/")[-1] for p in table.errors} == {"corrupt.wav", "empty.flac"}
    assert table.values.shape == (3, len(table.columns)) and np.all(np.isfinite(table.values))
    back = TrackFeatures.read_parquet(out)
    assert back.ids == table.ids and back.columns == table.columns
    np.testing.assert_array_equal(back.values, table.values)
    # A second run skips what is done and keeps it.
    again = extract_catalog(mixed_folder, out=out, max_workers=2, progress=False)
    assert again.ids == table.ids
    assert set(again.errors) == set(table.errors)


def test_extract_audio_features_over_arrays():
    ex = FeatureExtractor()
    table = asyncio.run(ex.extract_audio_features({"a": chirp(), "b": click_track()}))
    assert table.ids == ["a", "b"]
    frame = table.to_pandas()
    assert list(frame.index) == ["a", "b"] and frame.shape[1] == len(table.columns)


def test_extract_user_features_from_a_listening_history():
    pd = pytest.importorskip("pandas")
    pytest.importorskip("sklearn")
    history = pd.DataFrame(
        {
            "userID": [1, 1, 1, 2, 2, 3],
            "artistID": [10, 11, 12, 10, 10, 13],
            "weight": [5, 3, 2, 8, 1, 4],
        }
    )
    ex = FeatureExtractor()
    users = ex.extract_user_features_sync(history, n_components=2)
    assert list(users.index) == [1, 2, 3]
    assert users.loc[1, "n_items"] == 3 and users.loc[2, "n_items"] == 1
    assert users.loc[2, "total_weight"] == 9 and users.loc[3, "total_weight"] == 4
    assert users.loc[2, "top_item_share"] == pytest.approx(1.0)
    assert {"emb_0", "emb_1"} <= set(users.columns)
    again = asyncio.run(ex.extract_user_features(history, n_components=2))
    pd.testing.assert_frame_equal(users, again)
    with pytest.raises(ValueError):
        ex.extract_user_features_sync(history.rename(columns={"userID": "nobody"}))


@pytest.mark.parametrize("workers", ["1", "2"])
def test_side_pool_honours_max_workers(workers):
    # ML_UTILITIES_MAX_WORKERS=1: the CQT of tonnetz runs on the calling thread, no side pool;
    # more: it overlaps on the side pool. The features are the same either way.
    import threading

    from ml_utilities.config import reload_settings
    from ml_utilities.features import extractor

    y = chirp(seconds=4.0)
    reference = FeatureExtractor().extract_comprehensive_features_sync(y, 22050)
    seen: list[str] = []
    original = extractor._quiet

    def spy(fn, **kwargs):
        seen.append(threading.current_thread().name)
        return original(fn, **kwargs)

    try:
        reload_settings({"ML_UTILITIES_MAX_WORKERS": workers})
        extractor._quiet = spy
        got = FeatureExtractor().extract_comprehensive_features_sync(y, 22050)
    finally:
        extractor._quiet = original
        reload_settings()
    assert len(seen) == 1
    assert seen[0].startswith("mlu-features") == (workers != "1")
    np.testing.assert_array_equal(got["harmonic"]["tonnetz"], reference["harmonic"]["tonnetz"])
