"""ml_utilities' similarity system for the plagiarism benchmark (``bench_similarity.py``).

Indexing trains the key-invariant encoder on the catalogue itself, self-supervised (each track
and ``augment`` audio-augmented versions of it: varispeed, EQ, noise, re-encoding, a mix under
another track), as a user with no labelled pairs would; builds the :class:`SimilarityIndex`
and calibrates its query-level threshold on excerpts of the catalogue searched as if their
source were absent (``SimilarityIndex.calibrate``). A query is ranked by the
aligner over the embedding stage's ``rerank`` candidates, then the other tracks by embedding.
The queries are never seen in training.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from ml_utilities.audio import load
from ml_utilities.similarity import (
    SAMPLE_RATE,
    SimilarityIndex,
    augmented_views,
    sequence_features,
    train_siamese_network_sync,
)


class OursSystem:
    """The benchmark's ``System`` protocol over :mod:`ml_utilities.similarity`."""

    name = "ours"

    def __init__(self, *, steps: int = 600, augment: int = 1, rerank: int = 50) -> None:
        self.steps = int(os.environ.get("MLU_SIM_STEPS", steps))
        self.augment = int(os.environ.get("MLU_SIM_AUGMENT", augment))
        self.rerank = int(os.environ.get("MLU_SIM_RERANK", rerank))
        self.catalogue: SimilarityIndex | None = None
        self.timings: dict[str, float] = {}

    def index(self, items: dict[str, Path]) -> None:
        """Features, training (with augmented views), calibration and the index."""
        t0 = time.perf_counter()
        audio = {k: load(p, sr=SAMPLE_RATE, mono=True)[0] for k, p in items.items()}
        t1 = time.perf_counter()
        seqs = {k: sequence_features(y) for k, y in audio.items()}
        t2 = time.perf_counter()
        keys = list(audio)
        views = {}
        if self.augment:
            rng = np.random.default_rng(0)
            for n, k in enumerate(keys):
                others = [audio[keys[int(j)]] for j in rng.choice(len(keys), 2)]
                views[k] = [
                    sequence_features(v)
                    for v in augmented_views(
                        audio[k], SAMPLE_RATE, self.augment, seed=n, others=others
                    )
                ]
        t3 = time.perf_counter()
        model = train_siamese_network_sync(seqs, augmented=views, steps=self.steps, seed=0)
        t4 = time.perf_counter()
        print(
            f"[ours] features {t2 - t1:.1f} s, augmented views {t3 - t2:.1f} s, training and "
            f"calibration {t4 - t3:.1f} s ({model.report['steps']} steps, recall@1 of augmented "
            f"excerpts {model.report['augmented_recall_at_1']:.3f}, threshold "
            f"{model.threshold:.3f} from {model.report['calibration']['n_pairs']} pairs)",
            flush=True,
        )
        index = SimilarityIndex(model)
        index.add(seqs)
        t5 = time.perf_counter()
        index.calibrate(seqs, n_queries=200, rerank=self.rerank)
        t6 = time.perf_counter()
        self.catalogue = index
        self.timings = {
            "decode_s": t1 - t0,
            "features_s": t2 - t1,
            "augment_s": t3 - t2,
            "train_and_calibrate_s": t4 - t3,
            "embed_and_index_s": t5 - t4,
            "index_calibration_s": t6 - t5,
            "index_threshold": float(index.threshold),
            "threshold": float(model.threshold),
            "augmented_recall_at_1": float(model.report["augmented_recall_at_1"]),
            "audio_seconds": float(sum(y.size for y in audio.values()) / SAMPLE_RATE),
        }
        # the index's own speed: features and embeddings per second of audio
        self.timings["index_x_realtime"] = self.timings["audio_seconds"] / (
            self.timings["features_s"] + self.timings["embed_and_index_s"]
        )
        print(f"[ours] {self.timings}", flush=True)

    def rank(self, query: Path) -> list[tuple[str, float]]:
        assert self.catalogue is not None, "index the catalogue first"
        seq = sequence_features(query)
        hits = self.catalogue.search(seq, k=self.rerank, rerank=self.rerank)
        ranked = [(h.track_id, h.score) for h in hits]
        seen = {t for t, _ in ranked}
        rest = self.catalogue.candidates(seq, min(len(self.catalogue), 100))
        ranked += [(t, s - 2.0) for t, s in rest if t not in seen]
        return ranked

    @property
    def threshold(self) -> float | None:
        return None if self.catalogue is None else self.catalogue.threshold
