"""Checks of configuration values, shared by every component (one message per kind of mistake).

Each check returns the value converted (``int``, ``float``, ``bool``, ``dict``) or raises
``error`` (:class:`~ml_utilities.exceptions.ParameterError` unless a component passes its own
subclass) with the name and the bad value in the message. Booleans are never numbers here, NumPy
scalars are, and NaN is never a number.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

from .exceptions import ParameterError

__all__ = ["flag", "integer", "keyed", "number"]


def _bounds(low: str, maximum: float | None) -> str:
    return f"{low} and <= {maximum:g}" if maximum is not None else low


def integer(
    name: str,
    value: Any,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    error: type[Exception] = ParameterError,
) -> int:
    """``value`` as an ``int`` (Python's or NumPy's integers, not bools) in [minimum, maximum]."""
    ok = not isinstance(value, bool) and isinstance(value, numbers.Integral)
    if ok and minimum is not None and value < minimum:
        ok = False
    if ok and maximum is not None and value > maximum:
        ok = False
    if not ok:
        low = f">= {minimum}" if minimum is not None else ""
        what = f"an integer {_bounds(low, maximum)}".rstrip()
        raise error(f"{name}={value!r}: expected {what}")
    return int(value)


def number(
    name: str,
    value: Any,
    *,
    above: float | None = None,
    minimum: float | None = None,
    maximum: float | None = None,
    finite: bool = True,
    error: type[Exception] = ParameterError,
) -> float:
    """``value`` as a ``float``: a real number (not a bool, never NaN), finite unless
    ``finite=False``, greater than ``above``, at least ``minimum``, at most ``maximum``."""
    low = f"> {above:g}" if above is not None else f">= {minimum:g}" if minimum is not None else ""
    what = f"{'a finite' if finite else 'a'} number {_bounds(low, maximum)}".rstrip()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise error(f"{name}={value!r}: expected {what}")
    x = float(value)
    if (
        math.isnan(x)
        or (finite and math.isinf(x))
        or (above is not None and not x > above)
        or (minimum is not None and not x >= minimum)
        or (maximum is not None and not x <= maximum)
    ):
        raise error(f"{name}={value!r}: expected {what}")
    return x


def flag(name: str, value: Any, *, error: type[Exception] = ParameterError) -> bool:
    """``value`` if it is ``True`` or ``False`` (not 0/1, not a string)."""
    if not isinstance(value, bool):
        raise error(f"{name}={value!r}: expected True or False")
    return value


def keyed(
    name: str,
    value: Any,
    accepted: tuple[str, ...],
    *,
    error: type[Exception] = ParameterError,
) -> dict[str, Any]:
    """A copy of the dict ``value`` (``None`` gives ``{}``) whose keys are all in ``accepted``."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise error(f"{name}={value!r}: expected a dict with keys among {list(accepted)}")
    unknown = sorted(set(value) - set(accepted), key=str)
    if unknown:
        raise error(f"unknown {name} key(s) {unknown}; accepted: {list(accepted)}")
    return dict(value)
