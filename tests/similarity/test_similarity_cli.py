"""``ml-utilities similar index|query``, in-process (main([...])), on synthetic melodies.

One catalogue is indexed once per module (a few training steps: the aligner, not the encoder,
decides the scores the tests check); the tests that change an index work on a copy of it.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ml_utilities.cli import main

pytest.importorskip("torch")
pytest.importorskip("safetensors")

SR = 22050
#: training steps: enough to exercise training, few enough to keep the module fast
STEPS = "12"


def melody(notes: list[int], seconds: float) -> np.ndarray:
    """Decaying harmonic tones (MIDI ``notes``), one after another over ``seconds``."""
    n = int(seconds * SR / len(notes))
    t = np.arange(n) / SR
    envelope = np.minimum(1.0, t / 0.02) * np.exp(-2.0 * t)
    tones = []
    for note in notes:
        f = 440.0 * 2 ** ((note - 69) / 12)
        tones.append(sum(np.sin(2 * np.pi * f * h * t) / h for h in (1, 2, 3, 4)) * envelope)
    y = np.concatenate(tones)
    return (0.3 * y / np.abs(y).max()).astype(np.float32)


def clips() -> dict[str, np.ndarray]:
    """Six distinct melodies of 8 to 12 s (the last one is kept out of the first index)."""
    rng = np.random.default_rng(2024)
    names = ["a.wav", "sub/b.wav", "c.flac", "sub/deeper/d.wav", "e.wav", "later.wav"]
    return {
        name: melody(rng.integers(55, 80, size=16).tolist(), 8.0 + 0.8 * i)
        for i, name in enumerate(names)
    }


def run(*argv: str) -> tuple[int, str, str]:
    """``main(argv)`` with its stdout and stderr (for module-scoped fixtures, where capsys is
    not available)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory):
    """Five clips indexed (a model trained on them and saved), the sixth left for later."""
    root = tmp_path_factory.mktemp("similar_cli")
    audio = root / "audio"
    waves = clips()
    for name, y in waves.items():
        path = (root / "spare" if name == "later.wav" else audio) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, y, SR)
    index, model = root / "index", root / "model"
    code, out, err = run(
        "similar", "index", str(audio), "--out", str(index), "--model", str(model),
        "--steps", STEPS, "--augment", "1",
    )  # fmt: skip
    assert code == 0, err
    return {
        "root": root,
        "audio": audio,
        "index": index,
        "model": model,
        "waves": waves,
        "summary": json.loads(out),
        "stderr": err,
    }


def excerpt_file(catalogue, name: str, start: float, end: float, semitones: float) -> Path:
    """``start..end`` s of clip ``name`` played ``semitones`` higher (and faster)."""
    from ml_utilities.similarity.augment import varispeed

    y = catalogue["waves"][name][int(start * SR) : int(end * SR)]
    path = catalogue["root"] / f"query-{Path(name).stem}-{start:g}-{end:g}-{semitones:+g}.wav"
    sf.write(path, varispeed(y, SR, semitones), SR)
    return path


# -- index -----------------------------------------------------------------------------------


def test_index_trains_saves_and_summarises(catalogue):
    summary, index, model = catalogue["summary"], catalogue["index"], catalogue["model"]
    assert summary["added"] == summary["total"] == 5
    assert summary["already_indexed"] == 0 and summary["failed"] == {}
    assert summary["version"] == 1 and summary["trained"] is True
    assert summary["training"]["steps"] == int(STEPS)
    assert summary["training"]["n_augmented_views"] == 5  # --augment 1, one per clip
    assert 0 < summary["threshold"] < 1 and summary["target_fpr"] == 0.01
    assert summary["seconds"] > 0 and summary["index"] == str(index)
    manifest = json.loads((index / "index.json").read_text())
    assert manifest["version"] == 1 and manifest["n_tracks"] == 5
    assert (index / "v000001" / "ids.json").is_file()
    # ids are the paths relative to DIR (recursively found, sorted)
    ids = json.loads((index / "v000001" / "ids.json").read_text())
    assert ids == ["a.wav", "c.flac", "e.wav", "sub/b.wav", "sub/deeper/d.wav"]
    # the trained model is saved where --model said, and the index holds its own copy
    assert (model / "similarity.json").is_file() and (index / "model" / "similarity.json").is_file()
    assert json.loads((model / "similarity.json").read_text())["threshold"] == summary["threshold"]


