"""The ``ml-utilities`` command.

``ml-utilities info``
    Versions, the compiled core's build information and the settings, as a table or ``--json``.
``ml-utilities features [FILE|DIR ...]``
    Mel spectrogram, MFCC and deltas of each file (or, with no file, of a synthetic 30 s clip),
    one summary line per file; a file that fails is reported and the rest go on, and the exit
    status is 1 if any failed; ``--out X.npz`` saves the arrays (nothing is written when every
    file failed). ``--out X.parquet`` extracts
    every group of FeatureExtractor over the whole catalog in parallel and writes one summary row
    per track, checkpointing as it goes (the file is rewritten atomically every
    ``--checkpoint-every`` tracks or ``--checkpoint-seconds``, so a killed run loses at most the
    work since the last checkpoint); resumable: tracks already in the file are skipped, matched
    by resolved path and content fingerprint (a changed file is extracted again); a file that
    fails is reported and the rest go on. ``--plot`` draws the groups (spectrogram, chromagram,
    MFCC, onset envelope with beats) into a PNG.
``ml-utilities bench``
    Times librosa and ml_utilities in the same run and prints their ratios (needs librosa).
``ml-utilities serve``
    The PredictionService over HTTP (``/v1/models/{name}:predict``, ``/health``, ``/ready``,
    ``/metrics``) on the package's own HTTP/1.1 server; needs the ``[serving]`` extra.
``ml-utilities models list|show|deploy|promote|rollback|monitor``
    The registry's models (``--registry-url``, ``--artifact-root``, as ``serve`` takes them):
    versions, aliases and rollouts (``list``, ``show``); ``deploy`` validates a version against
    the champion, tests its performance through the serving path and starts its gradual
    rollout (:class:`~ml_utilities.lifecycle.ModelLifecycleManager`); ``promote`` and
    ``rollback`` end a running rollout by hand; ``monitor`` reads a running server's rollout
    and ``/metrics`` (step, weights, per-version requests, errors, p99, drift). ``--json``
    prints JSON instead of tables.
``ml-utilities similar index DIR --out INDEX_DIR`` / ``similar query FILE --index INDEX_DIR``
    Music similarity and plagiarism detection. ``index`` trains a key-invariant similarity
    model on DIR's audio files (unless ``--model`` names a trained one) and indexes them;
    where INDEX_DIR already holds an index, only the files not in it yet are added (a new
    version). Progress on stderr, a JSON summary on stdout. ``query`` lists the indexed tracks
    most similar to FILE, each with its score, the verdict against the model's threshold and
    the matching passages (time ranges, transposition, tempo ratio); ``--json``, ``--plot``.

Exit codes: 0 on success, 1 when an input cannot be read or an output cannot be written, or a
model, version or running rollout is not there (one line on stderr, no traceback; ``-v`` adds
it), 2 for bad arguments or configuration, and for a refused deployment. ``similar query``
answers with its status, as grep does: 0 when a track matches, 1 when none does, 2 on any
error.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gc
import importlib.util
import json
import logging
import math
import os
import re
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from importlib import metadata
from pathlib import Path
from typing import IO, Any

import numpy as np

from ml_utilities._fs import atomic_file

__all__ = ["main"]

logger = logging.getLogger(__name__)

PROG = "ml-utilities"

#: Feature arrays written per input, in this order.
FEATURE_NAMES = ("mel", "mfcc", "mfcc_delta", "mfcc_delta2")


class CommandError(Exception):
    """A failure to report on one line, with the exit code to return."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


# -- helpers ---------------------------------------------------------------------------------


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _describe(exc: BaseException) -> str:
    """A one-line message for ``exc``: its own text, else its cause's, else its type."""
    current: BaseException | None = exc
    visited: set[int] = set()
    while current is not None and id(current) not in visited:
        visited.add(id(current))
        text = " ".join(str(current).split())
        if text:
            return text
        current = current.__cause__ or current.__context__
    return type(exc).__name__


def _clear_tracebacks(exc: BaseException | None) -> None:
    """Drop the frames an exception chain holds (and the objects they hold)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        exc.__traceback__ = None
        exc = exc.__cause__ or exc.__context__


@contextlib.contextmanager
def _atomic_output(path: Path, mode: str = "wb") -> Iterator[IO[Any]]:
    """Write ``path`` through a temporary file in the same folder, renamed into place at the
    end, so that a reader never sees half a file and a failure leaves no file behind; the file
    gets the umask's default mode (``0o666 & ~umask``), as a plain ``open`` would give it."""
    folder = path.parent
    if not folder.is_dir():
        raise CommandError(f"cannot write {path}: folder {folder} does not exist")
    with atomic_file(path, mode) as handle:
        yield handle


def _distribution_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


# -- info ------------------------------------------------------------------------------------


def _info_data() -> dict[str, Any]:
    import platform

    import ml_utilities
    from ml_utilities.config import ConfigError, get_settings

    versions: dict[str, str | None] = {
        "ml_utilities": ml_utilities.__version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
    }
    for dist in ("soundfile", "soxr", "librosa", "scipy", "matplotlib"):
        versions[dist] = _distribution_version(dist)
    try:
        settings: dict[str, Any] | str = get_settings().as_dict()
    except ConfigError as exc:
        settings = f"invalid: {exc}"
    return {
        "versions": versions,
        "build_info": ml_utilities.build_info(),
        "platform": platform.platform(),
        "settings": settings,
    }


def _print_section(title: str, rows: dict[str, Any]) -> None:
    print(title)
    width = max((len(k) for k in rows), default=0)
    for key, value in rows.items():
        shown = "not installed" if value is None and title == "versions" else value
        print(f"  {key.ljust(width)}  {shown}")


def cmd_info(args: argparse.Namespace) -> int:
    """Print versions, build information and settings."""
    data = _info_data()
    if args.json:
        print(json.dumps(data, indent=2, sort_keys=True, default=str))
        return 0
    _print_section("versions", data["versions"])
    _print_section("build", data["build_info"])
    print(f"platform\n  {data['platform']}")
    if isinstance(data["settings"], dict):
        _print_section("settings", data["settings"])
    else:
        print(f"settings\n  {data['settings']}")
    return 0


# -- features --------------------------------------------------------------------------------


def _delta_width(n_frames: int) -> int:
    """librosa's default width 9, narrowed (odd, >= 3) for signals shorter than 9 frames; 0
    when there are too few frames for any delta."""
    width = min(9, n_frames if n_frames % 2 else n_frames - 1)
    return width if width >= 3 else 0


def extract_features(
    y: np.ndarray, sr: float, *, n_mfcc: int = 13, n_mels: int = 128
) -> dict[str, np.ndarray]:
    """Mel power spectrogram, MFCC and its deltas of order 1 and 2, as librosa computes them.

    Parameters
    ----------
    y : np.ndarray [shape=(n,)], float
        Mono audio.
    sr : number > 0
        Its sampling rate.
    n_mfcc, n_mels : int > 0
        Coefficients and mel bands.

    Returns
    -------
    dict
        ``mel`` (n_mels, t), ``mfcc``, ``mfcc_delta``, ``mfcc_delta2`` (n_mfcc, t).
    """
    from ml_utilities import audio

    mel = audio.melspectrogram(y=y, sr=sr, n_mels=n_mels)
    # mfcc(S=power_to_db(mel)) is what mfcc(y=...) computes, without a second STFT.
    mfcc = audio.mfcc(S=audio.power_to_db(mel), sr=sr, n_mfcc=n_mfcc)
    width = _delta_width(mfcc.shape[-1])
    if width:
        d1 = audio.delta(mfcc, width=width)
        d2 = audio.delta(mfcc, width=width, order=2)
    else:
        d1 = np.zeros_like(mfcc)
        d2 = np.zeros_like(mfcc)
    return {"mel": mel, "mfcc": mfcc, "mfcc_delta": d1, "mfcc_delta2": d2}


def _input_paths(args: argparse.Namespace) -> list[str]:
    """The files named on the command line, folders expanded to their audio files (sorted)."""
    from ml_utilities.features.catalog import find_audio_files

    paths: list[str] = []
    for name in args.files:
        if Path(name).is_dir():
            found = find_audio_files(name)
            if not found:
                raise CommandError(f"{name}: no audio files in this folder")
            paths.extend(str(p) for p in found)
        else:
            paths.append(name)
    return paths


def _load_or_fail(path: str, sr: int) -> tuple[np.ndarray, int]:
    """``audio.load(path, sr, mono=True)``, or a one-line CommandError naming the file."""
    from ml_utilities.audio import load

    with warnings.catch_warnings():
        # librosa's audioread fallback warns about itself; a CLI reports errors only.
        warnings.simplefilter("ignore")
        try:
            return load(path, sr=sr, mono=True)
        except Exception as exc:
            logger.debug("cannot load %s", path, exc_info=True)
            message = _describe(exc)
            _clear_tracebacks(exc)
        # audioread leaves its file open when it fails, held by the traceback: free it
        # here, while its ResourceWarning is still ignored.
        gc.collect()
    raise CommandError(f"{path}: {message}")


