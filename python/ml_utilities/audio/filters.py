"""Filter banks and windows, librosa 0.11 compatible (``librosa.filters``).

The banks are built by the compiled core with the same floating-point steps as librosa and
scipy, so :func:`mel` is bit-identical to ``librosa.filters.mel`` and :func:`get_window` agrees
with ``scipy.signal.get_window`` to the last ulp or two.
"""

from __future__ import annotations

import math
import numbers
import operator
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from .._native import core
from ..exceptions import ParameterError
from ._validation import check_finite, check_sr

__all__ = ["dct", "get_window", "mel"]

_EMPTY_FILTERS_MESSAGE = (
    "Empty filters detected in mel frequency basis. "
    "Some channels will produce empty responses. "
    "Try increasing your sampling rate (and fmax) or "
    "reducing n_mels."
)

# scipy windows the core does not build (they need an FFT, an eigen-solver or a long series):
# get_window hands them to scipy.signal.get_window itself.
_SCIPY_ONLY_WINDOWS = frozenset({"chebwin", "cheb", "dpss", "taylor", "taylorwin"})
_EXPONENTIAL_NAMES = frozenset({"exponential", "poisson"})
_GENERAL_COSINE_NAMES = frozenset({"general_cosine", "general cosine"})


def mel(
    *,
    sr: float,
    n_fft: int,
    n_mels: int = 128,
    fmin: float = 0.0,
    fmax: float | None = None,
    htk: bool = False,
    norm: Any = "slaney",
    dtype: Any = np.float32,
) -> np.ndarray:
    """Create a mel filter bank, as ``librosa.filters.mel``.

    Parameters
    ----------
    sr : float > 0
        Sampling rate of the incoming signal.
    n_fft : int > 0
        Number of FFT components.
    n_mels : int >= 0
        Number of mel bands.
    fmin : float >= 0
        Lowest frequency (Hz).
    fmax : float >= 0 or None
        Highest frequency (Hz); ``sr / 2`` when None.
    htk : bool
        Use the HTK mel scale instead of Slaney's.
    norm : {None, "slaney"} or number
        ``"slaney"`` divides each triangle by its width in Hz (area normalisation); a number
        normalises each filter to unit l_p norm as ``librosa.util.normalize`` (``np.inf``,
        ``-np.inf`` and 0 included); None leaves the triangles peaking at 1.
    dtype : np.float32 or np.float64
        Data type of the bank.

    Returns
    -------
    np.ndarray [shape=(n_mels, 1 + n_fft // 2), dtype=dtype], host memory
        The mel transform matrix.

    Raises
    ------
    ParameterError
        For an unsupported ``norm``, non-finite weights with a numeric or None ``norm``, a
        non-positive ``sr`` or ``n_fft``, a negative ``n_mels``, or a ``dtype`` other than
        float32/float64 (librosa would also build other dtypes).

    Warns
    -----
    UserWarning
        When some filter is empty (no FFT bin falls inside it), with librosa's message.

    Examples
    --------
    >>> from ml_utilities.audio.filters import mel
    >>> melfb = mel(sr=22050, n_fft=2048)
    >>> melfb.shape, melfb.dtype
    ((128, 1025), dtype('float32'))
    """
    check_sr(sr)
    check_finite(fmin=fmin, fmax=fmax)
    if fmax is None:
        fmax = float(sr) / 2
    try:
        n_mels = int(n_mels)  # librosa converts it the same way (128.0 is 128)
    except (TypeError, ValueError, OverflowError):
        raise ParameterError(f"n_mels={n_mels!r} must be an integer") from None
    if n_mels < 0:
        raise ParameterError(f"n_mels={n_mels} must be non-negative")
    n_fft_int = _as_index(n_fft, "n_fft")
    if n_fft_int <= 0:
        raise ParameterError(f"n_fft={n_fft} must be a positive integer")
    if not float(sr) > 0:
        raise ParameterError(f"sr={sr} must be positive")
    out_dtype = np.dtype(dtype)
    if out_dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ParameterError(f"mel filter bank dtype must be float32 or float64, got {out_dtype}")
    norm_kind, p = _mel_norm(norm)
    weights, empty = core.filters.mel(
        float(sr),
        n_fft_int,
        n_mels,
        float(fmin),
        float(fmax),
        bool(htk),
        norm_kind,
        p,
        out_dtype.name,
    )
    if empty:
        warnings.warn(_EMPTY_FILTERS_MESSAGE, UserWarning, stacklevel=2)
    result: np.ndarray = weights
    return result


def _mel_norm(norm: Any) -> tuple[str, float]:
    """Map librosa's ``norm`` argument to the core's (kind, p), with librosa's errors."""
    if isinstance(norm, str):
        if norm == "slaney":
            return "slaney", 0.0
        raise ParameterError(f"Unsupported norm={norm}")
    if norm is None:
        return "none", 0.0
    # util.normalize's dispatch, in its order (so False counts as norm=0 and True is refused).
    if norm == np.inf:
        return "lp", math.inf
    if norm == -np.inf:
        return "lp", -math.inf
    if norm == 0:
        return "lp", 0.0
    if np.issubdtype(type(norm), np.number) and norm > 0:
        return "lp", float(norm)
    raise ParameterError(f"Unsupported norm: {norm!r}")


def _as_index(value: Any, name: str) -> int:
    try:
        return operator.index(value)
    except TypeError:
        raise ParameterError(f"{name}={value!r} must be an integer") from None


