"""Plagiarism / cover detection benchmark harness (issue 21).

Loads the corpus of :mod:`make_corpus` (building it first where the cache is empty), indexes
the catalogue with each system, runs every query and prints one Markdown table: per system
and query condition, recall@1, recall@10, mAP (one relevant item per query, so the mean of
1/rank of the source, 0 where it is not ranked) and the detection rate at a threshold set for
a 1 % false-positive rate.

The threshold: the unrelated pieces are split into two halves (seeded); the threshold is the
99th percentile of the top-1 scores of the first half's queries; the false-positive rate is
the fraction of the second half's top-1 scores above it, and a true query is detected where
its top-1 item is its source with a score above it.

Systems: ``chromaprint`` and ``2dftm`` (see :mod:`baselines`; ``2dftm:<beats>`` sets another
patch length than the paper's 75 beats, e.g. ``2dftm:20``, which fits inside the excerpts),
and ``ours``: ``OursSystem`` of ``benchmarks/similarity/ours.py``, imported only when asked
for; where the import fails the harness says why and goes on without it.

Usage::

    python3 benchmarks/similarity/bench_similarity.py [--systems chromaprint,2dftm,ours]
        [--cache DIR] [--limit N]

The results (header, metrics, every query's rank, top-1 and time) go to
``<cache>/results/similarity_<date>.json``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from baselines import ChromaprintSystem, System, TwoDFTMSystem  # noqa: E402
from make_corpus import CONDITIONS, Corpus, build, load_corpus  # noqa: E402

SEED = 21
TARGET_FPR = 0.01


def make_system(name: str) -> System | None:
    """The system called ``name``, or None where ``ours`` cannot be imported.

    Parameters
    ----------
    name : str
        "chromaprint", "2dftm" (75-beat patches, as in the paper), "2dftm:<beats>" (another
        patch length) or "ours".

    Returns
    -------
    System or None
    """
    if name == "chromaprint":
        return ChromaprintSystem()
    if name == "2dftm":
        return TwoDFTMSystem()
    if name.startswith("2dftm:") and name[6:].isdigit():
        return TwoDFTMSystem(patch_len=int(name[6:]))
    if name == "ours":
        try:
            from ours import OursSystem
        except Exception as exc:  # any failure of the other module only skips it
            print(f"[ours] skipped: cannot import OursSystem from {HERE / 'ours.py'}: {exc!r}")
            return None
        return OursSystem()
    raise SystemExit(f"unknown system {name!r}; choose from chromaprint, 2dftm[:beats], ours")


def _shell(command: str) -> str:
    try:
        return subprocess.run(
            command, shell=True, capture_output=True, text=True, check=False
        ).stdout.strip()
    except OSError:
        return "?"


def select_queries(corpus: Corpus, limit: int | None) -> list[dict[str, Any]]:
    """The corpus queries, at most ``limit`` per condition (None: all), evenly spaced through
    each condition's queries so that a subset still spans the pieces.

    Parameters
    ----------
    corpus : Corpus
    limit : int or None

    Returns
    -------
    list[dict]
    """
    by_condition: dict[str, list[dict[str, Any]]] = {}
    for query in corpus.queries:
        by_condition.setdefault(query["condition"], []).append(query)
    out = []
    for queries in by_condition.values():
        if limit is not None and len(queries) > limit:
            queries = [
                queries[i] for i in np.linspace(0, len(queries) - 1, limit).round().astype(int)
            ]
        out.extend(queries)
    return out


def run_system(
    system: System, corpus: Corpus, queries: list[dict[str, Any]], audio_s: float
) -> dict[str, Any]:
    """Index the catalogue and rank every query.

    Parameters
    ----------
    system : System
    corpus : Corpus
    queries : list[dict]
    audio_s : float
        Duration of the catalogue audio, for the speed in x real time.

    Returns
    -------
    dict
        ``index_s``, ``catalogue_audio_s`` and ``queries``: per query its id, condition,
        source, piece, the rank of the source (None where not ranked or unrelated), top-1 id
        and score, and the time of :meth:`System.rank` in ms.
    """
    t0 = time.perf_counter()
    system.index(corpus.catalogue)
    index_s = time.perf_counter() - t0
    print(f"[{system.name}] indexed {len(corpus.catalogue)} items in {index_s:.1f} s", flush=True)
    results = []
    for i, query in enumerate(queries):
        t0 = time.perf_counter()
        ranking = system.rank(query["path"])
        ms = (time.perf_counter() - t0) * 1000
        ids = [item for item, _ in ranking]
        rank = ids.index(query["source"]) + 1 if query["source"] in ids else None
        results.append(
            {
                "id": query["id"],
                "condition": query["condition"],
                "source": query["source"],
                "piece": query["piece"],
                "rank": rank,
                "top_id": ranking[0][0],
                "top_score": ranking[0][1],
                "ms": ms,
            }
        )
        if (i + 1) % 100 == 0:
            print(f"[{system.name}] {i + 1}/{len(queries)} queries", flush=True)
    own = getattr(system, "threshold", None)
    return {
        "index_s": index_s,
        "catalogue_audio_s": audio_s,
        "queries": results,
        "own_threshold": None if own is None else float(own),
    }


def split_unrelated(pieces: Sequence[str], seed: int = SEED) -> tuple[set[str], set[str]]:
    """Split the unrelated pieces into a calibration half and a test half.

    Splitting by piece keeps the queries made from one piece on the same side.

    Parameters
    ----------
    pieces : sequence of str
        Unrelated piece ids.
    seed : int

    Returns
    -------
    tuple[set[str], set[str]]
        Calibration pieces, test pieces.
    """
    ordered = sorted(set(pieces))
    order = np.random.default_rng(seed).permutation(len(ordered))
    half = len(ordered) // 2
    return {ordered[i] for i in order[:half]}, {ordered[i] for i in order[half:]}


def summarise(run: dict[str, Any]) -> dict[str, Any]:
    """Metrics of one system run (see the module docstring).

    Parameters
    ----------
    run : dict
        The output of :func:`run_system`.

    Returns
    -------
    dict
        ``threshold``, ``fpr``, ``n_calibration``, ``n_test``, ``index_s``,
        ``x_realtime``, ``query_ms_mean``, ``query_ms_p99`` and ``conditions``: per
        condition ``n``, ``recall@1``, ``recall@10``, ``mAP`` and ``detection``.
    """
    results = run["queries"]
    unrelated = [r for r in results if r["source"] is None]
    calibration, test = split_unrelated([r["piece"] for r in unrelated])
    cal = np.array([r["top_score"] for r in unrelated if r["piece"] in calibration])
    held = np.array([r["top_score"] for r in unrelated if r["piece"] in test])
    threshold = float(np.percentile(cal, 100 * (1 - TARGET_FPR))) if cal.size else float("inf")
    conditions = {}
    for condition in CONDITIONS:
        rows = [r for r in results if r["condition"] == condition]
        if not rows:
            continue
        ranks = [r["rank"] for r in rows]
        conditions[condition] = {
            "n": len(rows),
            "recall@1": float(np.mean([k == 1 for k in ranks])),
            "recall@10": float(np.mean([k is not None and k <= 10 for k in ranks])),
            "mAP": float(np.mean([1.0 / k if k else 0.0 for k in ranks])),
            "detection": float(
                np.mean([r["rank"] == 1 and r["top_score"] > threshold for r in rows])
            ),
        }
    own = run.get("own_threshold")
    if own is not None:
        # the system's own threshold (calibrated on its catalogue, without these queries): the
        # false-positive rate over every unrelated query and each condition's detection rate
        everyone = np.array([r["top_score"] for r in unrelated])
        for condition, m in conditions.items():
            rows = [r for r in results if r["condition"] == condition]
            m["detection_own"] = float(
                np.mean([r["rank"] == 1 and r["top_score"] >= own for r in rows])
            )
    ms = np.array([r["ms"] for r in results])
    return {
        "own_threshold": own,
        "own_fpr": float(np.mean(everyone >= own)) if own is not None and everyone.size else None,
        "n_unrelated": len(unrelated),
        "threshold": threshold,
        "fpr": float(np.mean(held > threshold)) if held.size else float("nan"),
        "n_calibration": int(cal.size),
        "n_test": int(held.size),
        "index_s": run["index_s"],
        "x_realtime": run["catalogue_audio_s"] / max(run["index_s"], 1e-9),
        "query_ms_mean": float(ms.mean()) if ms.size else float("nan"),
        "query_ms_p99": float(np.percentile(ms, 99)) if ms.size else float("nan"),
        "conditions": conditions,
    }


def markdown(header: dict[str, Any], summaries: dict[str, dict[str, Any]]) -> str:
    """The printed report: a header, one table, and a line per system.

    Parameters
    ----------
    header : dict
        ``command``, ``date``, ``load``, ``nproc``, ``cache`` and corpus counts.
    summaries : dict[str, dict]
        System name -> :func:`summarise` output.

    Returns
    -------
    str
    """
    lines = [
        f"command: `{header['command']}`",
        f"date: {header['date']}; load average: {header['load']}; nproc: {header['nproc']}",
        f"corpus: {header['cache']}: {header['n_catalogue']} catalogue items "
        f"({header['catalogue_audio_s'] / 60:.0f} min of audio), {header['n_queries']} queries",
        "",
        "| system | condition | n | recall@1 | recall@10 | mAP | detection@thr |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, s in summaries.items():
        for condition, m in s["conditions"].items():
            lines.append(
                f"| {name} | {condition} | {m['n']} | {m['recall@1']:.3f} | "
                f"{m['recall@10']:.3f} | {m['mAP']:.3f} | {m['detection']:.3f} |"
            )
    lines.append("")
    for name, s in summaries.items():
        lines.append(
            f"- **{name}**: threshold {s['threshold']:.4g} (99th percentile of "
            f"{s['n_calibration']} calibration unrelated top-1 scores), FPR "
            f"{s['fpr']:.3f} on {s['n_test']} held-out unrelated queries; index "
            f"{s['index_s']:.1f} s ({s['x_realtime']:.0f}x real time); query "
            f"{s['query_ms_mean']:.0f} ms mean, {s['query_ms_p99']:.0f} ms p99"
        )
        if s.get("own_threshold") is not None:
            own = ", ".join(
                f"{c} {m['detection_own']:.3f}"
                for c, m in s["conditions"].items()
                if c != "unrelated"
            )
            lines.append(
                f"- **{name}** at its own threshold {s['own_threshold']:.4g} (calibrated on the "
                f"catalogue, no query seen): FPR {s['own_fpr']:.3f} on all {s['n_unrelated']} "
                f"unrelated queries; detection {own}"
            )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    """Command-line entry point; see ``--help``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--systems", default="chromaprint,2dftm,ours", help="comma-separated system names"
    )
    parser.add_argument("--cache", type=Path, default=None, help="corpus folder")
    parser.add_argument("--limit", type=int, default=None, help="at most N queries per condition")
    args = parser.parse_args(argv)
    try:
        corpus = load_corpus(args.cache)
    except FileNotFoundError as exc:
        print(f"{exc}: building it now", flush=True)
        corpus = build(args.cache)
    queries = select_queries(corpus, args.limit)
    argv_used = sys.argv[1:] if argv is None else list(argv)
    header = {
        "command": shlex.join(["python3", "benchmarks/similarity/bench_similarity.py", *argv_used]),
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "load": _shell("uptime").split("load average:")[-1].strip(),
        "nproc": _shell("nproc") or str(os.cpu_count()),
        "cache": str(corpus.root),
        "n_catalogue": len(corpus.catalogue),
        "catalogue_audio_s": sum(sf.info(p).duration for p in corpus.catalogue.values()),
        "n_queries": len(queries),
    }
    systems = [make_system(name.strip()) for name in args.systems.split(",") if name.strip()]
    runs, summaries = {}, {}
    for system in systems:
        if system is None:
            continue
        runs[system.name] = run_system(system, corpus, queries, header["catalogue_audio_s"])
        summaries[system.name] = summarise(runs[system.name])
    print()
    print(markdown(header, summaries))
    out = corpus.root / "results" / f"similarity_{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(json.dumps({"header": header, "summary": summaries, "runs": runs}, indent=1))
    os.replace(tmp, out)
    print(f"\nresults: {out}")


if __name__ == "__main__":
    main()
