"""Baseline systems of the similarity benchmark (issue 21).

Every system follows :class:`System`: :meth:`~System.index` takes the catalogue (id -> WAV
path) and :meth:`~System.rank` returns the catalogue ids for a query, best first, with
scores where higher means more similar.

* :class:`ChromaprintSystem`: audio fingerprints (Chromaprint's ``fpcalc``) matched the way
  AcoustID-style services match them, by the best bit agreement of the 32-bit sub-fingerprints
  over every alignment. It finds copies of a recording, not new performances.
* :class:`TwoDFTMSystem`: the cover-song baseline of Bertin-Mahieux and Ellis, "Large-scale
  cover song recognition using the 2D Fourier transform magnitude" (ISMIR 2012): beat-chroma
  patches, the magnitude of their 2D Fourier transform (invariant to key and to time shifts),
  the median over patches, PCA, and Euclidean distance.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
import soundfile as sf

from ml_utilities.audio import beat_track, chroma_stft


class System(Protocol):
    """Interface of a system under test.

    Attributes
    ----------
    name : str
        Short name used in the results table.
    """

    name: str

    def index(self, items: dict[str, Path]) -> None:
        """Index the catalogue.

        Parameters
        ----------
        items : dict[str, Path]
            Catalogue id -> mono 22,050 Hz WAV file.
        """
        ...

    def rank(self, query: Path) -> list[tuple[str, float]]:
        """Rank the catalogue for one query.

        Parameters
        ----------
        query : Path
            Mono 22,050 Hz WAV file.

        Returns
        -------
        list[tuple[str, float]]
            ``(catalogue id, score)``, best first, higher scores more similar; at least the
            top 100 (or the whole catalogue where smaller).
        """
        ...


def _ranking(ids: Sequence[str], scores: np.ndarray) -> list[tuple[str, float]]:
    order = np.argsort(-scores, kind="stable")
    return [(ids[i], float(scores[i])) for i in order]


# ---------------------------------------------------------------------------- Chromaprint


def fingerprint(path: Path, fpcalc: str = "fpcalc") -> np.ndarray:
    """Raw Chromaprint fingerprint of a whole file.

    Parameters
    ----------
    path : Path
        Audio file (anything FFmpeg decodes).
    fpcalc : str
        The ``fpcalc`` executable.

    Returns
    -------
    np.ndarray [shape=(n,), dtype=uint32]
        One 32-bit sub-fingerprint per ~0.124 s; empty for audio too short to fingerprint.

    Raises
    ------
    RuntimeError
        Where ``fpcalc`` fails.
    """
    proc = subprocess.run(
        [fpcalc, "-raw", "-length", "0", "-json", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    # fpcalc exits with 1 after "Error decoding audio frame (End of file)" at the end of some
    # WAV files, having printed the whole fingerprint: judge by the output.
    # Audio shorter than about 3 s gives "Empty fingerprint": an empty array.
    if "Empty fingerprint" in proc.stderr:
        return np.zeros(0, dtype=np.uint32)
    try:
        prints = json.loads(proc.stdout)["fingerprint"]
    except (json.JSONDecodeError, KeyError) as exc:
        raise RuntimeError(f"fpcalc failed on {path}: {proc.stderr.strip()}") from exc
    return np.asarray(prints, dtype=np.uint32)


def best_bit_agreement(query: np.ndarray, reference: np.ndarray, min_overlap: int) -> float:
    """Best mean bit agreement of two fingerprints over all their alignments.

    The query is slid over the reference at every offset, including offsets where it hangs
    over either end, as long as at least ``min_overlap`` sub-fingerprints overlap (fewer
    where either fingerprint is shorter); at each offset the agreement is
    ``1 - popcount(q xor r) / 32`` averaged over the overlap.

    Parameters
    ----------
    query, reference : np.ndarray [dtype=uint32]
        Raw sub-fingerprints.
    min_overlap : int
        Minimum number of overlapping sub-fingerprints.

    Returns
    -------
    float
        In [0, 1]; about 0.5 for unrelated audio, 1 for identical audio. 0 where either
        fingerprint is empty.
    """
    m, n = query.size, reference.size
    k = min(min_overlap, m, n)
    if k == 0:
        return 0.0
    pad = m - k
    padded = np.concatenate([np.zeros(pad, np.uint32), reference, np.zeros(pad, np.uint32)])
    valid = np.concatenate([np.zeros(pad), np.ones(n), np.zeros(pad)]).astype(np.float32)
    windows = np.lib.stride_tricks.sliding_window_view(padded, m)
    masks = np.lib.stride_tricks.sliding_window_view(valid, m)
    agree = 32 - np.bitwise_count(windows ^ query).astype(np.float32)
    per_offset = (agree * masks).sum(axis=1) / (masks.sum(axis=1) * 32)
    return float(per_offset.max())


class ChromaprintSystem:
    """Chromaprint fingerprints matched by best bit agreement over all alignments.

    Parameters
    ----------
    min_overlap_s : float
        Minimum overlap between query and reference, in seconds (fewer where the query is
        shorter).
    fpcalc : str
        The ``fpcalc`` executable.
    """

    name = "chromaprint"
    ITEM_S = 4096 / 3 / 11025
    """Seconds per sub-fingerprint (Chromaprint works at 11,025 Hz with a 1365-sample hop)."""

    def __init__(self, min_overlap_s: float = 5.0, fpcalc: str = "fpcalc") -> None:
        self.min_overlap = max(1, round(min_overlap_s / self.ITEM_S))
        self.fpcalc = fpcalc
        self._ids: list[str] = []
        self._prints: list[np.ndarray] = []

    def index(self, items: dict[str, Path]) -> None:
        """Fingerprint every catalogue file; see :meth:`System.index`."""
        self._ids = list(items)
        self._prints = [fingerprint(items[i], self.fpcalc) for i in self._ids]

    def rank(self, query: Path) -> list[tuple[str, float]]:
        """Rank the catalogue by best bit agreement; see :meth:`System.rank`."""
        q = fingerprint(query, self.fpcalc)
        scores = np.array([best_bit_agreement(q, r, self.min_overlap) for r in self._prints])
        return _ranking(self._ids, scores)


# ---------------------------------------------------------------------------------- 2DFTM


def _load(path: Path) -> tuple[np.ndarray, int]:
    y, sr = sf.read(path, dtype="float32", always_2d=True)
    return y.mean(axis=1), sr


def _sync(features: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """Mean of ``features`` (d, t) between consecutive frame ``bounds``."""
    bounds = np.unique(np.clip(bounds, 0, features.shape[1]))
    bounds = bounds[bounds < features.shape[1]]
    sums = np.add.reduceat(features, bounds, axis=1)
    return sums / np.diff(np.append(bounds, features.shape[1]))


class TwoDFTMSystem:
    """Chroma 2D Fourier transform magnitude (Bertin-Mahieux & Ellis, ISMIR 2012).

    For each file: a chromagram (:func:`ml_utilities.audio.chroma_stft`, hop 512 at
    22,050 Hz) averaged between the beats of :func:`ml_utilities.audio.beat_track`, or over
    fixed ``frame_s`` frames where fewer than ``min_beats`` beats are found; each beat
    normalised to a maximum of 1 and raised to ``power``; every patch of ``patch_len`` beats
    (hop 1) turned into the magnitude of its 12 x ``patch_len`` 2D FFT; the element-wise
    median over patches, flattened and L2-normalised. A file shorter than one patch (every
    10-20 s query with 75-beat patches) is zero-padded to one patch, hence the
    normalisation. PCA fitted on the catalogue keeps ``pca_dims`` dimensions; ranking is by
    Euclidean distance (score = -distance). The system is named "2dftm", or
    "2dftm:<patch_len>" for other patch lengths (20 beats fit inside the excerpts).

    Parameters
    ----------
    patch_len : int
        Beats per patch (75 in the paper).
    power : float
        Exponent applied to the beat-chroma; the paper's 1.96 expands (sharpens the
        strongest pitch classes); values below 1 compress.
    pca_dims : int or None
        PCA dimensions (50 in the paper); None keeps all 12 x ``patch_len``.
    min_beats : int
        Fewest beats for beat-synchronous chroma.
    frame_s : float
        Frame length of the fallback fixed grid, in seconds.
    """

    HOP = 512

    def __init__(
        self,
        patch_len: int = 75,
        power: float = 1.96,
        pca_dims: int | None = 50,
        min_beats: int = 8,
        frame_s: float = 0.5,
    ) -> None:
        self.name = "2dftm" if patch_len == 75 else f"2dftm:{patch_len}"
        self.patch_len = patch_len
        self.power = power
        self.pca_dims = pca_dims
        self.min_beats = min_beats
        self.frame_s = frame_s
        self._ids: list[str] = []
        self._mean = np.zeros(0)
        self._basis = np.zeros((0, 0))
        self._vectors = np.zeros((0, 0))

    def beat_chroma(self, y: np.ndarray, sr: int) -> np.ndarray:
        """Beat-synchronous chroma, normalised per beat and raised to ``power``.

        Parameters
        ----------
        y : np.ndarray
            Mono audio.
        sr : int
            Sample rate.

        Returns
        -------
        np.ndarray [shape=(12, n_beats)]
        """
        chroma = chroma_stft(y=y, sr=sr, hop_length=self.HOP)
        _, beats = beat_track(y=y, sr=sr, hop_length=self.HOP)
        beats = np.asarray(beats, dtype=np.int64)
        if beats.size < self.min_beats:
            step = max(1, round(self.frame_s * sr / self.HOP))
            beats = np.arange(0, chroma.shape[1], step)
        synced = _sync(chroma, np.concatenate([[0], beats]))
        synced = synced / np.maximum(synced.max(axis=0, keepdims=True), 1e-9)
        return synced**self.power

    def feature(self, path: Path) -> np.ndarray:
        """Median 2DFTM of one file, before PCA.

        Parameters
        ----------
        path : Path
            Mono WAV file.

        Returns
        -------
        np.ndarray [shape=(12 * patch_len,)]
            L2-normalised.
        """
        y, sr = _load(path)
        chroma = self.beat_chroma(y, sr)
        if chroma.shape[1] < self.patch_len:
            chroma = np.pad(chroma, ((0, 0), (0, self.patch_len - chroma.shape[1])))
        patches = np.lib.stride_tricks.sliding_window_view(chroma, self.patch_len, axis=1)
        magnitude = np.abs(np.fft.fft2(patches.transpose(1, 0, 2), axes=(1, 2)))
        vector = np.median(magnitude, axis=0).ravel()
        return vector / max(float(np.linalg.norm(vector)), 1e-12)

    def _project(self, vectors: np.ndarray) -> np.ndarray:
        return (vectors - self._mean) @ self._basis

    def index(self, items: dict[str, Path]) -> None:
        """Compute the catalogue features and fit the PCA; see :meth:`System.index`."""
        self._ids = list(items)
        features = np.stack([self.feature(items[i]) for i in self._ids])
        self._mean = features.mean(axis=0)
        if self.pca_dims is None:
            self._basis = np.eye(features.shape[1])
        else:
            _, _, vt = np.linalg.svd(features - self._mean, full_matrices=False)
            self._basis = vt[: min(self.pca_dims, vt.shape[0])].T
        self._vectors = self._project(features)

    def rank(self, query: Path) -> list[tuple[str, float]]:
        """Rank the catalogue by Euclidean distance; see :meth:`System.rank`."""
        q = self._project(self.feature(query)[None, :])
        distances = np.linalg.norm(self._vectors - q, axis=1)
        return _ranking(self._ids, -distances)
