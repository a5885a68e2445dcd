"""The HTTP routes of the prediction service, written once for every transport.

``ml-utilities serve``'s HTTP/1.1 front end (:mod:`ml_utilities.serving.frontend`), the ASGI
app of :func:`~ml_utilities.serving.app.create_app` (for uvicorn or any ASGI server) and the
Ray Serve replicas (:mod:`ml_utilities.serving.ray_serve`) all answer through :func:`handle`.
An answer is an :data:`Answer`: ``(status, payload bytes, extra headers or None, content
type)``; the transport writes it (with ``content-length``).

Routes
------
``POST /v1/models/{name}:predict``
    Body ``{"features": [[...], ...], "options": {...}, "version": 3 | "champion"}``
    (``"instances"`` is accepted for ``"features"``); answers ``predict_batch``'s dictionary.
    A model of named inputs (multimodal) takes ``"inputs": {"audio_features": [[...]],
    "text": ["..."]}`` instead of ``"features"``.
    ``name`` may carry a version: ``genre:3`` is not possible in this path, use ``genre@3`` or
    ``genre@champion``. Another method is answered 405 (``Allow: POST``).
    ``"request_key"`` (a user id) is what a running rollout's split assigns by;
    ``"request_id"`` comes back in the answer's metadata (a fresh one under a rollout).
``POST /v1/models/{name}:outcome``
    Body ``{"request_id": ..., "label": ...}``: the true label of an answered request, scored
    for the rollout's judge (:meth:`PredictionService.record_outcome`); 400 for an unknown id.
``GET /v1/rollouts/{name}``
    The model's latest rollout (steps, weight, status, events) with this process's stats of
    its current step; 404 where it never had one.
``POST /v1/recommenders/{name}:recommend``
    Body ``{"user_id": ..., "k": 10}``: the served recommender's answer
    (:mod:`ml_utilities.serving.recommend`): items with their scores and generators.
``POST /v1/recommenders/{name}:update_user``
    Body ``{"user_id": ..., "interactions": [item | [item, weight] | {"item", "weight"}]}``:
    logged, excluded from the user's answers at once, in the generators at the next rebuild.
``POST /v1/recommenders/{name}:outcome``
    Body ``{"request_id": ..., "items": [...]}``: the items played after an answer (live ndcg).
``GET /v1/recommenders/{name}``
    The served version, catalogue, pending updates, coverage, popularity bias, live ndcg.
``GET /health``
    Liveness: 200 while the process serves.
``GET /ready``
    Readiness: 200 once the registry answers (and Redis, when configured), else 503 with
    ``{"status": "not ready", "detail": <reason>}``.
``GET /metrics``
    Prometheus text format (:mod:`ml_utilities.serving.metrics`).
``GET /v1/models``
    Models held in memory, with their backend, device and batcher counters.

The ``GET`` routes also answer ``HEAD`` (the transport leaves the body out); another method is
answered 405 (``Allow: GET, HEAD``). Any other path is 404 ``{"detail": "Not Found"}``.

Errors of the predict route are JSON ``{"error": <class>, "detail": <reason>}``: 404 unknown
model, version or alias; 422 wrong feature count, NaN or inf, bad shape; 400 a body that is not
JSON (or nests too deeply to be read), a value in the rows that is not a number (``"1.5"``,
``true``, ``null``: ``FeatureValueError``, naming the value and its row and feature) and other
bad parameters; 503 overloaded (with ``Retry-After``); 504 timeout; 500
``ArtifactIntegrityError``, a model whose stored files fail their sha256 check (the server's
copy is damaged or was tampered with: the client can do nothing about it, and the model is not
loaded) and other errors of the service. An exception that is not an error of the service (a
bug) is logged and answered with a plain-text 500 ``Internal Server Error``.

The predict route is the hot path: its body is read with ``orjson`` when it is installed; the
common request (one row, no options) takes the service's fast path, whose answers are encoded
once per batch: the front end through :func:`start_predict` (``submit_json``: no task, future or
coroutine per request), the ASGI app and Ray Serve through :meth:`PredictionService.predict_json`
(the same path, awaited).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from ..exceptions import ParameterError
from ._json import dumps as _dumps
from ._json import loads as _loads
from .errors import (
    FeatureValueError,
    ModelInputError,
    Overloaded,
    RequestTimeoutError,
    ServingError,
)
from .metrics import render

__all__ = [
    "INTERNAL_ERROR",
    "JSON",
    "Answer",
    "error_response",
    "handle",
    "internal_error",
    "predict",
    "predict_name",
    "predict_response",
    "start_predict",
    "status_of",
]

logger = logging.getLogger(__name__)

#: ``(status, payload, extra headers or None, content type)``
Answer = tuple[int, bytes, list[tuple[bytes, bytes]] | None, bytes]

JSON = b"application/json"
METRICS_TYPE = b"text/plain; version=0.0.4; charset=utf-8"
#: the answer to a request whose handling raised something other than a service error
INTERNAL_ERROR: Answer = (500, b"Internal Server Error", None, b"text/plain; charset=utf-8")
NOT_FOUND: Answer = (404, _dumps({"detail": "Not Found"}), None, JSON)
_NOT_ALLOWED = _dumps({"detail": "Method Not Allowed"})
_POST_ONLY: Answer = (405, _NOT_ALLOWED, [(b"allow", b"POST")], JSON)
_GET_ONLY: Answer = (405, _NOT_ALLOWED, [(b"allow", b"GET, HEAD")], JSON)

_PREFIX = "/v1/models/"
_SUFFIX = ":predict"
_FIELDS = frozenset(
    ("features", "instances", "inputs", "options", "version", "request_key", "request_id")
)
_OUTCOME = ":outcome"
_ROLLOUTS = "/v1/rollouts/"
_RECOMMENDERS = "/v1/recommenders/"
#: the POST verbs of a recommender (``/v1/recommenders/{name}:{verb}``) and their body's keys
_REC_VERBS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    # verb: (required keys, allowed keys)
    "recommend": (frozenset({"user_id"}), frozenset({"user_id", "k", "request_id"})),
    "update_user": (frozenset({"user_id", "interactions"}), frozenset({"user_id", "interactions"})),
    "outcome": (frozenset({"request_id", "items"}), frozenset({"request_id", "items"})),
}
#: exception class -> HTTP status of its JSON answer (the most derived class registered wins)
_STATUS: dict[type[BaseException], int] = {
    FeatureValueError: 400,
    ModelInputError: 422,
    ParameterError: 400,
    Overloaded: 503,
    RequestTimeoutError: 504,
    ServingError: 500,
}


def handle(
    service: Any, method: str, path: str, body: bytes
) -> Answer | Coroutine[Any, Any, Answer]:
    """The answer to a request for ``service`` (a :class:`PredictionService`): ``method``
    (``"GET"``), ``path`` percent-decoded and without its query string, ``body`` the whole
    request body.

    Returns the :data:`Answer` where the route answers at once (``/health``, ``/metrics``,
    ``/v1/models``, 404, 405), else a coroutine to await for it (the predict route, and
    ``/ready``, which asks the registry from a worker thread). Neither raises: an exception
    that is not a service error is logged and answered :data:`INTERNAL_ERROR`."""
    route = _GET_ROUTES.get(path)
    if route is not None:
        if method != "GET" and method != "HEAD":
            return _GET_ONLY
        try:
            return route(service)
        except Exception as err:  # noqa: BLE001 - a 500, logged
            logger.error("the route %s raised", path, exc_info=err)
            return INTERNAL_ERROR
    name = predict_name(path)
    if name is None:
        if path.startswith(_ROLLOUTS) and "/" not in path[len(_ROLLOUTS) :]:
            if method != "GET" and method != "HEAD":
                return _GET_ONLY
            return _rollout(service, path[len(_ROLLOUTS) :])
        if path.startswith(_RECOMMENDERS):
            return _recommender_route(service, method, path[len(_RECOMMENDERS) :], body)
        if path.startswith(_PREFIX) and path.endswith(_OUTCOME):
            target = path[len(_PREFIX) : -len(_OUTCOME)]
            if target and "/" not in target:
                if method != "POST":
                    return _POST_ONLY
                return _outcome(service, body)
        return NOT_FOUND
    if method != "POST":
        return _POST_ONLY
    return predict(service, name, body)


async def _rollout(service: Any, name: str) -> Answer:
    try:
        status = await asyncio.to_thread(service.rollout_status_sync, name)
    except Exception as err:  # noqa: BLE001 - mapped to its status, or a 500
        answer = error_response(err, name)
        if answer is None:
            return internal_error(name, err)
        return (*answer, JSON)
    if status is None:
        return 404, _dumps({"detail": f"model {name!r} has no rollout"}), None, JSON
    return 200, _dumps(status), None, JSON


async def _outcome(service: Any, body: bytes) -> Answer:
    try:
        doc = _decode(body)
        if not isinstance(doc, dict) or set(doc) != {"request_id", "label"}:
            raise ParameterError(
                "an outcome is a JSON object with exactly 'request_id' and 'label'"
            )
        scored = await service.record_outcome(doc["request_id"], doc["label"])
    except Exception as err:  # noqa: BLE001 - mapped to its status, or a 500
        answer = error_response(err)
        if answer is None:
            return internal_error("outcome", err)
        return (*answer, JSON)
    return 200, _dumps(scored), None, JSON


def _recommender_route(
    service: Any, method: str, rest: str, body: bytes
) -> Answer | Coroutine[Any, Any, Answer]:
    """``GET /v1/recommenders/{name}`` (status) and ``POST /v1/recommenders/{name}:{verb}``."""
    name, _, verb = rest.partition(":")
    if not name or "/" in name:
        return NOT_FOUND
    if not verb:
        if method != "GET" and method != "HEAD":
            return _GET_ONLY
        return _recommender_call(service, name, "status", {})
    if verb not in _REC_VERBS:
        return NOT_FOUND
    if method != "POST":
        return _POST_ONLY
    try:
        doc = _decode(body)
        required, allowed = _REC_VERBS[verb]
        if not isinstance(doc, dict) or not required <= set(doc) or set(doc) - allowed:
            raise ParameterError(
                f"a {verb} request is a JSON object with the keys {sorted(required)}"
                + (f" (and optionally {sorted(allowed - required)})" if allowed - required else "")
            )
    except Exception as err:  # noqa: BLE001 - mapped to its status, or a 500
        answer = error_response(err, name)
        if answer is None:
            return internal_error(name, err)
        return (*answer, JSON)
    return _recommender_call(service, name, verb, doc)


async def _recommender_call(service: Any, name: str, verb: str, doc: dict[str, Any]) -> Answer:
    try:
        rec = service.recommenders
        if verb == "status":
            out = await asyncio.to_thread(rec.status, name)
        elif verb == "recommend":
            out = await rec.recommend(
                name, doc["user_id"], doc.get("k", 10), request_id=doc.get("request_id")
            )
        elif verb == "update_user":
            out = await rec.update_user(name, doc["user_id"], doc["interactions"])
        else:
            out = await rec.record_outcome(doc["request_id"], doc["items"])
    except Exception as err:  # noqa: BLE001 - mapped to its status, or a 500
        answer = error_response(err, name)
        if answer is None:
            return internal_error(name, err)
        return (*answer, JSON)
    return 200, _dumps(out), None, JSON


def predict_name(path: str) -> str | None:
    """The model name of a predict route's path (``/v1/models/{name}:predict``), else None."""
    if path.startswith(_PREFIX) and path.endswith(_SUFFIX):
        name = path[len(_PREFIX) : -len(_SUFFIX)]
        if name and "/" not in name:
            return name
    return None


