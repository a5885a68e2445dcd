"""SimilarityIndex: a catalogue's segment embeddings on FAISS, re-ranked by the aligner.

A search embeds the query's windows, finds the nearest catalogue windows (FAISS inner product:
exact ``IndexFlatIP`` up to ``ivf_above`` vectors, an inverted file ``IndexIVFFlat`` above),
keeps the ``rerank`` tracks whose best window is nearest, and compares the query with each of
them (:func:`~.align.compare`, on the chroma the index keeps): the returned score is the
aligner's, with the matched passages as evidence, and ``match`` says whether it passes the
threshold: the index's own (:meth:`SimilarityIndex.calibrate`: the best score of queries whose
source is not in the catalogue, so it counts every track a query is compared with) where it has
been calibrated, else the model's (one pair's false-positive rate).

Persistence: ``save(path)`` writes a new numbered version folder (``v000001``, ...) beside the
model, then replaces ``index.json`` (which names the current version) atomically: a reader sees
the old index or the new one. The previous version is kept; older ones are removed. No pickle:
NumPy arrays (``allow_pickle=False``), JSON and the model's safetensors. FAISS structures are
rebuilt from the embeddings on load rather than read from FAISS's own binary files.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..exceptions import ParameterError
from .align import Comparison, Passage, compare_many
from .features import SequenceFeatures, as_sequence
from .model import SimilarityModel

__all__ = ["Detection", "SimilarityIndex", "detect_plagiarism"]

logger = logging.getLogger(__name__)

INDEX_FORMAT = 1
_VERSION = re.compile(r"v\d{6}")


@dataclass
class Detection:
    """One catalogue track for a query: the aligner's ``score``, whether it passes the model's
    threshold (``match``), the embedding similarity that proposed it, and the passages."""

    track_id: str
    score: float
    match: bool | None
    embedding_score: float
    passages: list[Passage] = field(default_factory=list)
    comparison: Comparison | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return {
            "track_id": self.track_id,
            "score": self.score,
            "match": self.match,
            "embedding_score": self.embedding_score,
            "passages": [asdict(p) for p in self.passages],
        }


def _items(tracks: Any, ids: Sequence[str] | None) -> list[tuple[str, Any]]:
    if isinstance(tracks, Mapping):
        pairs = [(str(k), v) for k, v in tracks.items()]
    elif isinstance(tracks, (list, tuple)):
        if ids is None:
            pairs = [(str(t) if isinstance(t, (str, Path)) else None, t) for t in tracks]
            if any(k is None for k, _ in pairs):
                raise ParameterError("tracks given as a list of arrays need ids=")
        else:
            if len(ids) != len(tracks):
                raise ParameterError(f"{len(ids)} ids for {len(tracks)} tracks")
            pairs = [(str(k), t) for k, t in zip(ids, tracks, strict=True)]
    else:
        raise ParameterError(
            f"tracks must be a mapping of id to track or a list, got {type(tracks).__name__}"
        )
    return pairs  # type: ignore[return-value]


class SimilarityIndex:
    """Track and segment embeddings of a catalogue, searched with FAISS, re-ranked by alignment.

    Parameters
    ----------
    model : SimilarityModel
        Embeds tracks and queries; its threshold decides ``Detection.match`` until the index
        is calibrated (:meth:`calibrate`).
    ivf_above : int
        Above this many segment vectors the FAISS index is an inverted file (``nlist = 4
        sqrt(n)`` lists, ``nprobe`` of them searched) rather than exact.
    """

    def __init__(self, model: SimilarityModel, *, ivf_above: int = 262_144, nprobe: int = 32):
        if not isinstance(model, SimilarityModel):
            raise ParameterError(f"model must be a SimilarityModel, got {type(model).__name__}")
        self.model = model
        self.ivf_above = int(ivf_above)
        self.nprobe = int(nprobe)
        self.ids: list[str] = []
        self._where: dict[str, int] = {}
        self._emb = np.zeros((0, model.dim), np.float32)
        self._owner = np.zeros(0, np.int64)
        self._starts = np.zeros(0, np.float32)
        self._chroma: list[np.ndarray] = []
        self._faiss: Any = None
        self._faiss_n = 0
        self.version = 0
        #: the query-level threshold :meth:`calibrate` sets (None: the model's pair threshold)
        self.calibrated: dict[str, Any] | None = None
        self._dirty = False
        self.history: list[dict[str, Any]] = []

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def n_vectors(self) -> int:
        return int(len(self._emb))

    # -- building --------------------------------------------------------------------------------
    def add(
        self,
        tracks: Any,
        *,
        ids: Sequence[str] | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> int:
        """Add tracks (a mapping of id to audio array / file / features, or a list of files
        with their paths as ids). Returns how many were added.

        Raises
        ------
        ParameterError
            An id already in the index or given twice, unreadable tracks (named).
        """
        pairs = _items(tracks, ids)
        seen = set()
        for k, _ in pairs:
            if k in self._where or k in seen:
                raise ParameterError(f"track id {k!r} is already in the index")
            seen.add(k)
        embs, starts, chroma = [], [], []
        for n, (k, t) in enumerate(pairs):
            try:
                seq = as_sequence(t)
                st, e = self.model.embed_segments(seq)
            except ParameterError as err:
                raise ParameterError(f"track {k!r}: {err}") from err
            chroma.append(np.asarray(seq.chroma, dtype=np.float16))
            embs.append(e)
            starts.append(st)
            if progress is not None:
                progress(n + 1, len(pairs))
        self._append([k for k, _ in pairs], starts, embs, chroma)
        return len(pairs)

    def add_embedded(
        self,
        ids: Sequence[str],
        starts: Sequence[np.ndarray],
        embeddings: Sequence[np.ndarray],
        chroma: Sequence[np.ndarray],
    ) -> int:
        """Add tracks whose segments were embedded elsewhere (another process, a GPU job): per
        track its id, window ``starts`` (seconds), unit ``embeddings`` ``(n, dim)`` from this
        index's model and its ``(12, frames)`` chroma (:attr:`SequenceFeatures.chroma`).
        Returns how many were added."""
        ids = [str(k) for k in ids]
        if not len(ids) == len(starts) == len(embeddings) == len(chroma):
            raise ParameterError(
                f"{len(ids)} ids, {len(starts)} starts, {len(embeddings)} embeddings and "
                f"{len(chroma)} chroma: one of each per track"
            )
        if len(set(ids)) != len(ids) or any(k in self._where for k in ids):
            dup = next(k for k in ids if k in self._where or ids.count(k) > 1)
            raise ParameterError(f"track id {dup!r} is already in the index")
        embs, sts, chs = [], [], []
        for k, st, e, c in zip(ids, starts, embeddings, chroma, strict=True):
            e = np.asarray(e, dtype=np.float32)
            st = np.asarray(st, dtype=np.float32).reshape(-1)
            c = np.asarray(c)
            if e.ndim != 2 or e.shape[1] != self.model.dim or len(e) != len(st) or len(e) == 0:
                raise ParameterError(
                    f"track {k!r}: embeddings {e.shape} and starts {st.shape} must be "
                    f"(n, {self.model.dim}) and (n,) with n >= 1"
                )
            if c.ndim != 2 or c.shape[0] != 12 or not np.isfinite(e).all():
                raise ParameterError(
                    f"track {k!r}: chroma {c.shape} must be (12, frames) and embeddings finite"
                )
            embs.append(e)
            sts.append(st)
            chs.append(c)
        self._append(ids, sts, embs, chs)
        return len(ids)

    def _append(
        self,
        ids: list[str],
        starts: list[np.ndarray],
        embeddings: list[np.ndarray],
        chroma: list[np.ndarray],
    ) -> None:
        if not ids:
            return
        first = len(self.ids)
        for n, k in enumerate(ids):
            self._where[k] = first + n
        self.ids.extend(ids)
        self._chroma.extend(c if c.dtype == np.float16 else c.astype(np.float16) for c in chroma)
        owners = [np.full(len(e), first + n, np.int64) for n, e in enumerate(embeddings)]
        new = np.concatenate(embeddings).astype(np.float32)
        self._emb = np.concatenate([self._emb, new])
        self._owner = np.concatenate([self._owner, *owners])
        self._starts = np.concatenate([self._starts, *(s.astype(np.float32) for s in starts)])
        self._update_faiss(new)
        self._dirty = True

    def _update_faiss(self, new: np.ndarray) -> None:
        try:
            import faiss
        except ImportError:
            self._faiss = None  # exact search with NumPy
            return
        n = self.n_vectors
        rebuild = (
            self._faiss is None
            or (n > self.ivf_above and self._faiss_n <= self.ivf_above)
            or (n > self.ivf_above and n > 4 * self._faiss_n)
        )
        if not rebuild:
            self._faiss.add(np.ascontiguousarray(new))
            return
        dim = self.model.dim
        if n <= self.ivf_above:
            index = faiss.IndexFlatIP(dim)
        else:
            nlist = int(4 * np.sqrt(n))
            quantizer = faiss.IndexFlatIP(dim)
            index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
            sample = self._emb[np.random.default_rng(0).permutation(n)[: 64 * nlist]]
            index.train(np.ascontiguousarray(sample))
            index.nprobe = self.nprobe
        index.add(np.ascontiguousarray(self._emb))
        self._faiss = index
        self._faiss_n = n

    # -- searching -------------------------------------------------------------------------------
    def _nearest(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        k = min(k, self.n_vectors)
        if self._faiss is not None:
            sims, idx = self._faiss.search(np.ascontiguousarray(q, dtype=np.float32), k)
            return sims, idx
        sims = q @ self._emb.T
        idx = np.argsort(-sims, axis=1)[:, :k]
        return np.take_along_axis(sims, idx, axis=1), idx

    def candidates(self, query: Any, n: int = 50) -> list[tuple[str, float]]:
        """The ``n`` tracks whose windows are nearest the query's, with the best inner product
        (the embedding stage alone)."""
        if not self.ids:
            raise ParameterError("the index is empty: add tracks first")
        seq = as_sequence(query)
        _, q = self.model.embed_segments(seq, hop=self.model.config["segment_hop"] / 2)
        per_window = max(4 * n, 64)
        sims, idx = self._nearest(q, per_window)
        best = np.full(len(self.ids), -np.inf)
        valid = idx >= 0
        np.maximum.at(best, self._owner[idx[valid]], sims[valid])
        order = np.argsort(-best)[: min(n, int(np.isfinite(best).sum()))]
        return [(self.ids[i], float(best[i])) for i in order]

    def reference(self, track_id: str) -> SequenceFeatures:
        """The chroma sequence kept for ``track_id`` (what the aligner compares with)."""
        if track_id not in self._where:
            raise ParameterError(f"track {track_id!r} is not in the index")
        c = np.asarray(self._chroma[self._where[track_id]], dtype=np.float32)
        return SequenceFeatures(c, np.zeros((0, c.shape[1]), np.float32))

    def search(
        self, query: Any, k: int = 10, *, rerank: int = 50, keep_matrix: bool = False
    ) -> list[Detection]:
        """The ``k`` catalogue tracks most similar to ``query``, best first.

        With ``rerank`` > 0 the embedding stage proposes that many tracks (at least ``k``) and
        the aligner scores them (score, match, passages); with 0 the embedding similarity is the
        score.
        """
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ParameterError(f"k={k!r} must be a positive integer")
        if isinstance(rerank, bool) or not isinstance(rerank, (int, np.integer)) or rerank < 0:
            raise ParameterError(f"rerank={rerank!r} must be a non-negative integer")
        seq = as_sequence(query)
        if rerank:
            rerank = max(rerank, k)
        proposed = self.candidates(seq, max(k, rerank))
        if rerank == 0:
            return [Detection(t, s, None, s) for t, s in proposed[:k]]
        chosen = proposed[:rerank]
        comparisons = compare_many(
            seq,
            [self.reference(t) for t, _ in chosen],
            threshold=self.threshold,
            keep_matrix=keep_matrix,
        )
        out = [
            Detection(t, c.score, c.match, e, c.passages, c)
            for (t, e), c in zip(chosen, comparisons, strict=True)
        ]
        out.sort(key=lambda d: -d.score)
        return out[:k]

    def detect_plagiarism(self, query: Any, k: int = 5, *, rerank: int = 50) -> list[Detection]:
        """The tracks ``query`` reuses: :meth:`search`'s results that pass the threshold."""
        if self.threshold is None:
            raise ParameterError(
                "neither the index nor the model has a calibrated threshold "
                "(SimilarityIndex.calibrate, SimilarityModel.calibrate)"
            )
        return [d for d in self.search(query, k, rerank=rerank) if d.match]

    @property
    def threshold(self) -> float | None:
        """The decision threshold: the index's calibrated one, else the model's."""
        if self.calibrated is not None:
            return float(self.calibrated["threshold"])
        return self.model.threshold

    def calibrate(
        self,
        tracks: Mapping[str, Any],
        *,
        target_fpr: float = 0.01,
        n_queries: int = 200,
        excerpt: tuple[float, float] = (10.0, 20.0),
        rerank: int = 50,
        seed: int = 0,
    ) -> float:
        """Set a query-level threshold: excerpts of indexed tracks (``tracks``: id to features
        or audio, as given to :meth:`add`) searched as if their source were not in the
        catalogue (the best score of another track counts); the threshold lets
        ``target_fpr`` of those best scores through. Recalibrate when the catalogue grows:
        more tracks, more chances of a high score by accident."""
        from .model import calibrate_threshold

        if not isinstance(tracks, Mapping) or not tracks:
            raise ParameterError("calibrate needs a mapping of indexed track ids to their tracks")
        unknown = [k for k in tracks if str(k) not in self._where]
        if unknown:
            raise ParameterError(f"tracks {unknown[:3]} are not in the index")
        if len(self) < 2:
            raise ParameterError("calibration needs an index of at least two tracks")
        rng = np.random.default_rng(seed)
        keys = list(tracks)
        scores = []
        for _ in range(int(n_queries)):
            k = keys[int(rng.integers(0, len(keys)))]
            seq = as_sequence(tracks[k])
            length = float(rng.uniform(*excerpt))
            if seq.duration > length:
                start = float(rng.uniform(0, seq.duration - length))
                seq = seq.excerpt(start, start + length)
            others = [d for d in self.search(seq, k=2, rerank=rerank) if d.track_id != str(k)]
            scores.append(others[0].score)
        threshold = calibrate_threshold(scores, target_fpr)
        self.calibrated = {
            "threshold": threshold,
            "target_fpr": float(target_fpr),
            "n_queries": len(scores),
            "n_tracks": len(self),
            "rerank": int(rerank),
            "best_score_p50": float(np.median(scores)),
            "best_score_max": float(np.max(scores)),
        }
        self._dirty = True
        return threshold

    # -- persistence -----------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the index (and its model) under ``path`` as a new version; see the module."""
        from .._fs import atomic_file, fsync_dir

        root = Path(path)
        root.mkdir(parents=True, exist_ok=True)
        fingerprint = self.model.fingerprint()
        model_dir = root / "model"
        manifest_path = root / "index.json"
        old = json.loads(manifest_path.read_text()) if manifest_path.exists() else None
        if old is None and any(root.iterdir()):
            raise ParameterError(
                f"{root} is a folder with other files and no index.json: save an index into a "
                "new or empty folder, or into the folder of an earlier version"
            )
        if old is not None and old.get("model_fingerprint") != fingerprint:
            raise ParameterError(
                f"{root} holds an index of another model ({old.get('model_fingerprint')}); "
                "save this one elsewhere"
            )
        if not (model_dir / "similarity.json").exists():
            tmp_model = root / f".model.tmp-{time.time_ns()}"
            self.model.save(tmp_model)
            tmp_model.rename(model_dir)
        version = max(self.version, int(old["version"]) if old else 0) + 1
        name = f"v{version:06d}"
        tmp = root / f".{name}.tmp-{time.time_ns()}"
        tmp.mkdir()
        lengths = np.array([c.shape[1] for c in self._chroma], dtype=np.int64)
        chroma = (
            np.concatenate(self._chroma, axis=1) if self._chroma else np.zeros((12, 0), np.float16)
        )
        np.save(tmp / "embeddings.npy", self._emb)
        np.save(tmp / "owner.npy", self._owner)
        np.save(tmp / "starts.npy", self._starts)
        np.save(tmp / "chroma.npy", chroma)
        np.save(tmp / "chroma_lengths.npy", lengths)
        (tmp / "ids.json").write_text(json.dumps(self.ids))
        fsync_dir(tmp)
        tmp.rename(root / name)
        history = [*self.history, {"version": version, "n_tracks": len(self), "time": time.time()}]
        manifest = {
            "format": INDEX_FORMAT,
            "version": version,
            "current": name,
            "model_fingerprint": fingerprint,
            "n_tracks": len(self),
            "n_vectors": self.n_vectors,
            "dim": self.model.dim,
            "ivf_above": self.ivf_above,
            "nprobe": self.nprobe,
            "history": history[-100:],
            "calibrated": self.calibrated,
        }
        with atomic_file(manifest_path, "w") as fh:
            json.dump(manifest, fh)
        keep = {name, old["current"]} if old else {name}
        for d in root.glob("v[0-9]*"):
            if d.is_dir() and _VERSION.fullmatch(d.name) and d.name not in keep:
                shutil.rmtree(d, ignore_errors=True)
        self.version = version
        self.history = history
        self._dirty = False
        return root

    @classmethod
    def load(cls, path: str | Path, model: SimilarityModel | None = None) -> SimilarityIndex:
        """Read the current version of an index :meth:`save` wrote (with its own model, or
        ``model`` when it is the same one: its fingerprint is checked)."""
        root = Path(path)
        try:
            manifest = json.loads((root / "index.json").read_text())
        except FileNotFoundError:
            raise ParameterError(
                f"{root} holds no similarity index (index.json is missing)"
            ) from None
        if manifest.get("format") != INDEX_FORMAT:
            raise ParameterError(
                f"{root} holds an index of format {manifest.get('format')!r}; this version reads "
                f"{INDEX_FORMAT}"
            )
        if model is None:
            model = SimilarityModel.load(root / "model")
        if model.fingerprint() != manifest["model_fingerprint"]:
            raise ParameterError(
                f"the index at {root} was built with model {manifest['model_fingerprint']}, not "
                f"{model.fingerprint()}"
            )
        folder = root / str(manifest["current"])
        index = cls(model, ivf_above=int(manifest["ivf_above"]), nprobe=int(manifest["nprobe"]))
        index.ids = [str(i) for i in json.loads((folder / "ids.json").read_text())]
        index._where = {k: i for i, k in enumerate(index.ids)}
        index._emb = np.load(folder / "embeddings.npy", allow_pickle=False)
        index._owner = np.load(folder / "owner.npy", allow_pickle=False)
        index._starts = np.load(folder / "starts.npy", allow_pickle=False)
        chroma = np.load(folder / "chroma.npy", allow_pickle=False, mmap_mode="r")
        lengths = np.load(folder / "chroma_lengths.npy", allow_pickle=False)
        bounds = np.concatenate([[0], np.cumsum(lengths)])
        index._chroma = [chroma[:, a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
        if not (
            len(index._emb) == len(index._owner) == len(index._starts)
            and len(lengths) == len(index.ids)
            and (len(index._owner) == 0 or int(index._owner.max()) < len(index.ids))
        ):
            raise ParameterError(f"the index at {folder} is inconsistent (sizes do not agree)")
        index.version = int(manifest["version"])
        index.history = list(manifest.get("history", []))
        index.calibrated = manifest.get("calibrated")
        if index.n_vectors:
            index._update_faiss(index._emb[:0])
        return index


def detect_plagiarism(
    query: Any,
    catalogue: SimilarityIndex | Mapping[str, Any],
    *,
    model: SimilarityModel | None = None,
    k: int = 5,
    rerank: int = 50,
) -> list[Detection]:
    """The catalogue tracks that ``query`` reuses, with the evidence.

    Parameters
    ----------
    query : audio array (22050 Hz), file, or features
    catalogue : SimilarityIndex, or a mapping of id to track (indexed on the fly with ``model``)
    """
    if not isinstance(catalogue, SimilarityIndex):
        if model is None:
            raise ParameterError("a catalogue given as tracks needs model= to index it")
        index = SimilarityIndex(model)
        index.add(catalogue)
        catalogue = index
    return catalogue.detect_plagiarism(query, k, rerank=rerank)
