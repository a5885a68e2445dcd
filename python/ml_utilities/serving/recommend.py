"""Served recommenders: ``recommend(user_id, k)`` from the registry's champion, a per-user
answer cache, history updates without retraining, and the recommendation metrics.

:func:`deploy_recommendation_system` registers a trained
:class:`~ml_utilities.recommend.RecommendationModel` (framework ``recommender``, see
:mod:`ml_utilities.recommend.store`) as its name's ``champion``; :class:`RecommenderService`
serves it, in a :class:`~ml_utilities.serving.PredictionService` (``service.recommenders``, the
``/v1/recommenders/...`` routes of ``ml-utilities serve``) or on its own.

Answers
    ``{"user_id", "items": [{"item", "score", "generator"}, ...], "metadata": {...}}``: the
    ranker's ``k`` best unseen items, best first, each with its score and the candidate
    generator that proposed it; for a known user with no update since the generators were
    built, exactly the offline model's ``recommend(user_id, k)``. A user never seen gets the
    most popular items (``generator: "popularity"``).
Cache
    Answers are kept per (user, k) for ``cache_ttl_s`` and dropped when that user's history
    changes or the generators are rebuilt.
History updates (``update_user``)
    The new interactions go to the registry's interaction log (one transaction: every worker
    and a restarted server read the same log). At once, in every worker within ``poll_s``, the
    user's cached answers are dropped and the items just played are never recommended to them.
    Within ``refresh_s`` (plus the build: about 9 s for Last.fm's 1,892 users and 17,632 artists
    on 2 cores) the generators are rebuilt from every interaction, on a background thread, and
    swapped in: the answers are then exactly those of the same ranker over the updated history
    (:meth:`RecommendationModel.with_interactions`). The ranker is not retrained.
Monitoring
    ``ml_recommendation_*`` metrics (:mod:`ml_utilities._metrics`): requests, latency, catalogue
    coverage and popularity bias of the recent answers, live ndcg@k from reported outcomes
    (:meth:`RecommenderService.record_outcome`: the items the user then played), interactions
    pending a rebuild.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import os
import threading
import time
from collections import OrderedDict, deque
from typing import Any

import numpy as np

from ..exceptions import ParameterError
from ..models.errors import ModelNotFoundError
from .metrics import metrics
from .request import UNKNOWN_MODEL

__all__ = ["RecommenderService", "deploy_recommendation_system"]

logger = logging.getLogger(__name__)

#: answers whose items make the coverage and popularity gauges, per model
WINDOW_ANSWERS = 2000
#: answered requests kept for their outcomes (the oldest forgotten first)
OUTCOME_REQUESTS = 100_000
MAX_K = 1000
#: users ranked per call when the cache is warmed
WARM_BATCH = 256
#: seconds between two computations of the coverage and popularity gauges by the thread
GAUGE_S = 10.0

_ids = itertools.count(1)
_PREFIX = f"r{os.getpid():x}-{int(time.time()) & 0xFFFFFF:x}-"


def _refreeze_gc() -> None:
    """The service's own (one collection, everything frozen again), imported when used: a
    RecommenderService on its own does not load the prediction service's module before."""
    from .service import _refreeze_gc as refreeze

    refreeze()


def _plain(value: Any, what: str) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ParameterError(f"{what}={value!r}: expected an int or a str")
    return value


def _check_k(k: Any) -> int:
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise ParameterError(f"k={k!r}: expected an integer in [1, {MAX_K}]")
    return k


