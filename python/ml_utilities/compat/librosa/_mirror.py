"""What every mirrored module shares: ml_utilities' names first, then librosa's.

Each module of ``ml_utilities.compat.librosa`` calls :func:`mirror` with the names ml_utilities
implements at that path. Its module-level ``__getattr__`` then resolves, in order:

1. an implemented name: imported from ``ml_utilities`` on first use and cached;
2. a mirrored submodule: imported;
3. any other public name: taken from the real librosa module at the same path (imported only
   then), so ``librosa.feature.chroma_stft`` still works. Forwarded functions, and the
   functions of forwarded modules (``librosa.sequence``, ``librosa.feature.inverse``, ...),
   re-raise what librosa raises for a bad value as ``ml_utilities.exceptions.ParameterError``
   (message kept, the original chained as ``__cause__``), so that ``except
   librosa.ParameterError`` catches errors from both halves of the namespace:

   - librosa's ``ParameterError`` becomes :class:`ForwardedParameterError`, a subclass of
     both ours and librosa's, so code written against the real librosa (``except
     librosa.util.exceptions.ParameterError``) still catches it;
   - any other ``ValueError`` (numpy's, scipy's) becomes our ``ParameterError``, still a
     ``ValueError``.

Without librosa, step 3 raises an ``AttributeError`` naming the attribute.
"""

from __future__ import annotations

import functools
import importlib
import inspect
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


def _forwarded_error_class() -> type[ParameterError]:
    """:class:`ForwardedParameterError`, made on first use (it needs librosa's class)."""
    cls = globals().get("ForwardedParameterError")
    if cls is None:
        librosa_error = importlib.import_module("librosa.util.exceptions").ParameterError
        cls = type(
            "ForwardedParameterError",
            (ParameterError, librosa_error),
            {
                "__module__": __name__,
                "__doc__": "librosa's ParameterError from a forwarded call: an "
                "ml_utilities ParameterError (a ValueError) and a librosa ParameterError.",
            },
        )
        globals()["ForwardedParameterError"] = cls
    return cls  # type: ignore[no-any-return]


def __getattr__(name: str) -> Any:
    # ForwardedParameterError by name (unpickling in a process that has not made it yet).
    if name == "ForwardedParameterError":
        return _forwarded_error_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _translating(function: types.FunctionType) -> Callable[..., Any]:
    """``function`` with librosa's ParameterError, and other ValueErrors, re-raised as
    ml_utilities' ParameterError."""
    cached = _wrappers.get(function)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    forwarded_error = _forwarded_error_class()
    librosa_error = importlib.import_module("librosa.util.exceptions").ParameterError

    signature = inspect.signature(function)

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except ParameterError:
            raise
        except librosa_error as exc:
            raise forwarded_error(_with_call(exc, function, args, kwargs)) from exc
        except (ValueError, ArithmeticError, IndexError) as exc:
            raise ParameterError(_with_call(exc, function, args, kwargs)) from exc
        except TypeError as exc:
            try:
                signature.bind(*args, **kwargs)
            except TypeError:
                raise exc from None  # a call that does not fit the signature stays a TypeError
            raise ParameterError(_with_call(exc, function, args, kwargs)) from exc

    _wrappers[function] = wrapper
    return wrapper


def _with_call(
    exc: BaseException, function: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> str:
    """librosa's message, then the call's arguments (arrays by shape and dtype), so that the
    message names the values even where librosa's own does not."""

    def show(value: Any) -> str:
        shape = getattr(value, "shape", None)
        if shape is not None and getattr(value, "dtype", None) is not None:
            return f"array(shape={tuple(shape)}, dtype={value.dtype})"
        text = repr(value)
        return text if len(text) <= 80 else text[:77] + "..."

    shown = [show(a) for a in args] + [f"{k}={show(v)}" for k, v in kwargs.items()]
    name = f"{function.__module__}.{function.__qualname__}"
    message = str(exc) or type(exc).__name__
    return f"{message} (in {name}({', '.join(shown)}))"


class _ForwardedModule(types.ModuleType):
    """A librosa module reached through the mirror: its functions are translated too."""

    def __init__(self, real: types.ModuleType) -> None:
        super().__init__(real.__name__, real.__doc__)
        self.__dict__["_real"] = real

    def __getattr__(self, name: str) -> Any:
        return _wrap(getattr(self.__dict__["_real"], name))

    def __dir__(self) -> list[str]:
        return dir(self.__dict__["_real"])

    def __repr__(self) -> str:
        return f"<module {self.__name__!r} forwarded by ml_utilities.compat (errors translated)>"


def _wrap(value: Any) -> Any:
    """A forwarded attribute: functions and librosa modules translate their errors."""
    if isinstance(value, types.FunctionType):
        return _translating(value)
    if isinstance(value, types.ModuleType) and value.__name__.split(".")[0] == "librosa":
        cached = _wrappers.get(value)
        if cached is None:
            cached = _wrappers[value] = _ForwardedModule(value)
        return cached
    return value


def _forward(module_name: str, real_path: str, name: str) -> Any:
    real = _import_librosa(module_name, real_path, name)
    try:
        value = getattr(real, name)
    except AttributeError:
        raise AttributeError(
            f"module {module_name!r} has no attribute {name!r} (neither ml_utilities nor "
            f"{real_path} has it)"
        ) from None
    return _wrap(value)


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
