"""Gradual rollouts inside the prediction service: the traffic split, its judge, its switches.

A rollout (:class:`~ml_utilities.models.registry.Rollout`, a row of the registry's database)
sends a share ``weight`` of the requests for a model to its ``challenger`` version and the rest
to the ``champion`` its alias points to. Which requests: those that name the model without a
version (``"genre"``) or with the rollout's alias (``"genre@champion"``); a request for a
version number (``"genre@3"``) is answered by that version, as always.

Assignment is a stable hash of the request's key (``request_key``: a user id; the request id
where there is none): ``blake2b(name, key) / 2**64 < weight``. So one user sees one version,
every process that serves the model agrees without talking to the others, and a user who is in
the challenger's share at 5% stays in it at 25%.

Each process keeps, per version, the current step's requests, errors, latencies and, where
outcomes arrive (:meth:`RolloutRouter.record_outcome`), the metric; a controller thread judges
the challenger against the champion every ``tick_s`` seconds:

- a **breach** (criteria below) rolls the rollout back at once: every request goes to the
  champion again;
- a step held for its window, with at least ``min_requests`` challenger requests and no
  breach, moves to the next step; past the last, the challenger is promoted (the alias points
  to it) in the same transaction.

Both changes are a compare-and-set on the row's ``revision``, so several processes judging the
same step change it once. The same thread reads the split of every model the process serves
from the registry every ``ttl_s / 2`` seconds (0.25): a restarted server resumes a running
rollout where its row says, and every process follows a switch (a start, a step, a rollback, a
promotion) within ``ttl_s`` (0.5 s); the process that makes the switch follows it at once.
A request whose challenger raises is answered by the champion (and counted as the
challenger's error): no request is lost to a bad challenger.

In a **shadow** rollout the champion answers every request; the challenger predicts the same
rows off the request path, its answers are logged (with the champion's, for the outcomes) and
judged, never returned.

Criteria (the rollout's ``criteria``; defaults in :data:`DEFAULT_CRITERIA`)
--------------------------------------------------------------------------
``min_requests``
    challenger requests in a step before it is judged (20).
``max_error_rate_increase``
    the challenger's error rate may exceed the champion's by this much (0.02, absolute).
``max_p99_ratio``, ``p99_slack_ms``, ``min_latency_samples``
    at the end of a step's window, with at least ``min_latency_samples`` answered requests
    per version in it (100): breach when the challenger's p99 latency over the window >
    ratio * the champion's + slack (1.5, 5 ms).
    A request's latency is its prediction's, from a loaded model (a version's first load is
    not counted: the service loads both versions when it first sees the rollout).
``min_outcomes``, ``max_metric_drop``
    with at least ``min_outcomes`` outcomes per version in the step: breach when the
    challenger's accuracy (classifiers) is below the champion's by more than the drop (0.05), or
    its mean absolute error (regressors) is above the champion's by more than that share.
"""

from __future__ import annotations

import collections
import hashlib
import itertools
import logging
import math
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..exceptions import ParameterError
from .metrics import metrics

__all__ = ["DEFAULT_CRITERIA", "Decision", "RolloutRouter", "assign_share"]

logger = logging.getLogger(__name__)

DEFAULT_CRITERIA: dict[str, float] = {
    "min_requests": 20,
    "max_error_rate_increase": 0.02,
    "min_latency_samples": 100,
    "max_p99_ratio": 1.5,
    "p99_slack_ms": 5.0,
    "min_outcomes": 30,
    "max_metric_drop": 0.05,
}
#: requests remembered for their outcomes (the oldest are forgotten first)
_OUTCOME_LOG = 100_000
#: latencies kept per version and step for the p99
_LATENCIES = 20_000


