"""The ml-utilities command, in-process (main([...])) and as a subprocess."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ml_utilities import bench
from ml_utilities.bench import relative_error
from ml_utilities.cli import extract_features, main


def run_cli(*args: str, env: dict[str, str] | None = None, code: str | None = None):
    """Run `python -m ml_utilities.cli ARGS` (or `python -c CODE`) and return the process."""
    command = [sys.executable, "-c", code] if code else [sys.executable, "-m", "ml_utilities.cli"]
    return subprocess.run(
        [*command, *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=300,
    )


@pytest.fixture(scope="module")
def wav_dir(tmp_path_factory) -> Path:
    """Two short files: a stereo 44.1 kHz WAV and a mono 22.05 kHz FLAC, plus a corrupt one."""
    folder = tmp_path_factory.mktemp("cli_audio")
    sf.write(folder / "tone.wav", np.stack([bench.synthetic_clip(2.0, 44100)] * 2, axis=1), 44100)
    sf.write(folder / "melody.flac", bench.synthetic_clip(3.0, 22050, seed=1), 22050)
    (folder / "corrupt.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunk" * 8)
    return folder


# -- info ------------------------------------------------------------------------------------


def test_info_table(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    for word in ("ml_utilities", "numpy", "python", "librosa", "simd", "threads", "max_workers"):
        assert word in out


def test_info_json(capsys):
    assert main(["info", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["versions"]["numpy"] == np.__version__
    assert data["versions"]["ml_utilities"]
    assert "simd" in data["build_info"] and "threads" in data["build_info"]
    assert data["settings"]["batch_size"] >= 1


# -- features --------------------------------------------------------------------------------


def test_features_default_runs_on_synthetic_clip(capsys):
    assert main(["features"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1
    assert "synthetic" in lines[0] and "30.00 s" in lines[0] and "1292 frames" in lines[0]
    # the clip is generated, not loaded: its timing says so
    assert "generated in" in lines[0] and "load" not in lines[0]


def test_synthetic_clip_is_deterministic():
    a, b = bench.synthetic_clip(5.0), bench.synthetic_clip(5.0)
    np.testing.assert_array_equal(a, b)
    assert a.dtype == np.float32 and a.shape == (5 * 22050,)
    assert 0.89 < np.max(np.abs(a)) <= 0.9
    assert not np.array_equal(a, bench.synthetic_clip(5.0, seed=1))


def test_features_files_out_and_plot(wav_dir, tmp_path, capsys):
    files = [str(wav_dir / "tone.wav"), str(wav_dir / "melody.flac")]
    out, png = tmp_path / "features.npz", tmp_path / "features.png"
    assert main(["features", *files, "--out", str(out), "--plot", str(png)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith(files[0]) and "2.00 s" in lines[0]
    assert lines[1].startswith(files[1]) and "3.00 s" in lines[1]

    with np.load(out) as data:
        assert set(data.files) == {
            f"{stem}/{key}"
            for stem in ("tone", "melody")
            for key in ("mel", "mfcc", "mfcc_delta", "mfcc_delta2", "sr")
        }
        frames = 1 + 2 * 22050 // 512
        assert data["tone/mel"].shape == (128, frames)
        assert data["tone/mfcc"].shape == (13, frames)
        assert data["tone/mfcc_delta2"].shape == (13, frames)
        assert float(data["melody/sr"]) == 22050.0
        assert data["melody/mfcc"].dtype == np.float32

    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = pytest.importorskip("matplotlib.image").imread(png)
    assert image.shape[0] > 400 and image.shape[1] > 800  # two rows, two panels
    assert not list(tmp_path.glob(".*.tmp"))  # no temporary file left behind


def test_features_match_librosa(wav_dir, tmp_path):
    librosa = pytest.importorskip("librosa")
    path = wav_dir / "tone.wav"
    out = tmp_path / "one.npz"
    assert main(["features", str(path), "--out", str(out), "--n-mfcc", "20", "--n-mels", "64"]) == 0
    y, sr = librosa.load(path, sr=22050)
    mel = librosa.feature.melspectrogram(y=y, sr=sr, n_mels=64)
    mfcc = librosa.feature.mfcc(y=y, sr=sr, n_mfcc=20, n_mels=64)
    with np.load(out) as data:
        assert data["tone/mel"].shape == mel.shape
        assert relative_error(data["tone/mel"], mel) <= 1e-4
        assert relative_error(data["tone/mfcc"], mfcc) <= 1e-4
        assert relative_error(data["tone/mfcc_delta"], librosa.feature.delta(mfcc)) <= 1e-4
        expected = librosa.feature.delta(mfcc, order=2)
        assert relative_error(data["tone/mfcc_delta2"], expected) <= 1e-4


def test_features_other_sr(wav_dir, capsys):
    assert main(["features", str(wav_dir / "tone.wav"), "--sr", "16000"]) == 0
    assert "at 16000 Hz" in capsys.readouterr().out


@pytest.mark.filterwarnings("ignore:n_fft=2048 is too large")  # librosa warns the same
def test_extract_features_short_signal():
    features = extract_features(np.zeros(2048, dtype=np.float32), 22050)  # 5 frames
    assert features["mfcc"].shape == (13, 5) and features["mfcc_delta"].shape == (13, 5)
    features = extract_features(np.zeros(100, dtype=np.float32), 22050)  # 1 frame: no delta
    assert features["mfcc_delta2"].shape == (13, 1) and not features["mfcc_delta2"].any()


def test_same_stems_are_kept_apart(wav_dir, tmp_path):
    other = tmp_path / "sub"
    other.mkdir()
    sf.write(other / "tone.wav", bench.synthetic_clip(1.0), 22050)
    out = tmp_path / "both.npz"
    assert (
        main(["features", str(wav_dir / "tone.wav"), str(other / "tone.wav"), "--out", str(out)])
        == 0
    )
    with np.load(out) as data:
        assert data["tone/mfcc"].shape[-1] != data["tone-2/mfcc"].shape[-1]


def test_features_catalog_to_parquet_resumes_and_reports_failures(wav_dir, tmp_path, capsys):
    pytest.importorskip("pyarrow")
    from ml_utilities.audio import load
    from ml_utilities.features import FeatureExtractor
    from ml_utilities.features.summary import TrackFeatures, summarize

    folder = tmp_path / "catalog"
    folder.mkdir()
    for name in ("tone.wav", "melody.flac", "corrupt.wav"):
        (folder / name).write_bytes((wav_dir / name).read_bytes())
    (folder / "empty.flac").write_bytes(b"")
    out = tmp_path / "features.parquet"
    args = ["features", str(folder), "--out", str(out), "--n-mfcc", "20", "--no-progress"]
    assert main(args) == 1  # two files failed; the others are written
    captured = capsys.readouterr()
    assert "2 tracks" in captured.out and "2 failed" in captured.out
    failed = [line for line in captured.err.splitlines() if "failed:" in line]
    assert len(failed) == 2
    assert any("corrupt.wav" in line for line in failed)
    assert any("empty.flac" in line for line in failed)

    table = TrackFeatures.read_parquet(out)
    assert sorted(Path(t).name for t in table.ids) == ["melody.flac", "tone.wav"]
    assert "timbre.mfcc.19.mean" in table.columns and "rhythm.tempo" in table.columns
    # each row is the summary of FeatureExtractor's dictionary for that file at 22050 Hz
    tone = str(folder / "tone.wav")
    y, sr = load(tone, sr=22050, mono=True)
    feats = FeatureExtractor().extract_comprehensive_features_sync(
        y, sr, {"mfcc": {"n_mfcc": 20, "n_mels": 128}}
    )
    names, vector = summarize(feats, duration=y.size / sr)
    assert names == table.columns
    np.testing.assert_allclose(table.values[table.ids.index(tone)], vector, rtol=1e-6, atol=1e-9)

    # resumed: the two good tracks are skipped, the failures tried again
    assert main(args) == 1
    assert "0 extracted" in capsys.readouterr().out
    (folder / "corrupt.wav").unlink()
    (folder / "empty.flac").unlink()
    assert main([*args, "--no-resume"]) == 0
    assert "2 extracted" in capsys.readouterr().out
    assert not list(tmp_path.glob(".*.tmp"))


@pytest.mark.parametrize("mask", [0o022, 0o027], ids=["umask022", "umask027"])
def test_outputs_get_the_umask_default_mode(wav_dir, tmp_path, capsys, mask):
    """Outputs are written through a temporary (0600) and renamed: they must end up with the
    mode a plain open() gives (0644 under umask 022), readable by another account."""
    pytest.importorskip("pyarrow")
    previous = os.umask(mask)
    try:
        npz, parquet = tmp_path / "arrays.npz", tmp_path / "features.parquet"
        assert main(["features", str(wav_dir / "tone.wav"), "--out", str(npz)]) == 0
        args = [str(wav_dir / "tone.wav"), "--out", str(parquet), "--no-progress"]
        assert main(["features", *args]) == 0
    finally:
        os.umask(previous)
    capsys.readouterr()
    for path in (npz, parquet):
        assert path.stat().st_mode & 0o777 == 0o666 & ~mask, (path, oct(path.stat().st_mode))


def test_features_plot_draws_every_group(wav_dir, tmp_path, capsys):
    png = tmp_path / "groups.png"
    assert main(["features", str(wav_dir / "melody.flac"), "--plot", str(png)]) == 0
    assert f"wrote {png}" in capsys.readouterr().out
    image = pytest.importorskip("matplotlib.image").imread(png)
    assert image.shape[1] > 1600  # four panels: spectrogram, chromagram, MFCC, onsets + beats
    assert image.shape[0] > 250
    # not a blank canvas
    assert float(np.std(image[..., :3])) > 0.05


def test_features_plot_is_capped(wav_dir, tmp_path, capsys):
    png = tmp_path / "capped.png"
    files = [str(wav_dir / "melody.flac"), str(wav_dir / "tone.wav")]
    assert main(["features", *files, "--plot", str(png), "--plot-max", "1"]) == 0
    captured = capsys.readouterr()
    assert "the first 1 of 2 inputs" in captured.out
    # progress, one line per input drawn
    assert captured.err.splitlines() == [f"plotting 1/1: {files[0]}"]


def test_plot_titles_keep_both_ends_of_long_names():
    from ml_utilities.cli import _short

    assert _short("song.ogg") == "song.ogg"
    name = "a-very-long-folder-of-audio-" * 3 + "track-0042.ogg"
    short = _short(name)
    assert len(short) == 40 and short.endswith("track-0042.ogg") and short.startswith("a-very")
    assert "\u2026" in short


def test_bench_bad_clip_reports_only_the_error(wav_dir, capsys):
    pytest.importorskip("librosa")
    assert main(["bench", "--clip", str(wav_dir / "corrupt.wav"), "--quick"]) == 1
    err = capsys.readouterr().err
    assert "corrupt.wav" in err and "Warning" not in err and "PySoundFile" not in err


# -- errors ----------------------------------------------------------------------------------


def test_missing_file_exit_1(tmp_path, capsys):
    out = tmp_path / "never.npz"
    assert main(["features", str(tmp_path / "missing.wav"), "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "missing.wav" in err and "No such file" in err
    assert not out.exists()


def test_features_go_on_past_a_bad_file(wav_dir, tmp_path, capsys):
    # every input is tried; each failure is reported; the good ones are saved; exit status 1
    out = tmp_path / "some.npz"
    files = [str(wav_dir / "corrupt.wav"), str(wav_dir / "melody.flac"), str(tmp_path / "no.wav")]
    assert main(["features", *files, "--out", str(out)]) == 1
    captured = capsys.readouterr()
    failures = [line for line in captured.err.splitlines() if "failed:" in line]
    assert len(failures) == 2
    assert "corrupt.wav" in failures[0] and "no.wav" in failures[1]
    assert captured.err.splitlines()[-1] == "1 done, 2 failed"
    assert "melody.flac: 3.00 s" in captured.out
    with np.load(out) as data:
        assert sorted({key.split("/")[0] for key in data.files}) == ["melody"]


def test_features_every_input_failed_writes_nothing(wav_dir, tmp_path, capsys):
    out, png = tmp_path / "none.npz", tmp_path / "none.png"
    files = [str(wav_dir / "corrupt.wav"), str(tmp_path / "no.wav")]
    assert main(["features", *files, "--out", str(out)]) == 1
    assert not out.exists()
    if importlib.util.find_spec("matplotlib") is not None:
        assert main(["features", *files, "--plot", str(png)]) == 1
        assert not png.exists()
    assert len(capsys.readouterr().err.strip().splitlines()) == 2 * (1 + png.parent.exists())


def test_corrupt_file_exit_1(wav_dir, capsys):
    assert main(["features", str(wav_dir / "corrupt.wav")]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "corrupt.wav" in err and "Traceback" not in err


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["nope"],
        ["features", "--sr", "0"],
        ["features", "--sr", "abc"],
        ["features", "--n-mfcc", "-3"],
        ["features", "--n-mels", "1.5"],
        ["bench", "--repeat", "0"],
        ["info", "--bogus"],
    ],
)
def test_bad_arguments_exit_2(args, capsys):
    assert main(args) == 2
    assert "usage" in capsys.readouterr().err


def test_help_exits_0(capsys):
    assert main(["--help"]) == 0
    assert "features" in capsys.readouterr().out


def test_out_suffix_must_be_npz_or_parquet(tmp_path, capsys):
    assert main(["features", "--out", str(tmp_path / "f.csv")]) == 2
    assert ".npz or a .parquet" in capsys.readouterr().err


def test_parquet_needs_inputs(tmp_path, capsys):
    assert main(["features", "--out", str(tmp_path / "f.parquet")]) == 2
    assert "name audio files or folders" in capsys.readouterr().err


def test_empty_folder_exit_1(tmp_path, capsys):
    assert main(["features", str(tmp_path)]) == 1
    assert "no audio files" in capsys.readouterr().err


def test_output_folder_missing_exit_1(tmp_path, capsys):
    assert main(["features", "--out", str(tmp_path / "no" / "such" / "f.npz")]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_plot_without_matplotlib_exit_1(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert main(["features", "--plot", str(tmp_path / "p.png")]) == 1
    assert "matplotlib" in capsys.readouterr().err
    assert not (tmp_path / "p.png").exists()


# -- bench -----------------------------------------------------------------------------------


def test_run_bench_small_cases():
    pytest.importorskip("librosa")
    cases = [
        bench.BenchCase("1 s", bench.synthetic_clip(1.0), 22050),
        bench.BenchCase(
            "2 x 1 s", np.stack([bench.synthetic_clip(1.0, seed=s) for s in (1, 2)]), 22050
        ),
    ]
    rows = []
    results = bench.run_bench(repeat=1, cases=cases, on_result=rows.append)
    assert rows == results
    assert [(r.case, r.operation) for r in results] == [
        (c.name, op) for c in cases for op in bench.OPERATIONS
    ]
    for row in results:
        assert row.librosa_ms > 0 and row.ml_utilities_ms > 0 and row.speedup > 0
        assert row.rel_error <= 1e-4, row
    table = bench.format_table(results)
    assert "speed-up" in table and len(table.splitlines()) == 2 + len(results)
    assert json.dumps([r.as_dict() for r in results])


def test_spread_of_runs():
    assert bench.spread([1.0, 1.0, 1.0]) == 0.0
    assert bench.spread([0.9, 1.0, 1.3]) == pytest.approx(0.4)
    row = bench.BenchResult("30 s", "stft power", 20.0, 2.0, 1e-7, 0.05, 0.25)
    assert bench.format_row(row).endswith("5% / 25%")
    assert row.as_dict()["ml_utilities_spread"] == 0.25


def test_make_cases_quick():
    cases = bench.make_cases(quick=True)
    assert [c.y.shape for c in cases] == [(10 * 22050,), (60 * 22050,), (8, 10 * 22050)]
    assert all(c.y.dtype == np.float32 for c in cases)


def test_relative_error():
    a = np.ones((2, 3))
    assert bench.relative_error(a, a) == 0.0
    assert bench.relative_error(a * 1.1, a) == pytest.approx(0.1)
    assert bench.relative_error(a, np.ones((3, 2))) == float("inf")


def test_bench_without_librosa_exit_2(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "librosa", None)
    assert main(["bench", "--quick"]) == 2
    assert "librosa is not installed" in capsys.readouterr().err


@pytest.mark.slow
def test_bench_quick_cli(tmp_path, capsys):
    pytest.importorskip("librosa")
    out = tmp_path / "bench.json"
    assert main(["bench", "--quick", "--repeat", "1", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "speed-up" in text and "mfcc + deltas" in text
    assert "load average" in text and "spread (lib/ours)" in text
    data = json.loads(out.read_text())
    assert len(data["results"]) == 9
    assert data["environment"]["versions"]["librosa"]
    assert all(row["rel_error"] <= 1e-4 for row in data["results"])


# -- as a subprocess ------------------------------------------------------------------------


def test_subprocess_features_and_info():
    proc = run_cli("features")
    assert proc.returncode == 0, proc.stderr
    assert "synthetic" in proc.stdout
    proc = subprocess.run(
        [sys.executable, "-m", "ml_utilities", "info", "--json"], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert "build_info" in json.loads(proc.stdout)


def test_subprocess_bad_file_exit_1(tmp_path):
    proc = run_cli("features", str(tmp_path / "absent.ogg"))
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_subprocess_bad_args_exit_2():
    assert run_cli("features", "--sr", "zero").returncode == 2


def test_features_needs_only_base_dependencies():
    """The README's first command, with librosa, scipy and matplotlib unimportable."""
    code = (
        "import sys\n"
        "for name in ('librosa', 'scipy', 'matplotlib', 'numba'):\n"
        "    sys.modules[name] = None\n"
        "from ml_utilities.cli import main\n"
        "sys.exit(main(['features']))\n"
    )
    proc = run_cli(code=code)
    assert proc.returncode == 0, proc.stderr
    assert "synthetic" in proc.stdout


def test_bad_configuration_is_reported(tmp_path):
    proc = run_cli("info", env={"ML_UTILITIES_MAX_WORKERS": "abc"})
    assert proc.returncode != 0
    assert "ML_UTILITIES_MAX_WORKERS='abc'" in proc.stderr