def test_index_progress_is_line_based_on_a_non_terminal(catalogue):
    err = catalogue["stderr"]
    assert "\r" not in err
    for phase in ("analysing: 5/5 files", f"training: {STEPS}/{STEPS} steps", "indexing: 5/5"):
        assert phase in err
    # a line per tenth of the way at most, not per step
    assert sum("training:" in line for line in err.splitlines()) <= 11


def test_index_adds_only_new_files(catalogue, tmp_path, capsys):
    audio, index = tmp_path / "audio", tmp_path / "index"
    shutil.copytree(catalogue["audio"], audio)
    shutil.copytree(catalogue["index"], index)
    shutil.copy(catalogue["root"] / "spare" / "later.wav", audio / "sub" / "later.wav")

    assert main(["similar", "index", str(audio), "--out", str(index), "--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""  # --quiet
    summary = json.loads(captured.out)
    assert summary["added"] == 1 and summary["already_indexed"] == 5
    assert summary["total"] == 6 and summary["version"] == 2
    assert summary["trained"] is False and summary["training"] is None
    assert summary["threshold"] == catalogue["summary"]["threshold"]  # the index's own model
    ids = json.loads((index / "v000002" / "ids.json").read_text())
    assert ids[-1] == "sub/later.wav" and len(ids) == 6
    assert (index / "v000001").is_dir()  # the previous version is kept

    # nothing new: nothing written, the version stays
    assert main(["similar", "index", str(audio), "--out", str(index), "-q"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["added"] == 0 and summary["total"] == 6 and summary["version"] == 2


def test_index_with_a_saved_model_does_not_train(catalogue, tmp_path, capsys):
    index = tmp_path / "index"
    code = main(
        ["similar", "index", str(catalogue["audio"]), "--out", str(index),
         "--model", str(catalogue["model"])]
    )  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    summary = json.loads(captured.out)
    assert summary["trained"] is False and summary["added"] == 5
    assert summary["threshold"] == catalogue["summary"]["threshold"]
    assert "training:" not in captured.err and "indexing: 5/5" in captured.err


def test_index_reports_an_unreadable_file_and_indexes_the_rest(catalogue, tmp_path, capsys):
    audio, index = tmp_path / "audio", tmp_path / "index"
    shutil.copytree(catalogue["audio"], audio)
    shutil.copytree(catalogue["index"], index)
    (audio / "broken.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunk" * 8)
    shutil.copy(catalogue["root"] / "spare" / "later.wav", audio / "later.wav")

    assert main(["similar", "index", str(audio), "--out", str(index), "-q"]) == 1
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert summary["added"] == 1 and summary["total"] == 6
    assert list(summary["failed"]) == ["broken.wav"]
    assert "broken.wav" in captured.err and "Traceback" not in captured.err


def test_index_of_a_folder_without_audio(tmp_path, capsys):
    empty = tmp_path / "empty"
    (empty / "notes").mkdir(parents=True)
    (empty / "notes" / "readme.txt").write_text("no audio here")
    assert main(["similar", "index", str(empty), "--out", str(tmp_path / "index")]) == 1
    captured = capsys.readouterr()
    assert str(empty) in captured.err and "no audio files" in captured.err
    assert "Traceback" not in captured.err and captured.out == ""
    assert not (tmp_path / "index").exists()

    missing = tmp_path / "missing"
    assert main(["similar", "index", str(missing), "--out", str(tmp_path / "index")]) == 1
    assert str(missing) in capsys.readouterr().err


def test_index_refuses_a_foreign_out_folder(catalogue, tmp_path, capsys):
    out = tmp_path / "occupied"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert main(["similar", "index", str(catalogue["audio"]), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert str(out) in err and "index.json" in err
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]


def test_index_needs_two_files_to_train(catalogue, tmp_path, capsys):
    audio = tmp_path / "one"
    audio.mkdir()
    shutil.copy(catalogue["audio"] / "a.wav", audio / "a.wav")
    assert main(["similar", "index", str(audio), "--out", str(tmp_path / "i"), "-q"]) == 1
    err = capsys.readouterr().err
    assert "at least two" in err and str(audio) in err


@pytest.mark.parametrize(
    "extra",
    [["--target-fpr", "1.5"], ["--steps", "0"], ["--augment", "-1"], ["--extensions", ","]],
)
def test_index_bad_arguments(catalogue, tmp_path, capsys, extra):
    argv = ["similar", "index", str(catalogue["audio"]), "--out", str(tmp_path / "i"), *extra]
    assert main(argv) == 2
    assert "usage:" in capsys.readouterr().err


# -- query -----------------------------------------------------------------------------------


def test_query_finds_a_transposed_excerpt(catalogue, capsys):
    name, duration = "sub/b.wav", len(catalogue["waves"]["sub/b.wav"]) / SR
    query = excerpt_file(catalogue, name, 1.0, 8.0, 2.0)
    code = main(["similar", "query", str(query), "--index", str(catalogue["index"]), "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    results = json.loads(captured.out)
    assert len(results) == 5
    assert [r["score"] for r in results] == sorted((r["score"] for r in results), reverse=True)
    best = results[0]
    assert best["track_id"] == name and best["match"] is True
    assert best["score"] >= catalogue["summary"]["threshold"]
    # (the others may pass a threshold calibrated on 20 pairs: random melodies share notes)
    assert best["score"] > results[1]["score"] + 0.2
    passage = best["passages"][0]
    assert passage["transposition"] == 2
    assert passage["tempo_ratio"] == pytest.approx(2 ** (2 / 12), rel=0.05)
    # the matched range lies inside the clip, where the excerpt was taken
    assert 0 <= passage["reference_start"] < passage["reference_end"] <= duration + 0.2
    assert passage["reference_start"] == pytest.approx(1.0, abs=0.6)
    assert passage["reference_end"] == pytest.approx(8.0, abs=0.6)
    assert passage["query_start"] == pytest.approx(0.0, abs=0.3)


def test_query_text_and_plot(catalogue, tmp_path, capsys):
    query = excerpt_file(catalogue, "e.wav", 2.0, 9.0, -1.0)
    plot = tmp_path / "best.png"
    code = main(
        ["similar", "query", str(query), "--index", str(catalogue["index"]), "-k", "2",
         "--plot", str(plot)]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    lines = out.splitlines()
    assert re.search(r"threshold 0\.\d{4}: [12] of 2 match$", lines[0]), lines[0]
    assert lines[1].startswith("1. e.wav  score ") and "MATCH" in lines[1]
    passage = re.search(
        r"query (\d\d):(\d\d)-(\d\d):(\d\d) <-> reference (\d\d):(\d\d)-(\d\d):(\d\d), "
        r"transposed -1 semitones, tempo x0\.9\d",
        lines[2],
    )
    assert passage is not None, lines[2]
    mm, ss = passage.groups()[::2], passage.groups()[1::2]
    q0, q1, r0, r1 = (60 * int(m) + int(s) for m, s in zip(mm, ss, strict=True))
    assert q0 <= 1 and 0 <= r0 <= r1 <= 13 and abs(r0 - 2) <= 1
    assert sum(line[:1].isdigit() for line in lines) == 2  # -k 2
    assert f"wrote {plot}" in out
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_query_without_a_match_exits_1(catalogue, tmp_path, capsys):
    noise = tmp_path / "noise.wav"
    sf.write(noise, 0.1 * np.random.default_rng(5).standard_normal(8 * SR).astype(np.float32), SR)
    code = main(["similar", "query", str(noise), "--index", str(catalogue["index"]), "-k", "3"])
    out = capsys.readouterr().out
    assert code == 1
    assert "0 of 3 match" in out and "MATCH" not in out


def test_query_errors(catalogue, tmp_path, capsys):
    query = excerpt_file(catalogue, "a.wav", 0.0, 6.0, 0.0)
    missing = tmp_path / "no-index"
    assert main(["similar", "query", str(query), "--index", str(missing)]) == 2
    err = capsys.readouterr().err
    assert str(missing) in err and "index" in err and "Traceback" not in err

    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"not audio at all")
    assert main(["similar", "query", str(broken), "--index", str(catalogue["index"])]) == 2
    err = capsys.readouterr().err
    assert str(broken) in err and "Traceback" not in err

    absent = tmp_path / "absent.wav"
    assert main(["similar", "query", str(absent), "--index", str(catalogue["index"])]) == 2
    assert str(absent) in capsys.readouterr().err

    # bad usage: no --index, no action, k of 0
    assert main(["similar", "query", str(query)]) == 2
    assert main(["similar"]) == 2
    assert main(["similar", "query", str(query), "--index", "x", "-k", "0"]) == 2