def _sources(args: argparse.Namespace) -> Iterator[tuple[str, str, str, Callable[[], Any]]]:
    """(label, stem, what the loader does, loader) for each input; the synthetic clip when
    there is none (generated, not loaded: its timing says so)."""
    if not args.files:
        from ml_utilities.bench import synthetic_clip

        yield (
            "synthetic 30 s test clip",
            "synthetic",
            "generated in",
            lambda: (synthetic_clip(30.0, args.sr), args.sr),
        )
        return
    stems: set[str] = set()
    for name in _input_paths(args):
        stem = Path(name).stem or "audio"
        unique, i = stem, 2
        while unique in stems:
            unique, i = f"{stem}-{i}", i + 1
        stems.add(unique)
        yield name, unique, "load", lambda path=name: _load_or_fail(path, args.sr)


def _check_plotting() -> None:
    if importlib.util.find_spec("matplotlib") is None:
        raise CommandError("--plot needs matplotlib: pip install 'ml_utilities[plot]'")


def _feature_config(args: argparse.Namespace) -> dict[str, Any]:
    return {"mfcc": {"n_mfcc": args.n_mfcc, "n_mels": args.n_mels}}


def _is_parquet(path: Path | None) -> bool:
    return path is not None and path.suffix.lower() in (".parquet", ".pq")


def cmd_features(args: argparse.Namespace) -> int:
    """Extract and summarise features; optionally save and plot them."""
    if args.plot is not None:
        _check_plotting()
    for output in (args.out, args.plot):
        if output is not None and not output.parent.is_dir():
            raise CommandError(f"cannot write {output}: folder {output.parent} does not exist")
    if args.out is not None and not _is_parquet(args.out) and args.out.suffix.lower() != ".npz":
        raise CommandError(f"--out {args.out}: expected a .npz or a .parquet file", code=2)
    if _is_parquet(args.out):
        return _features_catalog(args)

    results: list[tuple[str, str, float, dict[str, np.ndarray]]] = []
    plotted: list[tuple[str, np.ndarray, float]] = []
    failed = 0
    for label, stem, loading, loader in _sources(args):
        try:
            start = time.perf_counter()
            y, sr = loader()
            loaded = time.perf_counter()
            features = extract_features(y, sr, n_mfcc=args.n_mfcc, n_mels=args.n_mels)
            done = time.perf_counter()
        except Exception as exc:  # reported, and the other inputs go on
            logger.debug("failed on %s", label, exc_info=True)
            message = str(exc) if isinstance(exc, CommandError) else f"{label}: {_describe(exc)}"
            print(f"{PROG}: failed: {' '.join(message.split())}", file=sys.stderr, flush=True)
            failed += 1
            continue
        frames = features["mfcc"].shape[-1]
        print(
            f"{label}: {y.shape[-1] / sr:.2f} s at {sr} Hz, {frames} frames, "
            f"mel {features['mel'].shape[0]}x{frames}, mfcc {features['mfcc'].shape[0]}x{frames}"
            f" (+ delta, delta2); {loading} {1e3 * (loaded - start):.1f} ms, "
            f"features {1e3 * (done - loaded):.1f} ms",
            flush=True,
        )
        results.append((label, stem, float(sr), features))
        if args.plot is not None and len(plotted) < args.plot_max:
            plotted.append((label, y, float(sr)))

    if failed and results:
        print(f"{len(results)} done, {failed} failed", file=sys.stderr)
    if not results:  # every input failed (each said why): nothing to save or draw
        return 1
    if args.out is not None:
        arrays: dict[str, np.ndarray] = {}
        for _, stem, sr, features in results:
            for key in FEATURE_NAMES:
                arrays[f"{stem}/{key}"] = features[key]
            arrays[f"{stem}/sr"] = np.asarray(sr)
        with _atomic_output(args.out) as handle:
            np.savez(handle, **arrays)  # type: ignore[arg-type]  # numpy's stub: allow_pickle
        print(f"wrote {args.out} ({len(arrays)} arrays)")
    if args.plot is not None:
        _plot_inputs(args, plotted, total=len(results))
    return 1 if failed else 0


def _features_catalog(args: argparse.Namespace) -> int:
    """Every FeatureExtractor group over the inputs, one summary row per track, to Parquet."""
    if importlib.util.find_spec("pyarrow") is None:
        raise CommandError("--out .parquet needs pyarrow: pip install 'ml_utilities[catalog]'")
    from ml_utilities.features.catalog import extract_catalog

    paths = _input_paths(args)
    if not paths:
        raise CommandError("--out .parquet extracts a catalog: name audio files or folders", 2)
    if args.out.is_file() and args.resume:
        import pyarrow.parquet as pq

        try:
            pq.read_schema(args.out)  # the footer only: a file that is not Parquet, at once
        except Exception as exc:
            raise CommandError(f"{args.out}: cannot resume from it: {_describe(exc)}") from exc
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # per-file failures are collected and reported below
        try:
            table = extract_catalog(
                paths,
                sample_rate=args.sr,
                feature_config=_feature_config(args),
                out=args.out,
                resume=args.resume,
                progress=args.progress,
                checkpoint_every=args.checkpoint_every,
                checkpoint_seconds=args.checkpoint_seconds,
            )
        except CommandError:
            raise
        except Exception as exc:
            logger.debug("catalog extraction failed", exc_info=True)
            raise CommandError(f"{args.out}: {_describe(exc)}") from exc
        gc.collect()
    elapsed = time.perf_counter() - start
    extracted = len(table.extracted)
    before = len(table.ids) - extracted
    print(
        f"wrote {args.out}: {len(table.ids)} tracks x {len(table.columns)} columns "
        f"({extracted} extracted in {elapsed:.1f} s, {before} already there, "
        f"{len(table.errors)} failed)"
    )
    for key, message in sorted(table.errors.items()):
        print(f"{PROG}: failed: {key}: {' '.join(message.split())}", file=sys.stderr)
    if args.plot is not None:
        plotted = []
        for path in [p for p in paths if p not in table.errors][: args.plot_max]:
            y, sr = _load_or_fail(path, args.sr)
            plotted.append((path, y, float(sr)))
        _plot_inputs(args, plotted, total=len(paths) - len(table.errors))
    return 1 if table.errors else 0


def _plot_inputs(
    args: argparse.Namespace, plotted: Sequence[tuple[str, np.ndarray, float]], total: int
) -> None:
    from ml_utilities.features import FeatureExtractor

    extractor = FeatureExtractor(_feature_config(args))
    rows = []
    for i, (label, y, sr) in enumerate(plotted, 1):
        print(f"plotting {i}/{len(plotted)}: {label}", file=sys.stderr, flush=True)
        rows.append((label, y, sr, extractor.extract_comprehensive_features_sync(y, sr)))
    plot_features(rows, args.plot)
    more = f" (the first {len(rows)} of {total} inputs)" if total > len(rows) else ""
    print(f"wrote {args.plot}{more}")


def _short(name: str, width: int = 40) -> str:
    """``name`` cut in the middle to at most ``width`` characters (a panel title's room)."""
    if len(name) <= width:
        return name
    keep = (width - 1) // 2
    return f"{name[:keep]}\u2026{name[-(width - 1 - keep) :]}"


