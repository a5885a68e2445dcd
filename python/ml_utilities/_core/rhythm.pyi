"""
Onset strength, peak picking, tempo, beat tracking
"""

from __future__ import annotations

import typing

import numpy

__all__: list[str] = [
    "beat_track",
    "detrend",
    "max_filter_bands",
    "onset_flux",
    "peak_pick",
    "tempogram",
    "tempogram_mean",
]

def beat_track(
    onsets: numpy.ndarray,
    frames_per_beat: numpy.ndarray,
    tightness: typing.SupportsFloat | typing.SupportsIndex,
    trim: bool,
    beats: numpy.ndarray,
) -> None:
    """
    Ellis' dynamic-programming beat tracker on normalised onset envelopes (channels, n).
    """

def detrend(x: numpy.ndarray, out: numpy.ndarray) -> None:
    """
    lfilter([1, -1], [1, -0.99]) of each row, into float64 out.
    """

def max_filter_bands(
    S: numpy.ndarray, size: typing.SupportsInt | typing.SupportsIndex, out: numpy.ndarray
) -> None:
    """
    scipy.ndimage.maximum_filter1d(S, size, axis=-2) (reflect mode) into out.
    """

def onset_flux(
    S: numpy.ndarray,
    ref: typing.Any,
    lag: typing.SupportsInt | typing.SupportsIndex,
    median: bool,
    pad: typing.SupportsInt | typing.SupportsIndex,
    out: numpy.ndarray,
) -> None:
    """
    Rectified lag difference of S against ref (None: S), mean or median over bands, written after `pad` zeros into out (channels, frames).
    """

def peak_pick(
    x: numpy.ndarray,
    pre_max: typing.SupportsInt | typing.SupportsIndex,
    post_max: typing.SupportsInt | typing.SupportsIndex,
    pre_avg: typing.SupportsInt | typing.SupportsIndex,
    post_avg: typing.SupportsInt | typing.SupportsIndex,
    delta: typing.SupportsFloat | typing.SupportsIndex,
    wait: typing.SupportsInt | typing.SupportsIndex,
    peaks: numpy.ndarray,
) -> None:
    """
    librosa.util.peak_pick on each row of x; peaks (uint8, same shape) set to 1 at peaks.
    """

def tempogram(
    padded: numpy.ndarray,
    n_frames: typing.SupportsInt | typing.SupportsIndex,
    window: numpy.ndarray,
    normalize: bool,
    out: numpy.ndarray,
) -> None:
    """
    Autocorrelation tempogram of padded envelopes into out (channels, win, n); with normalize, each frame scaled by its largest magnitude (norm=inf).
    """

def tempogram_mean(
    padded: numpy.ndarray,
    n_frames: typing.SupportsInt | typing.SupportsIndex,
    window: numpy.ndarray,
    out: numpy.ndarray,
) -> None:
    """
    Time average of the normalised autocorrelation tempogram into out (channels, win).
    """