def assign_share(name: str, key: str) -> float:
    """The request key's place in [0, 1) for model ``name``: below the challenger's weight, the
    challenger answers."""
    digest = hashlib.blake2b(f"{name}\x00{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


@dataclass
class _Stats:
    """One version's requests in one step of one rollout, in this process."""

    requests: int = 0
    errors: int = 0
    latencies: collections.deque[float] = field(
        default_factory=lambda: collections.deque(maxlen=_LATENCIES)
    )
    outcomes: int = 0
    correct: int = 0
    abs_error: float = 0.0

    def p99_ms(self) -> float | None:
        if not self.latencies:
            return None
        return float(np.percentile(np.fromiter(self.latencies, float), 99) * 1000.0)

    def metric(self, task: str) -> float | None:
        if not self.outcomes:
            return None
        if task == "classification":
            return self.correct / self.outcomes
        return self.abs_error / self.outcomes

    def summary(self, task: str) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "errors": self.errors,
            "error_rate": self.errors / self.requests if self.requests else 0.0,
            "p99_ms": self.p99_ms(),
            "outcomes": self.outcomes,
            "metric": self.metric(task),
            "metric_name": "accuracy" if task == "classification" else "mae",
        }


@dataclass(frozen=True)
class Decision:
    """Where one request goes: ``version`` answers it as ``role`` (``"champion"`` or
    ``"challenger"``); ``shadow`` is the challenger's version in a shadow rollout."""

    rollout: Any
    version: int
    role: str
    request_id: str
    shadow: int | None = None


