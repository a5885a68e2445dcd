"""SimilarityModel and train_siamese_network: a key-invariant embedding trained on similar pairs
and on augmented positives, with a decision threshold calibrated for a false-positive rate.

Training (contrastive, NT-Xent with in-batch negatives): each example is an anchor excerpt of a
track and a positive,

- a labelled similar track's passage that the aligner (:func:`~.align.compare`) finds for the
  anchor (the pair's alignment is computed once, before training);
- an audio-augmented version of the track given in ``augmented`` (pitch shift, time stretch,
  re-encoding...: :mod:`.augment` makes them), aligned the same way;
- otherwise the anchor itself, changed in feature space: time-stretched (0.8-1.25), its chroma
  rotated (a no-op for the key-invariant encoder, kept for any other input), mixed with another
  track, noise added, cut shorter.

Other tracks of the batch are the negatives (a pair labelled similar is never one). The threshold
is a quantile of the aligner's scores between unrelated tracks (excerpts against whole tracks,
pairs not labelled similar): the score a given false-positive rate allows.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..exceptions import ParameterError
from .align import compare
from .features import FRAME_RATE, SequenceFeatures, as_sequence, resample_frames

__all__ = [
    "SimilarityModel",
    "calibrate_threshold",
    "train_siamese_network",
    "train_siamese_network_sync",
]

logger = logging.getLogger(__name__)

SAVE_FORMAT = 1
_WEIGHTS = "encoder.safetensors"
_CONFIG = "similarity.json"


def calibrate_threshold(unrelated_scores: Any, target_fpr: float = 0.01) -> float:
    """The smallest threshold that at most ``target_fpr`` of ``unrelated_scores`` reach.

    A score counts as a match when ``score >= threshold``; the threshold returned is just above
    the ``ceil(n * target_fpr) + 1``-th highest unrelated score, so at most ``floor(n *
    target_fpr)`` of them pass.

    Raises
    ------
    ParameterError
        ``target_fpr`` outside (0, 1), no score, or NaN scores.
    """
    if not 0 < target_fpr < 1:
        raise ParameterError(f"target_fpr={target_fpr!r} must be in (0, 1)")
    s = np.sort(np.asarray(unrelated_scores, dtype=np.float64).ravel())[::-1]
    if s.size == 0:
        raise ParameterError("calibrating a threshold needs at least one unrelated score")
    if not np.isfinite(s).all():
        raise ParameterError("unrelated scores hold NaN or infinite values")
    allowed = int(np.floor(s.size * target_fpr))
    return float(np.nextafter(s[allowed], np.inf))


def _ids_and_items(features: Any, ids: Sequence[str] | None) -> tuple[list[str], list[Any]]:
    if isinstance(features, Mapping):
        keys, items = [str(k) for k in features], list(features.values())
    elif isinstance(features, (list, tuple)):
        items = list(features)
        keys = [str(i) for i in range(len(items))]
    else:
        raise ParameterError(
            f"features must be a list or a mapping of tracks, got {type(features).__name__}"
        )
    if ids is not None:
        keys = [str(i) for i in ids]
        if len(keys) != len(items):
            raise ParameterError(f"{len(keys)} ids for {len(items)} tracks")
    if len(set(keys)) != len(keys):
        raise ParameterError("track ids must be unique")
    return keys, items


def _pairs(labels: Any, keys: list[str]) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """``(similar, dissimilar)`` index pairs from ``(a, b[, label])`` rows (ids or indices) or a
    DataFrame of two or three columns."""
    if labels is None:
        return [], []
    if hasattr(labels, "itertuples"):
        labels = [tuple(r) for r in labels.itertuples(index=False)]
    where = {k: i for i, k in enumerate(keys)}
    similar, dissimilar = [], []
    for row in labels:
        if not isinstance(row, (tuple, list)) or len(row) not in (2, 3):
            raise ParameterError(f"a similarity label must be (a, b) or (a, b, label), got {row!r}")
        ends = []
        for end in row[:2]:
            if isinstance(end, (int, np.integer)) and not isinstance(end, bool):
                if not 0 <= int(end) < len(keys):
                    raise ParameterError(f"track index {end} is outside 0..{len(keys) - 1}")
                ends.append(int(end))
            elif str(end) in where:
                ends.append(where[str(end)])
            else:
                raise ParameterError(f"similarity label names an unknown track {end!r}")
        label = 1 if len(row) == 2 else row[2]
        try:
            label = float(label)
        except (TypeError, ValueError):
            raise ParameterError(f"similarity label {row[2]!r} is not a number") from None
        if not np.isfinite(label):
            raise ParameterError(f"similarity label {row!r} is not finite")
        if ends[0] == ends[1]:
            continue
        (similar if label >= 0.5 else dissimilar).append((ends[0], ends[1]))
    return similar, dissimilar


def _fit_length(x: np.ndarray, n: int) -> np.ndarray:
    """``x`` cropped or edge-padded to ``n`` frames."""
    if x.shape[1] >= n:
        return x[:, :n]
    return np.pad(x, ((0, 0), (0, n - x.shape[1])), mode="edge")


@dataclass
class _Aligned:
    """A positive passage: frames ``a0:a1`` of track ``i`` are ``b0:b1`` of sequence ``seq``."""

    i: int
    a0: int
    a1: int
    seq: np.ndarray
    b0: int
    b1: int


class SimilarityModel:
    """A trained key-invariant encoder, its configuration and its decision threshold.

    Use :meth:`embed` (one vector per clip), :meth:`embed_segments` (one per window, for
    :class:`~.index.SimilarityIndex`), :meth:`compare` (the aligned comparison with this model's
    threshold), :meth:`save`/:meth:`load`, :meth:`to_handle` (the registry) and
    :meth:`to_onnx`.
    """

    def __init__(
        self,
        encoder: Any,
        config: dict[str, Any],
        *,
        threshold: float | None = None,
        report: dict[str, Any] | None = None,
    ) -> None:
        self.encoder = encoder.eval()
        self.config = dict(config)
        self.threshold = threshold
        self.report = dict(report or {})

    # -- embeddings -----------------------------------------------------------------------------
    @property
    def dim(self) -> int:
        return int(self.config["dim"])

    @property
    def n_channels(self) -> int:
        return 12 + int(self.config["n_other"])

    @property
    def segment_frames(self) -> int:
        return int(round(float(self.config["segment"]) * FRAME_RATE))

    def _check(self, seq: SequenceFeatures) -> SequenceFeatures:
        if seq.other_names != tuple(self.config["other_names"]):
            raise ParameterError(
                f"this model reads chroma + {list(self.config['other_names'])}; the features "
                f"give chroma + {list(seq.other_names)} (extract the same features as in training)"
            )
        return seq

    def embed_array(self, x: np.ndarray) -> np.ndarray:
        """``(n, channels, t)`` float32 to ``(n, dim)`` unit embeddings (batches of 256)."""
        import torch

        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 3 or x.shape[1] != self.n_channels or x.shape[2] < 1:
            raise ParameterError(
                f"expected (n, {self.n_channels}, frames) sequences, got shape {x.shape}"
            )
        if not np.isfinite(x).all():
            raise ParameterError("sequences hold NaN or infinite values")
        out = []
        with torch.inference_mode():
            for i in range(0, len(x), 256):
                out.append(self.encoder(torch.from_numpy(x[i : i + 256])).numpy())
        return np.concatenate(out) if out else np.zeros((0, self.dim), np.float32)

    def embed(self, clips: Any) -> np.ndarray:
        """One embedding per clip (a clip, or a list of them): ``(dim,)`` or ``(n, dim)``."""
        single = not isinstance(clips, (list, tuple))
        seqs = [self._check(as_sequence(c)) for c in ([clips] if single else clips)]
        out = (
            np.stack([self.embed_array(s.stacked()[None])[0] for s in seqs])
            if seqs
            else (np.zeros((0, self.dim), np.float32))
        )
        return out[0] if single else out

    def segment_starts(self, n_frames: int, hop: float | None = None) -> np.ndarray:
        """Start frames of the windows :meth:`embed_segments` cuts from ``n_frames``."""
        w = self.segment_frames
        h = max(1, int(round((hop or float(self.config["segment_hop"])) * FRAME_RATE)))
        if n_frames <= w:
            return np.array([0], dtype=np.int64)
        starts = np.arange(0, n_frames - w + 1, h, dtype=np.int64)
        if starts[-1] + w < n_frames:
            starts = np.append(starts, n_frames - w)
        return starts

    def embed_segments(self, clip: Any, hop: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(starts_seconds, embeddings (n, dim))`` of the clip's windows of
        ``config["segment"]`` seconds every ``hop`` (default ``config["segment_hop"]``); a clip
        shorter than a window is one window."""
        seq = self._check(as_sequence(clip))
        x = seq.stacked()
        starts = self.segment_starts(seq.n_frames, hop)
        w = min(self.segment_frames, seq.n_frames)
        batch = np.stack([x[:, s : s + w] for s in starts])
        return starts / FRAME_RATE, self.embed_array(batch)

    # -- comparison -----------------------------------------------------------------------------
    def compare(self, a: Any, b: Any, **kw: Any) -> Any:
        """:func:`~.align.compare` with this model's calibrated threshold."""
        kw.setdefault("threshold", self.threshold)
        return compare(a, b, **kw)

    def calibrate(
        self,
        tracks: Any,
        *,
        target_fpr: float = 0.01,
        similar: Sequence[tuple[int, int]] = (),
        n_pairs: int = 400,
        excerpt: tuple[float, float] = (8.0, 25.0),
        seed: int = 0,
    ) -> float:
        """Set :attr:`threshold` from the aligner's scores between unrelated tracks: excerpts of
        ``excerpt`` seconds (drawn uniformly from the range: a query's number and length of
        windows change its chance of a high score) against other whole tracks (pairs in
        ``similar`` excluded)."""
        _, items = _ids_and_items(tracks, None)
        seqs = [as_sequence(t) for t in items]
        scores = _unrelated_scores(seqs, set(similar), n_pairs, excerpt, seed)
        self.threshold = calibrate_threshold(scores, target_fpr)
        if len(scores) * target_fpr < 1:
            logger.warning(
                "threshold calibrated on %d unrelated pairs: too few for a false-positive rate "
                "of %g (it is just above the highest unrelated score); calibrate on at least "
                "%d pairs (more tracks)",
                len(scores),
                target_fpr,
                int(np.ceil(1 / target_fpr)),
            )
        self.report["calibration"] = {
            "too_few_pairs": bool(len(scores) * target_fpr < 1),
            "target_fpr": target_fpr,
            "n_pairs": int(len(scores)),
            "threshold": self.threshold,
            "unrelated_score_p50": float(np.median(scores)),
            "unrelated_score_max": float(np.max(scores)),
        }
        return self.threshold

    # -- persistence ----------------------------------------------------------------------------
    def fingerprint(self) -> str:
        h = hashlib.sha256(json.dumps(self.config, sort_keys=True).encode())
        for k, v in sorted(self.encoder.state_dict().items()):
            h.update(k.encode())
            h.update(v.detach().cpu().numpy().tobytes())
        return h.hexdigest()[:16]

    def save(self, directory: str | Path) -> Path:
        """Write the weights (safetensors) and the JSON description into ``directory``."""
        from safetensors.torch import save_file

        from .._fs import atomic_file

        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().contiguous() for k, v in self.encoder.state_dict().items()}
        tmp = d / f".{_WEIGHTS}.tmp"
        save_file(state, str(tmp))
        tmp.replace(d / _WEIGHTS)
        desc = {
            "format": SAVE_FORMAT,
            "config": self.config,
            "threshold": self.threshold,
            "report": self.report,
        }
        with atomic_file(d / _CONFIG, "w") as fh:
            json.dump(desc, fh, default=float)
        return d

    @classmethod
    def load(cls, directory: str | Path) -> SimilarityModel:
        """Read a model :meth:`save` wrote (no pickle: safetensors and JSON)."""
        from safetensors.torch import load_file

        from .encoder import KeyInvariantEncoder

        d = Path(directory)
        try:
            desc = json.loads((d / _CONFIG).read_text())
        except FileNotFoundError:
            raise ParameterError(f"{d} holds no similarity model ({_CONFIG} is missing)") from None
        if desc.get("format") != SAVE_FORMAT:
            raise ParameterError(
                f"{d} holds a similarity model of format {desc.get('format')!r}; this version "
                f"reads {SAVE_FORMAT}"
            )
        cfg = desc["config"]
        enc = KeyInvariantEncoder(int(cfg["n_other"]), int(cfg["dim"]), int(cfg["width"]))
        enc.load_state_dict(load_file(str(d / _WEIGHTS)))
        return cls(enc, cfg, threshold=desc.get("threshold"), report=desc.get("report"))

    def to_handle(self, name: str = "similarity") -> Any:
        """A :class:`~ml_utilities.models.ModelHandle` for ``ModelRegistry.register``."""
        from .store import to_handle

        return to_handle(self, name)

    def to_onnx(self, *, opset: int = 17) -> Any:
        """The encoder as an ONNX model: input ``input`` ``(n, channels, frames)`` (both axes
        dynamic), output ``embedding`` ``(n, dim)``."""
        import copy
        import io
        import warnings

        import onnx
        import torch

        net = copy.deepcopy(self.encoder).cpu().eval()
        example = torch.zeros((2, self.n_channels, self.segment_frames), dtype=torch.float32)
        buf = io.BytesIO()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                net,
                (example,),
                buf,  # type: ignore[arg-type]
                input_names=["input"],
                output_names=["embedding"],
                dynamic_axes={"input": {0: "batch", 2: "frames"}, "embedding": {0: "batch"}},
                opset_version=opset,
                dynamo=False,
            )
        return onnx.load_from_string(buf.getvalue())