def plot_features(
    rows: Sequence[tuple[str, np.ndarray, float, dict[str, dict[str, Any]]]],
    path: Path,
    *,
    n_fft: int = 2048,
    hop_length: int = 512,
) -> None:
    """Draw the feature groups of each input into a PNG: one row per input with its
    spectrogram (dB, log frequency), chromagram, MFCC and onset envelope with the tracked
    beats. Uses matplotlib's Agg canvas (no display, no global pyplot state).

    ``rows`` holds ``(label, y, sr, features)`` with ``features`` the dictionary of
    :meth:`FeatureExtractor.extract_comprehensive_features_sync` for ``y``.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from ml_utilities import audio

    fig = Figure(figsize=(22, 3.4 * max(len(rows), 1)), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(max(len(rows), 1), 4, squeeze=False)
    for (label, y, sr, features), (ax_s, ax_c, ax_m, ax_o) in zip(rows, axes, strict=False):
        name = _short(Path(label).name)
        S = np.abs(audio.stft(y, n_fft=n_fft, hop_length=hop_length))
        s_db = audio.amplitude_to_db(S, ref=float(S.max()) if S.size and S.max() > 0 else 1.0)
        times = np.arange(S.shape[-1] + 1) * hop_length / sr
        freqs = np.arange(S.shape[0] + 1) * sr / n_fft
        mesh = ax_s.pcolormesh(times, freqs, s_db, cmap="magma", shading="flat")
        ax_s.set_yscale("symlog", linthresh=256.0, linscale=0.5)
        ax_s.set_ylim(0, sr / 2)
        ax_s.set(title=f"{name}: spectrogram", xlabel="Time (s)", ylabel="Frequency (Hz)")
        fig.colorbar(mesh, ax=ax_s, format="%+2.0f dB")

        chroma = features["harmonic"]["chroma"]
        mesh = ax_c.pcolormesh(
            np.arange(chroma.shape[-1] + 1) * hop_length / sr,
            np.arange(chroma.shape[0] + 1),
            chroma,
            cmap="viridis",
            shading="flat",
            vmin=0.0,
            vmax=1.0,
        )
        if chroma.shape[0] == 12:
            notes = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"]
            ax_c.set_yticks(np.arange(12) + 0.5, notes)
        ax_c.set(title="chromagram", xlabel="Time (s)", ylabel="Pitch class")
        fig.colorbar(mesh, ax=ax_c)

        # c0 (the frame's log energy) is an order of magnitude above the others and would
        # set the colour scale alone: left out, as librosa's examples do, and the scale made
        # symmetric about 0 over the coefficients shown
        mfcc = features["timbre"]["mfcc"]
        first = 1 if mfcc.shape[0] > 1 else 0
        shown = mfcc[first:]
        limit = float(np.max(np.abs(shown))) if shown.size else 1.0
        mesh = ax_m.pcolormesh(
            np.arange(mfcc.shape[-1] + 1) * hop_length / sr,
            np.arange(first, mfcc.shape[0] + 1),
            shown,
            cmap="coolwarm",
            shading="flat",
            vmin=-limit,
            vmax=limit,
        )
        title = f"MFCC {first}-{mfcc.shape[0] - 1}" + (" (c0 left out)" if first else "")
        ax_m.set(title=title, xlabel="Time (s)", ylabel="Coefficient")
        fig.colorbar(mesh, ax=ax_m)

        envelope = audio.onset_strength(y=y, sr=sr, hop_length=hop_length)
        env_times = np.arange(envelope.shape[-1]) * hop_length / sr
        ax_o.plot(env_times, envelope, color="tab:blue", linewidth=0.8, label="onset strength")
        beats = features["rhythm"]["beats"]
        if beats is not None and len(beats):
            ax_o.vlines(
                np.asarray(beats) * hop_length / sr,
                0,
                float(envelope.max()) if envelope.size else 1.0,
                color="tab:red",
                alpha=0.6,
                linestyle="--",
                label="beats",
            )
        tempo = features["rhythm"]["tempo"]
        title = "onset envelope" + (f", {tempo:.1f} BPM" if tempo else "")
        ax_o.set(title=title, xlabel="Time (s)", ylabel="Strength")
        ax_o.set_xlim(0, max(float(env_times[-1]) if env_times.size else 0.0, 1e-3))
        ax_o.legend(loc="upper right", fontsize="small")
    with _atomic_output(path) as handle:
        fig.savefig(handle, format="png", dpi=90)


# -- bench -----------------------------------------------------------------------------------


def _load_average() -> str:
    """The 1-minute load average (what else runs beside a benchmark), or "unknown"."""
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except OSError:  # pragma: no cover - not on every platform
        return "unknown"


def cmd_bench(args: argparse.Namespace) -> int:
    """Time librosa against ml_utilities and print the table."""
    if getattr(args, "device", "cpu") == "cuda":
        from ml_utilities.bench import cmd_bench_cuda

        return cmd_bench_cuda(args)
    if importlib.util.find_spec("librosa") is None:
        print(
            f"{PROG} bench: librosa is not installed, and the benchmark compares against it; "
            "install it with: pip install 'ml_utilities[bench]'",
            file=sys.stderr,
        )
        return 2
    if args.json is not None and not args.json.parent.is_dir():
        raise CommandError(f"cannot write {args.json}: folder {args.json.parent} does not exist")
    from ml_utilities import bench

    if args.clip is not None and not args.clip.is_file():
        raise CommandError(f"{args.clip}: no such file")
    clip = args.clip if args.clip is not None else bench.find_reference_clip()
    source = str(clip) if clip is not None else f"synthetic signal (no {bench.CLIP_NAME} found)"
    print(f"signal: {source}")
    from ml_utilities.config import get_settings

    print(
        f"median of {args.repeat} runs after one warm-up; ml_utilities threads: "
        f"{get_settings().max_workers} ({os.cpu_count()} cores); load average "
        f"{_load_average()} at the start"
    )
    print(bench.format_header(), flush=True)
    error = None
    with warnings.catch_warnings():
        # librosa's PySoundFile/audioread fallback warns about itself before failing on a bad
        # file: the command reports the error only, as the features path does
        warnings.filterwarnings("ignore", "PySoundFile failed", UserWarning)
        warnings.filterwarnings("ignore", ".*audioread", FutureWarning)
        # ... and audioread drops the file it failed on unclosed
        warnings.simplefilter("ignore", ResourceWarning)
        try:
            cases = bench.make_cases(quick=args.quick, clip=clip)
        except Exception as exc:
            logger.debug("cannot prepare the benchmark on %s", clip, exc_info=True)
            error = f"{clip}: {_describe(exc)}"
            _clear_tracebacks(exc)
        if error is not None:  # free what the traceback held while that is still ignored
            gc.collect()
    if error is not None:
        raise CommandError(error)
    results = bench.run_bench(
        repeat=args.repeat,
        cases=cases,
        on_result=lambda row: print(bench.format_row(row), flush=True),
    )
    print(f"load average {_load_average()} at the end; spread: (slowest - fastest) / median")
    if args.json is not None:
        payload = {
            "environment": bench.environment(),
            "signal": source,
            "quick": args.quick,
            "repeat": args.repeat,
            "results": [row.as_dict() for row in results],
        }
        with _atomic_output(args.json, "w") as handle:
            json.dump(payload, handle, indent=2, default=str)
            handle.write("\n")
        print(f"wrote {args.json}")
    return 0


# -- models ----------------------------------------------------------------------------------

#: a rollout's status as ``models list`` shows it (running: with its step)
_ROLLOUT_WORDS = {
    "promoted": "promoted",
    "rolled_back": "rolled back",
    "shadow_passed": "shadow passed",
}
#: the metrics ``models show`` puts in its table, in this order, where a version has them
_KEY_METRICS = ("accuracy", "f1_weighted", "r2", "mae", "rmse")


def _models_command(
    run: Callable[[argparse.Namespace], int],
) -> Callable[[argparse.Namespace], int]:
    """``run`` with the library's errors turned into one-line CommandErrors: an unknown model,
    version or alias exits 1, a bad argument or a refused deployment 2, anything else 1 (its
    traceback logged, shown with ``-v``)."""

    @functools.wraps(run)
    def wrapped(args: argparse.Namespace) -> int:
        from ml_utilities.exceptions import ParameterError
        from ml_utilities.models.errors import DeploymentRefusedError, ModelNotFoundError

        try:
            return run(args)
        except CommandError:
            raise
        except Exception as exc:
            logger.debug("models %s failed", args.models_command, exc_info=True)
            message = _describe(exc)
            if isinstance(exc, DeploymentRefusedError):
                raise CommandError(f"deployment refused: {message}", 2) from None
            if isinstance(exc, ModelNotFoundError):
                raise CommandError(message, 1) from None
            if isinstance(exc, ParameterError):
                raise CommandError(message, 2) from None
            raise CommandError(f"{type(exc).__name__}: {message}", 1) from None

    return wrapped


@contextlib.contextmanager
def _model_manager(args: argparse.Namespace) -> Iterator[Any]:
    """A ModelManager on ``--registry-url`` and ``--artifact-root`` (the defaults under
    ``ML_UTILITIES_HOME`` where absent), its registry opened, and closed at the end."""
    from ml_utilities.models import ModelManager

    manager = ModelManager(registry_url=args.registry_url, artifact_root=args.artifact_root)
    registry = manager.registry
    try:
        yield manager
    finally:
        registry.dispose()


def _versions_of(registry: Any, name: str) -> list[Any]:
    """Every version of ``name``, oldest first; ModelNotFoundError where there is none."""
    from ml_utilities.models.errors import ModelNotFoundError

    registry.check_name(name)
    versions = registry.list_versions(name)
    if not versions:
        raise ModelNotFoundError(f"no registered model named {name!r}")
    return list(versions)


def _when(t: float | None) -> str:
    return "-" if t is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


def _v(version: Any) -> str:
    return "-" if version is None else f"v{version}"


def _number(value: Any, spec: str = ".4g") -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return "-"
    return format(value, spec)


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]], indent: str = "") -> list[str]:
    """Left-aligned columns, two spaces apart."""
    cells = [[str(c) for c in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return [
        indent + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in cells
    ]


def _print_json(data: Any, *, compact: bool = False) -> None:
    if compact:
        print(json.dumps(data, default=str, separators=(",", ":")), flush=True)
    else:
        print(json.dumps(data, indent=2, default=str), flush=True)


def _key_metrics(metrics: dict[str, Any]) -> str:
    shown = [k for k in _KEY_METRICS if k in metrics]
    if not shown:  # another kind of model: its first numeric metrics
        shown = [
            k for k, v in metrics.items() if isinstance(v, (int, float)) and not k.startswith("n_")
        ][:3]
    text = ", ".join(f"{k} {_number(metrics[k])}" for k in shown)
    return text or "-"


def _steps_text(steps: Sequence[float]) -> str:
    return " ".join(f"{p:g}%" for p in steps)


def _rollout_state(rollout: Any) -> str:
    """``running at 25%`` (``shadow at 25%``), ``promoted``, ``rolled back``, ``shadow passed``
    or ``none``."""
    if rollout is None:
        return "none"
    if rollout.running:
        return f"{'shadow' if rollout.mode == 'shadow' else 'running'} at {rollout.step_percent:g}%"
    return _ROLLOUT_WORDS.get(rollout.status, rollout.status)


def _rollout_line(rollout: Any) -> str:
    """One line on a rollout: where it stands and between which versions."""
    r = rollout
    head = f"rollout {r.id} ({r.mode}, v{r.challenger} against v{r.champion} behind {r.alias!r})"
    step = f"step {r.step_index + 1}/{len(r.steps)} at {r.step_percent:g}%"
    if r.running:
        held = max(0.0, time.time() - r.step_started_at)
        if r.mode == "shadow":
            split = f"v{r.challenger} predicts every request in shadow, v{r.champion} answers"
        else:
            split = f"weights v{r.challenger} {r.weight:.4g}, v{r.champion} {1.0 - r.weight:.4g}"
        return f"{head}: running, {step} for {held:.0f} s (window {r.window_s:g} s); {split}"
    state = _ROLLOUT_WORDS.get(r.status, r.status)
    reason = f": {r.reason}" if r.reason else ""
    return f"{head}: {state} at {_when(r.updated_at)} ({step}){reason}"


def _version_row(mv: Any) -> dict[str, Any]:
    return {
        "version": mv.version,
        "framework": mv.framework,
        "architecture": mv.architecture,
        "task": mv.task,
        "metrics": mv.metrics,
        "metadata": mv.metadata,
        "aliases": list(mv.aliases),
        "created_at": mv.created_at,
        "fingerprint": mv.fingerprint,
    }


def _deployment_row(dep: Any) -> dict[str, Any]:
    return {
        "id": dep.id,
        "version": dep.version,
        "status": dep.status,
        "reason": dep.reason,
        "config": dep.config,
        "report": dep.report,
        "created_at": dep.created_at,
    }


@_models_command
def cmd_models_list(args: argparse.Namespace) -> int:
    """One row per registered model: latest version, champion, challenger, rollout."""
    rows: list[dict[str, Any]] = []
    with _model_manager(args) as manager:
        registry = manager.registry
        for name in registry.list_models():
            versions = registry.list_versions(name)
            aliases = registry.aliases(name)
            rollout = registry.get_rollout(name)
            rows.append(
                {
                    "name": name,
                    "latest": versions[-1].version if versions else None,
                    "versions": len(versions),
                    "champion": aliases.get("champion"),
                    "challenger": aliases.get("challenger"),
                    "aliases": aliases,
                    "rollout": None if rollout is None else rollout.to_dict(),
                    "rollout_state": _rollout_state(rollout),
                }
            )
    if args.json:
        _print_json(rows)
        return 0
    if not rows:
        print("no models registered")
        return 0
    table = [
        (
            r["name"],
            _v(r["latest"]),
            _v(r["champion"]),
            _v(r["challenger"]),
            r["rollout_state"],
        )
        for r in rows
    ]
    print("\n".join(_table(("model", "latest", "champion", "challenger", "rollout"), table)))
    return 0


@_models_command
def cmd_models_show(args: argparse.Namespace) -> int:
    """A model's versions, its rollout with its events, and its last deployments."""
    with _model_manager(args) as manager:
        registry = manager.registry
        versions = _versions_of(registry, args.name)
        if args.version is not None:
            versions = [registry.get_version(args.name, args.version)]
        aliases = registry.aliases(args.name)
        rollout = registry.get_rollout(args.name)
        deployments = registry.list_deployments(args.name)
    if args.version is not None:
        deployments = [d for d in deployments if d.version == versions[0].version]
    deployments = deployments[-args.deployments :]
    if args.json:
        _print_json(
            {
                "name": args.name,
                "aliases": aliases,
                "versions": [_version_row(mv) for mv in versions],
                "rollout": None if rollout is None else rollout.to_dict(),
                "deployments": [_deployment_row(d) for d in deployments],
            }
        )
        return 0
    pointed = ", ".join(f"{a} -> v{v}" for a, v in sorted(aliases.items())) or "none"
    print(f"{args.name}: aliases {pointed}")
    table = [
        (
            _v(mv.version),
            mv.framework,
            mv.architecture,
            mv.task,
            _key_metrics(mv.metrics),
            ",".join(mv.aliases) or "-",
            _when(mv.created_at),
        )
        for mv in versions
    ]
    headers = ("version", "framework", "architecture", "task", "metrics", "aliases", "created")
    print("\n".join(_table(headers, table)))
    if rollout is None:
        print("rollout: none")
    else:
        print(_rollout_line(rollout))
        marks = [
            f"[{p:g}%]" if i == rollout.step_index else f"{p:g}%"
            for i, p in enumerate(rollout.steps)
        ]
        print(f"  steps {' '.join(marks)}, {rollout.window_s:g} s per step at least")
        events = [
            (_when(e.get("time")), e.get("event", "?"), e.get("detail") or "")
            for e in rollout.events
        ]
        print("\n".join(_table(("time", "event", "detail"), events, indent="  ")))
    if not deployments:
        print("deployments: none")
    else:
        print(f"deployments (the last {len(deployments)}):")
        rows = [(_when(d.created_at), _v(d.version), d.status, d.reason or "") for d in deployments]
        print("\n".join(_table(("time", "version", "status", "reason"), rows, indent="  ")))
    return 0