def _health(service: Any) -> Answer:
    return 200, b'{"status":"ok"}', None, JSON


def _metrics(service: Any) -> Answer:
    return 200, render(), None, METRICS_TYPE


def _models(service: Any) -> Answer:
    return 200, _dumps({"models": service.loaded_models()}), None, JSON


async def _ready(service: Any) -> Answer:
    try:
        await asyncio.to_thread(_check_ready, service)
    except Exception as err:  # noqa: BLE001 - readiness reports any failure
        return 503, _dumps({"status": "not ready", "detail": str(err)}), None, JSON
    return 200, b'{"status":"ready"}', None, JSON


def _check_ready(service: Any) -> None:
    service.registry.list_models()
    cache = service._results
    if cache is not None and getattr(cache, "kind", "") == "redis":
        cache.ping()


_GET_ROUTES: dict[str, Callable[[Any], Any]] = {
    "/health": _health,
    "/ready": _ready,
    "/metrics": _metrics,
    "/v1/models": _models,
}


async def predict(service: Any, name: str, body: bytes) -> Answer:
    """The :data:`Answer` of a predict request: :func:`predict_response`'s, or
    :data:`INTERNAL_ERROR` (logged) where it raises."""
    try:
        status, payload, headers = await predict_response(service, name, body)
    except Exception as err:  # noqa: BLE001 - a 500, logged
        return internal_error(name, err)
    return status, payload, headers, JSON


