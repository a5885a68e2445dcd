"""Decoding and resampling, as librosa 0.11's ``load``, ``resample``, ``get_duration`` and
``get_samplerate``.

Files are decoded with soundfile and resampled with soxr, the way librosa does it, so the
results are the same arrays librosa returns. soundfile and soxr are imported inside the
functions, and librosa only where a caller asks for something that needs it (an audioread
decoder, a non-soxr resampler), so ``import ml_utilities`` stays fast.
"""

from __future__ import annotations

import errno
import logging
import math
import numbers
import os
import pathlib
from typing import Any

import numpy as np

from ..exceptions import AudioFileError, BackendUnavailableError, ParameterError
from ._validation import valid_audio

__all__ = ["get_duration", "get_samplerate", "load", "resample"]

logger = logging.getLogger(__name__)

#: The resamplers implemented here (soxr's quality presets, named as librosa names them).
SOXR_TYPES = ("soxr_vhq", "soxr_hq", "soxr_mq", "soxr_lq", "soxr_qq")
#: the other types librosa.resample knows (scipy, samplerate, resampy), run through librosa
_LIBROSA_TYPES = (
    "fft",
    "scipy",
    "polyphase",
    "linear",
    "zero_order_hold",
    "sinc_best",
    "sinc_medium",
    "sinc_fastest",
    "kaiser_best",
    "kaiser_fast",
)


def _librosa_or_none() -> Any:
    """librosa, imported on demand, or None where it is not installed."""
    try:
        import librosa
    except ImportError:
        return None
    return librosa


def _is_audioread_object(path: Any) -> bool:
    return type(path).__module__.split(".")[0] == "audioread"


def _check_rate(value: Any, name: str) -> float:
    """Return ``value`` as a float when it is a positive finite sampling rate."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ParameterError(f"{name}={value!r} must be a positive number")
    rate = float(value)
    if not math.isfinite(rate) or rate <= 0:
        raise ParameterError(f"{name}={value!r} must be a positive finite number")
    return rate


def _valid_audio(y: Any) -> None:
    """librosa.util.valid_audio's checks and messages (with the bad value named)."""
    valid_audio(y)


def _to_mono(y: np.ndarray) -> np.ndarray:
    """Average every leading (channel) axis, as librosa.to_mono."""
    _valid_audio(y)
    if y.ndim > 1:
        y = np.mean(y, axis=tuple(range(y.ndim - 1)))
    return y


def _fix_length(data: np.ndarray, *, size: int, axis: int = -1, **kwargs: Any) -> np.ndarray:
    """Trim or pad ``data`` to ``size`` along ``axis`` (librosa.util.fix_length)."""
    kwargs.setdefault("mode", "constant")
    n = data.shape[axis]
    if n > size:
        index = [slice(None)] * data.ndim
        index[axis] = slice(0, size)
        return data[tuple(index)]
    if n < size:
        widths = [(0, 0)] * data.ndim
        widths[axis] = (0, size - n)
        return np.pad(data, widths, **kwargs)
    return data


def _missing_file(path: Any) -> FileNotFoundError | None:
    """The FileNotFoundError librosa ends with for a path that does not exist, else None."""
    if isinstance(path, (str, os.PathLike)) and not os.path.exists(path):
        return FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), os.fspath(path))
    return None


def _soundfile_read(
    path: Any, offset: float, duration: float | None, dtype: Any
) -> tuple[np.ndarray, int]:
    """Decode with soundfile: seek to ``offset`` seconds, read ``duration`` seconds.

    Frame counts are ``int(seconds * native_rate)``, as librosa computes them. A SoundFile the
    caller opened is used as is and closed afterwards, as librosa does.
    """
    import soundfile as sf

    handle = path if isinstance(path, sf.SoundFile) else sf.SoundFile(path)
    with handle as source:
        native_sr = source.samplerate
        if offset:
            source.seek(int(offset * native_sr))
        frames = -1 if duration is None else int(duration * native_sr)
        # soundfile gives (frames, channels); librosa's layout is (channels, frames).
        y = source.read(frames=frames, dtype=dtype, always_2d=False).T
    return y, native_sr


