"""Exceptions of the prediction service and its batcher.

The compiled batcher raises these (its C++ errors are translated here), so this module imports
nothing beyond the package's base exceptions.
"""

from __future__ import annotations

from ..exceptions import MLUtilitiesError, ParameterError

__all__ = [
    "BatchError",
    "BatcherClosedError",
    "FeatureValueError",
    "ModelInputError",
    "Overloaded",
    "RequestTimeoutError",
    "ServingError",
]


class ServingError(MLUtilitiesError, RuntimeError):
    """Base class of the prediction service's runtime errors."""


class Overloaded(ServingError):
    """The batcher's queue is full: the request was refused at once (HTTP 503); retry later."""


class RequestTimeoutError(ServingError, TimeoutError):
    """The request did not complete before its deadline (HTTP 504)."""


class BatcherClosedError(ServingError):
    """The batcher was shut down before the request ran, or before it was submitted."""


class BatchError(ServingError):
    """The model's output for a batch cannot be scattered back to its requests (wrong row
    count or shape), or the request was cancelled by its caller."""


class ModelInputError(ParameterError):
    """Features that do not fit the model: wrong feature count, NaN or inf, bad shape (HTTP 422)."""


class FeatureValueError(ModelInputError):
    """A value in the features that is not a number: a string (``"1.5"`` included), a boolean,
    null, an object (HTTP 400, where other :class:`ModelInputError` are 422). The message names
    the value and its position; a :class:`ModelInputError`, so callers that catch that one
    still catch it."""
