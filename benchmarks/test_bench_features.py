"""Issue 3's features against librosa 0.11, same run: every feature alone, the comprehensive
extraction of a 60 s clip against librosa computing the same features one call each, and catalog
throughput (files per second) against librosa with joblib on every core.

Run: python -m pytest benchmarks/test_bench_features.py --benchmark-enable -q
     MLU_BENCH_CATALOG_FILES=16 ... for a shorter catalog run (default 64 files)

Each pair is checked inside the benchmark (relative Frobenius error, or equal tempo and beats),
so a fast wrong answer fails instead of scoring.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import librosa
import numpy as np
import pytest

from ml_utilities import audio
from ml_utilities.compat import librosa as mlu
from ml_utilities.features import FeatureExtractor
from ml_utilities.features.catalog import extract_catalog

SR = 22050
ROOT = Path(__file__).resolve().parents[1]
AUDIO_DIR = ROOT.parent / "shared" / "audio"
CLIP60 = AUDIO_DIR / "Kevin_MacLeod_-_Vibe_Ace.ogg"
_PAIRS: dict = {}


def rel(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


@pytest.fixture(scope="module")
def clip60() -> np.ndarray:
    """60 s of real music at 22,050 Hz (a synthetic mix of tones and clicks where it is absent)."""
    if CLIP60.is_file():
        y, _ = audio.load(CLIP60, sr=SR)
        if y.size >= 60 * SR:
            return np.ascontiguousarray(y[: 60 * SR])
    t = np.arange(60 * SR) / SR
    rng = np.random.default_rng(0)
    y = 0.3 * np.sin(2 * np.pi * 220 * t) + 0.05 * rng.standard_normal(t.size)
    y[:: SR // 2] += 0.8  # clicks at 120 BPM
    return y.astype(np.float32)


# -- every feature alone ---------------------------------------------------------------------
def _flux(lib, y):
    if lib is mlu:
        return audio.spectral_flux(y=y)
    S = np.abs(librosa.stft(y))
    d = np.maximum(np.diff(S, axis=-1), 0.0)
    return np.concatenate([[0.0], np.sqrt(np.sum(d.astype(np.float64) ** 2, axis=-2))])[None]


def _energy(lib, y):
    if lib is mlu:
        return audio.frame_energy(y)
    frames = librosa.util.frame(np.pad(y, 1024), frame_length=2048, hop_length=512)
    return np.sum(frames.astype(np.float64) ** 2, axis=-2, keepdims=True)  # (1, t) as rms


def _beats(lib, y):
    tempo, beats = lib.beat.beat_track(y=y, sr=SR)
    return np.concatenate([np.atleast_1d(tempo), np.asarray(beats, np.float64)])


def _hpss(lib, y):
    H, P = lib.decompose.hpss(np.abs(lib.stft(y)) ** 2)
    return np.stack([H, P])


# name -> (function of (lib, y), tolerance)
FEATURES = {
    "zero_crossing_rate": (lambda lib, y: lib.feature.zero_crossing_rate(y), 1e-6),
    "rms": (lambda lib, y: lib.feature.rms(y=y), 1e-5),
    "frame_energy": (_energy, 1e-5),
    "spectral_centroid": (lambda lib, y: lib.feature.spectral_centroid(y=y, sr=SR), 1e-4),
    "spectral_bandwidth": (lambda lib, y: lib.feature.spectral_bandwidth(y=y, sr=SR), 1e-4),
    "spectral_rolloff": (lambda lib, y: lib.feature.spectral_rolloff(y=y, sr=SR), 1e-4),
    "spectral_contrast": (lambda lib, y: lib.feature.spectral_contrast(y=y, sr=SR), 1e-4),
    "spectral_flatness": (lambda lib, y: lib.feature.spectral_flatness(y=y), 1e-4),
    "spectral_flux": (_flux, 1e-4),
    "estimate_tuning": (lambda lib, y: np.atleast_1d(lib.estimate_tuning(y=y, sr=SR)), 1e-6),
    "chroma_stft": (lambda lib, y: lib.feature.chroma_stft(y=y, sr=SR), 1e-3),
    "cqt": (lambda lib, y: np.abs(lib.cqt(y, sr=SR)), 1e-3),
    "chroma_cqt": (lambda lib, y: lib.feature.chroma_cqt(y=y, sr=SR), 1e-3),
    "tonnetz": (lambda lib, y: lib.feature.tonnetz(y=y, sr=SR), 1e-3),
    "hpss": (_hpss, 1e-4),
    "onset_strength": (lambda lib, y: lib.onset.onset_strength(y=y, sr=SR), 1e-4),
    "onset_detect": (lambda lib, y: lib.onset.onset_detect(y=y, sr=SR).astype(np.float64), 0),
    "tempo": (lambda lib, y: lib.feature.tempo(y=y, sr=SR), 1e-6),
    "beat_track": (_beats, 0),
    "melspectrogram": (lambda lib, y: lib.feature.melspectrogram(y=y, sr=SR), 1e-4),
    "mfcc": (lambda lib, y: lib.feature.mfcc(y=y, sr=SR), 1e-4),
}


def _check_pair(key, side, result, tol):
    other = _PAIRS.pop(key, None)
    if other is None:
        _PAIRS[key] = (side, result)
        return
    mine, theirs = (result, other[1]) if side == "ours" else (other[1], result)
    assert np.shape(mine) == np.shape(theirs), key
    if tol == 0:
        np.testing.assert_array_equal(mine, theirs)
    else:
        assert rel(mine, theirs) <= tol, key


@pytest.mark.parametrize("name", list(FEATURES))
@pytest.mark.parametrize("side", ["peer", "ours"])
def test_feature_alone(benchmark, clip60, name, side):
    fn, tol = FEATURES[name]
    lib = mlu if side == "ours" else librosa
    benchmark.group = f"feature/{name}/60s"
    benchmark.name = side
    rounds = 1 if name == "hpss" and side == "peer" else 3
    result = benchmark.pedantic(
        fn, args=(lib, clip60), rounds=rounds, iterations=1, warmup_rounds=1
    )
    _check_pair(("alone", name), side, np.asarray(result), tol)


# -- the comprehensive extraction --------------------------------------------------------------
def librosa_comprehensive(y: np.ndarray, sr: float = SR) -> dict[str, dict]:
    """The FeatureExtractor's default feature set, computed by librosa one call each (every call
    computes its own STFT, as a user of librosa writes it)."""
    S = np.abs(librosa.stft(y))
    H, P = librosa.decompose.hpss(S**2)
    total = float(H.sum(dtype=np.float64) + P.sum(dtype=np.float64))
    mfcc = librosa.feature.mfcc(y=y, sr=sr, n_mfcc=13)  # the extractor's default
    tempo, beats = librosa.beat.beat_track(y=y, sr=sr)
    d = np.maximum(np.diff(S, axis=-1), 0.0)
    return {
        "temporal": {
            "zcr": librosa.feature.zero_crossing_rate(y),
            "rms": librosa.feature.rms(y=y),
            "energy": _energy(librosa, y),
        },
        "spectral": {
            "centroid": librosa.feature.spectral_centroid(y=y, sr=sr),
            "bandwidth": librosa.feature.spectral_bandwidth(y=y, sr=sr),
            "rolloff": librosa.feature.spectral_rolloff(y=y, sr=sr),
            "flux": np.concatenate([[0.0], np.sqrt(np.sum(d.astype(np.float64) ** 2, axis=-2))])[
                None
            ],
        },
        "harmonic": {
            "chroma": librosa.feature.chroma_stft(y=y, sr=sr),
            "tonnetz": librosa.feature.tonnetz(y=y, sr=sr),
            "harmonicity": float(H.sum(dtype=np.float64) / total) if total > 0 else 0.0,
        },
        "rhythm": {
            "tempo": float(np.atleast_1d(tempo)[0]),
            "beats": beats,
            "onsets": librosa.onset.onset_detect(y=y, sr=sr),
        },
        "timbre": {
            "mfcc": mfcc,
            "mfcc_delta": librosa.feature.delta(mfcc),
            "mfcc_delta2": librosa.feature.delta(mfcc, order=2),
            "mel_spectrogram": librosa.feature.melspectrogram(y=y, sr=sr),
        },
    }


def _check_comprehensive(ours: dict, peer: dict) -> None:
    for group, name, tol in [
        ("temporal", "zcr", 1e-6),
        ("temporal", "rms", 1e-5),
        ("spectral", "centroid", 1e-4),
        ("spectral", "rolloff", 1e-4),
        ("spectral", "flux", 1e-4),
        ("harmonic", "chroma", 1e-3),
        ("harmonic", "tonnetz", 1e-3),
        ("timbre", "mfcc", 1e-4),
        ("timbre", "mfcc_delta2", 1e-4),
        ("timbre", "mel_spectrogram", 1e-4),
    ]:
        assert rel(np.ravel(ours[group][name]), np.ravel(peer[group][name])) <= tol, name
    assert ours["rhythm"]["tempo"] == pytest.approx(peer["rhythm"]["tempo"])
    assert abs(ours["harmonic"]["harmonicity"] - peer["harmonic"]["harmonicity"]) < 1e-4
    np.testing.assert_array_equal(ours["rhythm"]["beats"], peer["rhythm"]["beats"])


@pytest.mark.parametrize("side", ["peer", "ours"])
def test_comprehensive_60s(benchmark, clip60, side):
    extractor = FeatureExtractor()
    fn = extractor.extract_comprehensive_features_sync if side == "ours" else librosa_comprehensive
    benchmark.group = "comprehensive/60s"
    benchmark.name = side
    result = benchmark.pedantic(fn, args=(clip60, SR), rounds=3, iterations=1, warmup_rounds=1)
    other = _PAIRS.pop("comprehensive", None)
    if other is None:
        _PAIRS["comprehensive"] = result
    else:
        ours, peer = (result, other) if side == "ours" else (other, result)
        _check_comprehensive(ours, peer)


# -- catalog throughput ------------------------------------------------------------------------
def _summary(features: dict) -> np.ndarray:
    """Mean, std and 10/50/90th percentiles of every frame-level row, as the catalog stores."""
    parts = []
    for group in sorted(features):
        for name in sorted(features[group]):
            value = np.asarray(features[group][name], dtype=np.float64)
            if name in ("beats", "onsets"):
                parts.append([value.size])
            elif value.ndim == 0:
                parts.append([float(value)])
            else:
                m = value.reshape(-1, value.shape[-1])
                p10, p50, p90 = np.percentile(m, [10, 50, 90], axis=-1)
                parts.append(np.stack([m.mean(-1), m.std(-1), p10, p50, p90], -1).ravel())
    return np.concatenate([np.ravel(p) for p in parts])


def librosa_track(path: str) -> np.ndarray:
    y, sr = librosa.load(path, sr=SR)
    return _summary(librosa_comprehensive(y, sr))


@pytest.fixture(scope="module")
def catalog_dir(tmp_path_factory) -> Path:
    """MLU_BENCH_CATALOG_FILES (64) files: the shared clips in turn, as they are on disk."""
    clips = sorted(p for p in AUDIO_DIR.glob("*") if p.suffix.lower() in (".ogg", ".wav", ".flac"))
    if not clips:
        pytest.skip(f"the catalog benchmark needs the shared clips in {AUDIO_DIR}")
    count = int(os.environ.get("MLU_BENCH_CATALOG_FILES", "64"))
    folder = tmp_path_factory.mktemp("catalog")
    for i in range(count):
        src = clips[i % len(clips)]
        shutil.copy(src, folder / f"{i:03d}_{src.name}")
    return folder


@pytest.mark.parametrize("side", ["peer", "ours"])
def test_catalog_throughput(benchmark, catalog_dir, tmp_path, side):
    files = sorted(str(p) for p in catalog_dir.iterdir())
    cores = os.cpu_count() or 1
    benchmark.group = f"catalog/{len(files)} files"
    benchmark.name = side
    if side == "peer":
        from joblib import Parallel, delayed

        def run():
            return Parallel(n_jobs=cores)(delayed(librosa_track)(f) for f in files)
    else:

        def run():
            return extract_catalog(files, sample_rate=SR, progress=False)

    result = benchmark.pedantic(run, rounds=1, iterations=1)
    seconds = benchmark.stats.stats.median
    print(f"\n{side}: {len(files) / seconds:.2f} files/s over {len(files)} files ({cores} cores)")
    if side == "ours":
        assert not result.errors and len(result.ids) == len(files)
        assert result.values.shape[0] == len(files) and np.isfinite(result.values).all()
    else:
        assert len(result) == len(files)
