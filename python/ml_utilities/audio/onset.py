"""Onset strength, onset detection and peak picking, librosa 0.11 compatible
(``librosa.onset`` and ``librosa.util.peak_pick``).

The log-mel spectrogram comes from the native STFT plan; the spectral flux and the peak picker
run in C++ (``_core.rhythm``) with the GIL released, with librosa's arithmetic (numba kernels
included: float32 ``delta`` and accumulators of the input's type), so the onsets are librosa's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..exceptions import ParameterError
from . import _plans
from ._shapes import NATIVE_DTYPES, kernels
from ._validation import check_envelope, check_hop, check_sr, is_positive_int, tiny
from .convert import frames_to_samples, frames_to_time
from .feature import melspectrogram
from .spectrum import power_to_db

__all__ = [
    "onset_backtrack",
    "onset_detect",
    "onset_strength",
    "onset_strength_multi",
    "peak_pick",
]


def _fix_frames(
    frames: Any, *, x_min: int | None = 0, x_max: int | None = None, pad: bool = True
) -> np.ndarray:
    """librosa.util.fix_frames."""
    frames = np.asarray(frames)
    if np.any(frames < 0):
        raise ParameterError("Negative frame index detected")
    if pad and (x_min is not None or x_max is not None):
        frames = np.clip(frames, x_min, x_max)
    if pad:
        pad_data = []
        if x_min is not None:
            pad_data.append(x_min)
        if x_max is not None:
            pad_data.append(x_max)
        frames = np.concatenate((np.asarray(pad_data), frames))
    if x_min is not None:
        frames = frames[frames >= x_min]
    if x_max is not None:
        frames = frames[frames <= x_max]
    unique: np.ndarray = np.unique(frames).astype(int)
    return unique


def _sync(
    data: np.ndarray, idx: Sequence[Any], *, aggregate: Callable[..., Any], pad: bool, axis: int
) -> np.ndarray:
    """librosa.util.sync over slices or integer boundaries of ``axis``."""
    shape = list(data.shape)
    if all(isinstance(s, slice) for s in idx):
        slices = list(idx)
    elif all(np.issubdtype(type(s), np.integer) for s in idx):
        fixed = _fix_frames(np.asarray(idx), x_min=0, x_max=shape[axis], pad=pad)
        slices = [slice(start, end, None) for start, end in zip(fixed[:-1], fixed[1:], strict=True)]
    else:
        raise ParameterError(f"Invalid index set: {idx}")
    agg_shape = list(shape)
    agg_shape[axis] = len(slices)
    data_agg = np.empty(agg_shape, order="F" if np.isfortran(data) else "C", dtype=data.dtype)
    idx_in: list[Any] = [slice(None)] * data.ndim
    idx_agg: list[Any] = [slice(None)] * data_agg.ndim
    for i, segment in enumerate(slices):
        idx_in[axis] = segment
        idx_agg[axis] = i
        data_agg[tuple(idx_agg)] = aggregate(data[tuple(idx_in)], axis=axis)
    return data_agg


# --------------------------------------------------------------------------- onset strength


def _log_mel(y: Any, sr: float, n_fft: int, hop_length: int, kwargs: dict[str, Any]) -> np.ndarray:
    """power_to_db(melspectrogram(y)) with librosa's defaults, in place on the fresh array."""
    S = melspectrogram(y=y, sr=sr, n_fft=n_fft, hop_length=hop_length, **kwargs)
    if S.dtype in NATIVE_DTYPES and S.flags.c_contiguous and S.flags.writeable and S.size > 0:
        _plans.core.spectrum.power_to_db_inplace(S, 1e-10, 0.0, 80.0)
        return S
    return np.asarray(power_to_db(np.abs(S)))


