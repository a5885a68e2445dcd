"""Time, frame, sample and frequency conversions, as librosa 0.11's ``librosa.core.convert``.

These are small numpy expressions, not hot paths. Each one evaluates the same arithmetic in the
same order as librosa, so results are bit-identical: same values, same dtypes (``int`` for frame
and sample indices, float64 for times and frequencies unless the input is already a narrower
float), and numpy scalars for scalar input.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from ._validation import check_sr

__all__ = [
    "fft_frequencies",
    "frames_to_samples",
    "frames_to_time",
    "hz_to_mel",
    "mel_frequencies",
    "mel_to_hz",
    "samples_to_frames",
    "samples_to_time",
    "time_to_frames",
    "time_to_samples",
]

logger = logging.getLogger(__name__)

# Slaney's mel scale: linear (3 mels per 200 Hz) below 1 kHz, logarithmic above,
# with 27 mels per factor 6.4 in frequency.
_SLANEY_F_SP = 200.0 / 3
_SLANEY_MIN_LOG_HZ = 1000.0
_SLANEY_MIN_LOG_MEL = _SLANEY_MIN_LOG_HZ / _SLANEY_F_SP
_SLANEY_LOGSTEP = np.log(6.4) / 27.0


def _centre_offset(n_fft: int | None) -> int:
    """Samples between a frame's start and its centre (0 when ``n_fft`` is None)."""
    return 0 if n_fft is None else int(n_fft // 2)


def frames_to_samples(frames: Any, *, hop_length: int = 512, n_fft: int | None = None) -> Any:
    """Convert frame indices to audio sample indices.

    Parameters
    ----------
    frames : int or np.ndarray [shape=(n,)], integer
        Frame index or array of frame indices.
    hop_length : int > 0
        Number of samples between successive frames.
    n_fft : None or int > 0
        If given, offset by ``n_fft // 2`` to point at the centre of each frame
        (counteracting ``center=True`` windowing).

    Returns
    -------
    samples : int or np.ndarray [shape=(n,)], dtype int
        ``frames * hop_length + n_fft // 2``.

    Examples
    --------
    >>> from ml_utilities.audio import frames_to_samples
    >>> frames_to_samples([0, 1, 2], hop_length=512)
    array([   0,  512, 1024])
    """
    return (np.asanyarray(frames) * hop_length + _centre_offset(n_fft)).astype(int)


def samples_to_frames(samples: Any, *, hop_length: int = 512, n_fft: int | None = None) -> Any:
    """Convert sample indices to frame indices (the frame holding each sample).

    Parameters
    ----------
    samples : int or np.ndarray [shape=(n,)], integer
        Sample index or array of sample indices.
    hop_length : int > 0
        Number of samples between successive frames.
    n_fft : None or int > 0
        If given, offset by ``n_fft // 2`` first (counteracting ``center=True`` windowing).

    Returns
    -------
    frames : np.ndarray [shape=(n,) or ()], dtype int
        ``floor((samples - n_fft // 2) / hop_length)``; a 0-d array for scalar input,
        as librosa returns.

    Examples
    --------
    >>> from ml_utilities.audio import samples_to_frames
    >>> samples_to_frames([0, 511, 512, 1500], hop_length=512)
    array([0, 0, 1, 2])
    """
    shifted = np.asanyarray(samples) - _centre_offset(n_fft)
    return np.asarray(np.floor(shifted // hop_length), dtype=int)


def time_to_samples(times: Any, *, sr: float = 22050) -> Any:
    """Convert times in seconds to sample indices (truncated towards zero).

    Parameters
    ----------
    times : float or np.ndarray [shape=(n,)]
        Time value or array of times, in seconds.
    sr : number > 0
        Sampling rate.

    Returns
    -------
    samples : int or np.ndarray [shape=(n,)], dtype int
        ``int(times * sr)`` elementwise.

    Examples
    --------
    >>> from ml_utilities.audio import time_to_samples
    >>> time_to_samples([0.0, 0.5, 1.0], sr=22050)
    array([    0, 11025, 22050])
    """
    check_sr(sr)
    return (np.asanyarray(times) * sr).astype(int)


def samples_to_time(samples: Any, *, sr: float = 22050) -> Any:
    """Convert sample indices to time in seconds.

    Parameters
    ----------
    samples : int or np.ndarray [shape=(n,)]
        Sample index or array of sample indices.
    sr : number > 0
        Sampling rate.

    Returns
    -------
    times : float or np.ndarray [shape=(n,)], float64 (or the input's float dtype)
        ``samples / sr``.

    Examples
    --------
    >>> from ml_utilities.audio import samples_to_time
    >>> samples_to_time([0, 11025, 22050], sr=22050)
    array([0. , 0.5, 1. ])
    """
    check_sr(sr)
    return np.asanyarray(samples) / float(sr)


def frames_to_time(
    frames: Any, *, sr: float = 22050, hop_length: int = 512, n_fft: int | None = None
) -> Any:
    """Convert frame indices to time in seconds.

    Parameters
    ----------
    frames : int or np.ndarray [shape=(n,)], integer
        Frame index or array of frame indices.
    sr : number > 0
        Sampling rate.
    hop_length : int > 0
        Number of samples between successive frames.
    n_fft : None or int > 0
        If given, time the centre of each frame (offset by ``n_fft // 2`` samples).

    Returns
    -------
    times : float or np.ndarray [shape=(n,)], float64
        Time in seconds of each frame's start (or centre).

    Examples
    --------
    >>> from ml_utilities.audio import frames_to_time
    >>> frames_to_time([0, 43, 86], sr=22050, hop_length=512)
    array([0.        , 0.99845805, 1.9969161 ])
    """
    check_sr(sr)
    samples = frames_to_samples(frames, hop_length=hop_length, n_fft=n_fft)
    return samples_to_time(samples, sr=sr)


def time_to_frames(
    times: Any, *, sr: float = 22050, hop_length: int = 512, n_fft: int | None = None
) -> Any:
    """Convert times in seconds to frame indices.

    Parameters
    ----------
    times : float or np.ndarray [shape=(n,)]
        Time value or array of times, in seconds.
    sr : number > 0
        Sampling rate.
    hop_length : int > 0
        Number of samples between successive frames.
    n_fft : None or int > 0
        If given, offset by ``n_fft // 2`` samples (counteracting ``center=True`` windowing).

    Returns
    -------
    frames : np.ndarray [shape=(n,) or ()], dtype int
        Index of the frame holding each time.

    Examples
    --------
    >>> from ml_utilities.audio import time_to_frames
    >>> time_to_frames([0.0, 1.0, 2.0], sr=22050, hop_length=512)
    array([ 0, 43, 86])
    """
    check_sr(sr)
    samples = time_to_samples(times, sr=sr)
    return samples_to_frames(samples, hop_length=hop_length, n_fft=n_fft)


def hz_to_mel(frequencies: Any, *, htk: bool = False) -> Any:
    """Convert frequencies in Hz to mels.

    Parameters
    ----------
    frequencies : number or np.ndarray [shape=(n,)], float
        Frequencies in Hz.
    htk : bool
        Use the HTK formula ``2595 * log10(1 + f / 700)`` instead of Slaney's scale
        (linear below 1 kHz, logarithmic above).

    Returns
    -------
    mels : number or np.ndarray [shape=(n,)]
        Input frequencies in mels (float64, or the input's float dtype).

    Examples
    --------
    >>> from ml_utilities.audio import hz_to_mel
    >>> round(float(hz_to_mel(60)), 6)
    0.9
    >>> hz_to_mel([110, 220, 440])
    array([1.65, 3.3 , 6.6 ])
    """
    frequencies = np.asanyarray(frequencies)
    if htk:
        return 2595.0 * np.log10(1.0 + frequencies / 700.0)

    mels = (frequencies - 0.0) / _SLANEY_F_SP
    if frequencies.ndim:
        above = frequencies >= _SLANEY_MIN_LOG_HZ
        mels[above] = (
            _SLANEY_MIN_LOG_MEL + np.log(frequencies[above] / _SLANEY_MIN_LOG_HZ) / _SLANEY_LOGSTEP
        )
    elif frequencies >= _SLANEY_MIN_LOG_HZ:
        mels = _SLANEY_MIN_LOG_MEL + np.log(frequencies / _SLANEY_MIN_LOG_HZ) / _SLANEY_LOGSTEP
    return mels


def mel_to_hz(mels: Any, *, htk: bool = False) -> Any:
    """Convert mels to frequencies in Hz (the inverse of :func:`hz_to_mel`).

    Parameters
    ----------
    mels : number or np.ndarray [shape=(n,)], float
        Mel values.
    htk : bool
        Use the HTK formula instead of Slaney's scale.

    Returns
    -------
    frequencies : number or np.ndarray [shape=(n,)]
        Input mels in Hz (float64, or the input's float dtype).

    Examples
    --------
    >>> from ml_utilities.audio import mel_to_hz
    >>> mel_to_hz([1.65, 3.3, 6.6])
    array([110., 220., 440.])
    """
    mels = np.asanyarray(mels)
    if htk:
        return 700.0 * (10.0 ** (mels / 2595.0) - 1.0)

    freqs = 0.0 + _SLANEY_F_SP * mels
    if mels.ndim:
        above = mels >= _SLANEY_MIN_LOG_MEL
        freqs[above] = _SLANEY_MIN_LOG_HZ * np.exp(
            _SLANEY_LOGSTEP * (mels[above] - _SLANEY_MIN_LOG_MEL)
        )
    elif mels >= _SLANEY_MIN_LOG_MEL:
        freqs = _SLANEY_MIN_LOG_HZ * np.exp(_SLANEY_LOGSTEP * (mels - _SLANEY_MIN_LOG_MEL))
    return freqs


def fft_frequencies(*, sr: float = 22050, n_fft: int = 2048) -> np.ndarray:
    """Centre frequencies of the ``1 + n_fft // 2`` bins of a real FFT.

    Parameters
    ----------
    sr : number > 0
        Sampling rate.
    n_fft : int > 0
        FFT window size.

    Returns
    -------
    freqs : np.ndarray [shape=(1 + n_fft // 2,)], float64
        Frequencies ``0, sr/n_fft, 2*sr/n_fft, ..., sr/2``.

    Examples
    --------
    >>> from ml_utilities.audio import fft_frequencies
    >>> fft_frequencies(sr=22050, n_fft=8)
    array([   0.  , 2756.25, 5512.5 , 8268.75, 11025.  ])
    """
    check_sr(sr)
    return np.fft.rfftfreq(n=n_fft, d=1.0 / sr)


def mel_frequencies(
    n_mels: int = 128, *, fmin: float = 0.0, fmax: float = 11025.0, htk: bool = False
) -> np.ndarray:
    """Frequencies (Hz) of ``n_mels`` points evenly spaced on the mel scale.

    Parameters
    ----------
    n_mels : int > 0
        Number of mel points.
    fmin : float >= 0
        Lowest frequency, in Hz.
    fmax : float >= 0
        Highest frequency, in Hz.
    htk : bool
        Use the HTK mel formula instead of Slaney's.

    Returns
    -------
    bin_frequencies : np.ndarray [shape=(n_mels,)], float64
        ``mel_to_hz(linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels))``.

    Examples
    --------
    >>> from ml_utilities.audio import mel_frequencies
    >>> mel_frequencies(n_mels=4, fmax=1000.0)
    array([   0.        ,  333.33333333,  666.66666667, 1000.        ])
    """
    low = hz_to_mel(fmin, htk=htk)
    high = hz_to_mel(fmax, htk=htk)
    return mel_to_hz(np.linspace(low, high, n_mels), htk=htk)
