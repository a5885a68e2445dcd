"""The request path's steps that do not depend on the service's state: the model name and
version of a request, its options, the checks that turn its features into a float32 batch (each
refusal naming the bad value and where it is), the fast path's request shape, the one-row answer,
and the outcome label a failed request is counted under."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np

from ..exceptions import ParameterError
from .config import OPTION_KEYS
from .errors import FeatureValueError, ModelInputError, Overloaded, RequestTimeoutError
from .loaded import LoadedModel
from .metrics import metrics

__all__ = [
    "FLOAT32_MAX",
    "NO_OPTIONS",
    "TIMING_KEYS",
    "UNKNOWN_MODEL",
    "check_numbers",
    "fast_row",
    "one_row",
    "outcome",
    "outcome_name",
    "parse_options",
    "single",
    "split_name",
    "validate",
]

FLOAT32_MAX = float(np.finfo(np.float32).max)
#: the options of a request without any (``parse_options(None)``), as the fast path's cache
#: key has
NO_OPTIONS = dict.fromkeys(OPTION_KEYS, False)
#: the metadata keys a cached result gets on its way out (``PredictionService._finish``)
TIMING_KEYS = ("inference_time_ms", "batch_size", "cache_hit", "dynamic_batching")
#: the ``model`` label of the requests for a model this service has never loaded (an unknown
#: name, or a registered one that failed to load): one label for all of them, so that names
#: sent by clients cannot grow the metrics without bound
UNKNOWN_MODEL = "_unknown"


def validate(model: LoadedModel, features: Any) -> np.ndarray:
    """``(rows, n_features)`` float32, C-contiguous, finite."""
    check_numbers(features, model.feature_names)
    try:
        x = np.asarray(features, dtype=np.float32)
    except (TypeError, ValueError, OverflowError) as err:  # Overflow: a 400-digit int
        raise ModelInputError(
            f"features for {model.name} v{model.version} are not a numeric array ({err})"
        ) from None
    shape = tuple(model.handle.adapter.input_shape)
    if x.ndim == len(shape) and x.shape == shape:
        x = x[None]
    if x.ndim == 2 and x.shape[1] == model.n_features:
        pass
    elif x.ndim == len(shape) + 1 and x.shape[1:] == shape:
        x = x.reshape(len(x), -1)
    else:
        got = x.shape[-1] if x.ndim >= 1 else 0
        raise ModelInputError(
            f"{model.name} v{model.version} expects {model.n_features} features per row "
            f"(sample shape {list(shape)}), got an array of shape {list(x.shape)}"
            + (f" ({got} features per row)" if x.ndim == 2 else "")
        )
    if len(x) == 0:
        raise ModelInputError("features hold no rows")
    finite = np.isfinite(x)
    if not finite.all():
        bad = np.argwhere(~finite)
        r, c = (int(v) for v in bad[0])
        raise ModelInputError(
            f"features hold {len(bad)} non-finite value(s) (NaN or inf); the first is row "
            f"{r}, feature {c} ({model.feature_names[c]}) = {x[r, c]}"
        )
    return np.ascontiguousarray(x)


def parse_options(options: Any) -> dict[str, bool]:
    if options is None:
        return dict.fromkeys(OPTION_KEYS, False)
    if not isinstance(options, dict):
        raise ParameterError(f"options={options!r}: expected a dict")
    unknown = sorted(set(options) - set(OPTION_KEYS))
    if unknown:
        raise ParameterError(f"unknown option(s) {unknown}; accepted: {list(OPTION_KEYS)}")
    out = {}
    for k in OPTION_KEYS:
        v = options.get(k, False)
        if not isinstance(v, (bool, np.bool_)):
            raise ParameterError(f"options[{k!r}]={v!r}: expected True or False")
        out[k] = bool(v)
    return out


def fast_row(doc: Any) -> list[Any] | None:
    """The features (a list holding one row, a list) of ``doc`` where it is the fast path's
    request (:meth:`PredictionService.predict_json`): a dict with one row in ``features`` or
    ``instances``, options all False or none, no other field; else None."""
    if type(doc) is not dict:
        return None
    size = 1
    if "options" in doc:
        size = 2
        options = doc["options"]
        if options is not None:
            if type(options) is not dict:
                return None
            for key, value in options.items():
                if value is not False or key not in OPTION_KEYS:
                    return None
    features = doc.get("features")
    if features is None:
        features = doc.get("instances")
    if len(doc) != size or type(features) is not list or len(features) != 1:
        return None
    if type(features[0]) is not list:
        return None
    return features


def split_name(model_name: Any, version: int | str | None) -> tuple[str, int | str | None]:
    if not isinstance(model_name, str) or not model_name:
        raise ParameterError(f"model_name={model_name!r}: expected a registered model name")
    for sep in ("@", ":"):
        if sep in model_name:
            name, _, v = model_name.partition(sep)
            if version is not None:
                raise ParameterError(
                    f"model_name={model_name!r} names a version and version={version!r} too"
                )
            return name, (int(v) if v.isdigit() else v)
    return model_name, version


def one_row(features: Any) -> Any:
    """``features`` as a batch of one row (converted and checked by ``_validate``)."""
    return features[None] if isinstance(features, np.ndarray) else [features]


#: the types of the values a JSON row may hold
_NUMBER_TYPES = frozenset((float, int))


def check_numbers(features: Any, names: list[str] | None) -> None:
    """Refuse features holding a value that is not a number (a string such as ``"1.5"``, a
    boolean, None, an object), which ``np.asarray(..., float32)`` would convert or fail on
    without saying where: :class:`FeatureValueError` naming the value and its position
    (row and feature, with its name from ``names``, or the index path).

    Lists and tuples (decoded JSON) are walked without recursion (a request can nest them
    deeply), a whole row of ints and floats checked at once; arrays are checked by dtype."""
    if isinstance(features, np.ndarray):
        kind = features.dtype.kind
        if kind in "iuf":
            return
        if kind == "O":
            features = features.tolist()
        elif features.size:
            _refuse((0,) * features.ndim, features.reshape(-1)[0].item(), names)
            return
        else:
            return
    if type(features) is not list and type(features) is not tuple:
        if not _is_number(features):
            _refuse((), features, names)
        return
    # (depth, position, seq): a position is (parent position, index), the path built only for
    # the message (a tuple per level would cost the square of the depth)
    stack: list[tuple[int, Any, Any]] = [(0, None, features)]
    while stack:
        depth, where, seq = stack.pop()
        if set(map(type, seq)) <= _NUMBER_TYPES:
            continue
        if depth >= _MAX_DEPTH:
            raise ModelInputError(
                f"features nest lists more than {_MAX_DEPTH} levels deep: not a numeric array"
            )
        nested = []
        for i, v in enumerate(seq):
            t = type(v)
            if t is float or t is int:
                continue
            if t is list or t is tuple:
                nested.append((depth + 1, (where, i), v))
            elif isinstance(v, np.ndarray):
                if v.dtype.kind not in "iuf":
                    nested.append((depth + 1, (where, i), v.tolist()))
            elif not _is_number(v):
                _refuse(_path((where, i)), v, names)
        stack.extend(reversed(nested))  # the first bad value in reading order


#: list levels a request's features may nest (numpy's arrays have at most 64 dimensions)
_MAX_DEPTH = 64


def _path(where: Any) -> tuple[int, ...]:
    out = []
    while where is not None:
        where, i = where
        out.append(i)
    return tuple(reversed(out))


def _is_number(value: Any) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return False
    return isinstance(value, (int, float, np.integer, np.floating))


def _refuse(path: tuple[int, ...], value: Any, names: list[str] | None) -> None:
    if len(path) == 2:
        r, c = path
        name = f" ({names[c]})" if names is not None and 0 <= c < len(names) else ""
        where = f"row {r}, feature {c}{name}"
    elif len(path) == 1:
        where = f"value {path[0]}"
    else:
        where = "features" + "".join(f"[{i}]" for i in path)
    if isinstance(value, (bool, np.bool_)):
        kind = "a boolean"
    else:
        kind = _KINDS.get(type(value)) or f"a {type(value).__name__}"
    raise FeatureValueError(
        f"features are not a numeric array: {where} = {value!r} is {kind}, not a number "
        "(numbers only: no strings, booleans or nulls)"
    )


_KINDS = {str: "a string", bytes: "bytes", type(None): "null", dict: "an object"}


def single(result: dict[str, Any]) -> dict[str, Any]:
    ci = result["confidence_intervals"]
    ex = result["explanations"]
    out = {
        "prediction": result["predictions"][0],
        "confidence_interval": None if ci is None else ci[0],
        "explanation": None if ex is None else ex[0],
        "feature_importance": result["feature_importance"],
        "metadata": result["metadata"],
    }
    if "probabilities" in result:
        out["probabilities"] = result["probabilities"][0]
    return out


def outcome_name(err: BaseException) -> str:
    from ..models.errors import ModelNotFoundError

    if isinstance(err, ModelNotFoundError):
        return "not_found"
    if isinstance(err, Overloaded):
        return "overloaded"
    if isinstance(err, RequestTimeoutError):
        return "timeout"
    if isinstance(err, ParameterError):
        return "bad_input"
    return "error"


class outcome:  # noqa: N801 - used as a context manager
    """Counts a failed request under its outcome in ``ml_serving_requests_total``."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __enter__(self) -> None:
        return None

    def __exit__(self, et: Any, err: BaseException | None, tb: Any) -> None:
        if err is not None and not isinstance(err, asyncio.CancelledError):
            metrics.requests.labels(self.name, outcome_name(err)).inc()