class _Served:
    """One served name: the version, its model (generators built), the log position."""

    def __init__(self, name: str, version: int, model: Any, log_id: int) -> None:
        self.name = name
        self.version = version
        self.model = model
        #: the last interaction-log id the model's generators include
        self.built_id = log_id
        #: the last log id seen (rows above built_id are pending)
        self.seen_id = log_id
        self.pending: list[tuple[int, Any, Any, float]] = []
        #: user -> {item: log id}: played after the build, excluded from the user's answers
        self.recent: dict[Any, dict[Any, int]] = {}
        self.built_at = time.time()
        self.last_build = time.monotonic()
        #: every known user's answer for warm_k is in the cache (since the last load/rebuild)
        self.warm_done = False
        self.gauges: dict[str, float | None] = {}
        self.gauges_at = 0.0
        self.window: deque[list[Any]] = deque(maxlen=WINDOW_ANSWERS)
        self.outcomes: deque[float] = deque(maxlen=WINDOW_ANSWERS)
        self._percentile: dict[Any, float] | None = None

    def percentile(self) -> dict[Any, float]:
        """Each item's popularity percentile (0 least, 1 most listened; ties share)."""
        if self._percentile is None:
            pop = np.asarray(self.model.generators.popularity, dtype=np.float64)
            order = pop.argsort(kind="stable")
            ranks = np.empty(len(pop))
            ranks[order] = np.arange(len(pop))
            # ties share their mean rank
            _, inv, counts = np.unique(pop, return_inverse=True, return_counts=True)
            sums = np.bincount(inv, weights=ranks)
            ranks = sums[inv] / counts[inv]
            scale = max(len(pop) - 1, 1)
            self._percentile = {
                (v.item() if isinstance(v, np.generic) else v): float(r / scale)
                for v, r in zip(self.model.item_ids, ranks, strict=True)
            }
        return self._percentile


