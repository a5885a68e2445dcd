"""Beat tracking, librosa 0.11 compatible (``librosa.beat.beat_track``).

The onset strength (:mod:`.onset`) and the tempo (:mod:`.tempo_estimation`), then the dynamic
programming beat tracker (Ellis 2007) in C++ (``_core.rhythm``) with the GIL released, with
librosa's numba arithmetic (float32 ``tightness``), so the beats are librosa's.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..exceptions import ParameterError
from ._shapes import expand_to, kernels
from ._validation import check_finite, check_hop, check_sr, tiny
from .convert import frames_to_samples, frames_to_time
from .onset import onset_strength
from .tempo_estimation import tempo

__all__ = ["beat_track"]


def beat_track(
    *,
    y: np.ndarray | None = None,
    sr: float = 22050,
    onset_envelope: np.ndarray | None = None,
    hop_length: int = 512,
    start_bpm: float = 120.0,
    tightness: float = 100,
    trim: bool = True,
    bpm: float | np.ndarray | None = None,
    prior: Any = None,
    units: str = "frames",
    sparse: bool = True,
) -> tuple[Any, np.ndarray]:
    """Dynamic-programming beat tracker (Ellis 2007), as ``librosa.beat.beat_track``.

    The onset strength (median over mel bands), the tempo (:func:`tempo`), then natively: the
    Gaussian-smoothed local score, the dynamic programme with the log-ratio transition penalty
    weighted by ``tightness``, the last-beat selection, backtracking and edge trimming, with
    librosa's numba arithmetic, so the beats are librosa's.

    Parameters
    ----------
    y : np.ndarray [shape=(..., n)] or None
        Audio.
    sr : float > 0
        Sample rate.
    onset_envelope : np.ndarray [shape=(..., m)] or None
        A precomputed onset strength envelope.
    hop_length : int > 0
        Hop of the envelope.
    start_bpm : float > 0
        Prior centre of the tempo estimate.
    tightness : float > 0
        How closely the beats follow the tempo.
    trim : bool
        Drop weak leading and trailing beats.
    bpm : float, np.ndarray or None
        The tempo, if known (a value per channel, or per frame).
    prior : scipy.stats distribution or None
        Tempo prior (see :func:`tempo`).
    units : {"frames", "samples", "time"}
        Units of the sparse beat positions.
    sparse : bool
        Return beat positions (1-D envelopes only) instead of a boolean array.

    Returns
    -------
    tempo : np.ndarray [shape=(..., 1)] or float
        The tempo in BPM (0.0 when the envelope is all zeros).
    beats : np.ndarray
        Beat positions in ``units``, or a bool array shaped as the envelope.

    Raises
    ------
    ParameterError
        Without ``y`` and ``onset_envelope``, ``sparse`` with a multi-channel envelope,
        ``bpm <= 0``, ``tightness <= 0``, a ``bpm`` shape that does not fit, or unknown ``units``.

    Examples
    --------
    >>> import numpy as np
    >>> from ml_utilities.audio import beat_track
    >>> y = np.zeros(10 * 22050, dtype=np.float32)
    >>> y[::11025] = 1.0
    >>> bpm, beats = beat_track(y=y, sr=22050)
    >>> bpm
    array([117.45383523])
    """
    check_sr(sr)
    check_finite(start_bpm=start_bpm, tightness=tightness, bpm=bpm)
    if onset_envelope is None:
        if y is None:
            raise ParameterError("y or onset_envelope must be provided")
        onset_envelope = onset_strength(y=y, sr=sr, hop_length=hop_length, aggregate=np.median)
    check_hop(hop_length)
    onset_envelope = np.asarray(onset_envelope)
    if sparse and onset_envelope.ndim != 1:
        raise ParameterError(
            f"sparse=True (default) does not support "
            f"{onset_envelope.ndim}-dimensional inputs. "
            f"Either set sparse=False or convert the signal to mono."
        )
    if not onset_envelope.any():
        if sparse:
            return (0.0, np.array([], dtype=int))
        return (
            np.zeros(shape=onset_envelope.shape[:-1], dtype=float),
            np.zeros_like(onset_envelope, dtype=bool),
        )
    if bpm is None:
        bpm = tempo(
            onset_envelope=onset_envelope,
            sr=sr,
            hop_length=hop_length,
            start_bpm=start_bpm,
            prior=prior,
        )
    _bpm = np.atleast_1d(bpm)
    bpm_expanded = expand_to(_bpm, ndim=onset_envelope.ndim, axes=range(_bpm.ndim))
    beats = _beat_tracker(onset_envelope, bpm_expanded, float(sr) / hop_length, tightness, trim)
    if sparse:
        positions = np.flatnonzero(beats)
        if units == "frames":
            pass
        elif units == "samples":
            return (bpm, frames_to_samples(positions, hop_length=hop_length))
        elif units == "time":
            return (bpm, frames_to_time(positions, hop_length=hop_length, sr=sr))
        else:
            raise ParameterError(f"Invalid unit type: {units}")
        return (bpm, positions)
    return (bpm, beats)


def _beat_tracker(
    onset_envelope: np.ndarray, bpm: np.ndarray, frame_rate: float, tightness: float, trim: bool
) -> np.ndarray:
    """librosa.beat.__beat_tracker: checks, then the native tracker on every channel."""
    if np.any(bpm <= 0):
        raise ParameterError(f"bpm={bpm} must be strictly positive")
    if tightness <= 0:
        raise ParameterError(f"tightness must be strictly positive (tightness={tightness!r})")
    if bpm.shape[-1] not in (1, onset_envelope.shape[-1]):
        raise ParameterError(
            f"Invalid bpm shape={bpm.shape} does not match "
            f"onset envelope shape={onset_envelope.shape}"
        )
    frames_per_beat = np.round(frame_rate * 60.0 / bpm)
    # __normalize_onsets, in numpy as librosa.
    norm = onset_envelope.std(ddof=1, axis=-1, keepdims=True)
    onsets = onset_envelope / (norm + tiny(onset_envelope))
    # The numba kernels run in the common type of the envelope and frames_per_beat.
    dtype = (
        np.float32
        if np.result_type(onsets.dtype, frames_per_beat.dtype) == np.float32
        else np.float64
    )
    n = onsets.shape[-1]
    lead = np.broadcast_shapes(onsets.shape[:-1], frames_per_beat.shape[:-1])
    rows = np.ascontiguousarray(np.broadcast_to(onsets, (*lead, n)).reshape(-1, n), dtype=dtype)
    k = frames_per_beat.shape[-1]
    fpb = np.ascontiguousarray(
        np.broadcast_to(frames_per_beat, (*lead, k)).reshape(-1, k), dtype=dtype
    )
    if n == 0:
        return np.zeros((*lead, 0), dtype=bool)
    marks = np.zeros(rows.shape, dtype=np.uint8)
    kernels("rhythm").beat_track(rows, fpb, float(tightness), bool(trim), marks)
    return marks.view(bool).reshape(*lead, n)
