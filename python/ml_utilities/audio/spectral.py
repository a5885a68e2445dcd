"""Spectral and temporal features, librosa 0.11 compatible (``librosa.feature``).

Every spectral feature takes audio (one native STFT pass gives the magnitude spectrogram) or a
precomputed magnitude spectrogram ``S``; the per-frame reductions run natively. Two features
librosa does not have are defined here: :func:`spectral_flux` and :func:`frame_energy`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..exceptions import ParameterError
from ._shapes import expand_to, kernels
from ._validation import (
    check_bool,
    check_finite,
    check_pad_mode,
    check_sr,
    is_positive_int,
    normalize,
    valid_audio,
)
from .spectrum import _spectrogram

__all__ = [
    "frame_energy",
    "rms",
    "spectral_bandwidth",
    "spectral_centroid",
    "spectral_contrast",
    "spectral_flatness",
    "spectral_flux",
    "spectral_rolloff",
    "zero_crossing_rate",
]


def _magnitude(
    y: np.ndarray | None,
    S: np.ndarray | None,
    *,
    n_fft: int,
    hop_length: int,
    win_length: int | None,
    window: Any,
    center: bool,
    pad_mode: Any,
) -> tuple[np.ndarray, int]:
    """librosa's ``_spectrogram(power=1)``: the magnitude spectrogram and the n_fft behind it."""
    if S is not None:
        S = np.asarray(S)
    return _spectrogram(
        y=y,
        S=S,
        n_fft=n_fft,
        hop_length=hop_length,
        win_length=win_length,
        window=window,
        center=center,
        pad_mode=pad_mode,
        power=1.0,
    )


def _check_energies(S: np.ndarray, name: str) -> None:
    if not np.isrealobj(S):
        raise ParameterError(f"Spectral {name} is only defined with real-valued input")
    if np.any(S < 0):
        raise ParameterError(f"Spectral {name} is only defined with non-negative energies")


def _native(S: np.ndarray) -> tuple[Any, np.ndarray, tuple[int, ...]]:
    """(typed submodule, (channels, bins, frames) contiguous view, leading shape)."""
    if S.ndim < 2:
        raise ParameterError(f"spectrogram must be at least 2-d (..., bins, frames), got {S.shape}")
    dtype = S.dtype if S.dtype in (np.float32, np.float64) else np.dtype(np.float64)
    lead = S.shape[:-2]
    flat = np.ascontiguousarray(S.reshape(-1, S.shape[-2], S.shape[-1]), dtype=dtype)
    module = kernels("features", dtype)
    return module, flat, lead


def _freq_axis(freq: np.ndarray | None, sr: float, n_fft: int, bins: int) -> np.ndarray | None:
    """A 1-D float64 frequency axis for the native path, or None when ``freq`` is not 1-D."""
    if freq is None:
        from .convert import fft_frequencies

        freq = fft_frequencies(sr=sr, n_fft=n_fft)
    freq = np.asarray(freq)
    if freq.ndim != 1:
        return None
    if freq.shape[0] != bins:
        raise ParameterError(f"freq has {freq.shape[0]} values for {bins} frequency bins")
    return np.ascontiguousarray(freq, dtype=np.float64)


# A frequency per bin *and frame* (``freq`` of shape (..., bins, frames), e.g. reassigned or
# instantaneous frequencies), or a 1-D axis that is not increasing (rolloff): librosa's own
# formulas in numpy, element for element, instead of the native kernels, which take one
# increasing axis shared by every frame.


def _freq_grid(freq: Any, S: np.ndarray) -> np.ndarray:
    """``freq`` shaped to broadcast against ``S`` (..., bins, frames)."""
    freq = np.asarray(freq)
    if freq.ndim == 1:
        freq = expand_to(freq, ndim=S.ndim, axes=-2)
    try:
        np.broadcast_shapes(freq.shape, S.shape)
    except ValueError:
        raise ParameterError(
            f"freq of shape {freq.shape} does not broadcast against the spectrogram's {S.shape}"
        ) from None
    return freq


def _centroid_grid(S: np.ndarray, freq: np.ndarray) -> np.ndarray:
    out: np.ndarray = np.sum(freq * normalize(S, 1), axis=-2, keepdims=True)
    return out


def _bandwidth_grid(
    S: np.ndarray, freq: np.ndarray, centroid: np.ndarray, norm: bool, p: float
) -> np.ndarray:
    deviation = np.abs(freq - centroid)
    if norm:
        S = normalize(S, 1)
    out: np.ndarray = np.sum(S * deviation**p, axis=-2, keepdims=True) ** (1.0 / p)
    return out


