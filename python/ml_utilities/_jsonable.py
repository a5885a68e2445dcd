"""NumPy-aware conversion of nested containers to what :mod:`json` writes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np


def jsonable(value: Any, default: Callable[[Any], Any] | None = None) -> Any:
    """``value`` with dict keys as strings, tuples as lists and NumPy scalars and arrays as
    Python numbers and lists; any other object is passed to ``default`` (kept when None)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v, default) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v, default) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if default is None or isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return default(value)
