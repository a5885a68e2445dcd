"""Build the cover / plagiarism detection corpus of issue 21 from real compositions.

The catalogue holds pieces of the music21 corpus (Bach chorales, Palestrina, Monteverdi,
trecento pieces, string quartets, fiddle tunes, ...), one per distinct melody, each rendered
with FluidSynth and a General MIDI programme of its own, plus the real recordings of
``../shared/audio``. The queries are the "plagiarised" versions of a seeded subset of the
catalogue: plain excerpts, re-renderings transposed, at another tempo and with another
instrument, excerpts mixed under other music and noise, and excerpts re-encoded at a low
bitrate. Excerpts of pieces that are not in the catalogue ("unrelated") measure false positives.

Everything lives outside the repository, in ``~/.cache/ml_utilities/similarity_bench/`` (or
``--cache`` / ``$MLU_SIMILARITY_BENCH``)::

    pieces/<id>.json         notes extracted from the score (or why the piece was skipped)
    render/<id>__p<prog>.wav catalogue and unrelated renderings, mono 22,050 Hz 16-bit
    queries/<query id>.wav   the queries, mono 22,050 Hz 16-bit
    corpus.json              catalogue, unrelated pieces, skipped pieces, timings
    queries.json             one record per query

A re-run reuses every file whose parameters have not changed; every file is written under a
temporary name and then renamed into place.

Catalogue pieces: music21 corpus files taken in a seeded order that interleaves the corpus
collections, skipping multi-tune collections, files music21 cannot read, pieces shorter than
``MIN_S``, and pieces whose top line opens with nearly the same ``MELODY_INTERVALS`` pitch
intervals (repeated notes merged; at most ``MELODY_MAX_DIFF`` differ), or that have the same
composer / work / title / movement, as a piece already taken.
Scores without a metronome mark play at ``DEFAULT_QPM``; repeats are expanded; the first
``CAP_S`` seconds are rendered.

Each record of ``queries.json`` holds: ``id``; ``file`` (relative to the cache; the loaded
corpus adds the absolute ``path``); ``source`` (catalogue id, or None for an unrelated query);
``piece`` (the catalogue or unrelated piece the audio comes from); ``condition`` (one of
``CONDITIONS``, or "unrelated") and ``transform`` (the condition applied, also for the
unrelated queries); ``start`` and ``end`` (the excerpt, in seconds of the source rendering);
``semitones``; ``tempo_ratio`` (above 1 is faster: the query lasts
``(end - start) / tempo_ratio``); ``programme`` and ``source_programme`` (GM, 0-based; None
for real clips); ``method`` ("excerpt": cut from the source rendering, "rerender": rendered
again from the score, "audio": pitch-shifted / time-stretched audio of a real clip); ``mix``
(interferer id, its start, its level in dB relative to the excerpt, noise colour, SNR in dB,
noise seed) and ``codec`` (format, libsndfile compression level) where used; ``duration``
and, for re-encoded queries, the measured ``kbps``.

Needs ``pip install ".[bench]"`` (music21) and Debian's ``fluidsynth`` and
``fluid-soundfont-gm`` (the Chromaprint baseline also needs ``libchromaprint-tools``); 6 min 35 s
to build from cold on the 2-core VM, 1.3 GB. Run ``python3 benchmarks/similarity/make_corpus.py
--help`` for the options.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import signal
import struct
import subprocess
import sys
import tempfile
import time
import warnings
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

SR = 22050
"""Sample rate of every file in the corpus."""
CAP_S = 60.0
"""Renderings keep the first ``CAP_S`` seconds of each piece."""
MIN_S = 25.0
"""Pieces shorter than this are skipped."""
EXCERPT_S = (10.0, 20.0)
"""Range of the query durations, in seconds."""
REAL_QUERY_MIN_S = 12.0
"""Real clips at least this long are always among the query sources."""
MELODY_INTERVALS = 16
"""Length of the transposition-free melody signature used to drop duplicate tunes."""
MELODY_MAX_DIFF = 4
"""Signatures differing in at most this many intervals are the same tune."""
DEFAULT_QPM = 80.0
"""Tempo (quarter notes per minute) of the scores without a metronome mark."""
UNRELATED_QUERIES_PER_PIECE = 2
EXTRACT_LIMIT_S = 120.0
"""A score that takes longer to read is skipped (none of the shipped ones should)."""
VERSION = 3
"""Version of the note extraction; cached notes of another version are extracted again."""

SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
REPO = Path(__file__).resolve().parents[2]
REAL_AUDIO = REPO.parent / "shared" / "audio"

CONDITIONS = (
    "excerpt",
    "transposed_tempo_instrument",
    "mixed",
    "reencoded",
    "transposed",
    "tempo",
)
"""Query conditions; each chosen catalogue piece gets one query per condition."""
RERENDERED = frozenset({"transposed_tempo_instrument", "transposed", "tempo"})
VOICE_NAMES = frozenset(
    {"canto", "cantus", "quinto", "alto", "altus", "tenore", "tenor", "basso", "bassus"}
)
"""Titles that name a voice part, not the piece."""
EXCLUDED_GROUPS = frozenset({"demos", "theoryExercises", "leadSheet"})
"""music21 corpus folders that hold no real compositions."""
CATALOGUE_PROGRAMMES = (0, 1, 4, 6, 19, 24, 46, 48, 52)
"""GM programmes (0-based) of the catalogue renderings: pianos, harpsichord, organ, nylon
guitar, harp, string ensemble, choir."""
COVER_PROGRAMMES = (0, 16, 19, 24, 25, 40, 42, 48, 52, 56, 61, 65, 68, 71, 73)
"""GM programmes of the re-instrumented queries, always from another GM family than the
catalogue rendering: piano, organs, guitars, violin, cello, strings, choir, trumpet, brass,
saxophone, oboe, clarinet, flute."""
MIDI_CHANNELS = tuple(c for c in range(16) if c != 9)
TICKS_PER_S = 960  # 480 ticks per quarter at the default 120 bpm


@dataclass(frozen=True)
class Corpus:
    """The benchmark corpus as the harness sees it.

    Attributes
    ----------
    catalogue : dict[str, Path]
        Catalogue id -> mono 22,050 Hz WAV of the reference rendering (or real clip).
    queries : list[dict]
        One record per query, as in ``queries.json``, with ``path`` (absolute
        :class:`~pathlib.Path` of its WAV) added. ``source`` is the catalogue id it was made
        from, or None for the unrelated queries.
    unrelated : dict[str, Path]
        Unrelated piece id -> WAV of its rendering (pieces not in the catalogue).
    sr : int
        Sample rate of every file.
    root : Path
        The cache folder.
    """

    catalogue: dict[str, Path]
    queries: list[dict[str, Any]]
    unrelated: dict[str, Path]
    sr: int
    root: Path


def default_cache() -> Path:
    """Cache folder: ``$MLU_SIMILARITY_BENCH`` or ``~/.cache/ml_utilities/similarity_bench``.

    Returns
    -------
    Path
        The folder (not created).
    """
    env = os.environ.get("MLU_SIMILARITY_BENCH")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "ml_utilities" / "similarity_bench"


def load_corpus(cache: Path | str | None = None) -> Corpus:
    """Load a corpus that :func:`build` wrote.

    Parameters
    ----------
    cache : Path, str or None
        Cache folder; None for :func:`default_cache`.

    Returns
    -------
    Corpus
        The catalogue, unrelated pieces and queries with absolute paths.

    Raises
    ------
    FileNotFoundError
        Where the corpus has not been built in ``cache``.
    """
    root = Path(cache).expanduser() if cache is not None else default_cache()
    manifest, queries_file = root / "corpus.json", root / "queries.json"
    if not manifest.is_file() or not queries_file.is_file():
        raise FileNotFoundError(
            f"no corpus in {root}; run python3 benchmarks/similarity/make_corpus.py"
        )
    meta = json.loads(manifest.read_text())
    queries = json.loads(queries_file.read_text())
    for query in queries:
        query["path"] = root / query["file"]
    return Corpus(
        catalogue={k: root / v["file"] for k, v in meta["catalogue"].items()},
        queries=queries,
        unrelated={k: root / v["file"] for k, v in meta["unrelated"].items()},
        sr=int(meta["sr"]),
        root=root,
    )


# --------------------------------------------------------------------------- small helpers


def _rng(*keys: object) -> np.random.Generator:
    """Generator seeded from ``keys`` (stable across runs, unlike ``hash``)."""
    return np.random.default_rng([zlib.crc32(str(k).encode()) for k in keys])


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _atomic_write_json(path: Path, obj: object) -> None:
    _atomic_write_bytes(path, json.dumps(obj, indent=1, sort_keys=True).encode())


def _write_wav(path: Path, y: np.ndarray) -> None:
    buf = io.BytesIO()
    sf.write(buf, np.clip(y, -1.0, 1.0), SR, format="WAV", subtype="PCM_16")
    _atomic_write_bytes(path, buf.getvalue())


def _read_wav(path: Path) -> np.ndarray:
    y, sr = sf.read(path, dtype="float32", always_2d=True)
    if sr != SR:
        raise ValueError(f"{path}: {sr} Hz, expected {SR}")
    return y.mean(axis=1)


def _normalise(y: np.ndarray, rms_db: float = -20.0) -> np.ndarray:
    """Scale to ``rms_db`` dBFS RMS, or less where the peak would pass 0.99."""
    rms = max(float(np.sqrt(np.mean(np.square(y, dtype=np.float64)))), 1e-12)
    peak = max(float(np.max(np.abs(y))), 1e-12)
    gain = min(10 ** (rms_db / 20) / rms, 0.99 / peak)
    return (y * gain).astype(np.float32)


def _fit(y: np.ndarray, n: int) -> np.ndarray:
    """Trim or zero-pad ``y`` to ``n`` samples."""
    return y[:n] if y.size >= n else np.pad(y, (0, n - y.size))


def _sanitise(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")


def _log(message: str) -> None:
    print(message, flush=True)


# ----------------------------------------------------------------------- scores and MIDI


def _music21_root() -> Path:
    import music21

    return Path(music21.__file__).parent / "corpus"


def _candidates(seed: int) -> list[tuple[str, str]]:
    """music21 corpus files as ``(piece id, path)``, shuffled within each collection and
    interleaved across collections so that the catalogue mixes composers."""
    from music21 import corpus

    root = _music21_root()
    groups: dict[str, list[Path]] = {}
    for path in sorted(corpus.getCorePaths()):
        rel = path.relative_to(root)
        if rel.parts[0] in EXCLUDED_GROUPS or path.suffix == ".rntxt":
            continue  # roman-numeral analyses are not scores
        groups.setdefault(rel.parts[0], []).append(path)
    queues = []
    for name in sorted(groups):
        order = _rng(seed, "candidates", name).permutation(len(groups[name]))
        queues.append([groups[name][i] for i in order])
    out = []
    for i in range(max(len(q) for q in queues)):
        for queue in queues:
            if i < len(queue):
                rel = queue[i].relative_to(root)
                out.append((_sanitise("__".join(rel.parts)), str(queue[i])))
    return out


def _seconds_map(score: Any) -> Callable[[float], float]:
    """Quarter-length offset -> seconds function from the score's metronome marks
    (``DEFAULT_QPM`` where it has none)."""
    from music21 import tempo

    segments = []
    if any(True for _ in score.recurse().getElementsByClass(tempo.MetronomeMark)):
        segments = [
            (float(a), float(b), float(mm.secondsPerQuarter()))
            for a, b, mm in score.metronomeMarkBoundaries()
            if b > a
        ]
    if not segments:
        segments = [(0.0, float("inf"), 60.0 / DEFAULT_QPM)]
    starts = np.array([s[0] for s in segments])
    spq = np.array([s[2] for s in segments])
    cumulative = np.concatenate([[0.0], np.cumsum(np.diff(starts) * spq[:-1])])

    def to_seconds(ql: float) -> float:
        i = max(int(np.searchsorted(starts, ql, side="right")) - 1, 0)
        return float(cumulative[i] + (ql - starts[i]) * spq[i])

    return to_seconds


def _normalise_title(text: str | None) -> str:
    """Lower case, leading numbering ("12. ", "10b. ") dropped, punctuation to spaces."""
    text = re.sub(r"^\s*\d+[a-z]?\.\s*", "", (text or "").lower())
    return " ".join(re.sub(r"[\W_]+", " ", text).split())


def _title_key(record: dict[str, Any]) -> str:
    """Normalised composer, parent work, title and movement of a piece; its file path where
    the title is missing, a file name or the name of a voice part (as in the Monteverdi
    madrigals, titled "CANTO")."""
    title = record["title"] or ""
    if (
        not _normalise_title(title)
        or re.search(r"\.(mxl|xml|musicxml|krn|abc)$", title)
        or _normalise_title(title) in VOICE_NAMES
    ):
        return record["path"]
    movement = record["movement"] if record["movement"] != title else None
    fields = (record["composer"], record["parent_title"], title, movement)
    return " | ".join(_normalise_title(f) for f in fields)


def _melody_signature(melody: list[tuple[float, int]]) -> list[int] | None:
    """First ``MELODY_INTERVALS`` pitch intervals of the top line, repeated notes merged."""
    top: dict[float, int] = {}
    for offset, pitch in melody:
        top[offset] = max(pitch, top.get(offset, pitch))
    pitches = [top[k] for k in sorted(top)]
    merged = [p for i, p in enumerate(pitches) if i == 0 or p != pitches[i - 1]]
    intervals = np.diff(merged).tolist()
    return intervals[:MELODY_INTERVALS] if len(intervals) >= MELODY_INTERVALS // 2 else None


def _extract(path: str) -> dict[str, Any]:
    """Notes of one score: ``[start_s, end_s, midi_pitch, part]``, capped at ``CAP_S``.

    Repeats are expanded where music21 can. Returns a record with ``status`` "ok", or
    "skipped" with a ``reason`` where music21 cannot read the file or it holds many tunes.
    """
    from music21 import corpus, stream

    if path.endswith(".abc"):
        headers = sum(
            line.startswith("X:") for line in Path(path).read_text(errors="replace").splitlines()
        )
        if headers > 1:
            return {"status": "skipped", "reason": "multi-tune collection (Opus)"}
    try:
        score = corpus.parse(path)
        if isinstance(score, stream.Opus):
            return {"status": "skipped", "reason": "multi-tune collection (Opus)"}
        written = _truncate(score)
        try:
            score = score.expandRepeats()
        except Exception:  # repeat marks music21 cannot follow: keep the score as written
            pass
        record = _notes_record(path, score)
    except Exception as exc:  # any music21 failure (or the time limit) skips the piece
        return {"status": "skipped", "reason": f"music21 error: {type(exc).__name__}"}
    if record["status"] == "ok":
        record["duration"] = round(max(record["duration"], written), 3)
    return record


def _truncate(score: Any) -> float:
    """Drop, in place, the measures that start after ``CAP_S`` seconds of the score as
    written (expanding repeats cannot bring them earlier); returns the full duration in s.

    Long movements parse in seconds but take minutes to expand and tie-strip whole.
    """
    from music21 import stream

    to_seconds = _seconds_map(score)
    duration = to_seconds(float(score.highestTime))
    parts = list(score.parts)
    if duration <= CAP_S or not parts:
        return duration
    offsets = [float(m.offset) for m in parts[0].getElementsByClass(stream.Measure)]
    late = [o for o in offsets if to_seconds(o) >= CAP_S]
    if late:
        for part in parts:
            part.remove([m for m in part.getElementsByClass(stream.Measure) if m.offset >= late[0]])
    return duration


def _notes_record(path: str, score: Any) -> dict[str, Any]:
    """The ``status`` "ok" record of :func:`_extract` for a parsed ``score``.

    The melody is the part with the highest mean pitch (the top line); it is renumbered as
    part 0.
    """
    to_seconds = _seconds_map(score)
    parts: list[list[tuple[float, float, list[int]]]] = []
    for part in list(score.parts) or [score]:
        events = []
        for element in part.stripTies().flatten().notes:
            pitches = [p.midi for p in getattr(element, "pitches", ())]
            if element.quarterLength > 0 and pitches:  # no grace notes, chord symbols, drums
                events.append((float(element.offset), float(element.quarterLength), pitches))
        if events:
            parts.append(events)
    if not parts:
        return {"status": "skipped", "reason": "no pitched notes"}
    top = int(np.argmax([np.mean([max(e[2]) for e in events]) for events in parts]))
    parts.insert(0, parts.pop(top))
    notes, duration = [], 0.0
    for index, events in enumerate(parts):
        for offset, length, pitches in events:
            start, end = to_seconds(offset), to_seconds(offset + length)
            duration = max(duration, end)
            if start < CAP_S:
                notes.extend(
                    [round(start, 4), round(min(end, CAP_S), 4), p, index] for p in pitches
                )
    melody = [(offset, max(pitches)) for offset, _, pitches in parts[0]]
    metadata = score.metadata
    rel = Path(path).relative_to(_music21_root()).as_posix()
    return {
        "status": "ok",
        "path": rel,
        "title": metadata.bestTitle if metadata is not None else None,
        "parent_title": metadata.parentTitle if metadata is not None else None,
        "movement": metadata.movementName if metadata is not None else None,
        "composer": metadata.composer if metadata is not None else None,
        "signature": _melody_signature(melody),
        "duration": round(duration, 3),
        "n_parts": len(parts),
        "notes": notes,
    }


def _time_limit(signum: int, frame: object) -> None:
    raise TimeoutError(f"extraction over {EXTRACT_LIMIT_S:.0f} s")


def _extract_cached(job: tuple[str, str, str]) -> dict[str, Any]:
    """:func:`_extract` through the ``pieces/<id>.json`` cache (pool worker)."""
    piece_id, path, cache = job
    out = Path(cache) / "pieces" / f"{piece_id}.json"
    if out.is_file():
        record = json.loads(out.read_text())
        if record.get("version") == VERSION:
            return record
    signal.signal(signal.SIGALRM, _time_limit)
    signal.setitimer(signal.ITIMER_REAL, EXTRACT_LIMIT_S)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            record = _extract(path)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    record["id"] = piece_id
    record["version"] = VERSION
    _atomic_write_json(out, record)
    return record


def _vlq(value: int) -> bytes:
    """MIDI variable-length quantity."""
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


def _midi_bytes(notes: Sequence[Sequence[float]], programme: int) -> bytes:
    """Standard MIDI file (format 0, 120 bpm) playing ``notes`` with one GM programme.

    Each part gets its own channel (the drum channel skipped); the top part is played a
    little louder. A note cut short by the same pitch restarting on its channel ends there.
    """
    by_key: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for start, end, pitch, part in notes:
        channel = MIDI_CHANNELS[int(part) % len(MIDI_CHANNELS)]
        on = round(start * TICKS_PER_S)
        by_key.setdefault((channel, int(pitch)), []).append(
            (on, max(on + 1, round(end * TICKS_PER_S)))
        )
    events = [(0, 0, bytes([0xC0 | c, programme])) for c in sorted({c for c, _ in by_key})]
    for (channel, pitch), spans in by_key.items():
        spans.sort()
        velocity = 92 if channel == MIDI_CHANNELS[0] else 72
        for i, (on, off) in enumerate(spans):
            if i + 1 < len(spans):
                off = max(on + 1, min(off, spans[i + 1][0]))
            events.append((on, 2, bytes([0x90 | channel, pitch, velocity])))
            events.append((off, 1, bytes([0x80 | channel, pitch, 0])))
    events.sort(key=lambda e: (e[0], e[1]))
    track = bytearray(b"\x00\xff\x51\x03\x07\xa1\x20")  # tempo: 500,000 us per quarter
    last = 0
    for tick, _, message in events:
        track += _vlq(tick - last) + message
        last = tick
    track += b"\x00\xff\x2f\x00"
    header = b"MThd" + struct.pack(">IHHH", 6, 0, 1, 480)
    return header + b"MTrk" + struct.pack(">I", len(track)) + bytes(track)


def _window(
    notes: Sequence[Sequence[float]], start: float, end: float, semitones: int, ratio: float
) -> list[list[float]]:
    """Notes sounding in ``[start, end)`` s, shifted to 0, transposed and played ``ratio``
    times faster; a note already sounding at ``start`` is struck again there."""
    out = []
    for on, off, pitch, part in notes:
        if off > start and on < end:
            out.append(
                [
                    (max(on, start) - start) / ratio,
                    (min(off, end) - start) / ratio,
                    int(np.clip(pitch + semitones, 0, 127)),
                    part,
                ]
            )
    return out


def _render(notes: Sequence[Sequence[float]], programme: int, duration: float) -> np.ndarray:
    """Render notes with FluidSynth to ``duration`` s of mono audio at ``SR``, normalised.

    Raises
    ------
    RuntimeError
        Where FluidSynth fails or the rendering is silent.
    """
    with tempfile.TemporaryDirectory(prefix="mlu_render_") as tmp:
        midi, wav = Path(tmp) / "in.mid", Path(tmp) / "out.wav"
        midi.write_bytes(_midi_bytes(notes, programme))
        command = ["fluidsynth", "-ni", "-q", "-g", "0.6", "-r", str(SR), "-O", "float"]
        command += ["-F", str(wav), "-T", "wav", str(SOUNDFONT), str(midi)]
        proc = subprocess.run(command, capture_output=True, text=True, timeout=300)
        if proc.returncode != 0 or not wav.is_file():
            raise RuntimeError(f"fluidsynth failed: {proc.stderr.strip()[-200:]}")
        y = _fit(_read_wav(wav), round(duration * SR))
    if not y.size or np.sqrt(np.mean(np.square(y))) < 1e-4:
        raise RuntimeError("silent rendering")
    return _normalise(y)


def _load_audio(path: Path) -> np.ndarray:
    """Decode a real clip to mono float32 at ``SR`` (soxr), first ``CAP_S`` seconds."""
    import soxr

    y, sr = sf.read(path, dtype="float32", always_2d=True)
    y = y.mean(axis=1)
    if sr != SR:
        y = soxr.resample(y, sr, SR).astype(np.float32)
    return _normalise(y[: round(CAP_S * SR)])


def _render_job(job: dict[str, Any]) -> dict[str, Any]:
    """Render one catalogue / unrelated piece (pool worker); reuses an existing file."""
    out = Path(job["out"])
    if out.is_file():
        return {"ok": True, "duration": sf.info(out).duration}
    try:
        if job["kind"] == "audio":
            y = _load_audio(Path(job["source"]))
        else:
            record = json.loads(Path(job["notes"]).read_text())
            y = _render(record["notes"], job["programme"], min(record["duration"], CAP_S))
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        return {"ok": False, "reason": f"render failed: {exc}"}
    _write_wav(out, y)
    return {"ok": True, "duration": y.size / SR}


# --------------------------------------------------------------------------- query audio


def _pink_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """Pink (1/f power) noise, unit RMS."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(spectrum.size, dtype=np.float64)
    f[0] = 1.0
    y = np.fft.irfft(spectrum / np.sqrt(f), n)
    return y / np.sqrt(np.mean(y**2))