def _rolloff_grid(S: np.ndarray, freq: np.ndarray, roll_percent: float) -> np.ndarray:
    total = np.cumsum(S, axis=-2)
    threshold = np.expand_dims(roll_percent * total[..., -1, :], axis=-2)
    reached = np.where(total < threshold, np.nan, 1)
    with np.errstate(invalid="ignore"):  # frames that never reach it give NaN, as librosa's
        out: np.ndarray = np.nanmin(reached * freq, axis=-2, keepdims=True)
    return out


def _frames_out(values: np.ndarray, lead: tuple[int, ...]) -> np.ndarray:
    return values.reshape(*lead, 1, values.shape[-1])


def spectral_centroid(
    *,
    y: np.ndarray | None = None,
    sr: float = 22050,
    S: np.ndarray | None = None,
    n_fft: int = 2048,
    hop_length: int = 512,
    freq: np.ndarray | None = None,
    win_length: int | None = None,
    window: Any = "hann",
    center: bool = True,
    pad_mode: Any = "constant",
) -> np.ndarray:
    """Spectral centroid per frame, as ``librosa.feature.spectral_centroid``.

    Parameters
    ----------
    y : np.ndarray [shape=(..., n)] or None
        Audio.
    S : np.ndarray [shape=(..., 1 + n_fft // 2, t)] or None
        Magnitude spectrogram, used instead of ``y``.
    freq : np.ndarray or None
        Centre frequency of each bin (``fft_frequencies`` by default).

    Returns
    -------
    np.ndarray [shape=(..., 1, t)], float64

    Raises
    ------
    ParameterError
        For complex or negative ``S`` and every STFT parameter error.
    """
    check_sr(sr)
    S, n_fft = _magnitude(
        y,
        S,
        n_fft=n_fft,
        hop_length=hop_length,
        win_length=win_length,
        window=window,
        center=center,
        pad_mode=pad_mode,
    )
    _check_energies(S, "centroid")
    f = _freq_axis(freq, sr, n_fft, S.shape[-2])
    if f is None:
        return _centroid_grid(S, _freq_grid(freq, S))
    module, flat, lead = _native(S)
    return _frames_out(module.spectral_centroid(flat, f), lead)


def spectral_bandwidth(
    *,
    y: np.ndarray | None = None,
    sr: float = 22050,
    S: np.ndarray | None = None,
    n_fft: int = 2048,
    hop_length: int = 512,
    win_length: int | None = None,
    window: Any = "hann",
    center: bool = True,
    pad_mode: Any = "constant",
    freq: np.ndarray | None = None,
    centroid: np.ndarray | None = None,
    norm: bool = True,
    p: float = 2,
) -> np.ndarray:
    """p-th order spectral bandwidth, as ``librosa.feature.spectral_bandwidth``.

    Returns
    -------
    np.ndarray [shape=(..., 1, t)], float64
    """
    check_sr(sr)
    check_finite(p=p)
    S, n_fft = _magnitude(
        y,
        S,
        n_fft=n_fft,
        hop_length=hop_length,
        win_length=win_length,
        window=window,
        center=center,
        pad_mode=pad_mode,
    )
    _check_energies(S, "bandwidth")
    f = _freq_axis(freq, sr, n_fft, S.shape[-2])
    if f is None:
        grid = _freq_grid(freq, S)
        cen = _centroid_grid(S, grid) if centroid is None else np.asarray(centroid)
        return _bandwidth_grid(S, grid, cen, norm, p)
    module, flat, lead = _native(S)
    if centroid is None:
        cen = module.spectral_centroid(flat, f)
    else:
        cen = np.ascontiguousarray(
            np.broadcast_to(
                np.asarray(centroid, dtype=np.float64)[..., 0, :], (*lead, flat.shape[-1])
            )
        ).reshape(flat.shape[0], flat.shape[-1])
    return _frames_out(module.spectral_bandwidth(flat, f, cen, float(p), bool(norm)), lead)