def _unrelated_scores(
    seqs: list[SequenceFeatures],
    similar: set[tuple[int, int]],
    n_pairs: int,
    excerpt: tuple[float, float],
    seed: int,
) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = len(seqs)
    if n < 2:
        raise ParameterError("calibration needs at least two tracks")
    pairs = [
        (i, j)
        for i in range(n)
        for j in range(n)
        if i != j and (i, j) not in similar and (j, i) not in similar
    ]
    if not pairs:
        raise ParameterError("every pair of tracks is labelled similar: nothing is unrelated")
    chosen = rng.permutation(len(pairs))[:n_pairs]
    scores = []
    for c in chosen:
        i, j = pairs[c]
        q = seqs[i]
        length = float(rng.uniform(*excerpt))
        if q.duration > length:
            start = float(rng.uniform(0, q.duration - length))
            q = q.excerpt(start, start + length)
        scores.append(compare(q, seqs[j], keep_matrix=False).score)
    return np.asarray(scores)


# ---------------------------------------------------------------------------------- training
@dataclass
class _Batcher:
    seqs: list[np.ndarray]  # stacked (channels, T)
    positives: list[list[_Aligned]]  # per track
    rng: np.random.Generator
    min_len: int
    max_len: int
    aligned_share: float = 0.5
    blocked: set[tuple[int, int]] = field(default_factory=set)

    def _crop(self, x: np.ndarray, n: int) -> tuple[int, np.ndarray]:
        if x.shape[1] <= n:
            return 0, _fit_length(x, n)
        s = int(self.rng.integers(0, x.shape[1] - n + 1))
        return s, x[:, s : s + n]

    def _reorchestrate(self, x: np.ndarray) -> np.ndarray:
        """Another instrument: other overtones (energy a fifth and a major third up), another
        pitch-class balance, another timbre (the other channels of another track)."""
        rng = self.rng
        y = x.copy()
        h = y[:12].copy()
        y[:12] = (
            h
            + rng.uniform(0, 0.6) * np.roll(h, 7, axis=0)
            + rng.uniform(0, 0.4) * np.roll(h, 4, axis=0)
        ) * rng.uniform(0.6, 1.4, size=(12, 1))
        y[:12] /= np.maximum(y[:12].max(axis=0, keepdims=True), 1e-6)
        if y.shape[0] > 12:
            _, t = self._crop(self.seqs[int(rng.integers(0, len(self.seqs)))], y.shape[1])
            y[12:] = t[12:]
        return y

    def _augment(self, x: np.ndarray, length: int) -> np.ndarray:
        """Feature-space positive: rotate, re-orchestrate, mix, noise, excerpt, then stretch to
        ``length``."""
        rng = self.rng
        y = x.copy()
        y[:12] = np.roll(y[:12], int(rng.integers(0, 12)), axis=0)
        if rng.random() < 0.5:
            y = self._reorchestrate(y)
        if rng.random() < 0.5:
            other = self.seqs[int(rng.integers(0, len(self.seqs)))]
            _, o = self._crop(other, y.shape[1])
            a = float(rng.uniform(0.2, 0.6))
            y[:12] = (1 - a) * y[:12] + a * np.roll(o[:12], int(rng.integers(0, 12)), axis=0)
            y[12:] = (1 - a) * y[12:] + a * o[12:]
        y[:12] = np.clip(y[:12] + rng.normal(0, 0.08, y[:12].shape), 0, None)
        y[:12] /= np.maximum(y[:12].max(axis=0, keepdims=True), 1e-6)
        y[12:] += rng.normal(0, 0.3, y[12:].shape)
        keep = int(round(y.shape[1] * rng.uniform(0.75, 1.0)))
        s = int(rng.integers(0, y.shape[1] - keep + 1))
        return resample_frames(y[:, s : s + keep], length).astype(np.float32)

    def batch(self, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rng = self.rng
        n = len(self.seqs)
        idx = rng.choice(n, size=min(size, n), replace=False)
        length = int(rng.integers(self.min_len, self.max_len + 1))
        ratio = float(np.exp(rng.uniform(np.log(0.8), np.log(1.25))))
        plen = max(8, int(round(length * ratio)))
        anchors, pos = [], []
        for i in idx:
            choices = self.positives[i]
            if choices and rng.random() < self.aligned_share:
                p = choices[int(rng.integers(0, len(choices)))]
                a = self.seqs[i][:, p.a0 : p.a1]
                b = p.seq[:, p.b0 : p.b1]
                anchors.append(resample_frames(a, length))
                pos.append(self._augment(b, plen))
            else:
                _, a = self._crop(self.seqs[i], length)
                anchors.append(self._reorchestrate(a) if rng.random() < 0.3 else a)
                pos.append(self._augment(a, plen))
        return (
            np.stack(anchors).astype(np.float32),
            np.stack(pos).astype(np.float32),
            idx,
        )


def _aligned_positives(
    seqs: list[SequenceFeatures],
    pairs: list[tuple[int, int]],
    views: dict[int, list[SequenceFeatures]],
    floor: float = 0.3,
) -> list[list[_Aligned]]:
    """Per track, the passages of its similar tracks and augmented views that align with it."""
    out: list[list[_Aligned]] = [[] for _ in seqs]

    def add(i: int, other: SequenceFeatures) -> None:
        comp = compare(seqs[i], other, keep_matrix=False)
        x = other.stacked()
        for w in comp.windows:
            if w.score < floor:
                continue
            a0, a1 = int(w.query_start * FRAME_RATE), int(w.query_end * FRAME_RATE)
            b0 = int(w.reference_start * FRAME_RATE)
            b1 = min(x.shape[1], int(w.reference_end * FRAME_RATE))
            if a1 - a0 >= 8 and b1 - b0 >= 8:
                rolled = x.copy()
                # put the view in the anchor's key: the positive differs by what the encoder
                # must ignore, not by a rotation it ignores by design anyway
                rolled[:12] = np.roll(rolled[:12], -w.transposition, axis=0)
                out[i].append(_Aligned(i, a0, a1, rolled, b0, b1))

    for i, j in pairs:
        add(i, seqs[j])
        add(j, seqs[i])
    for i, vs in views.items():
        for v in vs:
            add(i, v)
    return out


def _nt_xent(za: Any, zp: Any, same: Any, temperature: float) -> Any:
    import torch
    from torch.nn import functional as F

    logits = za @ zp.T / temperature
    eye = torch.eye(len(za), dtype=torch.bool)
    logits = logits.masked_fill(same & ~eye, float("-inf"))
    target = torch.arange(len(za))
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


def _retrieval_recall(model: SimilarityModel, seqs: list[np.ndarray], batcher: _Batcher) -> float:
    """Recall@1 of feature-augmented excerpts searched among the tracks' segment embeddings."""
    segs, owner = [], []
    for i, x in enumerate(seqs):
        starts = model.segment_starts(x.shape[1])
        w = min(model.segment_frames, x.shape[1])
        emb = model.embed_array(np.stack([_fit_length(x[:, s : s + w], w) for s in starts]))
        segs.append(emb)
        owner += [i] * len(emb)
    bank = np.concatenate(segs)
    owner_a = np.asarray(owner)
    hits = 0
    for i, x in enumerate(seqs):
        _, a = batcher._crop(x, min(model.segment_frames, x.shape[1]))
        q = batcher._augment(a, max(8, int(a.shape[1] * batcher.rng.uniform(0.85, 1.15))))
        sims = bank @ model.embed_array(q[None])[0]
        best = np.full(len(seqs), -np.inf)
        np.maximum.at(best, owner_a, sims)
        hits += int(np.argmax(best) == i)
    return hits / len(seqs)


def train_siamese_network_sync(
    features: Any,
    similarity_labels: Any = None,
    *,
    ids: Sequence[str] | None = None,
    augmented: Mapping[Any, Sequence[Any]] | None = None,
    dim: int = 128,
    width: int = 32,
    segment: float = 10.0,
    segment_hop: float = 5.0,
    steps: int = 300,
    batch_size: int = 32,
    learning_rate: float = 2e-3,
    temperature: float = 0.1,
    target_fpr: float = 0.01,
    calibration_pairs: int = 400,
    max_seconds: float | None = None,
    seed: int = 0,
    progress: Callable[[int, int, float], None] | None = None,
) -> SimilarityModel:
    """Train the key-invariant siamese encoder and calibrate its threshold.

    Parameters
    ----------
    features : list or mapping of tracks
        Per track: a dict of frame-level perceptual features as
        ``FeatureExtractor.extract_perceptual_features`` returns (one chroma among them), a
        :class:`SequenceFeatures`, an audio array at 22050 Hz or a file. Every track must carry
        the same features.
    similarity_labels : sequence of (a, b) or (a, b, label), or a DataFrame, optional
        Pairs of track ids (the mapping's keys, ``ids``) or indices; ``label`` >= 0.5 (or no
        label) is similar, below is dissimilar. With few or none, the positives come from
        augmentation.
    augmented : mapping of track (id or index) to a list of its augmented versions, optional
        Audio-level views (see :func:`~.augment.augmented_views`), as tracks are given.
    segment, segment_hop : float
        Seconds per embedded window and between windows (what the index stores).
    steps, batch_size, learning_rate, temperature : training schedule
    max_seconds : float, optional
        Stop training after this long (the calibration comes after).
    target_fpr : float
        False-positive rate the threshold is calibrated for.
    progress : callable(step, steps, loss), optional

    Returns
    -------
    SimilarityModel
        With ``report``: loss history, recall@1 of augmented excerpts among the training tracks,
        the calibration, sizes and seconds.

    Raises
    ------
    ParameterError
        Fewer than two tracks, unknown ids in the labels, tracks with different features, bad
        schedule values.
    """
    import torch

    from .encoder import KeyInvariantEncoder

    started = time.perf_counter()
    for name, value in (("steps", steps), ("batch_size", batch_size), ("dim", dim)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ParameterError(f"{name}={value!r} must be a positive integer")
    if batch_size < 2:
        raise ParameterError(f"batch_size={batch_size} must be at least 2 (in-batch negatives)")
    if not (learning_rate > 0 and temperature > 0 and segment > 0 and segment_hop > 0):
        raise ParameterError("learning_rate, temperature, segment and segment_hop must be positive")
    keys, items = _ids_and_items(features, ids)
    if len(items) < 2:
        raise ParameterError(f"training needs at least two tracks, got {len(items)}")
    seqs = [as_sequence(t) for t in items]
    names = {s.other_names for s in seqs}
    if len(names) != 1:
        raise ParameterError(f"tracks carry different features: {sorted(names)}")
    similar, dissimilar = _pairs(similarity_labels, keys)
    where = {k: i for i, k in enumerate(keys)}
    views: dict[int, list[SequenceFeatures]] = {}
    for k, vs in (augmented or {}).items():
        if isinstance(k, (int, np.integer)) and not isinstance(k, bool):
            i = int(k)
        elif str(k) in where:
            i = where[str(k)]
        else:
            raise ParameterError(f"augmented names an unknown track {k!r}")
        views[i] = [as_sequence(v) for v in vs]
        if any(v.other_names != seqs[0].other_names for v in views[i]):
            raise ParameterError(f"the augmented versions of track {k!r} carry other features")
    positives = _aligned_positives(seqs, similar, views)
    stacked = [s.stacked() for s in seqs]

    torch.manual_seed(seed)
    n_other = int(stacked[0].shape[0] - 12)
    encoder = KeyInvariantEncoder(n_other, dim, width)
    opt = torch.optim.AdamW(encoder.parameters(), lr=learning_rate, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=learning_rate, total_steps=steps)
    seg = int(round(segment * FRAME_RATE))
    batcher = _Batcher(
        stacked,
        positives,
        np.random.default_rng(seed),
        min_len=max(16, int(seg * 0.6)),
        max_len=max(16, int(seg * 1.4)),
    )
    groups = np.arange(len(seqs))
    for i, j in similar:  # similar tracks are never each other's negatives
        groups[groups == groups[j]] = groups[i]
    history: list[float] = []
    encoder.train()
    done = 0
    for step in range(steps):
        if max_seconds is not None and time.perf_counter() - started > max_seconds:
            break
        a, p, idx = batcher.batch(batch_size)
        g = torch.from_numpy(groups[idx])
        same = g[:, None] == g[None, :]
        za = encoder(torch.from_numpy(a))
        zp = encoder(torch.from_numpy(p))
        loss = _nt_xent(za, zp, same, temperature)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        history.append(float(loss.detach()))
        done = step + 1
        if progress is not None:
            progress(done, steps, history[-1])
    encoder.eval()
    config = {
        "n_other": n_other,
        "other_names": list(seqs[0].other_names),
        "dim": int(dim),
        "width": int(width),
        "segment": float(segment),
        "segment_hop": float(segment_hop),
        "frame_rate": FRAME_RATE,
    }
    model = SimilarityModel(encoder, config)
    train_s = time.perf_counter() - started
    recall = _retrieval_recall(model, stacked, batcher)
    pairs_known = set(similar)
    model.calibrate(
        seqs,
        target_fpr=target_fpr,
        similar=sorted(pairs_known),
        n_pairs=calibration_pairs,
        seed=seed,
    )
    model.report.update(
        {
            "n_tracks": len(seqs),
            "ids": keys,
            "n_similar_pairs": len(similar),
            "n_dissimilar_pairs": len(dissimilar),
            "n_augmented_views": sum(len(v) for v in views.values()),
            "n_aligned_positives": sum(len(p) for p in positives),
            "steps": done,
            "loss": history,
            "final_loss": float(np.mean(history[-20:])) if history else float("nan"),
            "augmented_recall_at_1": recall,
            "train_seconds": train_s,
            "seconds": time.perf_counter() - started,
        }
    )
    logger.info(
        "siamese encoder: %d tracks, %d steps, loss %.3f, recall@1 %.3f, threshold %.3f",
        len(seqs),
        done,
        model.report["final_loss"],
        recall,
        model.threshold,
    )
    return model


async def train_siamese_network(
    features: Any, similarity_labels: Any = None, **kwargs: Any
) -> SimilarityModel:
    """Async twin of :func:`train_siamese_network_sync` (on a worker thread)."""
    return await asyncio.to_thread(
        train_siamese_network_sync, features, similarity_labels, **kwargs
    )
