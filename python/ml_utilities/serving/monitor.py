"""Live drift monitoring in the serving process: the rows a model answers, against its version's
reference sample.

:meth:`PredictionService.monitor_sync` attaches a :class:`LiveMonitor` to a model name: every
model call (each batch of the dynamic batcher, each direct call, the fast path's included) and
each answer from the result cache hands its float32 rows and outputs to
:meth:`LiveMonitor.submit`, which only appends them to a bounded deque (no lock, no wake-up);
a worker thread drains it every ``interval_s`` seconds into a
:class:`~ml_utilities.monitoring.DriftMonitor` (sliding window, scored every ``step`` rows,
alarm with hysteresis), off the request path.

The scoring (per-feature tests and a classifier two-sample test over the window) costs tens of
milliseconds, so at a high request rate the worker would take a large share of a core and of
the interpreter from serving. It keeps to ``cpu_share`` of one core instead (2%): it measures
its own cost per monitored row and, where the traffic would need more, monitors a uniform
random sample of the batches (``sample_fraction`` in the status; the others are neither
copied nor queued), which is a sample of the same distribution, so the statistics stay valid;
the detection delay then counts sampled rows.
:meth:`LiveMonitor.flush` scores every row waiting, unsampled (reports, tests). The score and
the alarm are exported as ``ml_model_drift_score`` and ``ml_model_drift_alarm``.
"""

from __future__ import annotations

import collections
import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from ..exceptions import ParameterError
from .metrics import metrics

__all__ = ["LiveMonitor", "reference_of"]

logger = logging.getLogger(__name__)

#: request batches waiting for the drift worker before the oldest are dropped
_QUEUE_BATCHES = 65536


def reference_of(handle: Any) -> dict[str, np.ndarray]:
    """A loaded model's reference sample (``x``, ``predictions``): the one stored with its
    version, else its held-out rows with the model's predictions on them.

    Raises
    ------
    ParameterError
        The version has neither (registered without training rows).
    """
    ref = getattr(handle, "reference", None)
    if ref is not None:
        return ref
    holdout = getattr(handle, "holdout", None)
    if holdout is None:
        raise ParameterError(
            f"{handle.name} v{handle.version} has no reference sample to monitor against: "
            "register it with one (ModelHandle.set_reference, or the lifecycle manager's "
            "register_model(..., reference_data=...))"
        )
    x = np.asarray(holdout[0], dtype=np.float32)
    return {"x": x, "predictions": np.asarray(handle.adapter.predict(x))}


