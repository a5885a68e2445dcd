"""Time librosa and ml_utilities in the same run, and check that they agree.

Used by ``ml-utilities bench`` and importable by ``benchmarks/``. Three inputs (a 30 s clip, a
10 min signal, a batch of 64 x 30 s; smaller with ``quick=True``) and three operations (the STFT
power (librosa: ``np.abs(stft(y))**2``; ml_utilities: ``audio.spectrogram(y)``),
``melspectrogram``, ``mfcc`` with deltas of order 1 and 2). Each
timing is the median of ``repeat`` runs after one warm-up, with :func:`time.perf_counter`; each
row also reports the largest relative Frobenius error between the two libraries' results.

The signal is the real clip ``Kevin_MacLeod_-_Vibe_Ace.ogg`` from ``../shared/audio`` beside the
checkout when it is there, else :func:`synthetic_clip`.

Examples
--------
>>> from ml_utilities.bench import synthetic_clip
>>> y = synthetic_clip(seconds=1.0)
>>> y.shape, y.dtype
((22050,), dtype('float32'))
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import logging
import os
import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "CLIP_NAME",
    "BenchCase",
    "BenchResult",
    "OPERATIONS",
    "cmd_bench_cuda",
    "environment",
    "find_reference_clip",
    "format_header",
    "format_row",
    "format_table",
    "make_cases",
    "relative_error",
    "run_bench",
    "synthetic_clip",
    "spread",
    "time_call",
    "time_runs",
]

logger = logging.getLogger(__name__)

CLIP_NAME = "Kevin_MacLeod_-_Vibe_Ace.ogg"
SR = 22050
N_MFCC = 13


# -- signals -------------------------------------------------------------------------------


def synthetic_clip(seconds: float = 30.0, sr: int = SR, *, seed: int = 0) -> np.ndarray:
    """A deterministic test clip: harmonic notes with sharp onsets, a bass line, and noise.

    Two notes per second from an A minor pentatonic melody (six harmonics each, 5 ms attack,
    exponential decay), a bass note every two seconds, and white noise 40 dB down; peak 0.9.
    It exercises every mel band and gives clear onsets, like music, with no file to read.

    Parameters
    ----------
    seconds : float > 0
        Length in seconds.
    sr : int > 0
        Sampling rate.
    seed : int
        Seed of the noise.

    Returns
    -------
    y : np.ndarray [shape=(round(seconds * sr),)], float32
        The signal, on the host.
    """
    n = int(round(seconds * sr))
    y = np.zeros(n, dtype=np.float64)
    melody_hz = 220.0 * 2.0 ** (np.array([0, 3, 5, 7, 10, 12, 15, 17]) / 12.0)
    bass_hz = 55.0 * 2.0 ** (np.array([0, 5, 7, 3]) / 12.0)
    note_len = int(1.2 * sr)
    t = np.arange(note_len) / sr
    attack = np.minimum(t / 0.005, 1.0)
    envelopes = {decay: attack * np.exp(-t / decay) for decay in (0.25, 0.6)}

    def add_note(start: int, f0: float, amplitude: float, decay: float, partials: int) -> None:
        stop = min(start + note_len, n)
        if stop <= start:
            return
        tt = t[: stop - start]
        envelope = amplitude * envelopes[decay][: stop - start]
        # sin(k x) for k = 1, 2, ... by the Chebyshev recurrence: two sin/cos per note, not one
        # per partial (this runs on every `ml-utilities features` without a file).
        phase = 2 * np.pi * f0 * tt
        twice_cos = 2 * np.cos(phase)
        previous, current = np.zeros_like(tt), np.sin(phase)
        tone = current.copy()
        for k in range(2, partials + 1):
            previous, current = current, twice_cos * current - previous
            if k * f0 < sr / 2:
                tone += current / k
        y[start:stop] += envelope * tone

    step = sr // 2
    for i, start in enumerate(range(0, n, step)):
        add_note(start, float(melody_hz[(i * 3) % melody_hz.size]), 0.5, 0.25, 6)
    for i, start in enumerate(range(0, n, 2 * sr)):
        add_note(start, float(bass_hz[i % bass_hz.size]), 0.6, 0.6, 3)
    y += 0.01 * np.random.default_rng(seed).standard_normal(n)
    peak = np.max(np.abs(y)) if n else 0.0
    if peak > 0:
        y *= 0.9 / peak
    return y.astype(np.float32)


def find_reference_clip(extra: Iterable[str | os.PathLike[str]] = ()) -> Path | None:
    """Locate ``../shared/audio/Kevin_MacLeod_-_Vibe_Ace.ogg`` beside the checkout.

    Looks in ``extra`` first, then beside the current directory and its parents, then beside
    the source tree this module was imported from.

    Returns
    -------
    pathlib.Path or None
        The clip, or None where it is not there.
    """
    candidates: list[Path] = [Path(p) for p in extra]
    cwd = Path.cwd().resolve()
    for base in (cwd, *cwd.parents[:3]):
        candidates.append(base.parent / "shared" / "audio" / CLIP_NAME)
        candidates.append(base / "shared" / "audio" / CLIP_NAME)
    here = Path(__file__).resolve()
    if len(here.parents) > 3:
        candidates.append(here.parents[3] / "shared" / "audio" / CLIP_NAME)
    for path in candidates:
        if path.is_file():
            return path
    return None


@dataclasses.dataclass(frozen=True)
class BenchCase:
    """One input: a label, the signal ``(n,)`` or ``(batch, n)``, and its sampling rate."""

    name: str
    y: np.ndarray
    sr: int


def make_cases(
    *, quick: bool = False, clip: str | os.PathLike[str] | None = None
) -> list[BenchCase]:
    """Build the three inputs: a clip, a long signal, and a batch.

    Parameters
    ----------
    quick : bool
        Smaller inputs (10 s clip, 1 min signal, 8 x 10 s) for a fast check.
    clip : path, optional
        The audio to use; by default :func:`find_reference_clip`, else :func:`synthetic_clip`.

    Returns
    -------
    list of BenchCase
    """
    clip_s, long_s, batch, batch_s = (10, 60, 8, 10) if quick else (30, 600, 64, 30)
    path = Path(clip) if clip is not None else find_reference_clip()
    if path is not None:
        from .audio.io import load

        source, _ = load(path, sr=SR)
        label = "clip"
        logger.info("benchmark signal: %s", path)
    else:
        source = synthetic_clip(60.0)
        label = "synthetic"
        logger.info("benchmark signal: synthetic (no %s found)", CLIP_NAME)
    if source.size == 0:
        source = synthetic_clip(60.0)
    # Cyclic repetition makes every length from one source without silence.
    short = np.resize(source, clip_s * SR)
    long = np.resize(source, long_s * SR)
    offsets = np.linspace(0, source.size, batch, endpoint=False).astype(int)
    many = np.stack([np.resize(np.roll(source, -int(o)), batch_s * SR) for o in offsets])
    return [
        BenchCase(f"{clip_s} s {label}", short, SR),
        BenchCase(f"{long_s // 60} min signal", long, SR),
        BenchCase(f"{batch} x {batch_s} s batch", many, SR),
    ]


# -- operations ---------------------------------------------------------------------------


def _stft_power(lib: Any, y: np.ndarray, sr: int) -> list[np.ndarray]:
    # The power spectrogram the fastest public way each library offers: librosa has only
    # np.abs(stft)**2; ml_utilities computes it in the STFT pass (audio.spectrogram).
    if getattr(lib, "__name__", "").startswith("ml_utilities"):
        from .audio import spectrogram

        return [spectrogram(y, power=2.0)]
    return [np.abs(lib.stft(y)) ** 2]


def _melspectrogram(lib: Any, y: np.ndarray, sr: int) -> list[np.ndarray]:
    return [lib.feature.melspectrogram(y=y, sr=sr)]


def _mfcc_deltas(lib: Any, y: np.ndarray, sr: int) -> list[np.ndarray]:
    coefficients = lib.feature.mfcc(y=y, sr=sr, n_mfcc=N_MFCC)
    return [
        coefficients,
        lib.feature.delta(coefficients),
        lib.feature.delta(coefficients, order=2),
    ]


#: Name -> function(library namespace, y, sr) -> list of result arrays.
OPERATIONS: dict[str, Callable[[Any, np.ndarray, int], list[np.ndarray]]] = {
    "stft power": _stft_power,
    "melspectrogram": _melspectrogram,
    "mfcc + deltas": _mfcc_deltas,
}


def relative_error(actual: np.ndarray, expected: np.ndarray) -> float:
    """The relative Frobenius error ``||actual - expected|| / ||expected||`` (float64).

    Returns the absolute error where ``expected`` is all zeros, and ``inf`` on a shape mismatch.
    """
    if np.shape(actual) != np.shape(expected):
        return float("inf")
    a = np.asarray(actual, dtype=np.complex128 if np.iscomplexobj(actual) else np.float64)
    e = np.asarray(expected, dtype=a.dtype)
    num = float(np.linalg.norm((a - e).ravel()))
    den = float(np.linalg.norm(e.ravel()))
    return num / den if den else num


def _max_error(actual: Sequence[np.ndarray], expected: Sequence[np.ndarray]) -> float:
    """Largest relative error over the outputs and, for a batch, over its items."""
    worst = 0.0
    for a, e in zip(actual, expected, strict=True):
        if np.shape(a) != np.shape(e):
            return float("inf")
        # Leading axes are independent signals: compare each on its own.
        items_a = a.reshape(-1, *a.shape[-2:]) if a.ndim > 2 else a[np.newaxis]
        items_e = e.reshape(-1, *e.shape[-2:]) if e.ndim > 2 else e[np.newaxis]
        for ia, ie in zip(items_a, items_e, strict=True):
            worst = max(worst, relative_error(ia, ie))
    return worst


def time_runs(function: Callable[[], Any], repeat: int) -> tuple[list[float], Any]:
    """Wall times of ``repeat`` runs of ``function()`` after one warm-up.

    Returns
    -------
    (seconds, result)
        Each run's time in seconds and the warm-up's result.
    """
    result = function()
    times = []
    for _ in range(max(1, repeat)):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return times, result


def time_call(function: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """Median wall time of ``function()`` over ``repeat`` runs after one warm-up.

    Returns
    -------
    (seconds, result)
        The median in seconds and the warm-up's result.
    """
    times, result = time_runs(function, repeat)
    return statistics.median(times), result


def spread(times: Sequence[float]) -> float:
    """(slowest - fastest) / median of a measurement's runs: how far one figure can be trusted
    on a machine that other work shares."""
    median = statistics.median(times)
    return (max(times) - min(times)) / median if median > 0 else 0.0


@dataclasses.dataclass(frozen=True)
class BenchResult:
    """One row: an operation on one input, timed in both libraries."""

    case: str
    operation: str
    librosa_ms: float
    ml_utilities_ms: float
    rel_error: float
    #: (slowest - fastest) / median of each side's timed runs (:func:`spread`)
    librosa_spread: float = 0.0
    ml_utilities_spread: float = 0.0

    @property
    def speedup(self) -> float:
        """librosa's time over ml_utilities' (above 1: ml_utilities is faster)."""
        return self.librosa_ms / self.ml_utilities_ms if self.ml_utilities_ms > 0 else float("inf")

    def as_dict(self) -> dict[str, Any]:
        """The row as JSON-friendly values, the speed-up included."""
        return {**dataclasses.asdict(self), "speedup": self.speedup}


def run_bench(
    *,
    quick: bool = False,
    repeat: int = 3,
    clip: str | os.PathLike[str] | None = None,
    operations: Iterable[str] | None = None,
    cases: Sequence[BenchCase] | None = None,
    on_result: Callable[[BenchResult], None] | None = None,
) -> list[BenchResult]:
    """Time librosa and ml_utilities on every input and operation, in this process.

    Parameters
    ----------
    quick : bool
        Smaller inputs (see :func:`make_cases`).
    repeat : int >= 1
        Timed runs per measurement (after one warm-up); the median is reported.
    clip : path, optional
        The audio to build the inputs from.
    operations : iterable of str, optional
        Keys of :data:`OPERATIONS` (all by default).
    cases : sequence of BenchCase, optional
        Inputs to use instead of :func:`make_cases`.
    on_result : callable, optional
        Called with each row as soon as it is measured (for progress output).

    Returns
    -------
    list of BenchResult

    Raises
    ------
    ImportError
        If librosa is not installed.
    """
    import librosa

    import ml_utilities.compat.librosa as mlu

    names = list(OPERATIONS) if operations is None else list(operations)
    inputs = list(cases) if cases is not None else make_cases(quick=quick, clip=clip)
    results = []
    for case in inputs:
        for name in names:
            operation = OPERATIONS[name]
            ref_s, expected = time_runs(
                functools.partial(operation, librosa, case.y, case.sr), repeat
            )
            our_s, actual = time_runs(functools.partial(operation, mlu, case.y, case.sr), repeat)
            row = BenchResult(
                case=case.name,
                operation=name,
                librosa_ms=statistics.median(ref_s) * 1e3,
                ml_utilities_ms=statistics.median(our_s) * 1e3,
                rel_error=_max_error(actual, expected),
                librosa_spread=spread(ref_s),
                ml_utilities_spread=spread(our_s),
            )
            del expected, actual
            results.append(row)
            if on_result is not None:
                on_result(row)
    return results


_HEADER = (
    "input",
    "operation",
    "librosa ms",
    "ml_utilities ms",
    "speed-up",
    "max rel. error",
    "spread (lib/ours)",
)
_WIDTHS = (18, 16, 12, 16, 10, 15, 17)


def format_row(row: BenchResult) -> str:
    """One table line for ``row``, aligned under :func:`format_header`."""
    cells = (
        row.case,
        row.operation,
        f"{row.librosa_ms:.1f}",
        f"{row.ml_utilities_ms:.1f}",
        f"{row.speedup:.1f}x",
        f"{row.rel_error:.1e}",
        f"{100 * row.librosa_spread:.0f}% / {100 * row.ml_utilities_spread:.0f}%",
    )
    return _join(cells)


def format_header() -> str:
    """The table's header and rule."""
    return _join(_HEADER) + "\n" + "  ".join("-" * w for w in _WIDTHS)