def onset_strength_multi(
    *,
    y: np.ndarray | None = None,
    sr: float = 22050,
    S: np.ndarray | None = None,
    n_fft: int = 2048,
    hop_length: int = 512,
    lag: int = 1,
    max_size: int = 1,
    ref: np.ndarray | None = None,
    detrend: bool = False,
    center: bool = True,
    feature: Callable[..., np.ndarray] | None = None,
    aggregate: Callable[..., Any] | bool | None = None,
    channels: Sequence[int] | Sequence[slice] | None = None,
    **kwargs: Any,
) -> np.ndarray:
    """Spectral-flux onset strength over groups of bands, as ``librosa.onset.onset_strength_multi``.

    ``aggregate_{f in channel} max(0, S[f, t] - ref[f, t - lag])`` with ``S`` the log-power mel
    spectrogram by default. With one channel spanning every band and ``aggregate`` ``np.mean``
    or ``np.median`` (float32/float64 ``S``), the difference, rectification and aggregation run
    natively; other aggregations and channel sets use numpy, as librosa does.

    Parameters
    ----------
    y : np.ndarray [shape=(..., n)], float, or None
        Audio; leading axes are independent channels.
    sr : float > 0
        Sample rate.
    S : np.ndarray [shape=(..., d, m)] or None
        A precomputed (log-power) spectrogram used instead of ``y``.
    n_fft, hop_length : int > 0
        STFT size and hop of ``feature`` (and of the centring shift).
    lag : int > 0
        Time lag of the difference.
    max_size : int > 0
        Size of the local maximum filter across bands (1: none).
    ref : np.ndarray [shape=S.shape] or None
        Reference spectrum; overrides ``max_size``.
    detrend : bool
        Remove the DC component (``lfilter([1, -1], [1, -0.99])``; the result is float64).
    center : bool
        Shift by ``n_fft // (2 * hop_length)`` frames and trim to the spectrogram's length.
    feature : callable or None
        Spectrogram function of ``(y, sr, n_fft, hop_length, **kwargs)``; default
        :func:`ml_utilities.audio.melspectrogram` with ``fmax=sr/2``.
    aggregate : callable, False or None
        Aggregation over the bands of a channel (default ``np.mean``); False keeps every band.
    channels : list of int boundaries or slices, or None
        Band groups (None: one group of every band).
    **kwargs
        Passed to ``feature``.

    Returns
    -------
    np.ndarray [shape=(..., n_channels, m)], float32 for float32 audio (float64 with detrend)

    Raises
    ------
    ParameterError
        If ``lag`` or ``max_size`` is not a positive integer, ``ref`` has another shape than
        ``S``, or neither ``y`` nor ``S`` is given.
    """
    check_sr(sr)
    default_feature = feature is None
    if feature is None:
        kwargs.setdefault("fmax", 0.5 * sr)
    if aggregate is None:
        aggregate = np.mean
    if not is_positive_int(lag, allow_bool=True):
        raise ParameterError(f"lag={lag} must be a positive integer")
    if not is_positive_int(max_size, allow_bool=True):
        raise ParameterError(f"max_size={max_size} must be a positive integer")
    lag = int(lag)
    max_size = int(max_size)

    if S is None:
        if default_feature:
            S = _log_mel(y, sr, n_fft, hop_length, kwargs)
        else:
            assert feature is not None
            S = np.asarray(
                power_to_db(
                    np.abs(feature(y=y, sr=sr, n_fft=n_fft, hop_length=hop_length, **kwargs))
                )
            )
    S = np.atleast_2d(S)
    if ref is not None and ref.shape != S.shape:
        raise ParameterError(
            f"Reference spectrum shape {ref.shape} must match input spectrum {S.shape}"
        )

    pad_width = lag + (n_fft // (2 * hop_length) if center else 0)
    n_frames = S.shape[-1]
    native = (
        channels is None
        and (aggregate is np.mean or aggregate is np.median)
        and S.dtype in NATIVE_DTYPES
        and (ref is None or ref.dtype == S.dtype)
        and S.shape[-2] > 0
    )
    if native:
        rhythm = kernels("rhythm")
        lead = S.shape[:-2]
        S3 = np.ascontiguousarray(S.reshape(-1, S.shape[-2], n_frames))
        if ref is not None:
            ref3: np.ndarray | None = np.ascontiguousarray(ref.reshape(S3.shape))
        elif max_size > 1:
            ref3 = np.empty_like(S3)
            rhythm.max_filter_bands(S3, max_size, ref3)
        else:
            ref3 = None
        full = pad_width + max(n_frames - lag, 0)
        out_frames = min(full, n_frames) if center else full
        out = np.empty((S3.shape[0], out_frames), dtype=S3.dtype)
        rhythm.onset_flux(S3, ref3, lag, aggregate is np.median, int(pad_width), out)
        if detrend:
            trended = np.empty(out.shape, dtype=np.float64)
            rhythm.detrend(out, trended)
            out = trended
        return out.reshape(*lead, 1, out_frames)

    # Everything else: librosa's numpy path.
    if ref is None:
        if max_size == 1:
            ref = S
        else:
            ref = np.empty_like(S)
            if S.dtype in NATIVE_DTYPES and S.shape[-2] > 0:
                S3 = np.ascontiguousarray(S.reshape(-1, S.shape[-2], n_frames))
                ref3 = np.empty_like(S3)
                kernels("rhythm").max_filter_bands(S3, max_size, ref3)
                ref = ref3.reshape(S.shape)
            else:
                import scipy.ndimage

                ref = scipy.ndimage.maximum_filter1d(S, max_size, axis=-2)
    assert ref is not None
    onset_env = S[..., lag:] - ref[..., :-lag]
    onset_env = np.maximum(0.0, onset_env)
    pad = True
    if channels is None:
        channels = [slice(None)]
    else:
        pad = False
    if callable(aggregate):
        onset_env = _sync(onset_env, channels, aggregate=aggregate, pad=pad, axis=-2)
    padding = [(0, 0) for _ in onset_env.shape]
    padding[-1] = (int(pad_width), 0)
    onset_env = np.pad(onset_env, padding, mode="constant")
    if detrend:
        flat = np.ascontiguousarray(onset_env.reshape(-1, onset_env.shape[-1]))
        if flat.dtype not in NATIVE_DTYPES:
            flat = flat.astype(np.float64)
        trended = np.empty(flat.shape, dtype=np.float64)
        kernels("rhythm").detrend(flat, trended)
        onset_env = trended.reshape(onset_env.shape)
    if center:
        onset_env = onset_env[..., :n_frames]
    return onset_env


def onset_strength(
    *,
    y: np.ndarray | None = None,
    sr: float = 22050,
    S: np.ndarray | None = None,
    lag: int = 1,
    max_size: int = 1,
    ref: np.ndarray | None = None,
    detrend: bool = False,
    center: bool = True,
    feature: Callable[..., np.ndarray] | None = None,
    aggregate: Callable[..., Any] | bool | None = None,
    **kwargs: Any,
) -> np.ndarray:
    """Spectral-flux onset strength envelope, as ``librosa.onset.onset_strength``.

    ``mean_f max(0, S[f, t] - ref[f, t - lag])`` over the log-power mel spectrogram, left-padded
    by ``lag + n_fft // (2 * hop_length)`` frames and trimmed to the frame count. The mel
    spectrogram comes from one native STFT pass, the flux from a native loop.

    Parameters
    ----------
    y : np.ndarray [shape=(..., n)], float, or None
        Audio; leading axes are independent channels.
    sr : float > 0
        Sample rate.
    S : np.ndarray [shape=(..., d, m)] or None
        A precomputed (log-power) spectrogram.
    lag : int > 0
        Time lag of the difference.
    max_size : int > 0
        Local maximum filter size across bands (1: none).
    ref : np.ndarray [shape=S.shape] or None
        Reference spectrum; overrides ``max_size``.
    detrend : bool
        Remove the DC component (float64 result).
    center : bool
        Compensate the centred framing (shift by ``n_fft // (2 * hop_length)``).
    feature : callable or None
        Spectrogram function; default the mel spectrogram with ``fmax=sr/2``.
    aggregate : callable or None
        Aggregation across bands (default ``np.mean``; ``np.median`` is native too).
    **kwargs
        ``n_fft``, ``hop_length`` and the parameters of ``feature``.

    Returns
    -------
    np.ndarray [shape=(..., m)], float32 for float32 audio

    Raises
    ------
    ParameterError
        If ``aggregate`` is False, and as :func:`onset_strength_multi`.

    Examples
    --------
    >>> import numpy as np
    >>> from ml_utilities.audio import onset_strength
    >>> y = np.zeros(22050, dtype=np.float32)
    >>> y[::5512] = 1.0
    >>> onset_strength(y=y, sr=22050).shape
    (44,)
    """
    check_sr(sr)
    if aggregate is False:
        raise ParameterError(
            "aggregate parameter cannot be False when computing full-spectrum onset strength."
        )
    odf_all = onset_strength_multi(
        y=y,
        sr=sr,
        S=S,
        lag=lag,
        max_size=max_size,
        ref=ref,
        detrend=detrend,
        center=center,
        feature=feature,
        aggregate=aggregate,
        channels=None,
        **kwargs,
    )
    if (
        S is None
        and feature is None
        and isinstance(y, np.ndarray)
        and y.dtype == np.float32
        and odf_all.dtype == np.float32
        and not np.isfinite(odf_all).all()
    ):
        # mel energies past float32's range (librosa gives NaN): their decibels, and so the
        # envelope, are finite, so take them from float64 energies and round the envelope
        odf_all = onset_strength_multi(
            y=y.astype(np.float64),
            sr=sr,
            lag=lag,
            max_size=max_size,
            ref=ref,
            detrend=detrend,
            center=center,
            aggregate=aggregate,
            channels=None,
            **kwargs,
        ).astype(np.float32)
    return odf_all[..., 0, :]


# ----------------------------------------------------------------------------- peak picking


def peak_pick(
    x: np.ndarray,
    *,
    pre_max: int,
    post_max: int,
    pre_avg: int,
    post_avg: int,
    delta: float,
    wait: int,
    sparse: bool = True,
    axis: int = -1,
) -> np.ndarray:
    """Pick peaks in a signal with librosa's heuristic, as ``librosa.util.peak_pick``.

    ``n`` is a peak when ``x[n] == max(x[n - pre_max:n + post_max])``,
    ``x[n] >= mean(x[n - pre_avg:n + post_avg]) + delta`` and ``n`` is more than ``wait``
    samples after the previous peak (greedily, left to right). Native, with librosa's float32
    ``delta`` and accumulators of the input's type.

    Parameters
    ----------
    x : np.ndarray, real
        Signal; peaks are picked along ``axis``.
    pre_max, post_max : int (pre_max >= 0, post_max > 0)
        Samples before and after ``n`` over which the maximum is taken.
    pre_avg, post_avg : int (pre_avg >= 0, post_avg > 0)
        Samples before and after ``n`` over which the mean is taken.
    delta : float >= 0
        Threshold above the mean.
    wait : int >= 0
        Samples to skip after a peak.
    sparse : bool
        Return peak indices (1-D ``x`` only) instead of a boolean array.
    axis : int
        Axis along which to pick.

    Returns
    -------
    np.ndarray of int (sparse) or bool [shape=x.shape]

    Raises
    ------
    ParameterError
        For a negative ``pre_max``, ``pre_avg``, ``delta`` or ``wait``, a non-positive
        ``post_max`` or ``post_avg``, ``sparse`` with ``x.ndim != 1``, or an empty ``x``.

    Examples
    --------
    >>> import numpy as np
    >>> from ml_utilities.audio import peak_pick
    >>> x = np.array([0, 1, 0, 0, 2, 0, 0, 0, 3, 0], dtype=np.float32)
    >>> peak_pick(x, pre_max=1, post_max=1, pre_avg=1, post_avg=1, delta=0.1, wait=1)
    array([1, 4, 8])
    """
    if pre_max < 0:
        raise ParameterError("pre_max must be non-negative")
    if pre_avg < 0:
        raise ParameterError("pre_avg must be non-negative")
    if delta < 0:
        raise ParameterError("delta must be non-negative")
    if wait < 0:
        raise ParameterError("wait must be non-negative")
    if post_max <= 0:
        raise ParameterError("post_max must be positive")
    if post_avg <= 0:
        raise ParameterError("post_avg must be positive")
    x = np.asarray(x)
    if sparse and x.ndim != 1:
        raise ParameterError(
            f"sparse=True (default) does not support "
            f"{x.ndim}-dimensional inputs. "
            f"Either set sparse=False or process each dimension independently."
        )
    ints = [int(np.ceil(v)) for v in (pre_max, post_max, pre_avg, post_avg, wait)]
    ints = [min(v, 2**32 - 1) for v in ints]
    if x.ndim == 0:
        raise ParameterError(f"peak_pick needs at least one dimension, got x.shape={x.shape}")
    xt = x.swapaxes(axis, -1)
    n = xt.shape[-1]
    if n == 0:
        raise ParameterError("peak_pick needs a non-empty signal, got length 0 along the axis")
    if np.iscomplexobj(x):
        raise ParameterError("peak_pick needs real input")
    dtype = np.float32 if x.dtype in (np.float32, np.float16) else np.float64
    rows = np.ascontiguousarray(xt.reshape(-1, n), dtype=dtype)
    marks = np.zeros(rows.shape, dtype=np.uint8)
    kernels("rhythm").peak_pick(
        rows, ints[0], ints[1], ints[2], ints[3], float(delta), ints[4], marks
    )
    peaks = marks.view(bool).reshape(xt.shape).swapaxes(axis, -1)
    if sparse:
        return np.flatnonzero(peaks)
    return np.ascontiguousarray(peaks)


# ---------------------------------------------------------------------------- onset detection


def onset_backtrack(events: np.ndarray, energy: np.ndarray) -> np.ndarray:
    """Move onset events back to the nearest preceding local minimum of an energy function,
    as ``librosa.onset.onset_backtrack``.

    Parameters
    ----------
    events : np.ndarray of int
        Onset frame indices.
    energy : np.ndarray [shape=(m,)]
        The energy function (the onset envelope, RMS, ...).

    Returns
    -------
    np.ndarray of int [shape=events.shape]
        The largest local minimum of ``energy`` at or before each event (0 when none).

    Raises
    ------
    ParameterError
        If ``events`` is empty.
    """
    energy = np.asarray(energy)
    minima = np.flatnonzero((energy[1:-1] <= energy[:-2]) & (energy[1:-1] < energy[2:]))
    minima = _fix_frames(1 + minima, x_min=0)
    events = np.asarray(events)
    if events.size == 0 or minima.size == 0:
        raise ParameterError("Attempting to match empty event list")
    if np.any(events < minima.min()):
        raise ParameterError(
            "Cannot match events with right=False and min(events_to) > min(events_from)"
        )
    # librosa.util.match_events(events, minima, right=False): the largest minimum <= event.
    index = np.searchsorted(minima, events, side="right") - 1
    result: np.ndarray = minima[index]
    return result


def onset_detect(
    *,
    y: np.ndarray | None = None,
    sr: float = 22050,
    onset_envelope: np.ndarray | None = None,
    hop_length: int = 512,
    backtrack: bool = False,
    energy: np.ndarray | None = None,
    units: str = "frames",
    normalize: bool = True,
    sparse: bool = True,
    **kwargs: Any,
) -> np.ndarray:
    """Locate note onsets by peak picking the onset strength, as ``librosa.onset.onset_detect``.

    The envelope is scaled to [0, 1] (``normalize``) and peaks are picked with librosa's tuned
    parameters: 30 ms before for the maximum, 100 ms around for the mean, ``delta=0.07``,
    30 ms of wait.

    Parameters
    ----------
    y : np.ndarray [shape=(..., n)] or None
        Audio.
    sr : float > 0
        Sample rate.
    onset_envelope : np.ndarray [shape=(..., m)] or None
        A precomputed onset strength envelope.
    hop_length : int > 0
        Hop length in samples.
    backtrack : bool
        Move each onset to the preceding minimum of ``energy`` (sparse only).
    energy : np.ndarray [shape=(m,)] or None
        Energy function for backtracking (default: the onset envelope).
    units : {"frames", "samples", "time"}
        Units of the sparse result.
    normalize : bool
        Scale the envelope to [0, 1] first.
    sparse : bool
        Return event positions instead of a boolean array.
    **kwargs
        Overrides of the peak-picking parameters (see :func:`peak_pick`).

    Returns
    -------
    np.ndarray
        Onset positions (frames by default), or a bool array shaped as the envelope.

    Raises
    ------
    ParameterError
        Without ``y`` and ``onset_envelope``, for unknown ``units``, or backtracking with
        ``sparse=False``.

    Examples
    --------
    >>> import numpy as np
    >>> from ml_utilities.audio import onset_detect
    >>> y = np.zeros(2 * 22050, dtype=np.float32)
    >>> y[11025::11025] = 1.0
    >>> onset_detect(y=y, sr=22050)
    array([22, 44, 65])
    """
    check_sr(sr)
    if onset_envelope is None:
        if y is None:
            raise ParameterError("y or onset_envelope must be provided")
        onset_envelope = onset_strength(y=y, sr=sr, hop_length=hop_length)
    check_hop(hop_length)
    onset_envelope = np.asarray(onset_envelope)
    check_envelope(onset_envelope)
    if normalize:
        onset_envelope = onset_envelope - np.min(onset_envelope, keepdims=True, axis=-1)
        onset_envelope /= np.max(onset_envelope, keepdims=True, axis=-1) + tiny(onset_envelope)

    onsets: np.ndarray
    if not onset_envelope.any() or not np.all(np.isfinite(onset_envelope)):
        if sparse:
            onsets = np.array([], dtype=int)
        else:
            onsets = np.zeros_like(onset_envelope, dtype=bool)
    else:
        kwargs.setdefault("pre_max", 0.03 * sr // hop_length)
        kwargs.setdefault("post_max", 0.00 * sr // hop_length + 1)
        kwargs.setdefault("pre_avg", 0.10 * sr // hop_length)
        kwargs.setdefault("post_avg", 0.10 * sr // hop_length + 1)
        kwargs.setdefault("wait", 0.03 * sr // hop_length)
        kwargs.setdefault("delta", 0.07)
        onsets = peak_pick(onset_envelope, sparse=sparse, axis=-1, **kwargs)
        if backtrack:
            if not sparse:
                raise ParameterError("onset backtracking is only supported if sparse=True")
            if energy is None:
                energy = onset_envelope
            onsets = onset_backtrack(onsets, energy)

    if sparse:
        if units == "frames":
            pass
        elif units == "samples":
            onsets = frames_to_samples(onsets, hop_length=hop_length)
        elif units == "time":
            onsets = frames_to_time(onsets, hop_length=hop_length, sr=sr)
        else:
            raise ParameterError(f"Invalid unit type: {units}")
    return onsets