def _steps(text: str) -> list[float]:
    """``--steps 5,25,50,100``: percentages (the registry checks their order and range)."""
    try:
        steps = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected percentages separated by commas such as 5,25,50,100, got {text!r}"
        ) from None
    if not steps:
        raise argparse.ArgumentTypeError("expected at least one percentage")
    return steps


def _deploy_lines(report: dict[str, Any]) -> list[str]:
    """The numbers of each check of a deployment report (those it holds)."""
    name, version = report.get("model"), report.get("version")
    lines: list[str] = []
    validation = report.get("validation")
    if validation is not None:
        champion = validation.get("champion")
        checks = validation.get("checks", {})
        lines.append("validation: passed")
        signature = checks.get("signature")
        if signature is not None:
            lines.append(f"  signature: compatible with the champion v{champion}")
        metric = checks.get("metric", {})
        mine, theirs = metric.get("candidate"), metric.get("champion")
        if mine is not None:
            text = f"  {mine['name']}: {_number(mine['value'])} (v{version})"
            if theirs is not None:
                text += f" against {_number(theirs['value'])} (champion v{champion})"
            else:
                text += " (no champion to compare with)"
            lines.append(f"{text} on {mine['rows']} held-out rows")
    performance = report.get("performance")
    if performance is not None:
        batches = performance.get("batches", {})
        memory = f"{_number(performance.get('memory_mb'))} MB"
        if not batches:
            lines.append(f"performance: skipped (--skip-performance); v{version} loads, {memory}")
        else:
            lines.append("performance: passed")
            for size, b in batches.items():
                lines.append(
                    f"  batch {size}: {b['requests']} requests, p50 {_number(b['p50_ms'])} ms, "
                    f"p99 {_number(b['p99_ms'])} ms, {_number(b['rows_per_s'], '.1f')} rows/s"
                )
            rss = _number(performance.get("rss_mb"), ".1f")
            lines.append(f"  memory: {memory} (this process: {rss} MB resident)")
    rollout = report.get("rollout")
    if rollout is not None:
        if "id" not in rollout:  # no champion before: this version simply became it
            lines.append(f"rollout: none needed, v{rollout.get('champion')} is the first champion")
        else:
            lines.append(
                f"rollout {rollout['id']} started ({rollout['mode']}): steps "
                f"{_steps_text(rollout['steps'])}, {rollout['window_s']:g} s per step at least"
            )
            if rollout["mode"] == "shadow":
                lines.append(
                    f"  v{rollout['challenger']} predicts every request of {name} in shadow; "
                    f"v{rollout['champion']} answers"
                )
            else:
                lines.append(
                    f"  v{rollout['challenger']} takes {rollout['step_percent']:g}% of {name}'s "
                    f"traffic, v{rollout['champion']} the rest"
                )
            lines.append(
                "  the servers on this registry judge it step by step; watch it with "
                f"'{PROG} models monitor {name} --url URL'"
            )
    return lines