def _join(cells: Sequence[str]) -> str:
    parts = [
        cell.ljust(width) if i < 2 else cell.rjust(width)
        for i, (cell, width) in enumerate(zip(cells, _WIDTHS, strict=True))
    ]
    return "  ".join(parts).rstrip()


def format_table(results: Iterable[BenchResult]) -> str:
    """The whole table: header, rule, one line per result."""
    return "\n".join([format_header(), *(format_row(r) for r in results)])


def environment() -> dict[str, Any]:
    """Versions and machine facts to store beside the results."""
    import platform

    import ml_utilities

    versions: dict[str, Any] = {
        "ml_utilities": ml_utilities.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }
    try:
        versions["librosa"] = importlib.import_module("librosa").__version__
    except ImportError:
        versions["librosa"] = None
    return {
        "versions": versions,
        "machine": platform.machine(),
        "processor": platform.processor(),
        "cpu_count": os.cpu_count(),
        "build_info": ml_utilities.build_info(),
    }


# -- the CUDA backend (``ml-utilities bench --device cuda``) ---------------------------------


def cmd_bench_cuda(args: Any) -> int:
    """``ml-utilities bench --device cuda``: the CUDA backend against torchaudio and a torch.stft
    pipeline on this machine's GPU (see :mod:`ml_utilities.gpu.bench`); prints the table and the
    issue's targets, and writes them as JSON with ``--json``."""
    import json
    import sys

    try:
        from ml_utilities.gpu import bench as gpu_bench

        gpu_bench._torch()
    except (ImportError, RuntimeError) as exc:
        print(f"ml-utilities bench --device cuda: {exc}", file=sys.stderr)
        return 2
    from ml_utilities import build_info

    info = build_info()
    if not info["cuda_loads"]:
        print(f"ml-utilities bench --device cuda: {info['cuda_error']}", file=sys.stderr)
        return 2
    repeat = max(int(getattr(args, "repeat", 3)), 3)
    print(f"median of {repeat} runs after one warm-up, on {info['cuda_devices']} device(s)")
    header_printed = False

    def show(row: Any) -> None:
        nonlocal header_printed
        table = gpu_bench.format_device_table([row]).splitlines()
        if not header_printed:
            print(table[0], flush=True)
            header_printed = True
        print(table[1], flush=True)

    results = gpu_bench.run_device_bench(
        quick=bool(getattr(args, "quick", False)), repeat=repeat, on_result=show
    )
    goals = gpu_bench.targets(results)
    for key, value in goals.items():
        print(f"{key}: {value}")
    out = getattr(args, "json", None)
    if out is not None:
        payload = {
            "environment": environment(),
            "build_info": info,
            "results": [row.as_dict() for row in results],
            "targets": goals,
        }
        Path(out).write_text(json.dumps(payload, indent=2, default=str) + "\n")
        print(f"wrote {out}")
    return 0
