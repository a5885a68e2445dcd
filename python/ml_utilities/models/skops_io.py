"""The one loader of skops files: an exact allow-list of types, never a prefix.

skops rebuilds an object from a JSON description of its nodes. Some nodes *call* the type they
name with arguments from the file (``ConstructorFromReduceNode``, ``ReduceNode``), so trusting a
name means trusting what that name does when called: trusting "anything under ``builtins.``" lets
a file call ``builtins.exec("...")``, and "anything under ``numpy.``" lets it call
``numpy.testing._private.utils.runstring``. Only exact names are trusted here, each a class whose
constructor only builds an object: skops' own defaults (scikit-learn's estimators, NumPy and SciPy
ufuncs, containers and primitives), plus :data:`SKLEARN_TYPES`, the scikit-learn internals that the
models this library saves hold. A caller adds the exact names of its own classes with
``trusted=``; anything else is refused before a single node is built, unless the caller passes
``allow_pickle=True`` (the same consent that loading a pickle needs).
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .adapters.base import require
from .errors import ArtifactIntegrityError

__all__ = ["SKLEARN_TYPES", "UntrustedArtifactError", "dump_skops", "load_skops"]

#: scikit-learn internals that skops does not trust by default and that fitted estimators of
#: this library hold (trees, histogram-boosting predictors, MLP optimisers, neighbour trees and
#: their metrics, calibration, iterative imputation, the column selector and CV splitters of the
#: pipeline's preprocessing). Every name is a class (``tests/models/test_untrusted_files.py``).
SKLEARN_TYPES: frozenset[str] = frozenset(
    {
        "numpy.dtype",
        "sklearn.calibration._CalibratedClassifier",
        "sklearn.calibration._SigmoidCalibration",
        "sklearn.compose._column_transformer.make_column_selector",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
        "sklearn.impute._iterative.IterativeImputer",
        "sklearn.impute._iterative._ImputerTriplet",
        "sklearn.metrics._dist_metrics.ChebyshevDistance64",
        "sklearn.metrics._dist_metrics.EuclideanDistance64",
        "sklearn.metrics._dist_metrics.ManhattanDistance64",
        "sklearn.metrics._dist_metrics.MinkowskiDistance64",
        "sklearn.model_selection._split.KFold",
        "sklearn.model_selection._split.StratifiedKFold",
        "sklearn.neighbors._ball_tree.BallTree",
        "sklearn.neighbors._kd_tree.KDTree",
        "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
        "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
        "sklearn.tree._tree.Tree",
    }
)


class UntrustedArtifactError(ArtifactIntegrityError):
    """A model file asks to rebuild types outside the allow-list (``types`` lists them)."""

    def __init__(self, message: str, types: list[str]) -> None:
        super().__init__(message)
        self.types = types


def _skops_io() -> Any:
    return require("skops.io", package="skops", purpose="scikit-learn model files")


def dump_skops(obj: Any, path: str | Path) -> None:
    """Write ``obj`` with skops (no pickle); :func:`load_skops` reads it back."""
    _skops_io().dump(obj, Path(path))


def load_skops(path: str | Path, *, trusted: Iterable[str] = (), allow_pickle: bool = False) -> Any:
    """Load a skops file, rebuilding only types on the allow-list.

    Parameters
    ----------
    path : str or Path
        The ``.skops`` file.
    trusted : iterable of str
        Exact type names (``"module.Class"``) the caller adds to :data:`SKLEARN_TYPES` and skops'
        defaults, e.g. its own transformer classes. No prefixes, no wildcards.
    allow_pickle : bool
        Trust every type the file names (it can then run code, as a pickle can): only for files
        from a source the caller trusts.

    Returns
    -------
    object
        What :func:`dump_skops` wrote.

    Raises
    ------
    UntrustedArtifactError
        The file names a type outside the allow-list (the message lists them); nothing in the
        file was built.
    ArtifactIntegrityError
        The file is not a readable skops file.
    """
    sio = _skops_io()
    path = Path(path)
    extra = [trusted] if isinstance(trusted, str) else list(trusted)
    if not all(isinstance(t, str) and t for t in extra):
        raise ArtifactIntegrityError(f"trusted must be type names as strings, got {extra!r}")
    try:
        untrusted = sio.get_untrusted_types(file=path)
    except (zipfile.BadZipFile, KeyError, ValueError, TypeError) as err:
        raise ArtifactIntegrityError(f"{path} is not a readable skops file: {err}") from err
    allowed = SKLEARN_TYPES.union(extra)
    foreign = sorted(t for t in untrusted if t not in allowed)
    if foreign and not allow_pickle:
        raise UntrustedArtifactError(
            f"{path} asks to rebuild types outside the allow-list: {foreign}; loading it could "
            "run code from the file. Pass allow_pickle=True only if you trust where it comes "
            "from",
            foreign,
        )
    # skops audits the whole tree again against exactly these names before building anything
    return sio.load(path, trusted=list(untrusted))