def _rms(y: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(y, dtype=np.float64)))) + 1e-12


def _mix(y: np.ndarray, other: np.ndarray, mix: dict[str, Any]) -> np.ndarray:
    """``y`` plus ``other`` at ``interferer_db`` relative RMS plus noise at ``snr_db``."""
    other = np.resize(other, y.size)  # tiles a shorter interferer
    out = y + other * (_rms(y) / _rms(other) * 10 ** (mix["interferer_db"] / 20))
    rng = np.random.default_rng(mix["noise_seed"])
    noise = rng.standard_normal(y.size) if mix["noise"] == "white" else _pink_noise(y.size, rng)
    out = out + noise * (_rms(out) * 10 ** (-mix["snr_db"] / 20))
    return _normalise(out)


def _reencode(y: np.ndarray, codec: dict[str, Any]) -> tuple[np.ndarray, float]:
    """Lossy round trip through MP3 or Ogg Vorbis; returns the audio and the bitrate (kbps)."""
    buf = io.BytesIO()
    if codec["format"] == "mp3":
        sf.write(
            buf,
            y,
            SR,
            format="MP3",
            subtype="MPEG_LAYER_III",
            compression_level=codec["compression_level"],
            bitrate_mode="CONSTANT",
        )
    else:
        sf.write(
            buf, y, SR, format="OGG", subtype="VORBIS", compression_level=codec["compression_level"]
        )
    kbps = len(buf.getvalue()) * 8 / (y.size / SR) / 1000
    buf.seek(0)
    decoded, _ = sf.read(buf, dtype="float32", always_2d=True)
    return _fit(decoded.mean(axis=1), y.size), kbps


