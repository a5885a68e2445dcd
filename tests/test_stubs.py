"""The type stubs of the compiled core (``python/ml_utilities/_core/``, generated with
``python3 -m pybind11_stubgen ml_utilities._core -o python`` then ``ruff format``/``ruff check
--fix``) name exactly what the built module holds: a function or class added, renamed or removed
in ``cpp/bindings/`` without regenerating them fails here."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path
from types import ModuleType

import ml_utilities
from ml_utilities import _core

STUBS = Path(ml_utilities.__file__).resolve().parent / "_core"


def _built(module: ModuleType, prefix: str = "") -> dict[str, set[str]]:
    """{submodule path: public function and class names} of the compiled module, recursively."""
    names: set[str] = set()
    out = {prefix: names}
    for name, value in vars(module).items():
        if name.startswith("_"):
            continue
        if isinstance(value, ModuleType):
            if value.__name__.startswith(_core.__name__):
                out |= _built(value, f"{prefix}.{name}" if prefix else name)
        elif callable(value) or inspect.isclass(value):
            names.add(name)
    return out


def _stubbed() -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for path in STUBS.rglob("*.pyi"):
        parts = list(path.relative_to(STUBS).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        tree = ast.parse(path.read_text())
        out[".".join(parts)] = {
            node.name
            for node in tree.body
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.name.startswith("_")
        }
    return out


def test_stubs_name_what_the_core_holds() -> None:
    built, stubbed = _built(_core), _stubbed()
    assert sorted(built) == sorted(stubbed)
    for module, names in built.items():
        assert names == stubbed[module], module


def test_stubs_ship_beside_the_module_without_hiding_it() -> None:
    # a folder of .pyi files beside _core's shared library: the import still finds the library
    assert (STUBS / "__init__.pyi").is_file() and not (STUBS / "__init__.py").exists()
    assert Path(_core.__file__).suffix in (".so", ".pyd")