def _one_thread() -> Any:
    """A context capping BLAS and OpenMP pools at one thread (threadpoolctl, which
    scikit-learn brings), or a no-op without it."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - scikit-learn's dependency
        import contextlib

        return contextlib.nullcontext()
    return threadpool_limits(1)


def _numeric_predictions(raw: np.ndarray, task: str, rows: int) -> np.ndarray:
    if task == "classification":
        return np.argmax(raw.reshape(rows, -1), axis=1)
    return raw.reshape(rows, -1)[:, 0].astype(np.float64)


class LiveMonitor:
    """Drift of one model's live rows against a reference sample, scored off the request path.

    Parameters
    ----------
    name : str
        The model name (the metrics' label).
    version : int
        The version whose reference sample is the baseline.
    reference : dict
        ``x`` (rows, features) and ``predictions``.
    feature_names : list of str
    window, step, threshold, patience
        As :class:`~ml_utilities.monitoring.DriftMonitor` and
        :class:`~ml_utilities.monitoring.DriftDetector`.
    on_alarm : callable, optional
        ``on_alarm(name, report)``, called on the worker thread when the alarm turns on.
    cpu_share : float
        The share of one core the scoring may take on average (0.02); above it, rows are
        sampled. 1.0 monitors every row whatever it costs.
    interval_s : float
        How often the worker drains the submitted rows.
    """

    def __init__(
        self,
        name: str,
        version: int,
        reference: dict[str, np.ndarray],
        feature_names: list[str],
        *,
        window: int = 500,
        step: int | None = None,
        threshold: float = 0.3,
        patience: int = 2,
        on_alarm: Callable[[str, Any], None] | None = None,
        cpu_share: float = 0.02,
        interval_s: float = 0.2,
        seed: int = 0,
    ) -> None:
        from ..monitoring import DriftDetector, DriftMonitor

        if not (isinstance(cpu_share, (int, float)) and 0 < float(cpu_share) <= 1):
            raise ParameterError(f"cpu_share={cpu_share!r}: expected a share in (0, 1]")
        if not (isinstance(interval_s, (int, float)) and 0 < float(interval_s) <= 60):
            raise ParameterError(f"interval_s={interval_s!r}: expected seconds in (0, 60]")
        x = np.asarray(reference["x"], dtype=np.float64)
        x = x.reshape(len(x), -1)
        detector = DriftDetector(
            x,
            reference.get("predictions"),
            feature_names=list(feature_names),
            threshold=threshold,
        )
        self.name = name
        self.version = int(version)
        self.monitor = DriftMonitor(detector, window=window, step=step, patience=patience)
        self.on_alarm = on_alarm
        self.cpu_share = float(cpu_share)
        self.interval_s = float(interval_s)
        self.dropped_rows = 0
        self.submitted_rows = 0
        self.sampled_out_rows = 0
        self.errors = 0
        #: the share of rows monitored now (1.0 until the budget says otherwise)
        self.sample_fraction = 1.0
        self._cost_per_row = 0.0  # seconds of scoring per monitored row (EWMA)
        self._rate = 0.0  # submitted rows per second (EWMA)
        self._rng = np.random.default_rng(seed)
        self._draw = random.Random(seed).random
        self._last_total = 0
        self._pending: collections.deque[Any] = collections.deque(maxlen=_QUEUE_BATCHES)
        self._work_lock = threading.Lock()
        self._stop = threading.Event()
        if self.cpu_share < 1.0:
            self._calibrate(x, reference.get("predictions"))
        self._score_gauge = metrics.drift_score.labels(name)
        self._alarm_gauge = metrics.drift_alarm.labels(name)
        self._alarm_gauge.set(0)
        self._thread = threading.Thread(target=self._run, name=f"mlu-drift-{name}", daemon=True)
        self._thread.start()

    def submit(self, x: np.ndarray, raw: np.ndarray, task: str) -> None:
        """Hand one answered batch to the worker: a random draw, a copy of the rows (the
        batcher reuses its buffer) and an append, never a wait. Batches are kept with
        probability ``sample_fraction``; past ``_QUEUE_BATCHES`` waiting batches the oldest
        are dropped and counted."""
        n = len(x)
        self.submitted_rows += n
        f = self.sample_fraction
        if f < 1.0 and self._draw() >= f:
            self.sampled_out_rows += n
            return
        pending = self._pending
        if len(pending) == pending.maxlen:
            self.dropped_rows += len(pending[0][0])
        pending.append((np.array(x, copy=True), raw, task, f))

    def intake(self, task: str) -> Callable[[np.ndarray, np.ndarray], None]:
        """``live(rows, outputs)`` for a :class:`LoadedModel` of this model's ``task``."""

        def live(x: np.ndarray, out: np.ndarray) -> None:
            self.submit(x, out, task)

        return live

    def _run(self) -> None:
        last = time.monotonic()
        while not self._stop.wait(self.interval_s):
            now = time.monotonic()
            self._drain(sample=True, elapsed=now - last)
            last = now

    def _drain(self, *, sample: bool, elapsed: float = 0.0) -> None:
        if elapsed > 0:  # the rate of every submitted row, kept or not
            total = self.submitted_rows
            rate = (total - self._last_total) / elapsed
            self._last_total = total
            self._rate = rate if self._rate == 0 else 0.8 * self._rate + 0.2 * rate
        pending = self._pending
        batches = []
        while pending:
            try:
                batches.append(pending.popleft())
            except IndexError:  # pragma: no cover - drained by another caller meanwhile
                break
        with self._work_lock:
            if sample:
                self._budget()
                f = self.sample_fraction
                if batches and any(b[3] > f for b in batches):
                    # queued under a larger share (before the budget knew the rate): each
                    # kept with the ratio, so that every row was kept with probability f
                    kept = [b for b in batches if b[3] <= f or self._draw() < f / b[3]]
                    self.sampled_out_rows += sum(len(b[0]) for b in batches) - sum(
                        len(b[0]) for b in kept
                    )
                    batches = kept
            if batches:
                self._take(batches)

    def _take(self, batches: list[Any]) -> None:
        x = np.concatenate([b[0].reshape(len(b[0]), -1) for b in batches])
        try:
            preds = np.concatenate([_numeric_predictions(b[1], b[2], len(b[0])) for b in batches])
        except Exception as err:  # noqa: BLE001 - monitoring never breaks serving
            self.errors += 1
            logger.warning("drift monitor of %s: bad predictions: %s", self.name, err)
            return
        if len(x):
            self._score(x.astype(np.float64), preds)

    def _calibrate(self, x: np.ndarray, pred: Any) -> None:
        """The scoring's cost per monitored row, measured once on a window of the reference
        against itself, so that the budget holds from the first rows on."""
        detector = self.monitor.detector
        n = min(len(x), self.monitor.window)
        pick = np.random.default_rng(0).choice(len(x), n, replace=False)
        p = None
        if pred is not None and len(pred) == len(x):
            p = np.asarray(pred)[pick]
        t0 = time.thread_time()
        try:
            with _one_thread():
                detector.score(x[pick], p)
        except Exception as err:  # noqa: BLE001 - then the first real score measures it
            logger.info("calibrating the drift monitor of %s failed: %s", self.name, err)
            return
        self._cost_per_row = (time.thread_time() - t0) / self.monitor.step

    def _budget(self) -> None:
        """The share of rows to monitor so that scoring stays within ``cpu_share``."""
        need = self._rate * self._cost_per_row  # cores the scoring would take unsampled
        if self.cpu_share >= 1.0 or need <= self.cpu_share:
            self.sample_fraction = 1.0
        else:
            self.sample_fraction = self.cpu_share / need

    def _score(self, x: np.ndarray, preds: np.ndarray) -> None:
        was = self.monitor.alarm
        t0 = time.thread_time()
        try:
            # one BLAS/OpenMP thread: the scoring's share of the machine is this thread's
            with _one_thread():
                reports = self.monitor.update(x, preds)
        except Exception as err:  # noqa: BLE001 - monitoring never breaks serving
            self.errors += 1
            logger.warning("drift monitor of %s failed on %d rows: %s", self.name, len(x), err)
            return
        if reports:
            # a monitored row's cost: the scoring of a window, shared by the ``step`` rows
            # that each score takes in (not by the rows of this drain, which may be few)
            cost = (time.thread_time() - t0) / (len(reports) * self.monitor.step)
            self._cost_per_row = (
                cost if self._cost_per_row == 0 else 0.7 * self._cost_per_row + 0.3 * cost
            )
            self._score_gauge.set(float(reports[-1].score))
        self._alarm_gauge.set(1 if self.monitor.alarm else 0)
        if self.monitor.alarm and not was and self.on_alarm is not None:
            try:
                self.on_alarm(self.name, reports[-1] if reports else self.monitor.last)
            except Exception as err:  # noqa: BLE001
                logger.warning("on_alarm of %s raised: %s", self.name, err)

    def flush(self) -> None:
        """Score every row submitted so far, unsampled, in the caller's thread (reports,
        tests); the work is bounded by what is waiting."""
        self._drain(sample=False)

    def status(self) -> dict[str, Any]:
        m = self.monitor
        last = m.last
        return {
            "model": self.name,
            "reference_version": self.version,
            "rows_seen": m.rows_seen,
            "rows_submitted": self.submitted_rows,
            "rows_sampled_out": self.sampled_out_rows,
            "rows_dropped": self.dropped_rows,
            "sample_fraction": round(self.sample_fraction, 6),
            "alarm": bool(m.alarm),
            "score": None if last is None else float(last.score),
            "last": None if last is None else last.to_dict(),
            "history": [[float(t), float(s)] for t, s in m.history],
        }

    def close(self) -> None:
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