class RecommenderService:
    """Serve registered recommenders (see the module docstring).

    Parameters
    ----------
    registry : ModelRegistry
    cache_ttl_s : float
        Seconds an answer stays cached (0: no cache).
    refresh_s : float
        At least this long between two rebuilds of a model's generators from its updated
        history (a rebuild starts at the first poll after it where interactions are pending).
    poll_s : float
        How often the background thread reads the interaction log (other workers' updates)
        and the champion alias (a new version is loaded, then swapped in).
    freeze_gc : bool
        After warming the cache, collect and freeze every object (``gc.freeze``), so that the
        collector's full passes do not walk the cached answers (what ``ml-utilities serve``
        does for the models it loads).
    warm_k : int or None
        After each load or rebuild, the background thread computes every known user's answer
        for this ``k`` (ranked in batches of :data:`WARM_BATCH` users) into the cache, so that
        requests find them there (None: answers are computed at their first request only).
    """

    def __init__(
        self,
        registry: Any,
        *,
        cache_ttl_s: float = 3600.0,
        refresh_s: float = 10.0,
        poll_s: float = 1.0,
        warm_k: int | None = 10,
        freeze_gc: bool = False,
    ) -> None:
        for key, value, low in (
            ("cache_ttl_s", cache_ttl_s, 0.0),
            ("refresh_s", refresh_s, 0.0),
            ("poll_s", poll_s, 0.01),
        ):
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not (math.isfinite(value) and value >= low)
            ):
                raise ParameterError(f"{key}={value!r}: expected a finite number >= {low}")
        if warm_k is not None:
            _check_k(warm_k)
        self.registry = registry
        self.warm_k = warm_k
        self.freeze_gc = bool(freeze_gc)
        self.cache_ttl_s = float(cache_ttl_s)
        self.refresh_s = float(refresh_s)
        self.poll_s = float(poll_s)
        self._served: dict[str, _Served] = {}
        self._loading: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()
        self._cache: OrderedDict[tuple[str, Any, int], tuple[float, int, dict[str, Any]]] = (
            OrderedDict()
        )
        self._cache_max = 100_000
        self._answers: OrderedDict[str, tuple[str, list[Any], int]] = OrderedDict()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- models ----------------------------------------------------------------------------------
    def _version_of(self, name: str) -> int:
        try:
            return int(self.registry.get_version(name, "champion").version)
        except ModelNotFoundError:
            return int(self.registry.get_version(name, None).version)

    def _load(self, name: str, version: int) -> _Served:
        mv = self.registry.get_version(name, version)
        if mv.framework != "recommender":
            raise ParameterError(
                f"model {name!r} v{version} is a {mv.framework} model, not a recommender: "
                "predict with /v1/models/{name}:predict"
            )
        handle = self.registry.load(name, version)
        model = handle.adapter.model
        start = int((mv.metadata or {}).get("interactions_log_id", 0))
        rows = self.registry.interactions_since(name, start)
        if rows:  # updates logged after the version was registered
            model = model.with_interactions([(u, i, w) for _, u, i, w in rows])
            start = rows[-1][0]
        t0 = time.perf_counter()
        model.generators  # noqa: B018 - build them now, not at the first request
        logger.info(
            "recommender %s v%d served (%d users, %d items, %d logged updates; generators "
            "built in %.1f s)",
            name,
            version,
            len(model.user_ids),
            len(model.item_ids),
            len(rows),
            time.perf_counter() - t0,
        )
        return _Served(name, version, model, start)

    def serve(self, name: str, *, wait_warm: bool = False) -> dict[str, Any]:
        """Load ``name``'s champion (else its latest version) now, generators included, rather
        than at its first request; with ``wait_warm``, also fill the cache with every known
        user's answer (``warm_k``) before returning. Returns :meth:`status`."""
        served = self._get(name)
        if wait_warm and self._warm(served) and self.freeze_gc:
            _refreeze_gc()
        return self.status(name)

    def _warm(self, served: _Served) -> int:
        """Cache every known user's answer for ``warm_k`` (while ``served`` keeps its model);
        returns the answers cached."""
        k = self.warm_k
        if k is None or self.cache_ttl_s <= 0 or served.warm_done:
            return 0
        model = served.model
        users = [u.item() if isinstance(u, np.generic) else u for u in model.user_ids]
        done = 0
        t0 = time.perf_counter()
        for start in range(0, len(users), WARM_BATCH):
            if self._stop.is_set():
                break
            batch = users[start : start + WARM_BATCH]
            with self._lock:
                recent = {u: list(served.recent.get(u, {})) for u in batch}
            answers = model.recommend_scored_many(batch, k, recent)
            now = time.monotonic()
            with self._lock:
                if served.model is not model or self._served.get(served.name) is not served:
                    return done  # swapped meanwhile: the next tick warms the new one
                for user, items in zip(batch, answers, strict=True):
                    if list(served.recent.get(user, {})) != recent[user]:
                        continue  # updated meanwhile: computed at its next request
                    self._store(served, user, k, items, now)
                    done += 1
        served.warm_done = True
        logger.info(
            "recommender %s: %d answers cached in %.1f s",
            served.name,
            done,
            time.perf_counter() - t0,
        )
        return done

    def _get(self, name: str) -> _Served:
        served = self._served.get(name)
        if served is not None:
            return served
        with self._lock:
            lock = self._loading.setdefault(name, threading.Lock())
        with lock:
            served = self._served.get(name)
            if served is None:
                served = self._load(name, self._version_of(name))
                self._served[name] = served
                self._ensure_thread()
        return served

    # -- answers ---------------------------------------------------------------------------------
    def recommend_sync(
        self, name: str, user_id: Any, k: int = 10, *, request_id: Any = None
    ) -> dict[str, Any]:
        """The ``k`` best items for ``user_id`` from the served ``name`` (module docstring).

        Raises
        ------
        ModelNotFoundError
            No model ``name`` in the registry.
        ParameterError
            A bad ``user_id`` or ``k``, or ``name`` is not a recommender.
        """
        t0 = time.perf_counter()
        label = UNKNOWN_MODEL
        try:
            user = _plain(user_id, "user_id")
            k = _check_k(k)
            served = self._get(name)
            label = name
            answer, hit = self._answer(served, user, k)
        except Exception as err:
            outcome = (
                "not_found"
                if isinstance(err, ModelNotFoundError)
                else "bad_input"
                if isinstance(err, ParameterError)
                else "error"
            )
            metrics.rec_requests.labels(label, outcome).inc()
            raise
        rid = str(request_id) if request_id is not None else f"{_PREFIX}{next(_ids)}"
        items = [entry["item"] for entry in answer["items"]]
        self._answers[rid] = (name, items, k)
        while len(self._answers) > OUTCOME_REQUESTS:
            self._answers.popitem(last=False)
        served.window.append(items)
        elapsed = time.perf_counter() - t0
        metrics.rec_requests.labels(name, "ok").inc()
        metrics.rec_latency.labels(name, "hit" if hit else "miss").observe(elapsed)
        return {
            "user_id": user,
            "items": [dict(entry) for entry in answer["items"]],
            "metadata": {
                **answer["metadata"],
                "request_id": rid,
                "cache_hit": hit,
                "inference_time_ms": round(elapsed * 1000.0, 3),
            },
        }

    async def recommend(
        self, name: str, user_id: Any, k: int = 10, *, request_id: Any = None
    ) -> dict[str, Any]:
        """Coroutine of :meth:`recommend_sync`: a cached answer is returned at once, on the
        event loop; the ranking of a miss (and a first load) runs on a worker thread."""
        if self.cache_ttl_s > 0 and name in self._served:
            try:
                user, k = _plain(user_id, "user_id"), _check_k(k)
            except ParameterError:
                pass  # recommend_sync counts and raises it
            else:
                hit = self._cache.get((name, user, k))
                if hit is not None and hit[0] > time.monotonic():
                    return self.recommend_sync(name, user, k, request_id=request_id)
        return await asyncio.to_thread(self.recommend_sync, name, user_id, k, request_id=request_id)

    def _answer(self, served: _Served, user: Any, k: int) -> tuple[dict[str, Any], bool]:
        key = (served.name, user, k)
        now = time.monotonic()
        if self.cache_ttl_s > 0:
            hit = self._cache.get(key)
            if hit is not None and hit[0] > now and hit[1] == served.version:
                return hit[2], True
        model = served.model
        recent = served.recent.get(user, {})
        items = model.recommend_scored(user, k, exclude=list(recent))
        return self._store(served, user, k, items, now, model), False

    def _store(
        self,
        served: _Served,
        user: Any,
        k: int,
        items: list[dict[str, Any]],
        now: float,
        model: Any = None,
    ) -> dict[str, Any]:
        model = served.model if model is None else model
        answer = {
            "items": items,
            "metadata": {
                "model_name": served.name,
                "registry_version": served.version,
                "k": k,
                "known_user": model.user_index(user) is not None,
                "generators_built_at": served.built_at,
                "excluded_recent": len(served.recent.get(user, {})),
            },
        }
        if self.cache_ttl_s > 0 and served.model is model:
            self._cache[(served.name, user, k)] = (now + self.cache_ttl_s, served.version, answer)
            if len(self._cache) > self._cache_max:
                self._cache.popitem(last=False)
        return answer

    def _forget_user(self, name: str, user: Any) -> None:
        for key in [key for key in list(self._cache) if key[0] == name and key[1] == user]:
            self._cache.pop(key, None)

    def _forget_name(self, name: str) -> None:
        for key in [key for key in list(self._cache) if key[0] == name]:
            self._cache.pop(key, None)

    # -- history updates -------------------------------------------------------------------------
    def update_user_sync(self, name: str, user_id: Any, interactions: Any) -> dict[str, Any]:
        """Report ``interactions`` of ``user_id`` (item ids, ``(item, weight)`` pairs or
        ``{"item", "weight"}`` objects; weight 1 where absent): logged in the registry, the
        items excluded from the user's answers at once, the generators rebuilt within
        ``refresh_s`` (module docstring). Returns ``{"user_id", "logged", "log_id"}``."""
        user = _plain(user_id, "user_id")
        self._get(name)  # a recommender of that name is served (or raises)
        if isinstance(interactions, (str, bytes, dict)) or not hasattr(interactions, "__iter__"):
            raise ParameterError(
                f"interactions={interactions!r}: expected a list of items, (item, weight) "
                "pairs or {'item', 'weight'} objects"
            )
        rows = []
        for entry in interactions:
            if isinstance(entry, dict):
                if "item" not in entry or set(entry) - {"item", "weight"}:
                    raise ParameterError(
                        f"interaction {entry!r}: expected the keys 'item' and 'weight'"
                    )
                item, weight = entry["item"], entry.get("weight", 1.0)
            elif isinstance(entry, (list, tuple)):
                if len(entry) != 2:
                    raise ParameterError(f"interaction {entry!r}: expected (item, weight)")
                item, weight = entry
            else:
                item, weight = entry, 1.0
            item = _plain(item, "item")
            if isinstance(weight, bool) or not isinstance(weight, (int, float)):
                raise ParameterError(f"weight={weight!r} of item {item!r}: expected a number")
            if not (math.isfinite(weight) and weight > 0):
                raise ParameterError(f"weight={weight!r} of item {item!r}: expected > 0")
            rows.append((user, item, float(weight)))
        if not rows:
            raise ParameterError("interactions is empty")
        last = self.registry.append_interactions(name, rows)
        self._poll(name)  # this worker sees its own update at once
        return {"user_id": user, "logged": len(rows), "log_id": last}

    async def update_user(self, name: str, user_id: Any, interactions: Any) -> dict[str, Any]:
        """Coroutine of :meth:`update_user_sync`."""
        return await asyncio.to_thread(self.update_user_sync, name, user_id, interactions)

    def _poll(self, name: str) -> None:
        """Read the log rows after the last seen: exclude their items, drop the users' cached
        answers, queue them for the next rebuild."""
        served = self._served.get(name)
        if served is None:
            return
        with self._lock:
            rows = self.registry.interactions_since(name, served.seen_id)
            if not rows:
                return
            for log_id, user, item, weight in rows:
                served.pending.append((log_id, user, item, weight))
                served.recent.setdefault(user, {})[item] = log_id
                self._forget_user(name, user)
            served.seen_id = rows[-1][0]
        metrics.rec_pending.labels(name).set(len(served.pending))

    def _rebuild(self, served: _Served) -> None:
        """Build the generators over the pending rows too (off the request path), then swap."""
        with self._lock:
            rows = list(served.pending)
            model = served.model
        if not rows:
            return
        t0 = time.perf_counter()
        new = model.with_interactions([(u, i, w) for _, u, i, w in rows])
        new.generators  # noqa: B018 - the expensive part, before the swap
        top = rows[-1][0]
        with self._lock:
            served.model = new
            served.built_id = top
            served.pending = [r for r in served.pending if r[0] > top]
            for user in list(served.recent):
                left = {i: lid for i, lid in served.recent[user].items() if lid > top}
                if left:
                    served.recent[user] = left
                else:
                    del served.recent[user]
            served.built_at = time.time()
            served.last_build = time.monotonic()
            served._percentile = None
            served.warm_done = False
            self._forget_name(served.name)
        metrics.rec_pending.labels(served.name).set(len(served.pending))
        logger.info(
            "recommender %s: generators rebuilt with %d new interactions in %.1f s",
            served.name,
            len(rows),
            time.perf_counter() - t0,
        )

    def refresh_sync(self, name: str) -> dict[str, Any]:
        """Read the log and rebuild ``name``'s generators now if interactions are pending
        (tests, and operators who do not want to wait for ``refresh_s``); returns
        :meth:`status`."""
        served = self._get(name)
        self._poll(name)
        self._rebuild(served)
        return self.status(name)

    # -- outcomes and metrics --------------------------------------------------------------------
    def record_outcome_sync(self, request_id: Any, items: Any) -> dict[str, Any]:
        """The items the user played after answer ``request_id``: scores its ndcg@k for the
        ``ml_recommendation_live_ndcg`` gauge. Raises ``ParameterError`` for an unknown id."""
        entry = self._answers.get(str(request_id))
        if entry is None:
            raise ParameterError(f"request_id={request_id!r} is not an answer of this worker")
        if isinstance(items, (str, bytes)) or not hasattr(items, "__iter__"):
            raise ParameterError(f"items={items!r}: expected a list of item ids")
        name, answered, k = entry
        played = {_plain(v, "item") for v in items}
        dcg = sum(1.0 / math.log2(r + 2) for r, item in enumerate(answered) if item in played)
        ideal = sum(1.0 / math.log2(r + 2) for r in range(min(k, len(played))))
        ndcg = dcg / ideal if ideal > 0 else 0.0
        served = self._served.get(name)
        if served is not None:
            served.outcomes.append(ndcg)
            metrics.rec_ndcg.labels(name).set(float(np.mean(served.outcomes)))
        return {"request_id": str(request_id), f"ndcg@{k}": ndcg}

    async def record_outcome(self, request_id: Any, items: Any) -> dict[str, Any]:
        return self.record_outcome_sync(request_id, items)

    def _gauges(self, served: _Served, *, every_s: float = 0.0) -> dict[str, float | None]:
        """Coverage, popularity bias and live ndcg of the recent answers (also set as gauges);
        the background thread recomputes them at most every ``GAUGE_S``."""
        now = time.monotonic()
        if every_s and now - served.gauges_at < every_s:
            return served.gauges
        served.gauges_at = now
        served.gauges = self._compute_gauges(served)
        return served.gauges

    def _compute_gauges(self, served: _Served) -> dict[str, float | None]:
        answers = list(served.window)
        if not answers:
            return {"coverage": None, "popularity_bias": None, "live_ndcg": None}
        seen = {item for items in answers for item in items}
        n_items = max(len(served.model.item_ids), 1)
        pct = served.percentile()
        values = [pct.get(item, 0.0) for items in answers for item in items]
        out = {
            "coverage": len(seen) / n_items,
            "popularity_bias": float(np.mean(values)) if values else None,
            "live_ndcg": float(np.mean(served.outcomes)) if served.outcomes else None,
        }
        metrics.rec_coverage.labels(served.name).set(out["coverage"])
        if out["popularity_bias"] is not None:
            metrics.rec_popularity.labels(served.name).set(out["popularity_bias"])
        return out

    def status(self, name: str) -> dict[str, Any]:
        """The served ``name``: version, catalogue, pending updates, the monitoring figures."""
        served = self._get(name)
        model = served.model
        return {
            "model_name": name,
            "registry_version": served.version,
            "users": len(model.user_ids),
            "items": len(model.item_ids),
            "generators_built_at": served.built_at,
            "pending_interactions": len(served.pending),
            "log_id": served.seen_id,
            "answers_in_window": len(served.window),
            "outcomes_in_window": len(served.outcomes),
            **self._gauges(served),
        }

    # -- the background thread -------------------------------------------------------------------
    def _ensure_thread(self) -> None:
        if self._thread is None and not self._stop.is_set():
            self._thread = threading.Thread(target=self._run, name="mlu-recommenders", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.poll_s):
            for name, served in list(self._served.items()):
                try:
                    self._tick(name, served)
                except Exception:  # noqa: BLE001 - logged; the next tick tries again
                    logger.exception("recommender %s: background refresh failed", name)

    def _tick(self, name: str, served: _Served) -> None:
        self._poll(name)
        if served.pending and time.monotonic() - served.last_build >= self.refresh_s:
            self._rebuild(served)
        version = self._version_of(name)
        if version != served.version:  # a new champion: load it, then swap
            fresh = self._load(name, version)
            with self._lock:
                self._served[name] = fresh
                self._forget_name(name)
            logger.info("recommender %s: v%d replaces v%d", name, version, served.version)
        current = self._served[name]
        if self._warm(current) and self.freeze_gc:
            _refreeze_gc()  # the cached answers join the frozen objects (no gen-2 pass walks them)
        self._gauges(current, every_s=GAUGE_S)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self._served.clear()
        self._cache.clear()


