"""Aligned comparison of two clips: where the query matches the reference, transposed how, at
which tempo.

The query's chroma is cut into windows (``window`` seconds, every ``hop`` seconds; a short query
is one window). Each window is stretched in time by every ratio of a geometric tempo grid and
cross-correlated with the reference over time (every offset) and over the 12 chroma rotations
(every transposition) at once: one 2-D FFT product per window and tempo, the chroma axis circular
and the time axis linear. Chroma frames are smoothed, centred and scaled to unit length first, so
a window's score is the mean cosine between its frames and the reference frames it lands on: 1
for an identical passage, about 0 for unrelated music. A query shorter than one window has its
score scaled by ``sqrt(duration / window)``: fewer frames match well by chance, and a 3 s
fragment is weaker evidence than a 10 s passage. The pair's score is its best window's.

Consecutive windows that agree (same transposition, neighbouring tempo, reference offsets that
advance with the query) are merged into passages: the evidence. A passage's ends are then moved
to the frames that really match along its line (the frame-wise cosine, smoothed over 2 s, at
least half the passage's score), finer than the windows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..exceptions import ParameterError
from .features import FRAME_RATE, SequenceFeatures, as_sequence, resample_frames

__all__ = [
    "Comparison",
    "Passage",
    "WindowMatch",
    "alignment_chroma",
    "compare",
    "compare_many",
    "plot_comparison",
]


@dataclass(frozen=True)
class WindowMatch:
    """The best placement of one query window in the reference."""

    query_start: float
    query_end: float
    reference_start: float
    reference_end: float
    transposition: int
    tempo_ratio: float
    score: float


@dataclass(frozen=True)
class Passage:
    """A run of agreeing windows: ``query_start..query_end`` (s) of the query is
    ``reference_start..reference_end`` (s) of the reference, ``transposition`` semitones up
    (-5..6) and played ``tempo_ratio`` times as fast (query tempo / reference tempo)."""

    query_start: float
    query_end: float
    reference_start: float
    reference_end: float
    transposition: int
    tempo_ratio: float
    score: float
    windows: int


@dataclass
class Comparison:
    """What :func:`compare` finds: the score (the best window's mean cosine, -1..1), whether it
    passes ``threshold`` where one was given, the passages, and every window's best match."""

    score: float
    passages: list[Passage]
    windows: list[WindowMatch]
    threshold: float | None = None
    query_duration: float = 0.0
    reference_duration: float = 0.0
    #: the frame-by-frame cosine similarity of the query (rows), transposed by the best
    #: passage's transposition, against the reference (columns): what :func:`plot_comparison`
    #: draws
    cross_similarity: np.ndarray | None = field(default=None, repr=False)

    @property
    def match(self) -> bool | None:
        return None if self.threshold is None else bool(self.score >= self.threshold)

    def to_dict(self) -> dict[str, Any]:
        return {
            "score": self.score,
            "threshold": self.threshold,
            "match": self.match,
            "query_duration": self.query_duration,
            "reference_duration": self.reference_duration,
            "passages": [asdict(p) for p in self.passages],
            "windows": [asdict(w) for w in self.windows],
        }


def _smooth(x: np.ndarray, width: int) -> np.ndarray:
    if width <= 1 or x.shape[1] < width:
        return x
    c = np.cumsum(np.pad(x, ((0, 0), (1, 0))), axis=1)
    core = (c[:, width:] - c[:, :-width]) / width
    left = (width - 1) // 2
    right = x.shape[1] - core.shape[1] - left
    return np.pad(core, ((0, 0), (left, right)), mode="edge")


def alignment_chroma(seq: SequenceFeatures, smooth: int = 3) -> np.ndarray:
    """``(12, T)`` float32 chroma as the alignment compares it: smoothed over ``smooth`` frames,
    the clip's mean chroma (its key profile) removed, each frame centred and scaled to unit
    length (silent frames stay zero).

    Removing the key profile leaves what changes in time, which is what a copy shares: two
    unrelated pieces in one key agree on the profile alone. On 30 transformed queries against
    16 clips this lowered the 99th percentile of unrelated scores from 0.62 to 0.47, the
    copies' lowest score moving from 0.885 to 0.876."""
    x = _smooth(np.asarray(seq.chroma, dtype=np.float32), smooth)
    x = x - x.mean(axis=1, keepdims=True)
    x = x - x.mean(axis=0, keepdims=True)
    norm = np.linalg.norm(x, axis=0, keepdims=True)
    return (x / np.where(norm > 1e-6, norm, np.inf)).astype(np.float32)


def _stretch(x: np.ndarray, ratio: float) -> np.ndarray:
    """``x`` resampled in time to ``round(T * ratio)`` frames, each frame back to unit length."""
    y = resample_frames(x, max(1, int(round(x.shape[1] * ratio))))
    norm = np.linalg.norm(y, axis=0, keepdims=True)
    return (y / np.where(norm > 1e-6, norm, np.inf)).astype(np.float32)


def tempo_grid(low: float = 0.8, high: float = 1.25, step: float = 0.03) -> np.ndarray:
    """Geometric grid of tempo ratios from ``low`` to ``high``, ``step`` apart (relative), 1
    included."""
    if not (0 < low <= 1 <= high) or not 0 < step < 0.5:
        raise ParameterError(
            f"tempo range [{low}, {high}] must hold 1 and step={step} be in (0, 0.5)"
        )
    down = int(np.ceil(np.log(1 / low) / np.log1p(step)))
    up = int(np.ceil(np.log(high) / np.log1p(step)))
    grid = (1 + step) ** np.arange(-down, up + 1)
    return np.clip(grid, low, high)


@dataclass(frozen=True)
class _Windows:
    starts: np.ndarray  # query frames
    length: int  # query frames
    nominal: int  # frames of a full window


def _windows(n_frames: int, window: float, hop: float) -> _Windows:
    w = int(round(window * FRAME_RATE))
    h = max(1, int(round(hop * FRAME_RATE)))
    if n_frames <= int(w * 1.5):
        return _Windows(np.array([0]), n_frames, w)
    starts = np.arange(0, n_frames - w + 1, h)
    if starts[-1] + w < n_frames:
        starts = np.append(starts, n_frames - w)
    return _Windows(starts, w, w)


@dataclass(frozen=True)
class _QueryBlocks:
    """Every (tempo, window) block of a query, zero-padded to one length, with its FFT."""

    tempo: np.ndarray  # tempo index per block
    window: np.ndarray  # window index per block
    length: np.ndarray  # frames of each block (stretched)
    full: np.ndarray  # frames a whole stretched window would have
    scale: float  # sqrt(min(1, window length / nominal window))
    n: int  # FFT length along time
    fft: np.ndarray  # conj(rfft2) of the blocks, (blocks, 12, n // 2 + 1)


def _query_blocks(
    q: np.ndarray, wins: _Windows, tempos: np.ndarray, longest_ref: int
) -> _QueryBlocks:
    import scipy.fft as sfft

    blocks, tempo, window, length, full = [], [], [], [], []
    for ti, ratio in enumerate(tempos):
        stretched = _stretch(q, float(ratio))
        whole = int(round(wins.length * ratio))
        size = min(whole, stretched.shape[1])
        starts = np.minimum(
            np.round(wins.starts * ratio).astype(np.int64), stretched.shape[1] - size
        )
        for wi, st in enumerate(starts):
            blocks.append(stretched[:, st : st + size])
            tempo.append(ti)
            window.append(wi)
            length.append(size)
            full.append(whole)
    longest = max(length)
    n = sfft.next_fast_len(max(longest_ref, longest) + longest, real=True)
    stack = np.zeros((len(blocks), 12, longest), np.float32)
    for i, blk in enumerate(blocks):
        stack[i, :, : blk.shape[1]] = blk
    return _QueryBlocks(
        np.asarray(tempo),
        np.asarray(window),
        np.asarray(length),
        np.asarray(full),
        float(np.sqrt(min(1.0, wins.length / wins.nominal))),
        int(n),
        np.conj(sfft.rfft2(stack, s=(12, n))),
    )


def _best_placements(qb: _QueryBlocks, r: np.ndarray, n_windows: int) -> np.ndarray:
    """``(n_windows, 4)``: per query window the best (score, transposition, tempo index,
    reference start frame) over every tempo, rotation and offset in ``r``.

    A reference shorter than a block is zero-padded to the block's length: the block may hang
    over its end, and the frames that fall off match nothing (score 0)."""
    import scipy.fft as sfft

    tr = max(r.shape[1], int(qb.length.max()))
    fr = sfft.rfft2(r, s=(12, qb.n))
    xc = sfft.irfft2(qb.fft * fr[None], s=(12, qb.n))[:, :, :tr]
    # offsets past the reference's end for this block's length are no placement
    valid = np.arange(tr)[None, :] <= (tr - qb.length)[:, None]
    xc = np.where(valid[:, None, :], xc, -np.inf)
    # the mean cosine over the whole stretched window; a short window's best mean cosine is high
    # by chance (fewer frames, as many offsets): scaled by sqrt(length / window), the spread of
    # that chance for shorter windows
    flat = xc.reshape(len(xc), -1)
    arg = np.argmax(flat, axis=1)
    score = flat[np.arange(len(flat)), arg] / qb.full * qb.scale
    m, offset = np.divmod(arg, tr)
    best = np.full((n_windows, 4), -np.inf)
    for b in np.argsort(score, kind="stable"):  # the best block of each window is written last
        best[qb.window[b]] = (score[b], (-m[b]) % 12, qb.tempo[b], offset[b])
    return best


def _signed(k: int) -> int:
    """A transposition of 0..11 semitones as -5..6."""
    return int(k - 12 if k > 6 else k)


def _passages(
    matches: list[WindowMatch], tempos: np.ndarray, floor: float, hop: float
) -> list[Passage]:
    """Merge consecutive windows scoring at least ``floor`` that agree."""
    out: list[Passage] = []
    run: list[WindowMatch] = []

    def close() -> None:
        if run:
            scores = [w.score for w in run]
            out.append(
                Passage(
                    run[0].query_start,
                    run[-1].query_end,
                    run[0].reference_start,
                    run[-1].reference_end,
                    run[int(np.argmax(scores))].transposition,
                    float(np.median([w.tempo_ratio for w in run])),
                    float(np.mean(scores)),
                    len(run),
                )
            )
            run.clear()

    step = float(np.median(np.diff(np.log(tempos)))) if len(tempos) > 1 else 0.0
    for w in matches:
        if w.score < floor:
            close()
            continue
        if run:
            prev = run[-1]
            advance = (w.query_start - prev.query_start) * w.tempo_ratio
            agree = (
                w.transposition == prev.transposition
                and abs(np.log(w.tempo_ratio / prev.tempo_ratio)) <= 1.5 * step + 1e-9
                and abs(w.reference_start - prev.reference_start - advance) <= max(1.5, hop / 2)
                and w.query_start <= prev.query_end
            )
            if not agree:
                close()
        run.append(w)
    close()
    return sorted(out, key=lambda p: -p.score)


def _refine(p: Passage, q: np.ndarray, r: np.ndarray, smooth: float = 2.0) -> Passage:
    """Trim or extend ``p``'s ends to the frames that match along its line: the cosine of each
    query frame (rotated by the transposition) with the reference frame the line maps it to,
    averaged over ``smooth`` seconds, at least half the passage's score."""
    tq, tr = q.shape[1], r.shape[1]
    q0 = int(round(p.query_start * FRAME_RATE))
    r0 = p.reference_start * FRAME_RATE
    i = np.arange(tq)
    j = np.round(r0 + (i - q0) * p.tempo_ratio).astype(np.int64)
    ok = (j >= 0) & (j < tr)
    sim = np.zeros(tq, np.float32)
    rotated = np.roll(q, -p.transposition, axis=0)
    sim[ok] = np.einsum("ct,ct->t", rotated[:, i[ok]], r[:, j[ok]])
    level = 0.5 * p.score
    smoothed = _smooth(sim[None], max(1, int(round(smooth * FRAME_RATE))))[0]
    centre = int(round((p.query_start + p.query_end) / 2 * FRAME_RATE))
    centre = min(max(centre, 0), tq - 1)
    if smoothed[centre] < level:
        return p
    a = centre
    while a > 0 and smoothed[a - 1] >= level and ok[a - 1]:
        a -= 1
    b = centre
    while b < tq - 1 and smoothed[b + 1] >= level and ok[b + 1]:
        b += 1
    b += 1
    return Passage(
        query_start=float(a / FRAME_RATE),
        query_end=float(b / FRAME_RATE),
        reference_start=float(j[a] / FRAME_RATE),
        reference_end=float((j[b - 1] + 1) / FRAME_RATE),
        transposition=p.transposition,
        tempo_ratio=p.tempo_ratio,
        score=p.score,
        windows=p.windows,
    )


def compare(
    query: Any,
    reference: Any,
    *,
    threshold: float | None = None,
    window: float = 10.0,
    hop: float = 5.0,
    tempo_range: tuple[float, float] = (0.8, 1.25),
    tempo_step: float = 0.03,
    passage_floor: float | None = None,
    keep_matrix: bool = True,
) -> Comparison:
    """Compare a query clip with a reference: a score and the aligned evidence.

    Parameters
    ----------
    query, reference : SequenceFeatures, dict of perceptual features, audio array or file
        See :func:`~ml_utilities.similarity.features.as_sequence` (arrays at 22050 Hz).
    threshold : float, optional
        The decision threshold (see :func:`calibrate_threshold`); sets ``Comparison.match``.
    window, hop : float
        Query windows, in seconds of the query.
    tempo_range, tempo_step : tuple, float
        The tempo ratios tried (query tempo / reference tempo).
    passage_floor : float, optional
        Windows scoring below it are no evidence; default ``threshold``, else 0.6 x the score.

    Raises
    ------
    ParameterError
        Unreadable inputs, or ``window``/``hop`` not positive.
    """
    return compare_many(
        query,
        [reference],
        threshold=threshold,
        window=window,
        hop=hop,
        tempo_range=tempo_range,
        tempo_step=tempo_step,
        passage_floor=passage_floor,
        keep_matrix=keep_matrix,
    )[0]


def compare_many(
    query: Any,
    references: Sequence[Any],
    *,
    threshold: float | None = None,
    window: float = 10.0,
    hop: float = 5.0,
    tempo_range: tuple[float, float] = (0.8, 1.25),
    tempo_step: float = 0.03,
    passage_floor: float | None = None,
    keep_matrix: bool = True,
) -> list[Comparison]:
    """:func:`compare` of one query with each of ``references``: the query's stretched windows
    and their FFTs are made once for all of them."""
    if not (window > 0 and hop > 0):
        raise ParameterError(f"window={window!r} and hop={hop!r} must be positive seconds")
    qs = as_sequence(query)
    refs = [as_sequence(r) for r in references]
    if not refs:
        return []
    tempos = tempo_grid(*tempo_range, step=tempo_step)
    q = alignment_chroma(qs)
    wins = _windows(q.shape[1], window, hop)
    qb = _query_blocks(q, wins, tempos, max(r.n_frames for r in refs))
    return [
        _comparison(
            qs,
            rs,
            q,
            alignment_chroma(rs),
            wins,
            tempos,
            qb,
            threshold,
            hop,
            passage_floor,
            keep_matrix,
        )
        for rs in refs
    ]


def _comparison(
    qs: SequenceFeatures,
    rs: SequenceFeatures,
    q: np.ndarray,
    r: np.ndarray,
    wins: _Windows,
    tempos: np.ndarray,
    qb: _QueryBlocks,
    threshold: float | None,
    hop: float,
    passage_floor: float | None,
    keep_matrix: bool,
) -> Comparison:
    best = _best_placements(qb, r, len(wins.starts))
    matches = []
    for start, (score, k, ti, offset) in zip(wins.starts, best, strict=True):
        ratio = float(tempos[int(ti)])
        length = int(round(wins.length * ratio))
        matches.append(
            WindowMatch(
                query_start=float(start / FRAME_RATE),
                query_end=float(min(start + wins.length, q.shape[1]) / FRAME_RATE),
                reference_start=float(offset / FRAME_RATE),
                reference_end=float(min(offset + length, r.shape[1]) / FRAME_RATE),
                transposition=_signed(int(k)),
                tempo_ratio=ratio,
                score=float(score),
            )
        )
    score = max(m.score for m in matches)
    floor = (
        passage_floor
        if passage_floor is not None
        else (threshold if threshold is not None else 0.6 * score)
    )
    passages = _passages(matches, tempos, floor, hop)
    if threshold is None or score >= threshold:  # a non-match's passages stay the windows'
        passages = [_refine(p, q, r) for p in passages]
    matrix = None
    if keep_matrix:
        k = passages[0].transposition if passages else 0
        matrix = (np.roll(q, -k, axis=0).T @ r).astype(np.float32)
    return Comparison(
        score=float(score),
        passages=passages,
        windows=matches,
        threshold=threshold,
        query_duration=qs.duration,
        reference_duration=rs.duration,
        cross_similarity=matrix,
    )


def plot_comparison(comparison: Comparison, path: str | Path | None = None) -> Any:
    """Draw the cross-similarity matrix with the passages on it; save to ``path`` (PNG, SVG,
    PDF) when given. Returns the matplotlib ``Figure`` (drawn on an Agg canvas: pyplot's state
    and backend are left alone)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if comparison.cross_similarity is None:
        raise ParameterError("this comparison kept no matrix (compare(..., keep_matrix=False))")
    m = comparison.cross_similarity
    fig = Figure(figsize=(8, 4.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    extent = (0, m.shape[1] / FRAME_RATE, m.shape[0] / FRAME_RATE, 0)
    im = ax.imshow(m, aspect="auto", cmap="magma", vmin=-0.2, vmax=1.0, extent=extent)
    for p in comparison.passages:
        ax.plot(
            [p.reference_start, p.reference_end],
            [p.query_start, p.query_end],
            color="cyan",
            lw=2,
        )
        ax.annotate(
            f"{p.score:.2f}, {p.transposition:+d} st, x{p.tempo_ratio:.2f}",
            (p.reference_start, p.query_start),
            color="cyan",
            fontsize=8,
            va="bottom",
        )
    ax.set_xlabel("reference (s)")
    ax.set_ylabel("query (s)")
    verdict = "" if comparison.match is None else (" match" if comparison.match else " no match")
    ax.set_title(f"score {comparison.score:.3f}{verdict}")
    fig.colorbar(im, ax=ax, label="cosine")
    fig.tight_layout()
    if path is not None:
        from .._fs import atomic_file

        fmt = Path(path).suffix.lstrip(".") or "png"
        with atomic_file(path) as fh:
            fig.savefig(fh, format=fmt, dpi=110)
    return fig
