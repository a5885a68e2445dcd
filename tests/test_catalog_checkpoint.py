"""The catalogue's checkpoints and resume: a run killed with SIGKILL keeps every checkpointed
track, a resumed run extracts only the rest, a file is matched by resolved path and content
(named two ways: extracted once; changed: extracted again), and the file's columns stay those
existing readers know."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ml_utilities.bench import synthetic_clip
from ml_utilities.cli import main
from ml_utilities.exceptions import ParameterError
from ml_utilities.features import catalog as catalog_module
from ml_utilities.features.catalog import METADATA_KEY, extract_catalog, file_fingerprint
from ml_utilities.features.summary import TrackFeatures

pq = pytest.importorskip("pyarrow.parquet")

SR = 22050
REPORT = re.compile(
    r"wrote .*: (\d+) tracks x (\d+) columns \((\d+) extracted in [\d.]+ s, (\d+) already there, "
    r"(\d+) failed\)"
)


def write_clips(folder: Path, n: int, seconds: float = 1.0, first_seed: int = 0) -> list[Path]:
    """``n`` distinct synthetic mono WAV files ``clip-000.wav``..., 16-bit at 22.05 kHz."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        path = folder / f"clip-{i:03d}.wav"
        sf.write(path, synthetic_clip(seconds, SR, seed=first_seed + i), SR, subtype="PCM_16")
        paths.append(path)
    return paths


def report(text: str) -> dict[str, int]:
    """The counts of the CLI's summary line."""
    match = REPORT.search(text)
    assert match, text
    tracks, columns, extracted, before, failed = map(int, match.groups())
    return {"tracks": tracks, "columns": columns, "extracted": extracted, "before": before}


def run_features(capsys, *args: str) -> dict[str, int]:
    assert main(["features", *args, "--no-progress"]) == 0
    return report(capsys.readouterr().out)


def rows_in(path: Path) -> int | None:
    """Rows of the Parquet file at ``path``; None while it does not exist."""
    try:
        return pq.read_metadata(path).num_rows
    except FileNotFoundError:
        return None


# -- a kill -----------------------------------------------------------------------------------


def test_sigkill_keeps_checkpointed_tracks_and_resume_extracts_only_the_rest(tmp_path, capsys):
    n = 40
    folder = tmp_path / "music"
    write_clips(folder, n, seconds=2.0)
    out = tmp_path / "features.parquet"
    command = [
        sys.executable,
        "-m",
        "ml_utilities.cli",
        "features",
        str(folder),
        "--out",
        str(out),
        "--checkpoint-every",
        "2",
        "--no-progress",
    ]
    env = {**os.environ, "ML_UTILITIES_MAX_WORKERS": "1"}
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 240
        seen = None
        while time.monotonic() < deadline and proc.poll() is None:
            seen = rows_in(out)  # a checkpoint replaces the file atomically: always readable
            if seen is not None and seen >= 2:
                break
            time.sleep(0.005)
        assert seen is not None and seen >= 2, "no checkpoint appeared while the run went on"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL

    # the killed run's file is a complete Parquet with at least what was checkpointed
    table = TrackFeatures.read_parquet(out)
    kept = len(table.ids)
    assert seen <= kept < n, (seen, kept)
    assert len(set(table.ids)) == kept and np.isfinite(table.values).all()

    # the resumed run extracts only the others
    counts = run_features(capsys, str(folder), "--out", str(out))
    assert counts == {
        "tracks": n,
        "columns": len(table.columns),
        "extracted": n - kept,
        "before": kept,
    }
    final = TrackFeatures.read_parquet(out)
    assert sorted(final.ids) == sorted(str(p) for p in folder.glob("*.wav"))
    assert not list(tmp_path.glob(".*.tmp"))  # a temporary the kill left is gone
    # the rows kept from the killed run are unchanged
    for i, track in enumerate(table.ids):
        np.testing.assert_array_equal(final.values[final.ids.index(track)], table.values[i])


# -- resume by resolved path and content ------------------------------------------------------