def spectral_rolloff(
    *,
    y: np.ndarray | None = None,
    sr: float = 22050,
    S: np.ndarray | None = None,
    n_fft: int = 2048,
    hop_length: int = 512,
    win_length: int | None = None,
    window: Any = "hann",
    center: bool = True,
    pad_mode: Any = "constant",
    freq: np.ndarray | None = None,
    roll_percent: float = 0.85,
) -> np.ndarray:
    """Roll-off frequency per frame, as ``librosa.feature.spectral_rolloff``.

    Returns
    -------
    np.ndarray [shape=(..., 1, t)], float64
    """
    check_sr(sr)
    if not 0.0 < roll_percent < 1.0:
        raise ParameterError(
            f"roll_percent must lie in the range (0, 1) (roll_percent={roll_percent!r})"
        )
    S, n_fft = _magnitude(
        y,
        S,
        n_fft=n_fft,
        hop_length=hop_length,
        win_length=win_length,
        window=window,
        center=center,
        pad_mode=pad_mode,
    )
    _check_energies(S, "rolloff")
    f = _freq_axis(freq, sr, n_fft, S.shape[-2])
    if f is None or np.any(np.diff(f) < 0):
        return _rolloff_grid(S, _freq_grid(freq, S), roll_percent)
    module, flat, lead = _native(S)
    return _frames_out(module.spectral_rolloff(flat, f, float(roll_percent)), lead)


def spectral_flatness(
    *,
    y: np.ndarray | None = None,
    S: np.ndarray | None = None,
    n_fft: int = 2048,
    hop_length: int = 512,
    win_length: int | None = None,
    window: Any = "hann",
    center: bool = True,
    pad_mode: Any = "constant",
    amin: float = 1e-10,
    power: float = 2.0,
) -> np.ndarray:
    """Spectral flatness (Wiener entropy), as ``librosa.feature.spectral_flatness``.

    Returns
    -------
    np.ndarray [shape=(..., 1, t)], the spectrogram's dtype (float32 for float32 audio)
    """
    check_finite(amin=amin, power=power)
    if not power > 0:
        # librosa computes S ** power for any power; a non-positive one inverts or flattens
        # the spectrum, so the ratio is no longer a flatness
        raise ParameterError(f"power must be strictly positive (power={power!r})")
    if amin <= 0:
        raise ParameterError(f"amin must be strictly positive (amin={amin!r})")
    S, n_fft = _magnitude(
        y,
        S,
        n_fft=n_fft,
        hop_length=hop_length,
        win_length=win_length,
        window=window,
        center=center,
        pad_mode=pad_mode,
    )
    _check_energies(S, "flatness")
    module, flat, lead = _native(S)
    return _frames_out(module.spectral_flatness(flat, float(amin), float(power)), lead)


def spectral_flux(
    *,
    y: np.ndarray | None = None,
    S: np.ndarray | None = None,
    n_fft: int = 2048,
    hop_length: int = 512,
    win_length: int | None = None,
    window: Any = "hann",
    center: bool = True,
    pad_mode: Any = "constant",
) -> np.ndarray:
    """Spectral flux per frame (librosa has none; this library's definition).

    ``flux[t] = sqrt(sum_k max(0, S[k, t] - S[k, t - 1]) ** 2)`` on the magnitude spectrogram:
    the L2 norm of the half-wave rectified frame-to-frame magnitude increase. ``flux[0] = 0``.

    Returns
    -------
    np.ndarray [shape=(..., 1, t)], the spectrogram's dtype
    """
    S, n_fft = _magnitude(
        y,
        S,
        n_fft=n_fft,
        hop_length=hop_length,
        win_length=win_length,
        window=window,
        center=center,
        pad_mode=pad_mode,
    )
    _check_energies(S, "flux")
    module, flat, lead = _native(S)
    return _frames_out(module.spectral_flux(flat), lead)


def spectral_contrast(
    *,
    y: np.ndarray | None = None,
    sr: float = 22050,
    S: np.ndarray | None = None,
    n_fft: int = 2048,
    hop_length: int = 512,
    win_length: int | None = None,
    window: Any = "hann",
    center: bool = True,
    pad_mode: Any = "constant",
    freq: np.ndarray | None = None,
    fmin: float = 200.0,
    n_bands: int = 6,
    quantile: float = 0.02,
    linear: bool = False,
) -> np.ndarray:
    """Spectral contrast, as ``librosa.feature.spectral_contrast``: per octave band, the mean of
    the top and bottom ``quantile`` of magnitudes, in dB (or linear).

    Returns
    -------
    np.ndarray [shape=(..., n_bands + 1, t)], float64
    """
    check_sr(sr)
    check_finite(fmin=fmin, quantile=quantile)
    y_spec = y
    if S is None and isinstance(y, np.ndarray) and y.dtype == np.float32:
        # The valleys are the quietest bins, where a float32 FFT's rounding noise shows in dB;
        # librosa transforms in float64 and rounds the magnitudes, and so do we here.
        y_spec = y.astype(np.float64)
    S, n_fft = _magnitude(
        y_spec,
        S,
        n_fft=n_fft,
        hop_length=hop_length,
        win_length=win_length,
        window=window,
        center=center,
        pad_mode=pad_mode,
    )
    if y_spec is not y:
        S = S.astype(np.float32)
    f = _freq_axis(freq, sr, n_fft, S.shape[-2])
    if f is None:
        raise ParameterError(f"freq.shape mismatch: expected ({S.shape[-2]:d},)")
    bands = contrast_bands(f, sr, fmin, n_bands, quantile)
    module, flat, lead = _native(np.asarray(S))
    peak, valley = module.spectral_contrast(flat, bands)
    peak = peak.reshape(*lead, n_bands + 1, flat.shape[-1])
    valley = valley.reshape(*lead, n_bands + 1, flat.shape[-1])
    if linear:
        return peak - valley
    from .spectrum import power_to_db

    return power_to_db(peak) - power_to_db(valley)