def _query_job(job: dict[str, Any]) -> dict[str, Any]:
    """Make one query WAV from its parameters (pool worker)."""
    p = job["params"]
    transform, start, end = p["transform"], p["start"], p["end"]
    n_out = round((end - start) / p["tempo_ratio"] * SR)
    extra: dict[str, Any] = {}
    if transform in RERENDERED and job["notes"]:
        notes = json.loads(Path(job["notes"]).read_text())["notes"]
        window = _window(notes, start, end, p["semitones"], p["tempo_ratio"])
        y = _render(window, p["programme"], n_out / SR)
    else:
        y = _read_wav(Path(job["audio"]))[round(start * SR) : round(end * SR)]
        if transform in RERENDERED:  # real clip: pitch and tempo changed on the audio
            import librosa

            if p["semitones"]:
                y = librosa.effects.pitch_shift(y, sr=SR, n_steps=p["semitones"])
            if p["tempo_ratio"] != 1.0:
                y = librosa.effects.time_stretch(y, rate=p["tempo_ratio"])
            y = _normalise(_fit(y, n_out))
        elif transform == "mixed":
            mix = p["mix"]
            other = _read_wav(Path(job["interferer"]))
            i0 = round(mix["interferer_start"] * SR)
            y = _mix(y, other[i0 : i0 + y.size], mix)
        elif transform == "reencoded":
            y, kbps = _reencode(y, p["codec"])
            extra["kbps"] = round(kbps, 1)
    _write_wav(Path(job["out"]), y)
    return {"duration": round(y.size / SR, 3), **extra}