@_models_command
def cmd_models_deploy(args: argparse.Namespace) -> int:
    """Validate, performance-test and start the rollout of one version."""
    from ml_utilities.lifecycle import ModelLifecycleManager
    from ml_utilities.models.errors import DeploymentRefusedError

    rollout: dict[str, Any] = {}
    if args.steps is not None:
        rollout["steps"] = args.steps
    if args.window_s is not None:
        rollout["window_s"] = args.window_s
    if args.shadow:
        rollout["mode"] = "shadow"
    performance: dict[str, Any] = {}
    if args.max_p99_ms is not None:
        performance["max_p99_ms"] = args.max_p99_ms
    if args.skip_performance:
        # no batch size to time: the version is only loaded through the serving path
        performance["batch_sizes"] = []
    config = {
        key: value for key, value in (("performance", performance), ("rollout", rollout)) if value
    }

    with _model_manager(args) as manager:
        registry = manager.registry
        name = args.name
        _versions_of(registry, name)
        version = int(registry.get_version(name, args.version).version)
        champion = registry.aliases(name).get("champion")
        if champion == version:
            raise CommandError(f"{name} v{version} is already the champion: nothing to deploy", 2)
        current = registry.get_rollout(name)
        if current is not None and current.running:
            raise CommandError(
                f"a rollout of {name} (v{current.challenger} against v{current.champion}) is "
                "already running: promote it or roll it back first",
                2,
            )
        if not args.json:
            against = f"the champion v{champion}" if champion is not None else "no champion yet"
            print(f"deploying {name} v{version} against {against}", flush=True)
        lifecycle = ModelLifecycleManager(manager)
        try:
            try:
                report = lifecycle.deploy_model_sync(name, version, config)
            except DeploymentRefusedError as exc:
                done = [
                    d.report
                    for d in registry.list_deployments(name)
                    if d.version == version and d.status == "refused"
                ]
                partial = {**(done[-1] if done else {}), "model": name, "version": version}
                if args.json:
                    _print_json({**partial, "status": "refused", "reason": _describe(exc)})
                else:
                    for line in _deploy_lines(partial):
                        print(line)
                raise
        finally:
            lifecycle.close_sync()
            lifecycle.service.close_sync()
    if args.json:
        _print_json({**report, "status": "deployed"})
    else:
        print("\n".join(_deploy_lines(report)))
    return 0


@_models_command
def cmd_models_promote(args: argparse.Namespace) -> int:
    """Promote the running rollout's challenger, or point ``champion`` at ``--version``."""
    with _model_manager(args) as manager:
        registry = manager.registry
        name = args.name
        _versions_of(registry, name)
        wanted = None
        if args.version is not None:
            wanted = int(registry.get_version(name, args.version).version)
        rollout = registry.get_rollout(name)
        if rollout is not None and rollout.running:
            if wanted is not None and wanted != rollout.challenger:
                raise CommandError(
                    f"the running rollout of {name} is of v{rollout.challenger}, not v{wanted}: "
                    "promote it without --version, or roll it back first",
                    2,
                )
            done = registry.promote_rollout(name)
            if done is None:
                raise CommandError(f"the rollout of {name} ended before it could be promoted")
            result = {
                "model": name,
                "alias": done.alias,
                "from": rollout.champion,
                "to": done.challenger,
                "changed": True,
                "rollout": done.to_dict(),
            }
            text = (
                f"{name}: rollout {done.id} promoted at {rollout.step_percent:g}%: "
                f"{done.alias} v{rollout.champion} -> v{done.challenger}"
            )
        else:
            if wanted is None:
                raise CommandError(
                    f"no rollout of {name} is running: name the version to make champion "
                    "with --version",
                    2,
                )
            before = registry.aliases(name).get("champion")
            changed = before != wanted
            if changed:
                registry.set_alias(name, "champion", wanted)
                text = f"{name}: champion {_v(before)} -> v{wanted}"
            else:
                text = f"{name}: v{wanted} is already the champion; nothing changed"
            result = {
                "model": name,
                "alias": "champion",
                "from": before,
                "to": wanted,
                "changed": changed,
                "rollout": None,
            }
    if args.json:
        _print_json(result)
    else:
        print(text)
    return 0


@_models_command
def cmd_models_rollback(args: argparse.Namespace) -> int:
    """Roll the running rollout back: every request goes to the champion again."""
    with _model_manager(args) as manager:
        registry = manager.registry
        name = args.name
        _versions_of(registry, name)
        rollout = registry.get_rollout(name)
        if rollout is None or not rollout.running:
            last = (
                "" if rollout is None else f" (rollout {rollout.id} is {_rollout_state(rollout)})"
            )
            raise CommandError(f"no rollout of {name} is running{last}")
        done = registry.rollback_rollout(name, args.reason)
        if done is None:
            raise CommandError(f"no rollout of {name} is running (it ended meanwhile)")
    if args.json:
        _print_json(done.to_dict())
    else:
        print(
            f"{name}: rollout {done.id} of v{done.challenger} rolled back at "
            f"{rollout.step_percent:g}%: every request goes to the champion v{done.champion} "
            f"again (reason: {done.reason})"
        )
    return 0


# Prometheus text exposition: ``name{label="value",...} value [timestamp]``
_SAMPLE = re.compile(r"^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\S+)?\s*$")
_LABEL = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"')


def parse_prometheus(text: str) -> list[tuple[str, dict[str, str], float]]:
    """``(metric, labels, value)`` for every sample of a Prometheus text exposition."""

    def unescape(value: str) -> str:
        return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), value)

    samples = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        if match is None:
            continue
        try:
            value = float(match.group(3))
        except ValueError:
            continue
        labels = {k: unescape(v) for k, v in _LABEL.findall(match.group(2) or "")}
        samples.append((match.group(1), labels, value))
    return samples