def deploy_recommendation_system_sync(
    model: Any,
    *,
    name: str = "recommender",
    registry: Any = None,
    service: Any = None,
    metadata: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Register ``model`` (a trained :class:`RecommendationModel`) as ``name``'s new
    ``champion`` and serve it: in ``service`` (a :class:`PredictionService`, whose
    ``recommenders`` answer ``/v1/recommenders/{name}:recommend``) where given, else in a new
    :class:`RecommenderService` over ``registry`` (default: the registry at
    ``$ML_UTILITIES_HOME``).

    Returns ``{"name", "version", "service", "status"}``: ``service`` is the
    :class:`RecommenderService` that serves it (its generators are built: the first request
    is not the one that pays for them), ``status`` its :meth:`~RecommenderService.status`.
    """
    from ..models import ModelRegistry
    from ..recommend.store import to_handle

    if service is not None:
        registry = service.registry
        recommenders = service.recommenders
    else:
        registry = registry if registry is not None else ModelRegistry()
        recommenders = RecommenderService(registry)
    handle = to_handle(model, name)
    meta = dict(metadata or {})
    # where in the interaction log this version starts: a model trained now is taken to hold
    # every interaction logged so far (it was retrained on the whole history); the rows logged
    # after it are applied when it is served. metadata={"interactions_log_id": 0} applies the
    # whole log instead
    meta.setdefault("interactions_log_id", registry.last_interaction_id(name))
    mv = registry.register(handle, name=name, metadata=meta, aliases=["champion"])
    status = recommenders.serve(name)
    return {"name": name, "version": mv.version, "service": recommenders, "status": status}


async def deploy_recommendation_system(
    model: Any,
    *,
    name: str = "recommender",
    registry: Any = None,
    service: Any = None,
    metadata: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Coroutine of :func:`deploy_recommendation_system_sync` (the specification's
    ``await deploy_recommendation_system(recommendation_model)``)."""
    return await asyncio.to_thread(
        deploy_recommendation_system_sync,
        model,
        name=name,
        registry=registry,
        service=service,
        metadata=metadata,
    )