def _query_params(
    rng: np.random.Generator,
    transform: str,
    duration: float,
    programme: int | None,
    interferers: Sequence[tuple[str, float]],
) -> dict[str, Any]:
    """Draw the parameters of one query of ``transform`` on a piece of ``duration`` s.

    ``programme`` is the piece's GM programme (None for a real clip); ``interferers`` lists
    ``(id, duration)`` of the pieces a "mixed" query may be mixed with.
    """
    semitones, ratio, new_programme = 0, 1.0, programme
    if transform in ("transposed_tempo_instrument", "transposed"):
        semitones = int(rng.choice([-3, -2, -1, 1, 2, 3]))
    if transform in ("transposed_tempo_instrument", "tempo"):
        ratio = float(rng.choice([rng.uniform(0.85, 0.97), rng.uniform(1.03, 1.15)]))
        ratio = round(ratio, 4)
    if transform == "transposed_tempo_instrument" and programme is not None:
        others = [c for c in COVER_PROGRAMMES if c // 8 != programme // 8]
        new_programme = int(rng.choice(others))
    if transform not in RERENDERED:
        method = "excerpt"
    else:
        method = "rerender" if programme is not None else "audio"
    length = float(rng.uniform(*EXCERPT_S))
    source_length = min(length * ratio, 0.8 * duration)
    start = round(float(rng.uniform(0.0, duration - source_length)), 3)
    params: dict[str, Any] = {
        "transform": transform,
        "start": start,
        "end": round(start + source_length, 3),
        "semitones": semitones,
        "tempo_ratio": ratio,
        "programme": new_programme,
        "source_programme": programme,
        "method": method,
        "mix": None,
        "codec": None,
    }
    if transform == "mixed":
        other, other_duration = interferers[int(rng.integers(len(interferers)))]
        params["mix"] = {
            "interferer": other,
            "interferer_start": round(
                float(rng.uniform(0.0, max(0.0, other_duration - source_length))), 3
            ),
            "interferer_db": round(float(rng.uniform(-6.0, -3.0)), 2),
            "noise": str(rng.choice(["white", "pink"])),
            "snr_db": round(float(rng.uniform(18.0, 22.0)), 2),
            "noise_seed": int(rng.integers(2**31)),
        }
    if transform == "reencoded":
        fmt = str(rng.choice(["mp3", "vorbis"]))
        low, high = (0.8, 0.9) if fmt == "mp3" else (0.9, 0.99)
        params["codec"] = {
            "format": fmt,
            "compression_level": round(float(rng.uniform(low, high)), 3),
        }
    return params


# ------------------------------------------------------------------------------ building


def _accept(
    records: Iterable[dict[str, Any]], wanted: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Take pieces in order until ``wanted``, skipping pieces shorter than ``MIN_S`` and
    pieces with the melody or the title of a piece already taken.

    Two melodies are the same where their signatures differ in at most ``MELODY_MAX_DIFF``
    of their ``MELODY_INTERVALS`` intervals: Bach harmonised many chorale tunes several times
    with small changes to the tune (a passing note, a different cadence).

    Returns
    -------
    tuple[list[dict], list[dict]]
        The accepted records, and ``{id, reason}`` of the skipped ones.
    """
    accepted: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    signatures = np.zeros((0, MELODY_INTERVALS), dtype=np.int64)
    titles: dict[str, str] = {}
    for record in records:
        reason = record.get("reason")
        if record["status"] == "ok":
            signature = np.full(MELODY_INTERVALS, 99)  # 99: no interval there
            signature[: len(record["signature"] or ())] = record["signature"] or ()
            same = np.flatnonzero((signatures != signature).sum(axis=1) <= MELODY_MAX_DIFF)
            title = _title_key(record)
            if not record["signature"]:
                reason = f"melody shorter than {MELODY_INTERVALS // 2} intervals"
            elif record["duration"] < MIN_S:
                reason = f"shorter than {MIN_S:.0f} s"
            elif same.size:
                reason = f"same melody as {accepted[same[0]]['id']}"
            elif title in titles:
                reason = f"same title as {titles[title]}"
            else:
                signatures = np.vstack([signatures, signature])
                titles[title] = record["id"]
                accepted.append(record)
                if len(accepted) % 50 == 0:
                    _log(f"[extract] {len(accepted)}/{wanted} accepted, {len(skipped)} skipped")
                if len(accepted) >= wanted:
                    break
                continue
        skipped.append({"id": record["id"], "reason": reason})
    return accepted, skipped


def _programme(seed: int, piece_id: str) -> int:
    """GM programme of a piece's reference rendering (seeded by its id)."""
    return int(_rng(seed, "programme", piece_id).choice(CATALOGUE_PROGRAMMES))


def _select(
    pool: ProcessPoolExecutor, root: Path, wanted: int, seed: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Extract candidates in order (in parallel, through the cache) until ``wanted`` are
    accepted; see :func:`_accept`."""
    candidates = _candidates(seed)
    _log(f"[extract] {len(candidates)} music21 candidates; notes cached in {root / 'pieces'}")
    futures = pool.map(_extract_cached, [(i, p, str(root)) for i, p in candidates])
    accepted, skipped = _accept(futures, wanted)
    pool.shutdown(wait=True, cancel_futures=True)
    return accepted, skipped


def _render_pieces(
    pool: ProcessPoolExecutor,
    root: Path,
    accepted: list[dict[str, Any]],
    wanted: int,
    seed: int,
    skipped: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    """Render the first ``wanted`` accepted pieces, replacing any that fail by the next ones;
    failures are appended to ``skipped``. Returns the rendered records, in order."""
    t0 = time.perf_counter()
    rendered: list[dict[str, Any]] = []
    pending = list(accepted)
    while pending and len(rendered) < wanted:
        batch, pending = pending[: wanted - len(rendered)], pending[wanted - len(rendered) :]
        jobs = []
        for record in batch:
            record["programme"] = _programme(seed, record["id"])
            record["file"] = f"render/{record['id']}__p{record['programme']}.wav"
            jobs.append(
                {
                    "kind": "score",
                    "notes": str(root / "pieces" / f"{record['id']}.json"),
                    "programme": record["programme"],
                    "out": str(root / record["file"]),
                }
            )
        for record, result in zip(batch, pool.map(_render_job, jobs), strict=True):
            if not result["ok"]:
                skipped.append({"id": record["id"], "reason": result["reason"]})
                continue
            record["rendered_duration"] = round(result["duration"], 3)
            rendered.append(record)
            if len(rendered) % 25 == 0:
                _log(f"[render] {len(rendered)}/{wanted} ({time.perf_counter() - t0:.0f} s)")
    if len(rendered) < wanted:
        _log(f"[render] WARNING: only {len(rendered)} of {wanted} pieces could be used")
    return rendered


def _decode_real(
    pool: ProcessPoolExecutor, root: Path, skipped: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Decode the real clips of ``REAL_AUDIO`` (all but the ``.hq.`` one) into the cache."""
    if not REAL_AUDIO.is_dir():
        _log(f"[render] {REAL_AUDIO} absent: no real clips in the catalogue")
        return []
    records, jobs = [], []
    for clip in sorted(REAL_AUDIO.glob("*.ogg")):
        if ".hq." in clip.name:
            continue
        piece_id = "real__" + _sanitise(clip.stem)
        records.append({"id": piece_id, "path": str(clip), "file": f"render/{piece_id}.wav"})
        jobs.append({"kind": "audio", "source": str(clip), "out": str(root / records[-1]["file"])})
    real = []
    for record, result in zip(records, pool.map(_render_job, jobs), strict=True):
        if result["ok"]:
            record["rendered_duration"] = round(result["duration"], 3)
            real.append(record)
        else:
            skipped.append({"id": record["id"], "reason": result["reason"]})
    return real


def _split(
    rendered: list[dict[str, Any]], real: list[dict[str, Any]], n_unrelated: int
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """Catalogue and unrelated entries: the unrelated pieces are spread evenly through the
    accepted order (so both sets mix the collections alike); the real clips join the
    catalogue."""
    catalogue: dict[str, dict[str, Any]] = {}
    unrelated: dict[str, dict[str, Any]] = {}
    total = len(rendered)
    n_unrelated = min(n_unrelated, total)
    keys = ("file", "path", "title", "composer", "duration", "rendered_duration", "programme")
    for i, record in enumerate(rendered):
        target = (
            unrelated if (i + 1) * n_unrelated // total > i * n_unrelated // total else catalogue
        )
        target[record["id"]] = {k: record[k] for k in keys} | {"kind": "score"}
    for record in real:
        catalogue[record["id"]] = {
            "file": record["file"],
            "path": record["path"],
            "rendered_duration": record["rendered_duration"],
            "programme": None,
            "kind": "audio",
        }
    return catalogue, unrelated


def _plan_queries(
    root: Path,
    catalogue: dict[str, dict[str, Any]],
    unrelated: dict[str, dict[str, Any]],
    n_queries: int,
    seed: int,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Query records, and the jobs for the ones not already in the cache with the same
    parameters.

    The sources: every real clip of at least ``REAL_QUERY_MIN_S`` s and music21 pieces drawn
    from the catalogue up to ``n_queries``, one query per condition each; each unrelated
    piece gives ``UNRELATED_QUERIES_PER_PIECE`` queries of conditions drawn at random.
    """
    real_ids = sorted(k for k, v in catalogue.items() if v["kind"] == "audio")
    real_sources = [k for k in real_ids if catalogue[k]["rendered_duration"] >= REAL_QUERY_MIN_S]
    score_ids = sorted(k for k, v in catalogue.items() if v["kind"] == "score")
    n_score = max(0, min(n_queries - len(real_sources), len(score_ids)))
    chosen = _rng(seed, "query-sources").choice(score_ids, n_score, replace=False).tolist()
    sources = [(s, s, CONDITIONS) for s in sorted(chosen) + real_sources]
    for piece in sorted(unrelated):
        picks = _rng(seed, "unrelated-transforms", piece).choice(
            CONDITIONS, UNRELATED_QUERIES_PER_PIECE, replace=False
        )
        sources.append((None, piece, tuple(str(c) for c in picks)))
    previous_file = root / "queries.json"
    previous = (
        {q["id"]: q for q in json.loads(previous_file.read_text())}
        if previous_file.is_file()
        else {}
    )
    queries, jobs = [], []
    for source, piece, transforms in sources:
        info = catalogue[piece] if source is not None else unrelated[piece]
        interferers = [(k, v["rendered_duration"]) for k, v in unrelated.items() if k != piece]
        for k, transform in enumerate(transforms):
            qid = f"{piece}__{transform}" if source is not None else f"unrelated__{piece}__{k}"
            params = _query_params(
                _rng(seed, "query", qid),
                transform,
                info["rendered_duration"],
                info["programme"],
                interferers,
            )
            entry = {
                "id": qid,
                "file": f"queries/{qid}.wav",
                "source": source,
                "piece": piece,
                "condition": transform if source is not None else "unrelated",
                **params,
            }
            old = previous.get(qid)
            if (
                old is not None
                and all(old.get(key) == value for key, value in entry.items())
                and (root / entry["file"]).is_file()
            ):
                queries.append(old)
                continue
            queries.append(entry)
            mix = params["mix"]
            jobs.append(
                {
                    "id": qid,
                    "params": params,
                    "out": str(root / entry["file"]),
                    "audio": str(root / info["file"]),
                    "notes": str(root / "pieces" / f"{piece}.json")
                    if info["kind"] == "score"
                    else None,
                    "interferer": str(root / unrelated[mix["interferer"]]["file"]) if mix else None,
                }
            )
    return queries, jobs


def build(
    cache: Path | str | None = None,
    n_catalogue: int = 300,
    n_unrelated: int = 60,
    n_queries: int = 100,
    jobs: int = 2,
    seed: int = 21,
) -> Corpus:
    """Build (or complete) the corpus in ``cache`` and return it.

    Parameters
    ----------
    cache : Path, str or None
        Cache folder; None for :func:`default_cache`.
    n_catalogue : int
        Number of music21 pieces in the catalogue (the real clips come on top).
    n_unrelated : int
        Number of further pieces, not in the catalogue, for the unrelated queries.
    n_queries : int
        Number of catalogue pieces that get one query per condition (all real clips of at
        least ``REAL_QUERY_MIN_S`` seconds, the rest drawn from the music21 pieces).
    jobs : int
        Worker processes.
    seed : int
        Seed of every random choice.

    Returns
    -------
    Corpus
        The corpus, as :func:`load_corpus` reads it.
    """
    root = Path(cache).expanduser() if cache is not None else default_cache()
    root.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    wanted = n_catalogue + n_unrelated
    reserve = max(5, wanted // 10)  # replacements for pieces that fail to render

    t0 = time.perf_counter()
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        accepted, skipped = _select(pool, root, wanted + reserve, seed)
    timings["extract_s"] = round(time.perf_counter() - t0, 1)
    _log(f"[extract] {len(accepted)} accepted, {len(skipped)} skipped in {timings['extract_s']} s")

    t0 = time.perf_counter()
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        rendered = _render_pieces(pool, root, accepted, wanted, seed, skipped)
        real = _decode_real(pool, root, skipped)
    timings["render_s"] = round(time.perf_counter() - t0, 1)
    catalogue, unrelated = _split(rendered, real, n_unrelated)
    _log(
        f"[render] {len(catalogue)} catalogue ({len(real)} real clips), {len(unrelated)} "
        f"unrelated in {timings['render_s']} s"
    )

    t0 = time.perf_counter()
    queries, query_jobs = _plan_queries(root, catalogue, unrelated, n_queries, seed)
    _log(f"[queries] {len(queries)} queries, {len(query_jobs)} to make")
    by_id = {q["id"]: q for q in queries}
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        results = pool.map(_query_job, query_jobs)
        for i, (job, result) in enumerate(zip(query_jobs, results, strict=True)):
            by_id[job["id"]].update(result)
            if (i + 1) % 100 == 0:
                _log(f"[queries] {i + 1}/{len(query_jobs)} ({time.perf_counter() - t0:.0f} s)")
    timings["queries_s"] = round(time.perf_counter() - t0, 1)

    skip_reasons = Counter(re.sub(r" [\w.-]+__[\w.-]+$", " <piece>", s["reason"]) for s in skipped)
    config = {"n_catalogue": n_catalogue, "n_unrelated": n_unrelated, "n_queries": n_queries}
    config |= {"seed": seed, "cap_s": CAP_S, "min_s": MIN_S, "default_qpm": DEFAULT_QPM}
    manifest = {"version": VERSION, "sr": SR, "config": config, "catalogue": catalogue}
    manifest |= {"unrelated": unrelated, "skipped": skipped, "skip_reasons": dict(skip_reasons)}
    _atomic_write_json(root / "corpus.json", manifest | {"timings": timings})
    _atomic_write_json(root / "queries.json", queries)
    used = {root / v["file"] for v in [*catalogue.values(), *unrelated.values(), *queries]}
    stale = [p for d in ("render", "queries") for p in (root / d).glob("*.wav") if p not in used]
    for path in stale:
        path.unlink()

    counts = Counter(q["condition"] for q in queries)
    _log(f"[done] {root}: {len(catalogue)} catalogue, {len(unrelated)} unrelated")
    _log(f"[done] queries per condition: {dict(sorted(counts.items()))}")
    _log(f"[done] skipped: {dict(skip_reasons.most_common())}")
    _log(f"[done] timings (s): {timings}; {len(stale)} stale files removed")
    return load_corpus(root)


def main(argv: Sequence[str] | None = None) -> None:
    """Command-line entry point; see ``--help``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-catalogue", type=int, default=300, help="music21 catalogue pieces")
    parser.add_argument("--n-unrelated", type=int, default=60, help="unrelated pieces")
    parser.add_argument(
        "--n-queries", type=int, default=100, help="catalogue pieces with one query per condition"
    )
    parser.add_argument("--cache", type=Path, default=None, help=f"default {default_cache()}")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes")
    parser.add_argument("--seed", type=int, default=21)
    args = parser.parse_args(argv)
    if not SOUNDFONT.is_file():
        sys.exit(f"{SOUNDFONT} missing (Debian package fluid-soundfont-gm)")
    t0 = time.perf_counter()
    build(args.cache, args.n_catalogue, args.n_unrelated, args.n_queries, args.jobs, args.seed)
    _log(f"[done] total {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