def load(
    path: Any,
    *,
    sr: float | None = 22050,
    mono: bool = True,
    offset: float = 0.0,
    duration: float | None = None,
    dtype: Any = np.float32,
    res_type: str = "soxr_hq",
) -> tuple[np.ndarray, float]:
    """Load an audio file as a floating-point time series, resampled to ``sr``.

    Parameters
    ----------
    path : str, int, os.PathLike, soundfile.SoundFile or file-like object
        The file to decode: a path, an open file descriptor, a ``soundfile.SoundFile`` (used as
        is, and closed afterwards, as librosa does) or a binary file-like object. Anything
        soundfile (libsndfile) decodes works; for a path it cannot decode, librosa's audioread
        fallback is used when librosa is installed.
    sr : number > 0 or None
        Target sampling rate; ``None`` keeps the file's native rate.
    mono : bool
        Average the channels into one signal.
    offset : float
        Start reading after this many seconds (``int(offset * native_sr)`` samples).
    duration : float or None
        Read at most this many seconds (``int(duration * native_sr)`` samples).
    dtype : numpy dtype
        Data type of ``y`` (float32 by default).
    res_type : str
        Resampler: ``"soxr_vhq"``, ``"soxr_hq"`` (default), ``"soxr_mq"``, ``"soxr_lq"`` or
        ``"soxr_qq"``; any other librosa resampler is run by librosa when it is installed.

    Returns
    -------
    y : np.ndarray [shape=(n,) or (channels, n)], dtype ``dtype``
        The audio time series, on the host.
    sr : number > 0
        Sampling rate of ``y``: ``sr`` as given, or the native rate when ``sr`` is None.

    Raises
    ------
    FileNotFoundError
        If ``path`` names a file that does not exist (as librosa).
    ml_utilities.AudioFileError
        If the file (or file-like object) cannot be decoded: corrupt, truncated, empty, of an
        unknown format or unreadable. Its message names the file and the reason (soundfile's,
        then audioread's when librosa tried it); ``filename`` is the file, and the decoder's
        exception is chained. An ``OSError``, like ``FileNotFoundError``, so ``except OSError``
        catches every file that cannot be used. (librosa raises whatever its last decoder
        raised there: ``NoBackendError``, ``EOFError``, ``soundfile.LibsndfileError``.)
    ParameterError
        If ``sr`` is not a positive number, ``offset`` or ``duration`` is not a finite number,
        the decoded audio is not floating-point or finite where librosa rejects it, or
        ``res_type`` needs librosa and it is not installed.

    Examples
    --------
    >>> import numpy as np, soundfile as sf, tempfile, os
    >>> from ml_utilities.audio import load
    >>> path = os.path.join(tempfile.mkdtemp(), "tone.wav")
    >>> sf.write(path, np.zeros(44100, dtype=np.float32), 44100)
    >>> y, sr = load(path)
    >>> y.shape, y.dtype, sr
    ((22050,), dtype('float32'), 22050)
    """
    if sr is not None:
        _check_rate(sr, "sr")
    for name, value in (("offset", offset), ("duration", duration)):
        if value is not None and not (
            isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
        ):
            raise ParameterError(f"{name}={value!r} must be a finite number of seconds")

    if _is_audioread_object(path):
        return _librosa_load(path, sr, mono, offset, duration, dtype, res_type, cause=None)

    import soundfile as sf

    try:
        y, native_sr = _soundfile_read(path, offset, duration, dtype)
    except sf.SoundFileRuntimeError as exc:
        if not isinstance(path, (str, pathlib.PurePath)):
            raise AudioFileError(_file_name(path), _reason(exc)) from exc
        missing = _missing_file(path)
        if missing is not None:
            raise missing from None
        # librosa would now try audioread; do the same through librosa when it is there.
        return _librosa_load(path, sr, mono, offset, duration, dtype, res_type, cause=exc)

    if mono:
        y = _to_mono(y)
    if sr is None:
        return y, native_sr
    return resample(y, orig_sr=native_sr, target_sr=sr, res_type=res_type), sr


def _librosa_load(
    path: Any,
    sr: float | None,
    mono: bool,
    offset: float,
    duration: float | None,
    dtype: Any,
    res_type: str,
    cause: BaseException | None,
) -> tuple[np.ndarray, float]:
    """Hand a decode soundfile cannot do (audioread) to librosa; AudioFileError when that is
    impossible or fails too."""
    librosa = _librosa_or_none()
    if librosa is None:
        if cause is not None:
            raise AudioFileError(_file_name(path), _reason(cause)) from cause
        raise ParameterError(
            f"an audioread decoder ({type(path).__name__}) needs librosa, which is not installed"
        )
    logger.info("soundfile cannot decode %r; handing it to librosa (audioread)", path)
    try:
        return librosa.load(  # type: ignore[no-any-return]
            path,
            sr=sr,
            mono=mono,
            offset=offset,
            duration=duration,
            dtype=dtype,
            res_type=res_type,
        )
    except (FileNotFoundError, ParameterError):
        raise
    except Exception as exc:  # noqa: BLE001 - audioread and its backends raise anything
        if cause is None:
            raise
        reason = f"{_reason(cause)}; audioread: {_reason(exc)}"
        raise AudioFileError(_file_name(path), reason) from exc


