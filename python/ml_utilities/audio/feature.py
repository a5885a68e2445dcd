"""Mel spectrogram, MFCC and deltas, librosa 0.11 compatible (``librosa.feature``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..exceptions import ParameterError
from . import _plans
from ._delta import delta
from ._validation import check_finite, check_sr
from .spectrum import _float32_out_of_range, _spectrum_power

__all__ = ["delta", "melspectrogram", "mfcc"]


def _compute_dtype(y: np.ndarray, mel_dtype: Any) -> np.dtype:
    # librosa multiplies |STFT|**power (float32 for float32 audio) by a mel basis of `dtype`.
    spec = np.float64 if y.dtype == np.float64 else np.float32
    return np.result_type(spec, np.dtype(mel_dtype))


def melspectrogram(
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
    power: float = 2.0,
    **kwargs: Any,
) -> np.ndarray:
    """Mel-scaled spectrogram, as ``librosa.feature.melspectrogram``.

    With ``y``, one native pass frames, windows, transforms and applies the (sparse) mel bank;
    the spectrum is never stored.

    Parameters
    ----------
    y : np.ndarray [shape=(..., n)], float, host memory, or None
        Audio; leading axes are independent channels.
    sr : float > 0
        Sample rate.
    S : np.ndarray [shape=(..., 1 + n_fft // 2, t)] or None
        A precomputed spectrogram, used instead of ``y``.
    n_fft, hop_length, win_length, window, center, pad_mode
        As :func:`ml_utilities.audio.stft`.
    power : float > 0
        Exponent of the magnitude (2 for power, 1 for energy).
    **kwargs
        Passed to :func:`ml_utilities.audio.filters.mel` (``n_mels``, ``fmin``, ``fmax``,
        ``htk``, ``norm``, ``dtype``).

    Returns
    -------
    np.ndarray [shape=(..., n_mels, t)], float32 for float32 audio

    Raises
    ------
    ParameterError
        As librosa: no input, bad audio or bad STFT or filter-bank parameters.

    Examples
    --------
    >>> import numpy as np
    >>> from ml_utilities.compat import librosa
    >>> y = np.random.default_rng(0).standard_normal(22050).astype(np.float32)
    >>> librosa.feature.melspectrogram(y=y, sr=22050).shape
    (128, 44)
    """
    check_sr(sr)
    check_finite(power=power)
    if S is not None:
        if n_fft is None or n_fft // 2 + 1 != S.shape[-2]:
            n_fft = 2 * (S.shape[-2] - 1)
        basis, _ = _plans.mel_bank(sr, n_fft, kwargs)
        result: np.ndarray = np.einsum("...ft,mf->...mt", S, basis, optimize=True)
        return result
    if n_fft is None:
        raise ParameterError(f"Unable to compute spectrogram with n_fft={n_fft}")
    if y is None:
        raise ParameterError("Input signal must be provided to compute a spectrogram")
    if not isinstance(y, np.ndarray) or not np.issubdtype(y.dtype, np.floating):
        from ._validation import valid_audio

        valid_audio(y)
    compute = _compute_dtype(y, kwargs.get("dtype", np.float32))
    # float32 audio too loud or too quiet for float32's |X|^2: transform in float64 (as librosa
    # does) and round the mel energies (inf where they exceed float32, as float32 arithmetic)
    rescue = compute == np.float32 and _float32_out_of_range(y, n_fft)
    if rescue:
        y = y.astype(np.float64)
        compute = np.dtype(np.float64)
    kwargs = dict(kwargs)
    kwargs["dtype"] = compute
    _, bank = _plans.mel_bank(sr, n_fft, kwargs)
    mel = _spectrum_power(
        y,
        n_fft=n_fft,
        hop_length=hop_length,
        win_length=win_length,
        window=window,
        center=center,
        pad_mode=pad_mode,
        power=power,
        compute_dtype=compute,
        mel_bank=bank,
    )
    if rescue:
        with np.errstate(over="ignore"):
            mel = mel.astype(np.float32)
    return mel


def _dct(S: np.ndarray, n_mfcc: int, dct_type: int, norm: str | None, lifter: float) -> np.ndarray:
    """scipy.fft.dct(S, axis=-2, type=dct_type, norm=norm)[..., :n_mfcc, :], then liftering."""
    if lifter < 0:
        raise ParameterError(f"MFCC lifter={lifter} must be a non-negative number")
    if dct_type not in (1, 2, 3, 4):
        raise ParameterError(
            f"dct_type must be 1, 2, 3 or 4 (scipy's DCT types) (dct_type={dct_type!r})"
        )
    if S.shape[-2] == 0:
        # scipy's DCT of no mel bands: "invalid number of data points (0)"
        raise ParameterError(f"invalid number of data points (0) specified (n_mels={S.shape[-2]})")
    if norm not in (None, "ortho", "backward") or dct_type not in (1, 2, 3):
        import scipy.fft

        M = scipy.fft.dct(S, axis=-2, type=dct_type, norm=norm)[..., :n_mfcc, :]
        if lifter > 0:
            LI = np.sin(np.pi * np.arange(1, 1 + M.shape[-2], dtype=M.dtype) / lifter)
            M *= (1 + (lifter / 2) * LI)[:, np.newaxis]
        return M
    S = np.asarray(S)
    if S.ndim < 2:
        raise ParameterError(
            f"MFCC input must be at least 2-d (..., n_mels, t), got shape {S.shape}"
        )
    dtype = S.dtype if S.dtype in (np.float32, np.float64) else np.dtype(np.float64)
    n_in = S.shape[-2]
    n_out = len(range(n_in)[:n_mfcc])
    if dct_type == 1 and n_in < 2:
        raise ParameterError(f"DCT type 1 needs at least 2 mel bands, got {n_in}")
    matrix = _plans.dct_matrix(dct_type, n_out, n_in, norm == "ortho")
    frames = S.shape[-1]
    src = np.ascontiguousarray(S.reshape(-1, n_in, frames), dtype=dtype)
    out = np.empty((src.shape[0], n_out, frames), dtype=dtype)
    if n_out > 0 and frames > 0 and src.shape[0] > 0:
        _plans.core.spectrum.apply_dct(src, out, matrix.ravel(), n_out, float(lifter))
    return out.reshape(*S.shape[:-2], n_out, frames)


def mfcc(
    *,
    y: np.ndarray | None = None,
    sr: float = 22050,
    S: np.ndarray | None = None,
    n_mfcc: int = 20,
    dct_type: int = 2,
    norm: str | None = "ortho",
    lifter: float = 0,
    mel_norm: Any = "slaney",
    **kwargs: Any,
) -> np.ndarray:
    """Mel-frequency cepstral coefficients, as ``librosa.feature.mfcc``.

    ``dct(power_to_db(melspectrogram(y)))[:n_mfcc]``: with ``y`` the mel energies come from one
    native pass, ``top_db`` is applied over the whole array (every channel, as librosa), and the
    DCT runs natively.

    Parameters
    ----------
    y : np.ndarray [shape=(..., n)], float, or None
        Audio.
    sr : float > 0
        Sample rate.
    S : np.ndarray [shape=(..., n_mels, t)] or None
        A log-power mel spectrogram, used instead of ``y``.
    n_mfcc : int
        Number of coefficients kept.
    dct_type : {1, 2, 3}
    norm : {None, "ortho"}
    lifter : float >= 0
        Cepstral liftering (0: none).
    mel_norm : "slaney", number or None
        ``norm`` of the mel filter bank.
    **kwargs
        Passed to :func:`melspectrogram`.

    Returns
    -------
    np.ndarray [shape=(..., n_mfcc, t)], float32 for float32 audio

    Raises
    ------
    ParameterError
        For ``lifter < 0`` and every error of :func:`melspectrogram`.

    Examples
    --------
    >>> import numpy as np
    >>> from ml_utilities.compat import librosa
    >>> y = np.random.default_rng(0).standard_normal(22050).astype(np.float32)
    >>> librosa.feature.mfcc(y=y, sr=22050, n_mfcc=13).shape
    (13, 44)
    """
    check_sr(sr)
    check_finite(lifter=lifter, power=kwargs.get("power"))
    if norm not in (None, "ortho", "backward", "forward"):
        # scipy's DCT refuses it in librosa, with a ValueError naming only the value
        raise ParameterError(
            f"norm={norm!r} is not a DCT normalisation; expected None or 'ortho' "
            "('backward' and 'forward' as scipy)"
        )
    if S is None:
        y_mel = y
        if (
            isinstance(y, np.ndarray)
            and y.dtype == np.float32
            and kwargs.get("power", 2.0) != 2.0
            and kwargs.get("dtype", np.float32) == np.float32
        ):
            # Below power 2 the 80 dB floor reaches the float32 FFT's rounding noise in quiet
            # bands; librosa transforms in float64 there, so do we, and round the energies.
            y_mel = y.astype(np.float64)
        mel = melspectrogram(y=y_mel, sr=sr, norm=mel_norm, **kwargs)
        if y_mel is not y:
            with np.errstate(over="ignore"):
                mel = mel.astype(np.float32)
        # power_to_db with its defaults (ref=1, amin=1e-10, top_db=80), in place on the fresh array.
        _plans.core.spectrum.power_to_db_inplace(mel, 1e-10, 0.0, 80.0)
        coefficients = _dct(mel, n_mfcc, dct_type, norm, lifter)
        if (
            coefficients.dtype == np.float32
            and isinstance(y, np.ndarray)
            and y.dtype == np.float32
            and not np.isfinite(coefficients).all()
        ):
            # Mel energies past float32's range (librosa gives NaN): their decibels are finite,
            # so take them from float64 energies and round the coefficients.
            mel = melspectrogram(y=y.astype(np.float64), sr=sr, norm=mel_norm, **kwargs)
            _plans.core.spectrum.power_to_db_inplace(mel, 1e-10, 0.0, 80.0)
            coefficients = _dct(mel, n_mfcc, dct_type, norm, lifter).astype(np.float32)
        return coefficients
    return _dct(S, n_mfcc, dct_type, norm, lifter)