def internal_error(name: str, err: BaseException) -> Answer:
    """Log ``err``, raised answering a predict request for ``name`` and not an error of the
    service; :data:`INTERNAL_ERROR`."""
    logger.error("the predict route of %r raised", name, exc_info=err)
    return INTERNAL_ERROR


async def predict_response(
    service: Any, name: str, body: bytes
) -> tuple[int, bytes, list[tuple[bytes, bytes]] | None]:
    """``(status, JSON payload, extra headers)`` answering a predict request's ``body`` for
    model ``name``. Errors of the service become their status with ``{"error", "detail"}``;
    any other exception propagates (:func:`predict` answers it 500)."""
    try:
        doc = _decode(body)
        payload = await service.predict_json(name, doc)
        if payload is None:
            payload = _dumps(await service.predict_batch(**_arguments(name, doc)))
    except Exception as err:  # noqa: BLE001 - mapped to its status, or re-raised
        answer = error_response(err, name)
        if answer is None:
            raise
        return answer
    return 200, payload, None


def error_response(
    err: BaseException, model_name: str | None = None
) -> tuple[int, bytes, list[tuple[bytes, bytes]] | None] | None:
    """``(status, JSON payload, extra headers)`` of a service error (``{"error", "detail"}``,
    with ``Retry-After`` on a 503), or None for an exception that is not one (a 500 from the
    server). A 500 is logged; the detail of an ``ArtifactIntegrityError`` (a model whose
    stored files fail their sha256 check, for ``model_name``) names the model and the problem
    but not the server's paths, which only the log has."""
    status = status_of(err)
    if status is None:
        return None
    detail = str(err)
    if status == 500:
        from ..models.errors import ArtifactIntegrityError

        logger.error("a predict request failed: %s: %s", type(err).__name__, err)
        if isinstance(err, ArtifactIntegrityError):
            model = "the model" if model_name is None else f"model {model_name!r}"
            detail = (
                f"{model} cannot be loaded: its stored files fail their integrity check "
                "(sha256); the server log names the file"
            )
    headers = [(b"retry-after", b"1")] if status == 503 else None
    return status, _dumps({"error": type(err).__name__, "detail": detail}), headers