def test_the_same_folder_named_two_ways_is_extracted_once(tmp_path, monkeypatch, capsys):
    write_clips(tmp_path / "music", 3)
    (tmp_path / "link").symlink_to(tmp_path / "music", target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    out = str(tmp_path / "features.parquet")
    assert run_features(capsys, "music", "--out", out)["extracted"] == 3
    for name in (str(tmp_path / "music"), "music/../music", "./link", str(tmp_path / "link")):
        counts = run_features(capsys, name, "--out", out)
        assert (counts["extracted"], counts["before"], counts["tracks"]) == (0, 3, 3), name
    # one run naming the folder twice extracts each file once
    both = run_features(capsys, "music", str(tmp_path / "link"), "--out", out, "--no-resume")
    assert (both["extracted"], both["tracks"]) == (3, 3)


def test_a_changed_file_is_extracted_again(tmp_path, capsys):
    paths = write_clips(tmp_path / "music", 3)
    out = tmp_path / "features.parquet"
    run_features(capsys, str(tmp_path / "music"), "--out", str(out))
    before = TrackFeatures.read_parquet(out)

    # other audio, same size and same modification time: only the content hash tells
    stat = paths[1].stat()
    sf.write(paths[1], synthetic_clip(1.0, SR, seed=99), SR, subtype="PCM_16")
    os.utime(paths[1], ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert paths[1].stat().st_size == stat.st_size
    assert paths[1].stat().st_mtime_ns == stat.st_mtime_ns
    # the same bytes, a new modification time
    paths[2].write_bytes(paths[2].read_bytes())
    os.utime(paths[2], ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))

    counts = run_features(capsys, str(tmp_path / "music"), "--out", str(out))
    assert (counts["extracted"], counts["before"], counts["tracks"]) == (2, 1, 3)
    after = TrackFeatures.read_parquet(out)
    assert sorted(after.ids) == sorted(before.ids)  # replaced, not added
    changed, same = str(paths[1]), str(paths[0])
    assert not np.allclose(
        after.values[after.ids.index(changed)], before.values[before.ids.index(changed)]
    )
    np.testing.assert_array_equal(
        after.values[after.ids.index(same)], before.values[before.ids.index(same)]
    )
    # the recorded fingerprint is the new file's
    meta = json.loads(pq.read_schema(out).metadata[METADATA_KEY.encode()])
    assert meta["tracks"][changed] == {
        "path": os.path.realpath(paths[1]),
        **file_fingerprint(paths[1]),
    }


def test_schema_keeps_its_columns_and_records_provenance(tmp_path):
    paths = write_clips(tmp_path / "music", 2)
    out = tmp_path / "f.parquet"
    table = extract_catalog(tmp_path / "music", out=out, max_workers=1, progress=False)
    schema = pq.read_schema(out)
    # the columns are those readers know: track, then the float64 features
    assert schema.names == ["track", *table.columns]
    assert {str(schema.field(c).type) for c in table.columns} == {"double"}
    meta = json.loads(schema.metadata[METADATA_KEY.encode()])
    assert set(meta["tracks"]) == {str(p) for p in paths}
    record = meta["tracks"][str(paths[0])]
    assert record["path"] == os.path.realpath(paths[0])
    assert record["size"] == paths[0].stat().st_size
    assert record["mtime_ns"] == paths[0].stat().st_mtime_ns
    assert len(record["head_tail_blake2b"]) == 32
    assert table.extracted == [str(p) for p in paths]


def test_a_file_without_fingerprints_resumes_by_resolved_path(tmp_path, monkeypatch):
    """A catalogue written before checkpoints (no metadata) is still resumed: its rows are
    matched by the resolved path of ``track``."""
    paths = write_clips(tmp_path / "music", 2)
    monkeypatch.chdir(tmp_path)
    old = extract_catalog("music", max_workers=1, progress=False)
    out = tmp_path / "old.parquet"
    old.to_parquet(out)
    assert pq.read_schema(out).metadata is None or METADATA_KEY.encode() not in (
        pq.read_schema(out).metadata
    )
    write_clips(tmp_path / "music", 1, first_seed=50)  # overwrites clip-000: not detectable
    (tmp_path / "music" / "new.wav").write_bytes(paths[1].read_bytes())
    table = extract_catalog(tmp_path / "music", out=out, max_workers=1, progress=False)
    assert table.extracted == [str(tmp_path / "music" / "new.wav")]
    assert table.ids[:2] == old.ids


@pytest.fixture
def checkpoints(monkeypatch):
    """The row counts of every file ``extract_catalog`` writes, in order."""
    written: list[int] = []
    real_write = catalog_module._write

    def counting_write(path, parts, records):
        cost = real_write(path, parts, records)
        written.append(rows_in(path))
        return cost

    monkeypatch.setattr(catalog_module, "_write", counting_write)
    return written


def test_checkpoints_every_n_tracks_and_every_t_seconds(tmp_path, monkeypatch, checkpoints):
    write_clips(tmp_path / "music", 7)
    out = tmp_path / "f.parquet"
    monkeypatch.setattr(catalog_module, "_SPACING", 0.0)  # however slow the disk
    extract_catalog(tmp_path / "music", out=out, max_workers=1, progress=False, checkpoint_every=3)
    assert checkpoints == [3, 6, 7]  # two checkpoints, then the final file
    assert not list(tmp_path.glob(".*.tmp"))

    checkpoints.clear()
    extract_catalog(
        tmp_path / "music",
        out=out,
        max_workers=1,
        progress=False,
        resume=False,
        checkpoint_every=10**6,
        checkpoint_seconds=1e-6,
    )
    assert checkpoints == [1, 2, 3, 4, 5, 6, 7, 7]  # by time: after every track


def test_checkpoints_wait_for_nine_times_the_last_write(tmp_path, monkeypatch, checkpoints):
    """A checkpoint is not written sooner after the previous one than nine times as long as
    that one took: rewriting the file stays a small share of the run at any size."""
    write_clips(tmp_path / "music", 7)
    monkeypatch.setattr(catalog_module, "_SPACING", 1e9)
    extract_catalog(
        tmp_path / "music",
        out=tmp_path / "f.parquet",
        max_workers=1,
        progress=False,
        checkpoint_every=2,
    )
    assert checkpoints == [2, 7]


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("checkpoint_every", 0),
        ("checkpoint_every", 2.5),
        ("checkpoint_every", True),
        ("checkpoint_seconds", 0.0),
        ("checkpoint_seconds", float("nan")),
        ("checkpoint_seconds", float("inf")),
        ("checkpoint_seconds", "30"),
    ],
)
def test_bad_checkpoint_settings_are_refused(tmp_path, option, value):
    with pytest.raises(ParameterError, match=re.escape(f"{option}={value!r}")):
        extract_catalog(np.zeros(SR, np.float32), out=tmp_path / "f.parquet", **{option: value})
    assert not (tmp_path / "f.parquet").exists()


def test_a_file_that_is_not_a_catalogue_is_refused(tmp_path):
    out = tmp_path / "f.parquet"
    out.write_bytes(b"not parquet")
    with pytest.raises(ParameterError, match="cannot resume from"):
        extract_catalog(np.zeros(SR, np.float32), out=out)
    assert out.read_bytes() == b"not parquet"


def test_a_temporary_left_by_a_killed_run_is_removed(tmp_path):
    write_clips(tmp_path / "music", 1)
    out = tmp_path / "f.parquet"
    left = tmp_path / ".f.parquet.k1ll3d.tmp"
    left.write_bytes(b"PAR1 half a checkpoint")
    other = tmp_path / ".g.parquet.k1ll3d.tmp"  # another output's: not ours to remove
    other.write_bytes(b"")
    extract_catalog(tmp_path / "music", out=out, max_workers=1, progress=False)
    assert not left.exists() and other.exists()
    assert rows_in(out) == 1