def _http_get(url: str, timeout: float) -> tuple[int, bytes]:
    """``(status, body)`` of a GET of ``url``; CommandError where the server cannot be reached."""
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, headers={"Accept": "application/json, text/plain"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return int(response.status), response.read()
    except urllib.error.HTTPError as exc:
        try:
            return int(exc.code), exc.read()
        finally:
            exc.close()
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise CommandError(f"{url}: cannot reach the server ({_describe(reason)})") from None


def _server_snapshot(base: str, name: str, timeout: float) -> dict[str, Any]:
    """The rollout of ``name`` and its gauges as the server at ``base`` answers them."""
    import urllib.parse

    url = f"{base}/v1/rollouts/{urllib.parse.quote(name, safe='')}"
    status, body = _http_get(url, timeout)
    rollout: dict[str, Any] | None = None
    if status == 200:
        try:
            rollout = json.loads(body)
        except ValueError:
            raise CommandError(f"{url}: the answer is not JSON") from None
        if not isinstance(rollout, dict):
            raise CommandError(f"{url}: expected a JSON object")
    elif status != 404:  # 404: the model never had a rollout
        raise CommandError(
            f"{url}: HTTP {status}: {' '.join(body.decode(errors='replace').split())[:200]}"
        )
    url = f"{base}/metrics"
    status, body = _http_get(url, timeout)
    if status != 200:
        raise CommandError(f"{url}: HTTP {status}")
    weights: dict[str, float] = {}
    step = score = alarm = None
    for metric, labels, value in parse_prometheus(body.decode(errors="replace")):
        if labels.get("model") != name:
            continue
        if metric == "ml_model_rollout_weight" and "version" in labels:
            weights[labels["version"]] = value
        elif metric == "ml_model_rollout_step_percent":
            step = value
        elif metric == "ml_model_drift_score":
            score = value
        elif metric == "ml_model_drift_alarm":
            alarm = value >= 0.5
    return {
        "model": name,
        "source": base,
        "time": time.time(),
        "rollout": rollout,
        "weights": weights,
        "step_percent": step,
        "drift": {"score": score, "alarm": alarm},
    }


def _snapshot_lines(snap: dict[str, Any]) -> list[str]:
    """``models monitor --url``'s text: the rollout, a row per version, the drift."""
    name, r = snap["model"], snap["rollout"]
    lines = [f"{name} at {snap['source']}, {_when(snap['time'])}"]
    if r is None:
        lines.append("rollout: none on this server")
    else:
        state = _ROLLOUT_WORDS.get(r["status"], r["status"])
        steps = r.get("steps") or []
        lines.append(
            f"rollout {r['id']} ({r['mode']}, v{r['challenger']} against v{r['champion']}): "
            f"{state}, step {r['step_index'] + 1}/{len(steps)} at {r['step_percent']:g}% "
            f"(steps {_steps_text(steps)})"
        )
        if r["status"] == "running":
            held = max(0.0, snap["time"] - float(r["step_started_at"]))
            lines.append(f"  in this step for {held:.0f} s (window {float(r['window_s']):g} s)")
        weight = float(r.get("weight", 0.0))
        fallback = {str(r["challenger"]): weight, str(r["champion"]): 1.0 - weight}
        rows = []
        stats = r.get("stats") or {}
        for role in ("champion", "challenger"):
            version = r[role]
            s = stats.get(role) or {}
            shown = snap["weights"].get(str(version), fallback[str(version)])
            metric = s.get("metric")
            metric_text = "-"
            if metric is not None:
                what = s.get("metric_name", "metric")
                metric_text = f"{what} {_number(metric)} ({s.get('outcomes', 0)} outcomes)"
            p99 = s.get("p99_ms")
            rows.append(
                (
                    f"v{version}",
                    role,
                    _number(shown),
                    s.get("requests", 0),
                    s.get("errors", 0),
                    "-" if p99 is None else f"{_number(p99, '.2f')} ms",
                    metric_text,
                )
            )
        headers = ("version", "role", "weight", "requests", "errors", "p99", "metric")
        lines += _table(headers, rows, indent="  ")
        lines.append("  (requests, errors, p99: this server process, in the current step)")
    drift = snap["drift"]
    if drift["score"] is None and drift["alarm"] is None:
        lines.append("drift: not monitored on this server")
    else:
        alarm = {True: "on", False: "off", None: "unknown"}[drift["alarm"]]
        lines.append(f"drift: score {_number(drift['score'], '.3f')}, alarm {alarm}")
    return lines


@_models_command
def cmd_models_monitor(args: argparse.Namespace) -> int:
    """A rollout as a running server sees it (``--url``), else the registry's row of it."""
    if args.count is not None and args.watch is None:
        raise CommandError("--count needs --watch", 2)
    base = None
    if args.url is not None:
        base = args.url.rstrip("/")
        if not base.startswith(("http://", "https://")):
            raise CommandError(f"--url {args.url}: expected an http:// or https:// address", 2)

    def registry_snapshot() -> dict[str, Any]:
        with _model_manager(args) as manager:
            registry = manager.registry
            _versions_of(registry, args.name)
            rollout = registry.get_rollout(args.name)
        return {"model": args.name, "source": "registry", "time": time.time(), "rollout": rollout}

    failed = False
    done = 0
    while True:
        done += 1
        try:
            if base is not None:
                snap = _server_snapshot(base, args.name, args.timeout)
                if args.json:
                    _print_json(snap, compact=args.watch is not None)
                else:
                    print("\n".join(_snapshot_lines(snap)), flush=True)
            else:
                snap = registry_snapshot()
                row = snap["rollout"]
                if args.json:
                    snap["rollout"] = None if row is None else row.to_dict()
                    _print_json(snap, compact=args.watch is not None)
                elif row is None:
                    print(f"{args.name}: no rollout", flush=True)
                else:
                    print(f"{args.name}: {_rollout_line(row)}", flush=True)
        except CommandError as exc:
            if args.watch is None:
                raise
            print(f"{PROG}: error: {exc}", file=sys.stderr, flush=True)
            failed = True
        if args.watch is None or (args.count is not None and done >= args.count):
            break
        time.sleep(args.watch)
    return 1 if failed else 0


def _add_models_command(commands: Any) -> None:
    """``models list|show|deploy|promote|rollback|monitor``."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--registry-url",
        default=None,
        help="SQLAlchemy URL of the model registry (default: SQLite under ML_UTILITIES_HOME)",
    )
    common.add_argument(
        "--artifact-root", default=None, help="folder or fsspec URL of the artifacts"
    )
    common.add_argument("--json", action="store_true", help="print JSON instead of a table")

    models = commands.add_parser(
        "models",
        help="registered models: list, show, deploy, promote, rollback, monitor",
        description="The registry's models, their versions, aliases and gradual rollouts.",
    )
    sub = models.add_subparsers(dest="models_command", required=True, metavar="ACTION")

    p = sub.add_parser(
        "list",
        parents=[common],
        help="one row per model: latest version, champion, challenger, rollout",
    )
    p.set_defaults(run=cmd_models_list)

    p = sub.add_parser(
        "show",
        parents=[common],
        help="a model's versions, its rollout and its last deployments",
    )
    p.add_argument("name", metavar="NAME")
    p.add_argument("--version", metavar="V", help="only this version (a number or an alias)")
    p.add_argument(
        "--deployments",
        type=_positive_int,
        default=5,
        metavar="N",
        help="the last N deployments (default 5)",
    )
    p.set_defaults(run=cmd_models_show)

    p = sub.add_parser(
        "deploy",
        parents=[common],
        help="validate a version, test its performance and start its gradual rollout",
        description="Validate VERSION against the champion (signature, metric on held-out "
        "rows), time it through the serving path (p99 per batch size, rows/s, memory), then "
        "start its rollout: the servers on this registry send it a growing share of the "
        "traffic, step by step, and roll it back on a breach. A refusal names the failed "
        "check and exits 2.",
    )
    p.add_argument("name", metavar="NAME")
    p.add_argument("version", metavar="VERSION", help="a version number or an alias")
    p.add_argument(
        "--steps",
        type=_steps,
        default=None,
        metavar="P,P,...",
        help="the challenger's share of the traffic at each step, in percent (default "
        "5,25,50,100; a canary rollout ends at 100)",
    )
    p.add_argument(
        "--window-s",
        type=_positive_float,
        default=None,
        metavar="S",
        help="seconds each step is held at least before it is judged (default 60)",
    )
    p.add_argument(
        "--shadow",
        action="store_true",
        help="a shadow rollout: the challenger predicts every request off the answer path, "
        "judged but never answering",
    )
    p.add_argument(
        "--max-p99-ms",
        type=_positive_float,
        default=None,
        metavar="X",
        help="the performance test's p99 latency limit per request, in ms (default 100)",
    )
    p.add_argument(
        "--skip-performance",
        action="store_true",
        help="time no batch size: only check that the version loads in the serving path",
    )
    p.set_defaults(run=cmd_models_deploy)

    p = sub.add_parser(
        "promote",
        parents=[common],
        help="promote the running rollout's challenger, or make --version the champion",
    )
    p.add_argument("name", metavar="NAME")
    p.add_argument(
        "--version",
        metavar="V",
        help="without a running rollout: the version 'champion' points to from now on",
    )
    p.set_defaults(run=cmd_models_promote)

    p = sub.add_parser(
        "rollback",
        parents=[common],
        help="roll the running rollout back: every request goes to the champion",
    )
    p.add_argument("name", metavar="NAME")
    p.add_argument(
        "--reason",
        default="rolled back by hand",
        metavar="TEXT",
        help="recorded with the rollout (default: 'rolled back by hand')",
    )
    p.set_defaults(run=cmd_models_rollback)

    p = sub.add_parser(
        "monitor",
        parents=[common],
        help="a rollout's step, weights, per-version stats and drift, from a running server",
        description="With --url, the rollout of NAME as the server answers it "
        "(/v1/rollouts/NAME: step, per-version requests, errors, p99 and metric of that "
        "server process) and its gauges (/metrics: weights, drift score and alarm); without "
        "it, the registry's row of the rollout.",
    )
    p.add_argument("name", metavar="NAME")
    p.add_argument(
        "--url", default=None, metavar="URL", help="the server, e.g. http://127.0.0.1:8000"
    )
    p.add_argument(
        "--timeout",
        type=_positive_float,
        default=5.0,
        metavar="S",
        help="seconds each request to the server may take (default 5)",
    )
    p.add_argument(
        "--watch",
        type=_positive_float,
        default=None,
        metavar="SECONDS",
        help="print again every SECONDS until interrupted (with --json: one JSON line each)",
    )
    p.add_argument(
        "--count", type=_positive_int, default=None, metavar="K", help="with --watch: stop after K"
    )
    p.set_defaults(run=cmd_models_monitor)


# -- similar ---------------------------------------------------------------------------------


def _extensions(text: str) -> tuple[str, ...]:
    """``--extensions wav,flac``: lower-case suffixes with their dot."""
    parts = [p.strip().lower().lstrip(".") for p in text.split(",")]
    found = tuple(dict.fromkeys(f".{p}" for p in parts if p))
    if not found:
        raise argparse.ArgumentTypeError(
            f"expected file extensions separated by commas such as wav,flac, got {text!r}"
        )
    return found


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}")
    return value


def _fpr(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a rate in (0, 1), got {text!r}") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"expected a rate in (0, 1), got {text!r}")
    return value


class _Progress:
    """One phase's progress on stderr: a tqdm bar on a terminal (when tqdm is installed), else
    plain lines (no carriage returns), one at the first item, at each tenth of the way and at
    least every ``interval`` seconds; nothing at all when disabled (``--quiet``)."""

    def __init__(
        self, desc: str, total: int, *, enabled: bool, unit: str = "files", interval: float = 30.0
    ) -> None:
        self.desc, self.total, self.unit, self.interval = desc, int(total), unit, interval
        self.enabled = enabled and self.total > 0
        self._bar: Any = None
        self._tenth = -1
        self._last = time.monotonic()
        if self.enabled and sys.stderr.isatty() and importlib.util.find_spec("tqdm") is not None:
            from tqdm import tqdm

            self._bar = tqdm(total=self.total, desc=desc, unit=unit.rstrip("s"), file=sys.stderr)

    def __enter__(self) -> _Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def update(self, done: int, note: str = "") -> None:
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.update(done - self._bar.n)
            if note:
                self._bar.set_postfix_str(note)
            return
        now = time.monotonic()
        tenth = 10 * done // self.total
        if tenth > self._tenth or now - self._last >= self.interval:
            self._tenth, self._last = tenth, now
            more = f", {note}" if note else ""
            print(
                f"{PROG}: {self.desc}: {done}/{self.total} {self.unit} "
                f"({100 * done / self.total:.0f}%){more}",
                file=sys.stderr,
                flush=True,
            )

    def write(self, line: str) -> None:
        """A message on stderr (always shown) that does not break the bar."""
        if self._bar is not None:
            self._bar.write(line, file=sys.stderr)
        else:
            print(line, file=sys.stderr, flush=True)


def _note(args: argparse.Namespace, line: str) -> None:
    """A progress message on stderr, unless ``--quiet``."""
    if not args.quiet:
        print(f"{PROG}: {line}", file=sys.stderr, flush=True)


def _similar_command(
    code: int,
) -> Callable[[Callable[[argparse.Namespace], int]], Callable[[argparse.Namespace], int]]:
    """``run`` with any error turned into a one-line CommandError of exit status ``code``
    (``code`` 2 where 1 is an answer: ``similar query``); its traceback logged, shown with
    ``-v``."""

    def decorate(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
        @functools.wraps(run)
        def wrapped(args: argparse.Namespace) -> int:
            from ml_utilities.exceptions import ParameterError

            try:
                return run(args)
            except CommandError as exc:
                if exc.code == 1 and code != 1:
                    raise CommandError(str(exc), code) from None
                raise
            except Exception as exc:
                logger.debug("similar %s failed", args.similar_command, exc_info=True)
                message = _describe(exc)
                if not isinstance(exc, (ParameterError, OSError)):
                    message = f"{type(exc).__name__}: {message}"
                raise CommandError(message, code) from None

        return wrapped

    return decorate


def _naming(path: Path, exc: BaseException) -> str:
    """``exc``'s message, prefixed with ``path`` where it does not name it already."""
    message = _describe(exc)
    return message if str(path) in message else f"{path}: {message}"


def _audio_files(folder: Path, extensions: Sequence[str]) -> list[Path]:
    if not folder.exists():
        raise CommandError(f"{folder}: no such folder")
    if not folder.is_dir():
        raise CommandError(f"{folder}: not a folder")
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in extensions)