def _file_name(path: Any) -> Any:
    """What an AudioFileError names: the path, or a file-like object's name or repr."""
    if isinstance(path, (str, os.PathLike)):
        return os.fspath(path)
    name = getattr(path, "name", None)
    return name if isinstance(name, (str, bytes, int)) else repr(path)


def _reason(exc: BaseException) -> str:
    """A decoder's failure in words, never empty (audioread's errors often have no message)."""
    text = str(getattr(exc, "error_string", "") or exc).strip()
    if type(exc).__name__ == "NoBackendError" and not text:
        text = "no audioread backend can decode it"
    elif isinstance(exc, EOFError) and not text:
        text = "unexpected end of data"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def resample(
    y: np.ndarray,
    *,
    orig_sr: float,
    target_sr: float,
    res_type: str = "soxr_hq",
    fix: bool = True,
    scale: bool = False,
    axis: int = -1,
    **kwargs: Any,
) -> np.ndarray:
    """Resample a time series from ``orig_sr`` to ``target_sr`` along ``axis``.

    Parameters
    ----------
    y : np.ndarray [shape=(..., n, ...)], floating point
        Audio time series with ``n`` samples along ``axis``; every other axis is an independent
        channel, resampled on its own.
    orig_sr : number > 0
        Sampling rate of ``y``.
    target_sr : number > 0
        Target sampling rate.
    res_type : str
        ``"soxr_vhq"``, ``"soxr_hq"`` (default), ``"soxr_mq"``, ``"soxr_lq"`` (soxr's
        band-limited presets) or ``"soxr_qq"`` (quick cubic). Any other librosa resampler
        (``"kaiser_best"``, ``"fft"``, ``"polyphase"``, ...) is run by librosa when it is
        installed.
    fix : bool
        Trim or zero-pad the result to exactly ``ceil(target_sr * n / orig_sr)`` samples.
    scale : bool
        Divide by ``sqrt(target_sr / orig_sr)`` so that total energy is about preserved.
    axis : int
        The axis to resample (the last by default).
    **kwargs
        With ``fix=True``, passed to ``numpy.pad`` (``mode="constant"`` by default).

    Returns
    -------
    y_hat : np.ndarray [shape=(..., n * target_sr / orig_sr, ...)], dtype of ``y``
        ``y`` resampled; ``y`` itself when the two rates are equal (as librosa).

    Raises
    ------
    ParameterError
        If ``y`` is not a finite floating-point array of at least one dimension, a rate is not
        a positive finite number, or ``res_type`` needs librosa and it is not installed.

    Examples
    --------
    >>> import numpy as np
    >>> from ml_utilities.audio import resample
    >>> y = np.zeros(22050, dtype=np.float32)
    >>> resample(y, orig_sr=22050, target_sr=8000).shape
    (8000,)
    """
    _valid_audio(y)
    if orig_sr == target_sr:
        return y
    _check_rate(orig_sr, "orig_sr")
    _check_rate(target_sr, "target_sr")

    if res_type not in SOXR_TYPES:
        if res_type not in _LIBROSA_TYPES:
            # librosa hands any other name to resampy as a filter name
            raise ParameterError(
                f"res_type={res_type!r} is not a resampling type; choose one of "
                f"{list(SOXR_TYPES) + list(_LIBROSA_TYPES)}"
            )
        librosa = _librosa_or_none()
        if librosa is None:
            raise ParameterError(
                f"res_type={res_type!r} needs librosa, which is not installed; ml_utilities "
                f"implements {', '.join(SOXR_TYPES)}"
            )
        try:
            return librosa.resample(  # type: ignore[no-any-return]
                y,
                orig_sr=orig_sr,
                target_sr=target_sr,
                res_type=res_type,
                fix=fix,
                scale=scale,
                axis=axis,
                **kwargs,
            )
        except ImportError as err:  # resampy, samplerate: optional packages of librosa's
            raise BackendUnavailableError(
                f"res_type={res_type!r} needs a package that is not installed "
                f"({str(err).splitlines()[0]}); the built-in types are {', '.join(SOXR_TYPES)}"
            ) from err

    import soxr

    ratio = float(target_sr) / orig_sr
    n_samples = int(np.ceil(y.shape[axis] * ratio))
    # soxr takes one or two dimensions only: resample each 1-D slice along the axis on its
    # own (librosa does the same), which also keeps channels independent.
    y_hat = np.apply_along_axis(
        soxr.resample, axis, y, in_rate=orig_sr, out_rate=target_sr, quality=res_type
    )
    if fix:
        y_hat = _fix_length(y_hat, size=n_samples, axis=axis, **kwargs)
    if scale:
        y_hat /= np.sqrt(ratio)
    return np.asarray(y_hat, dtype=y.dtype)


