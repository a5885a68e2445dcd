"""Mirror of ``librosa.util.exceptions``: ``ParameterError`` is
:class:`ml_utilities.exceptions.ParameterError` (a ``ValueError``) and ``LibrosaError`` is
:class:`ml_utilities.exceptions.MLUtilitiesError`, its base.
"""

from __future__ import annotations

from typing import Any

from ....exceptions import MLUtilitiesError as LibrosaError
from ....exceptions import ParameterError
from .._mirror import mirror

__all__ = ["LibrosaError", "ParameterError"]

_getattr, _dir = mirror(
    __name__,
    {
        "LibrosaError": "ml_utilities.exceptions:MLUtilitiesError",
        "ParameterError": "ml_utilities.exceptions",
    },
)


def __getattr__(name: str) -> Any:
    return _getattr(name)


def __dir__() -> list[str]:
    return _dir()