def _is_empty_folder(path: Path) -> bool:
    return path.is_dir() and not any(path.iterdir())


def _open_index(path: Path, model: Any = None, code: int = 1) -> Any:
    """The similarity index saved under ``path`` (with ``model``, checked to be its own)."""
    from ml_utilities.similarity import SimilarityIndex

    if not (path / "index.json").is_file():
        what = "no such folder" if not path.exists() else "no similarity index here"
        raise CommandError(
            f"{path}: {what} (index.json is missing); build one with "
            f"'{PROG} similar index DIR --out {path}'",
            code,
        )
    try:
        return SimilarityIndex.load(path, model)
    except Exception as exc:
        logger.debug("cannot load the index %s", path, exc_info=True)
        raise CommandError(_naming(path, exc), code) from None


def _open_model(path: Path) -> Any:
    from ml_utilities.similarity import SimilarityModel

    try:
        return SimilarityModel.load(path)
    except Exception as exc:
        logger.debug("cannot load the model %s", path, exc_info=True)
        raise CommandError(f"--model {_naming(path, exc)}") from None


def _sequence_of(path: Path, n_views: int = 0, seed: int = 0) -> tuple[Any, list[Any]]:
    """The similarity sequence of the audio file ``path`` and of ``n_views`` augmented
    (plagiarised) versions of it; a one-line CommandError naming the file if it fails."""
    from ml_utilities.similarity import SAMPLE_RATE, augmented_views, sequence_features

    y, sr = _load_or_fail(str(path), SAMPLE_RATE)
    with warnings.catch_warnings(record=True) as caught:
        # the analysis' warnings (a silent file's empty tuning estimate, say) are logged once
        # per file, naming it, rather than shown as Python warnings
        warnings.simplefilter("always")
        try:
            seq = sequence_features(y, sr)
            views = [
                sequence_features(v, sr)
                for v in (augmented_views(y, sr, n_views, seed=seed) if n_views else [])
            ]
        except Exception as exc:
            logger.debug("cannot analyse %s", path, exc_info=True)
            raise CommandError(f"{path}: {_describe(exc)}") from None
    for text in dict.fromkeys(" ".join(str(w.message).split()) for w in caught):
        logger.warning("%s: %s", path, text)
    return seq, views


@_similar_command(1)
def cmd_similar_index(args: argparse.Namespace) -> int:
    """Train a model where none is given, then index DIR's audio files (incrementally)."""
    from ml_utilities.similarity import SimilarityIndex, train_siamese_network_sync

    started = time.perf_counter()
    folder, out, model_path = args.dir, args.out, args.model
    files = _audio_files(folder, args.extensions)
    if not files:
        raise CommandError(f"{folder}: no audio files in this folder ({','.join(args.extensions)})")
    model_saved = model_path is not None and (model_path / "similarity.json").is_file()
    if model_path is not None and not model_saved and model_path.exists():
        if not _is_empty_folder(model_path):
            raise CommandError(
                f"--model {model_path}: holds no similarity model (similarity.json is missing) "
                "and is not an empty folder to save one into",
                2,
            )
    model = _open_model(model_path) if model_saved else None
    index = None
    if (out / "index.json").exists():
        index = _open_index(out, model)
        model = index.model
    elif out.exists() and not _is_empty_folder(out):
        raise CommandError(
            f"--out {out}: holds no similarity index (index.json is missing) and is not an "
            "empty folder to write one into",
            2,
        )
    train = model is None

    ids = [p.relative_to(folder).as_posix() for p in files]
    known = set(index.ids) if index is not None else set()
    pending = enumerate(zip(ids, files, strict=True))
    new = [(i, key, path) for i, (key, path) in pending if key not in known]
    n_views = args.augment if train else 0
    sequences: dict[str, Any] = {}
    views: dict[str, list[Any]] = {}
    failed: dict[str, str] = {}
    with _Progress("analysing", len(new), enabled=not args.quiet) as bar:
        for done, (i, key, path) in enumerate(new, 1):
            try:
                sequences[key], views[key] = _sequence_of(path, n_views, seed=i)
            except CommandError as exc:
                failed[key] = str(exc)
                bar.write(f"{PROG}: failed: {exc}")
            bar.update(done)
    if new and not sequences:
        raise CommandError(f"{folder}: none of the {len(new)} new audio files could be read")

    training: dict[str, Any] | None = None
    if train:
        if len(sequences) < 2:
            raise CommandError(
                f"{folder}: training a similarity model needs at least two audio files, "
                f"{len(sequences)} could be read (or give --model with a trained model)"
            )
        with _Progress("training", args.steps, enabled=not args.quiet, unit="steps") as bar:

            def progress(step: int, steps: int, loss: float) -> None:
                bar.update(step, f"loss {loss:.3f}")
                if step == steps and not args.quiet:
                    bar.write(f"{PROG}: calibrating the decision threshold")

            model = train_siamese_network_sync(
                sequences,
                augmented={k: v for k, v in views.items() if v} or None,
                steps=args.steps,
                max_seconds=args.max_seconds,
                target_fpr=args.target_fpr,
                progress=progress,
            )
        report = model.report
        training = {
            key: report.get(key)
            for key in (
                "steps",
                "final_loss",
                "augmented_recall_at_1",
                "n_augmented_views",
                "seconds",
            )
        }
        _note(args, f"trained on {len(sequences)} tracks, threshold {model.threshold:.4f}")
    assert model is not None
    if model_path is not None and not model_saved:
        model.save(model_path)
        _note(args, f"saved the model to {model_path}")

    if index is None:
        index = SimilarityIndex(model)
    added = 0
    if sequences:
        with _Progress("indexing", len(sequences), enabled=not args.quiet) as bar:
            added = index.add(sequences, progress=lambda done, total: bar.update(done))
        index.save(out)
    summary = {
        "index": str(out),
        "version": index.version,
        "added": added,
        "already_indexed": len(files) - len(new),
        "failed": failed,
        "total": len(index),
        "n_vectors": index.n_vectors,
        "threshold": model.threshold,
        "target_fpr": (model.report.get("calibration") or {}).get("target_fpr"),
        "model": None if model_path is None else str(model_path),
        "trained": train,
        "training": training,
        "seconds": round(time.perf_counter() - started, 3),
    }
    _print_json(summary)
    return 1 if failed else 0


def _clock(seconds: float) -> str:
    """``mm:ss`` (to the nearest second)."""
    whole = max(0, int(round(seconds)))
    return f"{whole // 60:02d}:{whole % 60:02d}"


def _passage_line(p: Any) -> str:
    return (
        f"query {_clock(p.query_start)}-{_clock(p.query_end)} <-> reference "
        f"{_clock(p.reference_start)}-{_clock(p.reference_end)}, transposed "
        f"{p.transposition:+d} semitones, tempo x{p.tempo_ratio:.2f}, score {p.score:.3f}"
    )


