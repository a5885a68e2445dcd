"""Delta features, as ``librosa.feature.delta`` (a Savitzky-Golay derivative)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._native import core
from ..exceptions import AxisError, ParameterError

__all__ = ["delta"]


def delta(
    data: np.ndarray,
    *,
    width: int = 9,
    order: int = 1,
    axis: int = -1,
    mode: str = "interp",
    **kwargs: Any,
) -> np.ndarray:
    """Compute delta features: a local estimate of the derivative along an axis.

    The same as ``librosa.feature.delta``, i.e. ``scipy.signal.savgol_filter(data, width,
    polyorder=order, deriv=order, axis=axis, mode=mode)``. With ``mode="interp"`` (the default)
    and no extra keyword arguments the compiled core computes it without holding the GIL; any
    other mode or keyword goes to scipy itself.

    Parameters
    ----------
    data : np.ndarray [shape=(..., t)], host memory
        The input data matrix (for example a spectrogram or MFCCs). float32 stays float32;
        any other real dtype is computed in float64, as scipy does.
    width : int, odd, >= 3
        Number of frames over which to compute the delta. With ``mode="interp"`` it cannot
        exceed ``data.shape[axis]``.
    order : int > 0
        Order of the difference operator (1 for first derivative, 2 for second, ...).
    axis : int
        The axis along which to compute deltas.
    mode : str
        ``"interp"``, ``"nearest"``, ``"mirror"``, ``"constant"`` or ``"wrap"``, as
        ``scipy.signal.savgol_filter``.
    **kwargs
        Passed to ``scipy.signal.savgol_filter`` (``deriv`` is ignored; ``polyorder`` defaults
        to ``order``).

    Returns
    -------
    np.ndarray [shape=data.shape], float32 for float32 input, else float64

    Raises
    ------
    ParameterError
        If ``width`` is even, below 3 or (``mode="interp"``) larger than the axis, if
        ``order`` is not a positive integer, or if ``order >= width``.

    Examples
    --------
    >>> import numpy as np
    >>> from ml_utilities.audio import delta
    >>> x = np.arange(20, dtype=np.float32) ** 2
    >>> delta(x)[:3]
    array([8., 8., 8.], dtype=float32)
    """
    data = np.atleast_1d(data)
    if (
        isinstance(axis, bool)
        or not isinstance(axis, (int, np.integer))
        or not -data.ndim <= axis < data.ndim
    ):
        raise AxisError(f"axis={axis!r} is not an axis of data (data.shape={data.shape})")
    if mode not in ("interp", "mirror", "constant", "nearest", "wrap"):
        raise ParameterError(
            f"mode={mode!r}: mode must be 'mirror', 'constant', 'nearest' 'wrap' or 'interp'."
        )
    if mode == "interp" and width > data.shape[axis]:
        raise ParameterError(
            f"when mode='interp', width={width} cannot exceed data.shape[axis]={data.shape[axis]}"
        )
    if width < 3 or np.mod(width, 2) != 1:
        raise ParameterError(f"width must be an odd integer >= 3 (width={width!r})")
    if order <= 0 or not isinstance(order, (int, np.integer)):
        raise ParameterError(f"order must be a positive integer (order={order!r})")
    if mode == "interp" and data.dtype.kind in "fc":
        # scipy fits a polynomial to the first and last windows (a least-squares solve that
        # refuses non-finite values); elsewhere NaN and inf spread through the filter as in
        # scipy's convolution
        edges = np.concatenate(
            [np.take(data, range(width), axis=axis), np.take(data, range(-width, 0), axis=axis)],
            axis=axis,
        )
        if not np.isfinite(edges).all():
            bad = int(edges.size - np.count_nonzero(np.isfinite(edges)))
            raise ParameterError(
                f"array must not contain infs or NaNs: {bad} of them in the first or last "
                f"width={width} values along axis={axis} of data (shape={data.shape}), where "
                "mode='interp' fits a polynomial"
            )

    kwargs.pop("deriv", None)
    native = (
        mode == "interp"
        and not kwargs
        and isinstance(width, (int, np.integer))
        and data.dtype.kind in "biuf"
    )
    if not native:
        import scipy.signal  # lazily: importing ml_utilities must stay fast

        kwargs.setdefault("polyorder", order)
        result: np.ndarray = scipy.signal.savgol_filter(
            data, width, deriv=order, axis=axis, mode=mode, **kwargs
        )
        return result

    if order >= width:
        # scipy.signal.savgol_coeffs' check, as a ParameterError (a ValueError).
        raise ParameterError("polyorder must be less than window_length.")
    # scipy filters float32 and float64 as they are and everything else as float64.
    if data.dtype != np.float64 and data.dtype != np.float32:
        data = data.astype(np.float64)
    moved = np.ascontiguousarray(np.moveaxis(data, axis, -1))
    out = np.empty_like(moved)
    length = moved.shape[-1]
    core.filters.delta(moved.reshape(-1, length), out.reshape(-1, length), int(width), int(order))
    if out.ndim == 1 or axis in (-1, out.ndim - 1):
        return out
    # savgol_filter returns a fresh C-contiguous array; keep that layout.
    return np.ascontiguousarray(np.moveaxis(out, -1, axis))