def _frame_args(frame_length: int, hop_length: int) -> None:
    if not is_positive_int(frame_length):
        raise ParameterError(f"frame_length={frame_length} must be a positive integer")
    if not is_positive_int(hop_length):
        raise ParameterError(f"Invalid hop_length: {hop_length}")


def zero_crossing_rate(
    y: np.ndarray,
    *,
    frame_length: int = 2048,
    hop_length: int = 512,
    center: bool = True,
    threshold: float = 1e-10,
    ref_magnitude: Any = None,
    zero_pos: bool = True,
    pad: bool = False,
    **kwargs: Any,
) -> np.ndarray:
    """Zero-crossing rate per frame, as ``librosa.feature.zero_crossing_rate``.

    Frames are edge-padded when centred; ``|x| <= threshold`` counts as zero and zero as
    positive (``zero_pos``). ``pad=True`` counts each frame's first sample as a crossing (as
    librosa, whose default here is ``False``); ``axis`` is accepted and ignored, as librosa
    ignores it.

    Returns
    -------
    np.ndarray [shape=(..., 1, t)], float64
    """
    valid_audio(y)
    _frame_args(frame_length, hop_length)
    kwargs.pop("axis", None)  # librosa overrides it
    if kwargs:
        raise ParameterError(f"unexpected arguments for zero_crossing_rate: {sorted(kwargs)}")
    center = check_bool("center", center)
    pad = check_bool("pad", pad)
    zero_pos = check_bool("zero_pos", zero_pos)
    if ref_magnitude is not None:
        ref = ref_magnitude(np.abs(y)) if callable(ref_magnitude) else ref_magnitude
        threshold = threshold * ref
    if center and y.shape[-1] == 0:
        # librosa fails in numpy's edge padding here too
        raise ParameterError(f"cannot edge-pad an empty signal (y.shape={y.shape}, center=True)")
    lead = y.shape[:-1]
    dtype = y.dtype if y.dtype in (np.float32, np.float64) else np.dtype(np.float32)
    flat = np.ascontiguousarray(y.reshape(int(np.prod(lead)), y.shape[-1]), dtype=dtype)
    module = kernels("features", dtype)
    out = module.zero_crossing_rate(
        flat, frame_length, hop_length, center, float(threshold), zero_pos
    )
    if pad:
        out += 1.0 / frame_length  # the first sample of every frame counts as a crossing
    return _frames_out(out, lead)


def _rms_energy(
    y: np.ndarray, frame_length: int, hop_length: int, center: bool, pad_mode: Any, dtype: Any
) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    valid_audio(y)
    _frame_args(frame_length, hop_length)
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise ParameterError(f"dtype={dtype} must be float32 or float64")
    lead = y.shape[:-1]
    flat = np.ascontiguousarray(y.reshape(int(np.prod(lead)), y.shape[-1]), dtype=dtype)
    center = check_bool("center", center)
    if center and pad_mode != "constant":
        check_pad_mode(pad_mode)
        if flat.shape[-1] == 0 and pad_mode != "empty":
            # numpy.pad's own ValueError in librosa
            raise ParameterError(
                f"cannot pad an empty signal (y.shape={y.shape}) with pad_mode={pad_mode!r}"
            )
        pad = frame_length // 2
        flat = np.ascontiguousarray(np.pad(flat, [(0, 0), (pad, pad)], mode=pad_mode), dtype=dtype)
        center = False
    module = kernels("features", dtype)
    rms_values, energy = module.rms_energy(flat, frame_length, hop_length, bool(center))
    return rms_values, energy, lead


