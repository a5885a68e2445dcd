"""The AutoMLHelper's models (``framework='automl'``): bags of fold models combined as a single
model, a voting ensemble or a stack, defined in :mod:`ml_utilities.automl.model`."""

from __future__ import annotations

from ml_utilities.automl.model import AutoMLAdapter

__all__ = ["AutoMLAdapter"]
