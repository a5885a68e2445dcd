"""Similarity at catalogue scale (issue 21, item 6): indexing speed per core and query time
against 100,000 tracks.

1. Indexing: sequence features and segment embeddings of real and rendered audio (the clips of
   ``../shared/audio`` and, where the plagiarism benchmark's cache exists, its catalogue), in
   seconds of audio per second of one core. Run it pinned to one core (``taskset -c 0``) for the
   per-core figure; torch is set to one thread.
2. Query: a :class:`SimilarityIndex` of ``--tracks`` tracks (default 100,000): the real ones,
   embedded, and synthetic ones (random unit segment embeddings, 10 windows each, a shared
   random chroma) added through ``add_embedded``; above 262,144 vectors it is an inverted file.
   A query's time is measured for the embedding stage alone (``candidates``) and with the
   aligner re-ranking 10 and 50 candidates, against exact search (NumPy inner products over
   every vector) in the same run; the inverted file's recall of the exact top candidate is
   printed too.

    taskset -c 0 python3 benchmarks/similarity/bench_scale.py [--tracks 100000]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
AUDIO = HERE.parents[1].parent / "shared" / "audio"


def _audio_files(limit: int) -> list[Path]:
    files = sorted(p for p in AUDIO.glob("*.ogg") if ".hq." not in p.name) if AUDIO.is_dir() else []
    cache = Path(
        os.environ.get(
            "MLU_SIMILARITY_BENCH", Path.home() / ".cache" / "ml_utilities" / "similarity_bench"
        )
    )
    files += sorted((cache / "render").glob("*.wav"))[: max(0, limit - len(files))]
    return files[:limit]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tracks", type=int, default=100_000)
    ap.add_argument("--files", type=int, default=60, help="real/rendered files to index")
    ap.add_argument("--queries", type=int, default=30)
    args = ap.parse_args()

    import torch

    from ml_utilities.audio import load
    from ml_utilities.similarity import (
        SAMPLE_RATE,
        SimilarityIndex,
        sequence_features,
        train_siamese_network_sync,
    )
    from ml_utilities.similarity.augment import varispeed

    torch.set_num_threads(1)
    load_avg = os.getloadavg()
    affinity = len(os.sched_getaffinity(0))
    print(
        f"# bench_scale: {time.strftime('%Y-%m-%d %H:%M')} UTC, cores usable {affinity}, "
        f"load average {load_avg[0]:.2f} {load_avg[1]:.2f} {load_avg[2]:.2f}"
    )
    print(f"# command: {' '.join(sys.argv)}")
    files = _audio_files(args.files)
    if len(files) < 3:
        raise SystemExit("needs ../shared/audio or the plagiarism benchmark's cache")
    audio = {p.stem: load(p, sr=SAMPLE_RATE, mono=True)[0] for p in files}
    seconds = sum(y.size for y in audio.values()) / SAMPLE_RATE
    t0 = time.perf_counter()
    seqs = {k: sequence_features(y) for k, y in audio.items()}
    t_feat = time.perf_counter() - t0
    model = train_siamese_network_sync(seqs, steps=100, calibration_pairs=50, seed=0)
    index = SimilarityIndex(model)
    t0 = time.perf_counter()
    index.add(seqs)
    t_emb = time.perf_counter() - t0
    print(
        f"indexing {len(audio)} files, {seconds / 60:.1f} min of audio: features "
        f"{seconds / t_feat:.0f}x real time, embeddings {seconds / t_emb:.0f}x, together "
        f"{seconds / (t_feat + t_emb):.0f}x real time on {affinity} core(s)"
    )

    rng = np.random.default_rng(0)
    n_synth = max(0, args.tracks - len(index))
    chroma = rng.random((12, 650)).astype(np.float16)
    t0 = time.perf_counter()
    batch = 10_000
    for a in range(0, n_synth, batch):
        b = min(n_synth, a + batch)
        emb = rng.normal(size=(b - a, 10, model.dim)).astype(np.float32)
        emb /= np.linalg.norm(emb, axis=2, keepdims=True)
        index.add_embedded(
            [f"synthetic{i}" for i in range(a, b)],
            [np.arange(10) * 5.0] * (b - a),
            list(emb),
            [chroma] * (b - a),
        )
    print(
        f"index of {len(index)} tracks, {index.n_vectors} vectors "
        f"({type(index._faiss).__name__}), built in {time.perf_counter() - t0:.1f} s"
    )

    keys = list(audio)
    queries = []
    for i in range(args.queries):
        k = keys[i % len(keys)]
        y = audio[k]
        start = int(rng.integers(0, max(1, y.size - 15 * SAMPLE_RATE)))
        q = varispeed(
            y[start : start + 15 * SAMPLE_RATE], SAMPLE_RATE, float(rng.choice([-2, 1, 3]))
        )
        queries.append((k, sequence_features(q)))

    def timed(fn) -> tuple[np.ndarray, list]:
        out, ms = [], []
        for _, q in queries:
            t = time.perf_counter()
            out.append(fn(q))
            ms.append((time.perf_counter() - t) * 1e3)
        return np.asarray(ms), out

    ms_cand, cands = timed(lambda q: index.candidates(q, 50))
    ms_10, top10 = timed(lambda q: index.search(q, k=5, rerank=10))
    ms_50, top50 = timed(lambda q: index.search(q, k=5, rerank=50))

    emb_all = index._emb

    def exact(q):
        _, e = model.embed_segments(q, hop=model.config["segment_hop"] / 2)
        sims = e @ emb_all.T
        best = np.full(len(index), -np.inf)
        np.maximum.at(best, index._owner, sims.max(axis=0))
        return index.ids[int(np.argmax(best))]

    ms_exact, exact_top = timed(exact)
    agree = np.mean([c[0][0] == e for c, e in zip(cands, exact_top, strict=True)])
    r1_10 = np.mean([t[0].track_id == k for t, (k, _) in zip(top10, queries, strict=True)])
    r1_50 = np.mean([t[0].track_id == k for t, (k, _) in zip(top50, queries, strict=True)])
    print("| stage | mean ms | p99 ms | recall@1 |")
    print("|---|---|---|---|")
    print(
        f"| exact inner products (NumPy, every vector) | {ms_exact.mean():.1f} | "
        f"{np.percentile(ms_exact, 99):.1f} | |"
    )
    print(
        f"| embedding stage ({type(index._faiss).__name__}) | {ms_cand.mean():.1f} | "
        f"{np.percentile(ms_cand, 99):.1f} | top-1 agrees with exact {agree:.2f} |"
    )
    print(
        f"| + aligner on 10 candidates | {ms_10.mean():.1f} | {np.percentile(ms_10, 99):.1f} | "
        f"{r1_10:.2f} |"
    )
    print(
        f"| + aligner on 50 candidates | {ms_50.mean():.1f} | {np.percentile(ms_50, 99):.1f} | "
        f"{r1_50:.2f} |"
    )
    print(
        "speed-up of the embedding stage over exact search: "
        f"{ms_exact.mean() / ms_cand.mean():.1f}x"
    )
    print(subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())


if __name__ == "__main__":
    main()