@_similar_command(2)
def cmd_similar_query(args: argparse.Namespace) -> int:
    """The catalogue tracks most similar to FILE, with the passages that match."""
    from ml_utilities.similarity import compare, plot_comparison

    if args.plot is not None:
        _check_plotting()
        if not args.plot.parent.is_dir():
            raise CommandError(
                f"cannot write {args.plot}: folder {args.plot.parent} does not exist"
            )
    if not args.file.exists():
        raise CommandError(f"{args.file}: no such file")
    index = _open_index(args.index, code=2)
    if len(index) == 0:
        raise CommandError(f"{args.index}: the index holds no track")
    seq, _ = _sequence_of(args.file)
    results = index.search(seq, args.k, rerank=max(args.rerank, args.k))
    threshold = index.model.threshold
    matched = sum(1 for d in results if d.match)
    if args.json:
        _print_json([d.to_dict() for d in results])
    else:
        limit = "no threshold" if threshold is None else f"threshold {threshold:.4f}"
        print(
            f"{args.file} ({seq.duration:.1f} s) against {args.index} ({len(index)} tracks, "
            f"version {index.version}); {limit}: {matched} of {len(results)} match"
        )
        for rank, d in enumerate(results, 1):
            verdict = {True: "MATCH", False: "no match", None: "-"}[d.match]
            print(
                f"{rank}. {d.track_id}  score {d.score:.3f}  {verdict}  "
                f"(embedding {d.embedding_score:.3f})"
            )
            for p in d.passages:
                print(f"     {_passage_line(p)}")
    if args.plot is not None and results:
        best = results[0]
        comparison = compare(seq, index.reference(best.track_id), threshold=threshold)
        plot_comparison(comparison, args.plot)
        print(f"wrote {args.plot} ({best.track_id})", file=sys.stderr if args.json else sys.stdout)
    return 0 if matched else 1


def _add_similar_command(commands: Any) -> None:
    """``similar index|query``."""
    from ml_utilities.features.catalog import AUDIO_EXTENSIONS

    similar = commands.add_parser(
        "similar",
        help="music similarity and plagiarism detection: index a catalogue, query it",
        description="Index a folder of audio files for similarity search (training a "
        "key-invariant similarity model on them where none is given), and find which indexed "
        "tracks a file reuses, with the matching passages.",
    )
    sub = similar.add_subparsers(dest="similar_command", required=True, metavar="ACTION")

    p = sub.add_parser(
        "index",
        help="index DIR's audio files (training a model first where none is given)",
        description="Find the audio files under DIR (recursively; their ids are their paths "
        "relative to DIR) and index them into --out. Without a trained --model, a model is "
        "first trained on the files themselves (self-supervised: each file against --augment "
        "plagiarised versions of it: pitch and tempo changed, EQ, noise, re-encoding) and its "
        "decision threshold calibrated for --target-fpr; with --model naming a folder that does "
        "not exist yet (or an empty one), it is saved there. Where --out already holds an "
        "index, it is loaded with its own model and only the files not in it yet are added "
        "(a new version; no training). Progress goes to stderr; a JSON summary to stdout. A "
        "file that cannot be read is reported and the others go on. Exit status: 0, 1 when a "
        "file or folder cannot be read (or DIR holds no audio), 2 for bad arguments.",
    )
    p.add_argument("dir", type=Path, metavar="DIR", help="folder of audio files")
    p.add_argument(
        "--out", type=Path, required=True, metavar="INDEX_DIR", help="the index's folder"
    )
    p.add_argument(
        "--model",
        type=Path,
        default=None,
        metavar="MODEL_DIR",
        help="a trained similarity model to index with; trained and saved there when the "
        "folder does not exist yet",
    )
    p.add_argument(
        "--steps",
        type=_positive_int,
        default=300,
        metavar="N",
        help="training steps (default 300)",
    )
    p.add_argument(
        "--augment",
        type=_non_negative_int,
        default=2,
        metavar="N",
        help="plagiarised versions of each file to train on (default 2; 0: feature-space "
        "augmentation only)",
    )
    p.add_argument(
        "--max-seconds",
        type=_positive_float,
        default=None,
        metavar="S",
        help="stop training after S seconds (the calibration follows)",
    )
    p.add_argument(
        "--target-fpr",
        type=_fpr,
        default=0.01,
        metavar="F",
        help="false-positive rate the decision threshold is calibrated for (default 0.01)",
    )
    p.add_argument(
        "--extensions",
        type=_extensions,
        default=AUDIO_EXTENSIONS,
        metavar="EXT,EXT",
        help=f"audio file extensions (default {','.join(e[1:] for e in AUDIO_EXTENSIONS)})",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(run=cmd_similar_index)

    p = sub.add_parser(
        "query",
        help="the indexed tracks most similar to FILE, with the passages that match",
        description="Search the index for FILE: the K most similar tracks, best first, each "
        "with its score (the aligned comparison's), whether it passes the model's threshold "
        "(MATCH) and the passages that match (query mm:ss-mm:ss <-> reference mm:ss-mm:ss, "
        "transposition, tempo ratio). Exit status: 0 when at least one track matches, 1 when "
        "none does, 2 on an error (bad arguments, an unreadable FILE, no index).",
    )
    p.add_argument("file", type=Path, metavar="FILE", help="the audio file to look for")
    p.add_argument(
        "--index",
        type=Path,
        required=True,
        metavar="INDEX_DIR",
        help="an index that 'similar index' wrote",
    )
    p.add_argument(
        "-k", type=_positive_int, default=5, metavar="K", help="tracks shown (default 5)"
    )
    p.add_argument(
        "--rerank",
        type=_positive_int,
        default=50,
        metavar="N",
        help="tracks the embedding search proposes for the aligned comparison (default 50; "
        "at least K)",
    )
    p.add_argument(
        "--plot",
        type=Path,
        default=None,
        metavar="OUT.png",
        help="draw the best track's comparison (cross-similarity with the passages)",
    )
    p.add_argument("--json", action="store_true", help="print JSON (a list, best first)")
    p.set_defaults(run=cmd_similar_query)


# -- entry point -----------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``ml-utilities``."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="librosa-compatible audio features on a compiled core.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress and tracebacks")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    info = commands.add_parser("info", help="versions, build information and settings")
    info.add_argument("--json", action="store_true", help="print JSON instead of a table")
    info.set_defaults(run=cmd_info)

    features = commands.add_parser(
        "features",
        help="audio features of files and folders (arrays, a Parquet catalog, plots)",
        description="Mel spectrogram, MFCC and deltas of each FILE (mono, resampled to --sr); "
        "folders are searched for audio files. With no FILE, of a synthetic 30 s test clip. "
        "With --out X.parquet, every feature group of FeatureExtractor over the whole catalog, "
        "in parallel, one summary row per track, checkpointed as it goes and resumable (tracks "
        "matched by resolved path and content fingerprint).",
    )
    features.add_argument("files", nargs="*", metavar="FILE|DIR", help="audio files or folders")
    features.add_argument("--sr", type=_positive_int, default=22050, help="sampling rate (Hz)")
    features.add_argument("--n-mfcc", type=_positive_int, default=13, help="MFCC coefficients")
    features.add_argument("--n-mels", type=_positive_int, default=128, help="mel bands")
    features.add_argument(
        "--out",
        type=Path,
        metavar="OUT",
        help="OUT.npz: save the arrays; OUT.parquet: one row of summary features per track",
    )
    features.add_argument(
        "--no-resume",
        dest="resume",
        action="store_false",
        help="with .parquet, extract every track again instead of skipping those already there",
    )
    features.add_argument(
        "--checkpoint-every",
        type=_positive_int,
        default=64,
        metavar="N",
        help="with .parquet, rewrite the file (atomically) after every N new tracks (default 64)",
    )
    features.add_argument(
        "--checkpoint-seconds",
        type=_positive_float,
        default=30.0,
        metavar="S",
        help="with .parquet, or after S seconds while new tracks arrive (default 30)",
    )
    progress = features.add_mutually_exclusive_group()
    progress.add_argument(
        "--progress", dest="progress", action="store_true", default=None, help="a progress bar"
    )
    progress.add_argument("--no-progress", dest="progress", action="store_false")
    features.add_argument(
        "--plot",
        type=Path,
        metavar="OUT.png",
        help="draw spectrogram, chromagram, MFCC and onset envelope with beats of each input",
    )
    features.add_argument(
        "--plot-max", type=_positive_int, default=8, metavar="N", help="inputs drawn (default 8)"
    )
    features.set_defaults(run=cmd_features)

    bench = commands.add_parser(
        "bench",
        help="time librosa and ml_utilities in the same run",
        description="Time stft power, melspectrogram and mfcc with deltas in librosa and "
        "ml_utilities on a 30 s clip, a 10 min signal and a batch of 64 x 30 s.",
    )
    bench.add_argument("--quick", action="store_true", help="smaller inputs")
    bench.add_argument("--repeat", type=_positive_int, default=3, metavar="N", help="timed runs")
    bench.add_argument("--json", type=Path, metavar="OUT", help="save the results as JSON")
    bench.add_argument("--clip", type=Path, metavar="PATH", help="audio to benchmark on")
    bench.add_argument(
        "--device",
        choices=("cpu", "cuda"),
        default="cpu",
        help="cpu: against librosa; cuda: the CUDA backend against torchaudio and torch.stft",
    )
    bench.set_defaults(run=cmd_bench)

    from ml_utilities.serving.cli import add_serve_command

    add_serve_command(commands)
    _add_models_command(commands)
    _add_similar_command(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``ml-utilities`` with ``argv`` (``sys.argv[1:]`` by default); return the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return exc.code if isinstance(exc.code, int) else 2

    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format=f"{PROG}: %(levelname)s %(name)s: %(message)s",
    )
    from ml_utilities.config import ConfigError, apply_to_core, get_settings

    try:
        apply_to_core(get_settings())
    except ConfigError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    try:
        return int(args.run(args))
    except CommandError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
