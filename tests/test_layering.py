"""The layering rule of docs/architecture.md: a lower layer never imports a higher one, and no two
units import each other, counting the imports inside functions too."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

import ml_utilities

ROOT = Path(ml_utilities.__file__).resolve().parent

#: bottom up; a unit is a top-level module or package of ml_utilities, or a module named apart
LAYERS: list[tuple[str, ...]] = [
    (
        "__init__",
        "exceptions",
        "_native",
        "_fs",
        "_jsonable",
        "_validators",
        "config",
        "_core",
        "_cuda",
        "_metrics",
    ),
    # drift statistics (numpy, SciPy, scikit-learn only): the pipeline's checks, serving's live
    # monitor and the lifecycle share them
    ("gpu", "monitoring"),
    ("audio", "compat"),
    ("features",),
    ("models",),
    # the recommender: AutoMLHelper delegates its recommendation task to it, and its 'automl'
    # ranker reaches the search only through the helper it is handed; similarity (the siamese
    # encoder, the index, the aligner) needs audio and the models' adapters only
    ("recommend", "similarity"),
    ("automl",),
    ("pipeline",),
    ("serving",),
    # the model lifecycle: validation, performance tests, rollouts, monitoring, retraining over
    # the registry, the service, the pipeline and AutoML
    ("lifecycle",),
    # tools on top: the command line and the benchmarks (the GPU benchmark lives in gpu/ beside
    # the device code it times, but it is a tool that runs the audio functions)
    ("cli", "__main__", "bench", "gpu.bench"),
]
LAYER = {unit: i for i, units in enumerate(LAYERS) for unit in units}

#: imports against the rule that issue 18 (one feature-plan interface) removes: gpu/ still holds
#: the second, GPU-only feature API that calls back into audio/. Nothing may be added here.
KNOWN_VIOLATIONS = {
    ("gpu._spec", "audio"),
    ("gpu.features", "audio"),
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1] or ["__init__"]
    return ".".join(parts)


def _unit(module: str) -> str:
    """The layering unit of a module path relative to ml_utilities ("" is the root package)."""
    if not module:
        return "__init__"
    parts = module.split(".")
    return ".".join(parts[:2]) if ".".join(parts[:2]) in LAYER else parts[0]


def _imports(path: Path, module: str) -> list[tuple[str, int]]:
    """(imported module relative to ml_utilities, line) for every import of the package."""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    if module == "__init__":
        package = []
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                target = base + (node.module.split(".") if node.module else [])
            elif node.module and node.module.split(".")[0] == "ml_utilities":
                target = node.module.split(".")[1:]
            else:
                continue
            if node.module is None:  # from . import x: x is a module of that package
                out += [(".".join([*target, alias.name]), node.lineno) for alias in node.names]
            else:
                out.append((".".join(target), node.lineno))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "ml_utilities":
                    out.append((".".join(alias.name.split(".")[1:]), node.lineno))
    return out


def _edges() -> dict[tuple[str, str], list[str]]:
    edges: dict[tuple[str, str], list[str]] = defaultdict(list)
    for path in sorted(ROOT.rglob("*.py")):
        module = _module_name(path)
        src = _unit(module)
        for target, line in _imports(path, module):
            dst = _unit(target)
            if dst != src:
                edges[(src, dst)].append(f"{path.relative_to(ROOT.parent)}:{line} ({module})")
    return edges


def test_every_unit_has_a_layer():
    units = {_unit(_module_name(p)) for p in ROOT.rglob("*.py")}
    assert units <= set(LAYER), f"give these a layer in LAYERS: {sorted(units - set(LAYER))}"


def test_no_import_goes_up_a_layer():
    upward = []
    for (src, dst), where in sorted(_edges().items()):
        if LAYER[dst] <= LAYER[src]:
            continue
        for place in where:
            module = place.rsplit("(", 1)[1].rstrip(")")
            if (module, dst) not in KNOWN_VIOLATIONS:
                upward.append(f"{place} imports {dst} (layer {LAYER[dst]} > {LAYER[src]})")
    assert not upward, "imports against the layering rule:\n" + "\n".join(upward)


def test_known_violations_are_still_real():
    """The list only shrinks: an entry that no longer happens must be removed."""
    seen = set()
    for (_, dst), where in _edges().items():
        seen |= {(place.rsplit("(", 1)[1].rstrip(")"), dst) for place in where}
    assert KNOWN_VIOLATIONS <= seen, f"remove from KNOWN_VIOLATIONS: {KNOWN_VIOLATIONS - seen}"


def test_no_import_cycle_between_units():
    graph: dict[str, set[str]] = defaultdict(set)
    for (src, dst), where in _edges().items():
        modules = {place.rsplit("(", 1)[1].rstrip(")") for place in where}
        if all((m, dst) in KNOWN_VIOLATIONS for m in modules):
            continue
        graph[src].add(dst)
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(unit: str) -> None:
        state[unit] = 1
        stack.append(unit)
        for nxt in sorted(graph[unit]):
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt) :] + [nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[unit] = 2

    for unit in sorted(graph):
        if unit not in state:
            visit(unit)