def get_duration(
    *,
    y: np.ndarray | None = None,
    sr: float = 22050,
    S: np.ndarray | None = None,
    n_fft: int = 2048,
    hop_length: int = 512,
    center: bool = True,
    path: str | os.PathLike[str] | Any | None = None,
    filename: str | os.PathLike[str] | None = None,
) -> float:
    """Duration in seconds of a signal, a spectrogram, or a file.

    Parameters
    ----------
    y : np.ndarray [shape=(..., n)] or None
        Audio time series (multichannel allowed).
    sr : number > 0
        Sampling rate of ``y`` or ``S``.
    S : np.ndarray [shape=(..., d, t)] or None
        An STFT-derived matrix; its duration is exact only to the frame.
    n_fft : int > 0
        FFT window size used for ``S``.
    hop_length : int > 0
        Samples between columns of ``S``.
    center : bool
        Whether ``S``'s frames were centred (``stft(center=True)``).
    path : str, os.PathLike, int or file-like, or None
        A file: its header gives the duration without decoding. Takes precedence over ``S``,
        which takes precedence over ``y``.
    filename : str or os.PathLike or None
        Deprecated alias of ``path`` (as in librosa; warns with FutureWarning).

    Returns
    -------
    d : float >= 0
        Duration in seconds.

    Raises
    ------
    ParameterError
        If none of ``y``, ``S`` and ``path`` is given, or ``sr`` is not positive.
    FileNotFoundError
        If ``path`` does not exist.
    ml_utilities.AudioFileError
        If ``path`` cannot be read (as :func:`load`).

    Examples
    --------
    >>> import numpy as np
    >>> from ml_utilities.audio import get_duration
    >>> get_duration(y=np.zeros(44100, dtype=np.float32), sr=22050)
    2.0
    >>> get_duration(S=np.zeros((1025, 44)), sr=22050)
    0.9984580498866213
    """
    if filename is not None:
        import warnings

        warnings.warn(
            "get_duration() keyword argument 'filename' has been renamed to 'path' in version "
            "0.10.0.\n\tThis alias will be removed in version 1.0.",
            category=FutureWarning,
            stacklevel=2,
        )
        path = filename

    if path is not None:
        import soundfile as sf

        try:
            return float(sf.info(path).duration)
        except sf.SoundFileRuntimeError as exc:
            return float(_fallback_info(path, "get_duration", exc))

    if y is None:
        if S is None:
            raise ParameterError("At least one of (y, sr), S, or path must be provided")
        n_samples = n_fft + hop_length * (S.shape[-1] - 1)
        if center:
            # A centred STFT pads half a window at each end.
            n_samples -= 2 * int(n_fft // 2)
    else:
        n_samples = y.shape[-1]
    _check_rate(sr, "sr")
    return float(n_samples) / sr


def get_samplerate(path: Any) -> float:
    """The sampling rate of an audio file, read from its header.

    Parameters
    ----------
    path : str, os.PathLike, int, soundfile.SoundFile or file-like
        The file, as :func:`load` accepts it.

    Returns
    -------
    sr : int > 0
        Its sampling rate.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ml_utilities.AudioFileError
        If the file cannot be read (as :func:`load`).

    Examples
    --------
    >>> import numpy as np, soundfile as sf, tempfile, os
    >>> from ml_utilities.audio import get_samplerate
    >>> path = os.path.join(tempfile.mkdtemp(), "tone.wav")
    >>> sf.write(path, np.zeros(100, dtype=np.float32), 16000)
    >>> get_samplerate(path)
    16000
    """
    import soundfile as sf

    if isinstance(path, sf.SoundFile):
        return path.samplerate  # type: ignore[no-any-return]
    try:
        return sf.info(path).samplerate  # type: ignore[no-any-return]
    except sf.SoundFileRuntimeError as exc:
        return _fallback_info(path, "get_samplerate", exc)  # type: ignore[no-any-return]


def _fallback_info(path: Any, function: str, exc: BaseException) -> Any:
    """After soundfile failed on ``path`` with ``exc``: FileNotFoundError, librosa's answer
    (audioread), or ``exc`` again."""
    missing = _missing_file(path)
    if missing is not None:
        raise missing from None
    librosa = _librosa_or_none()
    if librosa is None or not isinstance(path, (str, pathlib.PurePath)):
        raise AudioFileError(_file_name(path), _reason(exc)) from exc
    try:
        if function == "get_duration":
            return librosa.get_duration(path=path)
        return librosa.get_samplerate(path)
    except FileNotFoundError:
        raise
    except Exception as second:  # noqa: BLE001 - audioread and its backends raise anything
        reason = f"{_reason(exc)}; audioread: {_reason(second)}"
        raise AudioFileError(_file_name(path), reason) from second
