"""What every mirrored module shares: ml_utilities' names first, then librosa's.

Each module of ``ml_utilities.compat.librosa`` calls :func:`mirror` with the names ml_utilities
implements at that path. Its module-level ``__getattr__`` then resolves, in order:

1. an implemented name: imported from ``ml_utilities`` on first use and cached;
2. a mirrored submodule: imported;
3. any other public name: taken from the real librosa module at the same path (imported only
   then), so ``librosa.feature.chroma_stft`` still works. Forwarded functions raise
   ``ml_utilities.exceptions.ParameterError`` where librosa raises its own, so that
   ``except librosa.ParameterError`` catches errors from both halves of the namespace.

Without librosa, step 3 raises an ``AttributeError`` naming the attribute.
"""

from __future__ import annotations

import functools
import importlib
import sys
import types
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ...exceptions import ParameterError

__all__ = ["mirror"]

_PREFIX = "ml_utilities.compat."

# librosa function -> the wrapper that translates its ParameterError (one wrapper per function,
# so repeated lookups give the same object).
_wrappers: dict[Any, Any] = {}


def _import_librosa(module_name: str, real_path: str, name: str) -> types.ModuleType:
    """Import librosa's module ``real_path``, or explain why ``name`` cannot be resolved."""
    try:
        importlib.import_module("librosa")
        return importlib.import_module(real_path)
    except ImportError as exc:
        if exc.name == "librosa":
            raise AttributeError(
                f"module {module_name!r} has no attribute {name!r}: ml_utilities does not "
                f"implement {real_path}.{name} and librosa is not installed to forward it to "
                "(pip install librosa)"
            ) from None
        raise AttributeError(
            f"module {module_name!r} has no attribute {name!r}: ml_utilities does not "
            f"implement {real_path}.{name} and librosa failed to import ({exc})"
        ) from exc


def _translating(function: types.FunctionType) -> Callable[..., Any]:
    """``function`` with librosa's ParameterError re-raised as ml_utilities'."""
    cached = _wrappers.get(function)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    librosa_error = importlib.import_module("librosa.util.exceptions").ParameterError

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except librosa_error as exc:
            raise ParameterError(*exc.args) from exc

    _wrappers[function] = wrapper
    return wrapper


def _forward(module_name: str, real_path: str, name: str) -> Any:
    real = _import_librosa(module_name, real_path, name)
    try:
        value = getattr(real, name)
    except AttributeError:
        raise AttributeError(
            f"module {module_name!r} has no attribute {name!r} (neither ml_utilities nor "
            f"{real_path} has it)"
        ) from None
    if isinstance(value, types.FunctionType):
        return _translating(value)
    return value


def mirror(
    module_name: str,
    implemented: Mapping[str, str],
    submodules: Iterable[str] = (),
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Build the ``__getattr__`` and ``__dir__`` of one mirrored module.

    Parameters
    ----------
    module_name : str
        The mirrored module's ``__name__`` (``ml_utilities.compat.librosa...``).
    implemented : mapping of str to str
        Each name ml_utilities implements at this path, and where: ``"package.module"`` (the
        same name there) or ``"package.module:attribute"``.
    submodules : iterable of str
        Submodules mirrored as files beside this one.

    Returns
    -------
    (__getattr__, __dir__)
        To assign at the mirrored module's top level.
    """
    real_path = module_name[len(_PREFIX) :]
    local_submodules = frozenset(submodules)
    public = sorted(set(implemented) | local_submodules)

    def __getattr__(name: str) -> Any:
        target = implemented.get(name)
        if target is not None:
            source, _, attribute = target.partition(":")
            value = getattr(importlib.import_module(source), attribute or name)
            sys.modules[module_name].__dict__[name] = value
            return value
        if name in local_submodules:
            return importlib.import_module(f"{module_name}.{name}")
        if name.startswith("_"):
            # Private and dunder probes (pickle, doctest, pytest) must not import librosa.
            raise AttributeError(f"module {module_name!r} has no attribute {name!r}")
        return _forward(module_name, real_path, name)

    def __dir__() -> list[str]:
        return public

    return __getattr__, __dir__
