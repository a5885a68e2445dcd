"""Tempo estimation, librosa 0.11 compatible (``librosa.feature.tempo``,
``librosa.feature.tempogram`` and ``librosa.tempo_frequencies``).

The autocorrelation tempogram (and its time average, for :func:`tempo`) runs in C++
(``_core.rhythm``) with the GIL released. The module is not named ``tempo``: a submodule
``ml_utilities.audio.tempo`` would shadow the function ``ml_utilities.audio.tempo``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..exceptions import ParameterError
from ._shapes import expand_to, kernels
from ._validation import check_envelope, check_finite, check_hop, check_sr, normalize
from .convert import time_to_frames
from .filters import get_window
from .onset import onset_strength

__all__ = ["tempo", "tempo_frequencies", "tempogram"]


def tempo_frequencies(n_bins: int, *, hop_length: int = 512, sr: float = 22050) -> np.ndarray:
    """BPM of each lag bin of an autocorrelation tempogram, as ``librosa.tempo_frequencies``.

    Parameters
    ----------
    n_bins : int > 0
        Number of lag bins.
    hop_length : int > 0
        Hop of the onset envelope.
    sr : float > 0
        Sample rate.

    Returns
    -------
    np.ndarray [shape=(n_bins,)], float64
        ``inf`` for lag 0, then ``60 * sr / (hop_length * lag)``.

    Examples
    --------
    >>> from ml_utilities.audio.tempo_estimation import tempo_frequencies
    >>> tempo_frequencies(4, hop_length=512, sr=22050)
    array([         inf, 2583.984375 , 1291.9921875,  861.328125 ])
    """
    check_sr(sr)
    bin_frequencies = np.zeros(int(n_bins), dtype=np.float64)
    bin_frequencies[0] = np.inf
    bin_frequencies[1:] = 60.0 * sr / (hop_length * np.arange(1.0, n_bins))
    return bin_frequencies


def _tempogram_frames(
    y: np.ndarray | None,
    sr: float,
    onset_envelope: np.ndarray | None,
    hop_length: int,
    win_length: int,
    center: bool,
    window: Any,
) -> tuple[np.ndarray, int, np.ndarray, tuple[int, ...]]:
    """tempogram's checks and padding: (padded rows, frame count, window, leading shape)."""
    if win_length < 1:
        raise ParameterError(f"win_length must be a positive integer (win_length={win_length!r})")
    ac_window = np.ascontiguousarray(get_window(window, win_length, fftbins=True), dtype=np.float64)
    if onset_envelope is None:
        if y is None:
            raise ParameterError("Either y or onset_envelope must be provided")
        onset_envelope = onset_strength(y=y, sr=sr, hop_length=hop_length)
    onset_envelope = np.asarray(onset_envelope)
    check_envelope(onset_envelope)
    n = onset_envelope.shape[-1]
    if center:
        padding = [(0, 0) for _ in onset_envelope.shape]
        padding[-1] = (int(win_length // 2),) * 2
        onset_envelope = np.pad(onset_envelope, padding, mode="linear_ramp", end_values=[0, 0])
    length = onset_envelope.shape[-1]
    if length < win_length:
        raise ParameterError(f"Input is too short (n={length:d}) for frame_length={win_length:d}")
    n_frames = 1 + (length - win_length)
    if center:
        n_frames = min(n_frames, n)
    if not np.all(np.isfinite(onset_envelope)):
        raise ParameterError(
            f"Input must be finite: onset_envelope (shape={onset_envelope.shape}) has NaN or "
            "infinite values"
        )
    dtype = np.float32 if onset_envelope.dtype == np.float32 else np.float64
    lead = onset_envelope.shape[:-1]
    rows = np.ascontiguousarray(onset_envelope.reshape(-1, length), dtype=dtype)
    return rows, n_frames, ac_window, lead


def tempogram(
    *,
    y: np.ndarray | None = None,
    sr: float = 22050,
    onset_envelope: np.ndarray | None = None,
    hop_length: int = 512,
    win_length: int = 384,
    center: bool = True,
    window: Any = "hann",
    norm: float | None = np.inf,
) -> np.ndarray:
    """Local autocorrelation of the onset strength, as ``librosa.feature.tempogram``.

    Each frame of ``win_length`` envelope values (linear-ramp padded when centred) is windowed,
    autocorrelated through a batched real FFT, natively, and scaled to a maximum of 1.

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
    win_length : int > 0
        Frames per autocorrelation window (lags kept).
    center : bool
        Centre the windows on the envelope frames.
    window : str, tuple or array
        Window applied before the autocorrelation (``get_window(window, win_length)``).
    norm : float or None
        Norm of each frame's normalisation (``np.inf``: the lag-0 value).

    Returns
    -------
    np.ndarray [shape=(..., win_length, m)], float64

    Raises
    ------
    ParameterError
        For ``win_length < 1``, no input, a non-finite envelope or an envelope shorter than the
        window without centring.
    """
    check_sr(sr)
    rows, n_frames, ac_window, lead = _tempogram_frames(
        y, sr, onset_envelope, hop_length, win_length, center, window
    )
    out = np.empty((rows.shape[0], int(win_length), n_frames), dtype=np.float64)
    native_norm = norm is not None and norm == np.inf
    kernels("rhythm").tempogram(rows, n_frames, ac_window, bool(native_norm), out)
    result = out.reshape(*lead, int(win_length), n_frames)
    if not native_norm:
        result = normalize(result, norm, axis=-2)
    return result


def tempo(
    *,
    y: np.ndarray | None = None,
    sr: float = 22050,
    onset_envelope: np.ndarray | None = None,
    tg: np.ndarray | None = None,
    hop_length: int = 512,
    start_bpm: float = 120,
    std_bpm: float = 1.0,
    ac_size: float = 8.0,
    max_tempo: float | None = 320.0,
    aggregate: Callable[..., Any] | None = np.mean,
    prior: Any = None,
) -> np.ndarray:
    """Estimate the tempo (beats per minute), as ``librosa.feature.tempo``.

    The autocorrelation tempogram over ``ac_size`` seconds, averaged over time (``aggregate``),
    weighted by a log-normal prior around ``start_bpm`` (``std_bpm`` octaves) with lags faster
    than ``max_tempo`` excluded; the best lag's BPM (on the lag grid: a 120 bpm click track gives
    117.45 at 22,050 Hz with a hop of 512).

    Parameters
    ----------
    y : np.ndarray [shape=(..., n)] or None
        Audio.
    sr : float > 0
        Sample rate.
    onset_envelope : np.ndarray [shape=(..., m)] or None
        A precomputed onset strength envelope.
    tg : np.ndarray [shape=(..., win, m)] or None
        A precomputed tempogram.
    hop_length : int > 0
        Hop of the envelope.
    start_bpm : float > 0
        Centre of the prior.
    std_bpm : float > 0
        Width of the prior in octaves.
    ac_size : float > 0
        Autocorrelation window in seconds.
    max_tempo : float > 0 or None
        Upper BPM limit.
    aggregate : callable or None
        Reduction over time (None: one tempo per frame).
    prior : scipy.stats distribution or None
        Replaces the log-normal prior (its ``logpdf`` is evaluated on the BPM grid).

    Returns
    -------
    np.ndarray [shape=(..., 1) or (..., m)], float64

    Raises
    ------
    ParameterError
        For ``start_bpm <= 0`` and every error of :func:`tempogram`.

    Examples
    --------
    >>> import numpy as np
    >>> from ml_utilities.audio import tempo
    >>> y = np.zeros(10 * 22050, dtype=np.float32)
    >>> y[::11025] = 1.0
    >>> tempo(y=y, sr=22050)
    array([117.45383523])
    """
    check_sr(sr)
    check_finite(start_bpm=start_bpm, ac_size=ac_size, std_bpm=std_bpm)
    if max_tempo is not None and np.isnan(max_tempo):
        raise ParameterError(f"max_tempo must be a number or None (max_tempo={max_tempo!r})")
    if start_bpm <= 0:
        raise ParameterError(f"start_bpm must be strictly positive (start_bpm={start_bpm!r})")
    check_hop(hop_length)
    if tg is None:
        win_length = int(np.asarray(time_to_frames(ac_size, sr=sr, hop_length=hop_length)).item())
        if aggregate is np.mean:
            # The time average of the tempogram, natively, without storing the tempogram.
            rows, n_frames, ac_window, lead = _tempogram_frames(
                y, sr, onset_envelope, hop_length, win_length, True, "hann"
            )
            mean = np.empty((rows.shape[0], win_length), dtype=np.float64)
            kernels("rhythm").tempogram_mean(rows, n_frames, ac_window, mean)
            tg = mean.reshape(*lead, win_length, 1)
            aggregate = None
        else:
            tg = tempogram(
                y=y,
                sr=sr,
                onset_envelope=onset_envelope,
                hop_length=hop_length,
                win_length=win_length,
            )
    else:
        win_length = tg.shape[-2]
    if aggregate is not None:
        tg = aggregate(tg, axis=-1, keepdims=True)
    assert tg is not None
    bpms = tempo_frequencies(win_length, hop_length=hop_length, sr=sr)
    if prior is None:
        with np.errstate(divide="ignore", invalid="ignore"):
            logprior = -0.5 * ((np.log2(bpms) - np.log2(start_bpm)) / std_bpm) ** 2
    else:
        logprior = prior.logpdf(bpms)
    if max_tempo is not None:
        max_idx = int(np.argmax(bpms < max_tempo))
        logprior[:max_idx] = -np.inf
    logprior = expand_to(logprior, ndim=tg.ndim, axes=-2)
    best_period = np.argmax(np.log1p(1e6 * tg) + logprior, axis=-2)
    tempo_est: np.ndarray = np.take(bpms, best_period)
    return tempo_est