def rms(
    *,
    y: np.ndarray | None = None,
    S: np.ndarray | None = None,
    frame_length: int = 2048,
    hop_length: int = 512,
    center: bool = True,
    pad_mode: Any = "constant",
    dtype: Any = np.float32,
) -> np.ndarray:
    """Root-mean-square per frame, as ``librosa.feature.rms`` (from ``y`` or a spectrogram).

    Unlike librosa, non-finite audio raises :class:`ParameterError` instead of giving NaN.

    Returns
    -------
    np.ndarray [shape=(..., 1, t)], ``dtype``
    """
    if y is not None:
        values, _, lead = _rms_energy(y, frame_length, hop_length, center, pad_mode, dtype)
        return _frames_out(values, lead)
    if S is not None:
        if S.shape[-2] != frame_length // 2 + 1:
            raise ParameterError(
                f"Since S.shape[-2] is {S.shape[-2]}, frame_length is expected to be "
                f"{S.shape[-2] * 2 - 2} or {S.shape[-2] * 2 - 1}; found {frame_length}"
            )
        x = (np.abs(S) ** 2).astype(dtype, copy=False)
        x = np.array(x, dtype=dtype, copy=True)
        x[..., 0, :] *= 0.5
        if frame_length % 2 == 0:
            x[..., -1, :] *= 0.5
        power = 2 * np.sum(x, axis=-2, keepdims=True) / frame_length**2
        return np.sqrt(power)
    raise ParameterError("Either `y` or `S` must be input.")


def frame_energy(
    y: np.ndarray,
    *,
    frame_length: int = 2048,
    hop_length: int = 512,
    center: bool = True,
    pad_mode: Any = "constant",
    dtype: Any = np.float32,
) -> np.ndarray:
    """Energy per frame: ``sum(x ** 2)`` over each frame, framed exactly as :func:`rms`
    (librosa has no such function; ``rms ** 2 * frame_length`` equals it).

    Returns
    -------
    np.ndarray [shape=(..., 1, t)], ``dtype``
    """
    _, energy, lead = _rms_energy(y, frame_length, hop_length, center, pad_mode, dtype)
    return _frames_out(energy, lead)


def _empty_band(k: int, f_low: float, f_high: float, freq: np.ndarray, sr: float) -> ParameterError:
    # librosa averages an empty slice there: a NaN row, with numpy's warnings
    return ParameterError(
        f"octave band {k} ({f_low:g} to {f_high:g} Hz) holds no frequency bin of the "
        f"{len(freq)}-bin spectrum (n_fft={2 * (len(freq) - 1)}, sr={sr:g}): raise n_fft or fmin"
    )


def contrast_bands(
    freq: np.ndarray, sr: float, fmin: float, n_bands: int, quantile: float
) -> list[tuple[int, int, int]]:
    """librosa.feature.spectral_contrast's bands as ``(begin, end, quantile_bins)`` over the
    frequency axis ``freq`` (shared by the CPU and CUDA backends).

    librosa's band edges: each band takes one bin below its octave, the last runs to Nyquist,
    and all but the last drop their top bin.
    """
    if n_bands < 1 or not isinstance(n_bands, (int, np.integer)):
        raise ParameterError(f"n_bands must be a positive integer (n_bands={n_bands!r})")
    if not 0.0 < quantile < 1.0:
        raise ParameterError(f"quantile must lie in the range (0, 1) (quantile={quantile!r})")
    if fmin <= 0:
        raise ParameterError(f"fmin must be a positive number (fmin={fmin!r})")
    octa = np.zeros(n_bands + 2)
    octa[1:] = fmin * (2.0 ** np.arange(0, n_bands + 1))
    if np.any(octa[:-1] >= 0.5 * sr):
        raise ParameterError(
            "Frequency band exceeds Nyquist. Reduce either fmin or n_bands. "
            f"(fmin={fmin!r}, n_bands={n_bands!r}, sr={sr!r})"
        )
    bands = []
    for k, (f_low, f_high) in enumerate(zip(octa[:-1], octa[1:], strict=True)):
        current = np.logical_and(freq >= f_low, freq <= f_high)
        idx = np.flatnonzero(current)
        if idx.size == 0:
            raise _empty_band(k, f_low, f_high, freq, sr)
        if k > 0:
            current[idx[0] - 1] = True
        if k == n_bands:
            current[idx[-1] + 1 :] = True
        where = np.flatnonzero(current)
        begin, end = int(where[0]), int(where[-1]) + 1
        if k < n_bands:
            end -= 1
        if end <= begin:
            raise _empty_band(k, f_low, f_high, freq, sr)
        q = int(np.maximum(np.rint(quantile * np.sum(current)), 1))
        bands.append((begin, end, q))
    return bands