class RolloutRouter:
    """The traffic split of every model of one :class:`PredictionService` process.

    Parameters
    ----------
    registry_fn : callable
        Returns the service's registry (called lazily).
    on_switch : callable, optional
        ``on_switch(name)`` after this process sees a rollout of ``name`` start or end (the
        service forgets its cached alias resolutions there).
    ttl_s : float
        How long a rollout's row is reused before the registry is asked again.
    tick_s : float
        How often the controller thread judges the running rollouts.
    """

    def __init__(
        self,
        registry_fn: Any,
        *,
        on_switch: Any = None,
        ttl_s: float = 0.5,
        tick_s: float = 0.25,
    ) -> None:
        self._registry_fn = registry_fn
        self._on_switch = on_switch
        self.ttl_s = float(ttl_s)
        self.tick_s = float(tick_s)
        self._lock = threading.Lock()
        #: name -> (monotonic time read, Rollout or None)
        self._rows: dict[str, tuple[float, Any]] = {}
        #: (rollout id, step index, version) -> stats
        self._stats: dict[tuple[int, int, int], _Stats] = {}
        self._tasks: dict[str, str] = {}
        #: request id -> (name, rollout id, step index, version, predictions[, version,
        #: predictions]): flat tuples of strings and numbers, which the garbage collector
        #: stops tracking, so a full log costs no collection time
        self._log: collections.OrderedDict[str, tuple[Any, ...]] = collections.OrderedDict()
        #: request ids: this process's random prefix and a counter (no system call each)
        self._id_prefix = uuid.uuid4().hex[:12]
        self._ids = itertools.count(1)
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.decisions: collections.deque[dict[str, Any]] = collections.deque(maxlen=1000)

    # -- the split -------------------------------------------------------------------------------
    def cached(self, name: str) -> tuple[bool, Any]:
        """``(fresh, rollout or None)`` from this process's copy, without the registry."""
        hit = self._rows.get(name)
        if hit is None:
            return False, None
        return time.monotonic() - hit[0] < self.ttl_s, hit[1]

    def refresh(self, name: str) -> Any:
        """The latest rollout of ``name`` read from the registry now (None: never one, or a
        registry without rollouts)."""
        registry = self._registry_fn()
        getter = getattr(registry, "get_rollout", None)
        row = getter(name) if getter is not None else None
        with self._lock:
            old = self._rows.get(name)
            self._rows[name] = (time.monotonic(), row)
        old_row = None if old is None else old[1]
        if _key(old_row) != _key(row):
            self._switched(name, row)
        self._ensure_thread()
        return row

    def current(self, name: str) -> Any:
        """The rollout of ``name``, read from the registry when this process's copy is older
        than ``ttl_s``."""
        fresh, row = self.cached(name)
        return row if fresh else self.refresh(name)

    def decide(
        self,
        name: str,
        version: int | str | None,
        request_key: Any = None,
        request_id: Any = None,
        *,
        row: Any = None,
    ) -> Decision | None:
        """Where a request for ``name`` at ``version`` goes; None where no rollout applies
        (none running, or the request names a version number or another alias)."""
        if row is None:
            row = self.current(name)
        if row is None or not row.running:
            return None
        if version is not None and version != row.alias:
            return None
        rid = (
            f"{self._id_prefix}{next(self._ids):x}"
            if request_id is None
            else _request_id(request_id)
        )
        key = rid if request_key is None else _request_key(request_key)
        if row.mode == "shadow":
            return Decision(row, row.champion, "champion", rid, shadow=row.challenger)
        role = "challenger" if assign_share(name, key) < row.weight else "champion"
        version_ = row.challenger if role == "challenger" else row.champion
        return Decision(row, version_, role, rid)

    # -- what happened ---------------------------------------------------------------------------
    def _stat(self, row: Any, version: int) -> _Stats:
        k = (row.id, row.step_index, version)
        s = self._stats.get(k)
        if s is None:
            with self._lock:
                s = self._stats.setdefault(k, _Stats())
        return s

    def record(
        self, row: Any, version: int, latency_s: float, error: bool, task: str | None = None
    ) -> None:
        """Count one request answered (or failed, ``error``) by ``version`` in ``row``'s step."""
        s = self._stat(row, version)
        with self._lock:
            s.requests += 1
            if error:
                s.errors += 1
            else:
                s.latencies.append(float(latency_s))
            if task is not None:
                self._tasks[row.name] = task

    def log_answer(self, decision: Decision, version: int, predictions: Any) -> None:
        """Remember ``version``'s predictions for ``decision``'s request id (outcomes)."""
        row = decision.rollout
        preds = tuple(predictions)
        with self._lock:
            entry = self._log.get(decision.request_id)
            if entry is None:
                self._log[decision.request_id] = (row.name, row.id, row.step_index, version, preds)
                if len(self._log) > _OUTCOME_LOG:
                    self._log.popitem(last=False)
            else:  # a shadow's answer beside the champion's
                self._log[decision.request_id] = (*entry, version, preds)

    def record_outcome(self, request_id: Any, label: Any) -> dict[str, Any]:
        """The true ``label`` of request ``request_id`` (one value, or one per row): scores
        each version that predicted it. Returns what was scored.

        Raises
        ------
        ParameterError
            Unknown (or forgotten) request id, or labels of another length than the rows.
        """
        rid = _request_id(request_id)
        with self._lock:
            entry = self._log.get(rid)
        if entry is None:
            raise ParameterError(
                f"request_id {request_id!r} is unknown here (not answered under a rollout by "
                f"this process, or older than its last {_OUTCOME_LOG} requests)"
            )
        name, roll_id, step = entry[:3]
        preds = dict(zip(entry[3::2], entry[4::2], strict=True))
        task = self._tasks.get(name, "classification")
        scored: dict[str, Any] = {}
        for version, pred in preds.items():
            p = np.asarray(pred, dtype=object).reshape(-1)
            y = np.asarray(label, dtype=object).reshape(-1)
            if len(y) == 1 and len(p) > 1:
                y = np.repeat(y, len(p))
            if len(y) != len(p):
                raise ParameterError(
                    f"outcome of request {rid!r}: {len(y)} label(s) for {len(p)} row(s)"
                )
            with self._lock:
                s = self._stats.setdefault((roll_id, step, version), _Stats())
                s.outcomes += len(p)
                if task == "classification":
                    hits = int(sum(str(a) == str(b) for a, b in zip(p, y, strict=True)))
                    s.correct += hits
                    scored[str(version)] = hits / len(p)
                else:
                    try:
                        err = float(np.abs(p.astype(float) - y.astype(float)).sum())
                    except (TypeError, ValueError):
                        raise ParameterError(
                            f"outcome of request {rid!r}: label {label!r} is not a number"
                        ) from None
                    s.abs_error += err
                    scored[str(version)] = err / len(p)
        return {"request_id": rid, "scored": scored}

    def step_stats(self, row: Any) -> dict[str, Any]:
        """This process's stats of ``row``'s current step, per role."""
        task = self._tasks.get(row.name, "classification")
        out = {}
        for role, version in (("champion", row.champion), ("challenger", row.challenger)):
            s = self._stats.get((row.id, row.step_index, version), _Stats())
            out[role] = {"version": version, **s.summary(task)}
        return out

    # -- the judge -------------------------------------------------------------------------------
    def breach(self, row: Any, *, window_done: bool = True) -> str | None:
        """Why the challenger fails ``row``'s current step in this process, or None.

        Errors and the metric are judged as they come; the p99 latency only once the step has
        been held for its window (``window_done``), over all of it: a tail quantile of a few
        hundred requests moves with one scheduling hiccup of a busy machine, and a version
        that is really slower stays slower for the whole window."""
        crit = {**DEFAULT_CRITERIA, **(row.criteria or {})}
        task = self._tasks.get(row.name, "classification")
        champ = self._stats.get((row.id, row.step_index, row.champion), _Stats())
        chal = self._stats.get((row.id, row.step_index, row.challenger), _Stats())
        if chal.requests >= crit["min_requests"]:
            ch_rate = chal.errors / chal.requests
            base = champ.errors / champ.requests if champ.requests else 0.0
            if ch_rate > base + crit["max_error_rate_increase"]:
                return (
                    f"error rate {ch_rate:.3f} of v{row.challenger} ({chal.errors}/"
                    f"{chal.requests}) > {base:.3f} of v{row.champion} + "
                    f"{crit['max_error_rate_increase']}"
                )
            ch_p99, base_p99 = (chal.p99_ms(), champ.p99_ms()) if window_done else (None, None)
            if (
                ch_p99 is not None
                and base_p99 is not None
                and len(chal.latencies) >= crit["min_latency_samples"]
                and len(champ.latencies) >= crit["min_latency_samples"]
                and ch_p99 > crit["max_p99_ratio"] * base_p99 + crit["p99_slack_ms"]
            ):
                return (
                    f"p99 latency {ch_p99:.2f} ms of v{row.challenger} > "
                    f"{crit['max_p99_ratio']} x {base_p99:.2f} ms of v{row.champion} + "
                    f"{crit['p99_slack_ms']} ms"
                )
        n = crit["min_outcomes"]
        if chal.outcomes >= n and champ.outcomes >= n:
            a, b = chal.metric(task), champ.metric(task)
            assert a is not None and b is not None
            drop = crit["max_metric_drop"]
            if task == "classification" and a < b - drop:
                return (
                    f"accuracy {a:.3f} of v{row.challenger} on {chal.outcomes} outcomes < "
                    f"{b:.3f} of v{row.champion} - {drop}"
                )
            if task != "classification" and a > b * (1.0 + drop) + 1e-12:
                return (
                    f"mean absolute error {a:.4g} of v{row.challenger} on {chal.outcomes} "
                    f"outcomes > {b:.4g} of v{row.champion} x (1 + {drop})"
                )
        return None

    def judge(self, name: str) -> Any:
        """Judge the running rollout of ``name`` once: roll back on a breach, advance a step
        held long enough. Returns the rollout as it is after."""
        row = self.refresh(name)
        if row is None or not row.running:
            return row
        registry = self._registry_fn()
        held = time.time() - row.step_started_at
        reason = self.breach(row, window_done=held >= row.window_s)
        if reason is not None:
            changed = registry.rollback_rollout(name, reason, row.revision)
            if changed is not None:
                logger.warning("rollout %d of %s rolled back: %s", row.id, name, reason)
                self._noted(name, changed, "rolled_back", reason)
            return self.refresh(name)
        crit = {**DEFAULT_CRITERIA, **(row.criteria or {})}
        chal = self._stats.get((row.id, row.step_index, row.challenger), _Stats())
        if held >= row.window_s and chal.requests >= crit["min_requests"]:
            stats = self.step_stats(row)
            detail = (
                f"{row.step_percent:g}% passed after {held:.1f} s: v{row.challenger} "
                f"{stats['challenger']['requests']} requests, {stats['challenger']['errors']} "
                f"errors, p99 {_ms(stats['challenger']['p99_ms'])}; v{row.champion} p99 "
                f"{_ms(stats['champion']['p99_ms'])}"
            )
            changed = registry.advance_rollout(name, row.revision, detail=detail)
            if changed is not None:
                logger.info("rollout %d of %s: %s", row.id, name, detail)
                self._noted(name, changed, changed.status, detail)
            return self.refresh(name)
        return row

    def _noted(self, name: str, row: Any, event: str, detail: str) -> None:
        self.decisions.append(
            {"time": time.time(), "name": name, "rollout": row.id, "event": event, "detail": detail}
        )

    def _switched(self, name: str, row: Any) -> None:
        if row is not None:
            weight = 0.0 if not row.running else row.weight
            try:
                metrics.rollout_weight.labels(name, str(row.challenger)).set(
                    1.0 if row.status == "promoted" else weight
                )
                metrics.rollout_weight.labels(name, str(row.champion)).set(
                    0.0 if row.status == "promoted" else 1.0 - weight
                )
                metrics.rollout_step.labels(name).set(
                    row.step_percent if row.running else (100.0 if row.status == "promoted" else 0)
                )
            except AttributeError:  # a metrics registry without the rollout gauges
                pass
        if self._on_switch is not None:
            self._on_switch(name)

    # -- the controller thread -------------------------------------------------------------------
    def _ensure_thread(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="mlu-rollout-judge", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.tick_s):
            now = time.monotonic()
            names = []
            for name, (read, row) in list(self._rows.items()):
                if row is not None and row.running:
                    names.append(name)
                elif now - read > self.ttl_s / 2:
                    # keep every served name's split fresh, so that the fast path (which never
                    # waits for the registry) knows whether a rollout has started
                    try:
                        fresh = self.refresh(name)
                    except Exception as err:  # noqa: BLE001 - the next tick tries again
                        logger.debug("reading the rollout of %s failed: %s", name, err)
                        continue
                    if fresh is not None and fresh.running:
                        names.append(name)
            for name in names:
                try:
                    self.judge(name)
                except Exception as err:  # noqa: BLE001 - the next tick tries again
                    logger.warning("judging the rollout of %s failed: %s", name, err)

    def running(self) -> list[Any]:
        return [row for _, row in list(self._rows.values()) if row is not None and row.running]

    def close(self) -> None:
        self._stop.set()
        t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join(timeout=5)


def _key(row: Any) -> tuple[Any, ...] | None:
    return None if row is None else (row.id, row.status, row.revision)


def _ms(value: float | None) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.2f} ms"


def _request_key(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ParameterError(f"request_key={value!r}: expected a string or an integer (a user id)")
    text = str(value)
    if not 0 < len(text) <= 256:
        raise ParameterError(f"request_key={value!r}: expected 1 to 256 characters")
    return text


def _request_id(value: Any) -> str:
    if value is None:
        return uuid.uuid4().hex
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ParameterError(f"request_id={value!r}: expected a string or an integer")
    text = str(value)
    if not 0 < len(text) <= 128:
        raise ParameterError(f"request_id={value!r}: expected 1 to 128 characters")
    return text