def start_predict(
    service: Any, name: str, body: bytes, callback: Callable[[bytes | None, Any], None]
) -> bool:
    """Begin answering a predict request without a coroutine, where the service's fast path
    (``submit_json``) takes it: True, and then ``callback(payload, None)`` with the
    answer of :func:`predict_response` for a 200, ``callback(None, err)`` with the exception
    whose answer :func:`error_response` gives (or that :func:`predict_response` would
    raise), or ``callback(None, None)``: answer it with :func:`predict_response` after all.
    False where :func:`predict_response` must answer it (a body that is not strict JSON
    included). An error at submission is raised here."""
    submit = getattr(service, "submit_json", None)
    if submit is None:
        return False
    try:
        doc = _loads(body)
    except (ValueError, RecursionError):  # predict_response says why
        return False
    return bool(submit(name, doc, callback))


_status_by_class: dict[type[BaseException], int] = {}


def status_of(err: BaseException) -> int | None:
    """The HTTP status of a service error (the most derived class registered wins), or None."""
    if not _status_by_class:
        from ..models.errors import ArtifactIntegrityError, ModelNotFoundError

        _status_by_class.update({ModelNotFoundError: 404, ArtifactIntegrityError: 500, **_STATUS})
    for cls in type(err).__mro__:
        status = _status_by_class.get(cls)
        if status is not None:
            return status
    return None


def _decode(body: bytes) -> Any:
    """The request body as JSON."""
    try:
        return _loads(body)
    except (ValueError, RecursionError):
        # orjson is strict JSON; the standard library also reads NaN and Infinity, which then
        # fail validation with the row and feature named (422) rather than as "not JSON"
        try:
            return json.loads(body)
        except ValueError as err:
            raise ParameterError(f"the request body is not JSON ({err})") from None
        except RecursionError:  # the standard library's parser recurses per nesting level
            raise ParameterError(
                "the request body nests arrays or objects too deeply to be read"
            ) from None


def _arguments(name: str, doc: Any) -> dict[str, Any]:
    """``predict_batch``'s keyword arguments from the decoded request body."""
    if not isinstance(doc, dict):
        raise ParameterError("the request body must be a JSON object with 'features'")
    if not _FIELDS.issuperset(doc):
        unknown = sorted(set(doc) - _FIELDS)
        raise ParameterError(
            f"unknown field(s) {unknown}; accepted: features (or inputs), options, version, "
            "request_key, request_id"
        )
    features = doc.get("features", doc.get("instances"))
    if "inputs" in doc:
        # the named inputs of a multimodal model: predict_batch takes them as a dict
        if features is not None:
            raise ParameterError("give either 'features' or 'inputs', not both")
        features = doc["inputs"]
        if not isinstance(features, dict):
            raise ModelInputError(
                "'inputs' must be an object of named inputs, e.g. "
                '{"audio_features": [[...]], "text": ["..."]}'
            )
    if features is None:
        raise ModelInputError("the request has no 'features' (a list of rows) or 'inputs'")
    return {
        "model_name": name,
        "features": features,
        "options": doc.get("options"),
        "version": doc.get("version"),
        "request_key": doc.get("request_key"),
        "request_id": doc.get("request_id"),
    }