def dct(n_filters: int, n_input: int, *, dtype: Any = np.float32) -> np.ndarray:
    """Discrete cosine transform (DCT-II, orthonormal) basis.

    librosa 0.11 no longer has ``librosa.filters.dct``; this keeps the removed function's
    meaning: row ``k`` is the k-th orthonormal DCT-II basis vector, so
    ``dct(n, m) @ x == scipy.fft.dct(x, type=2, norm="ortho")[:n]``.

    Parameters
    ----------
    n_filters : int > 0
        Number of output components (rows), at most ``n_input``.
    n_input : int > 0
        Input length (columns).
    dtype : np.dtype
        Data type of the result.

    Returns
    -------
    np.ndarray [shape=(n_filters, n_input), dtype=dtype], host memory

    Raises
    ------
    ParameterError
        If ``n_filters`` or ``n_input`` is not a positive integer or ``n_filters > n_input``.

    Examples
    --------
    >>> from ml_utilities.audio.filters import dct
    >>> dct(13, 128).shape
    (13, 128)
    """
    n_out = _as_index(n_filters, "n_filters")
    n_in = _as_index(n_input, "n_input")
    if n_out <= 0 or n_in <= 0:
        raise ParameterError(f"n_filters={n_filters} and n_input={n_input} must be positive")
    basis: np.ndarray = core.filters.dct_matrix(2, n_out, n_in, True)
    return basis.astype(dtype, copy=False)


def get_window(
    window: str | tuple[Any, ...] | float | Callable[[int], np.ndarray] | np.ndarray | list[Any],
    Nx: int,
    *,
    fftbins: bool | None = True,
) -> np.ndarray:
    """Compute a window function, as ``librosa.filters.get_window``.

    Parameters
    ----------
    window : str, tuple, number, callable or array-like
        A scipy window name (``"hann"``), a name with parameters (``("kaiser", 4.0)``), a
        number (the beta of a Kaiser window), a callable taking the length, or a precomputed
        window of length ``Nx``.
    Nx : int > 0
        Length of the window.
    fftbins : bool
        True for a periodic window (for FFTs), False for a symmetric one.

    Returns
    -------
    np.ndarray [shape=(Nx,)], float64 for named windows, host memory

    Raises
    ------
    ParameterError
        If an array-like window's length differs from ``Nx``, the specification is not
        understood, or (a ``ValueError`` subclass, where scipy raises ``ValueError``) the name,
        parameters, ``Nx`` or ``fftbins`` are invalid.

    Examples
    --------
    >>> from ml_utilities.audio.filters import get_window
    >>> get_window("hann", 4)
    array([0. , 0.5, 1. , 0.5])
    """
    if callable(window):
        return window(Nx)
    if isinstance(window, (str, tuple)) or np.isscalar(window):
        return _scipy_window(window, Nx, fftbins)
    if isinstance(window, (np.ndarray, list)):
        if len(window) == Nx:
            return np.asarray(window)
        raise ParameterError(f"Window size mismatch: {len(window):d} != {Nx:d}")
    raise ParameterError(f"Invalid window specification: {window!r}")


def _scipy_window(window: Any, Nx: Any, fftbins: Any) -> np.ndarray:
    """``scipy.signal.get_window(window, Nx, fftbins)`` on the core, with scipy's checks."""
    if not (Nx > 0 and isinstance(Nx, numbers.Integral)):
        raise ParameterError(f"Parameter Nx={Nx!r} is not a positive integer")
    if not isinstance(fftbins, bool):
        raise ParameterError(f"Parameter fftbins={fftbins!r} is not of type bool!")
    if not isinstance(window, (str, tuple)):
        try:
            beta = float(window)
        except Exception as err:
            raise ParameterError(
                f"Parameter window={window!r} must be a tuple, a string or a float!"
            ) from err
        window = ("kaiser", beta)
    if isinstance(window, tuple) and (len(window) == 0 or not isinstance(window[0], str)):
        raise ParameterError(f"First tuple entry of parameter window={window!r} is not a str!")
    name = window if isinstance(window, str) else window[0]
    args = window[1:] if isinstance(window, tuple) else ()
    base = name
    if base.endswith("_symmetric"):  # scipy strips one suffix, this one first
        base = base[: -len("_symmetric")]
    elif base.endswith("_periodic"):
        base = base[: -len("_periodic")]
    if base in _SCIPY_ONLY_WINDOWS:
        import scipy.signal  # lazily: importing ml_utilities must stay fast

        scipy_window: np.ndarray = scipy.signal.get_window(window, Nx, fftbins=fftbins)
        return scipy_window
    try:
        params = _window_params(base, args)
    except (TypeError, ValueError) as err:
        raise ParameterError(f"Invalid parameters in window={window!r}: {err}") from err
    try:
        result: np.ndarray = core.filters.get_window(name, params, int(Nx), fftbins)
    except ParameterError as err:
        raise ParameterError(f"{err} in parameter window={window!r}") from None
    return result


def _window_params(base: str, args: tuple[Any, ...]) -> list[float]:
    """The tuple parameters of a window as floats for the core."""
    if base in _GENERAL_COSINE_NAMES:
        if len(args) != 1:
            raise ValueError("general_cosine takes one parameter, the coefficient array")
        return [float(a) for a in np.asarray(args[0], dtype=np.float64).ravel()]
    if base in _EXPONENTIAL_NAMES and args and args[0] is None:
        # center=None: the core reads a NaN center as "the middle of the window".
        return [math.nan, *(float(a) for a in args[1:])]
    return [float(a) for a in args]
