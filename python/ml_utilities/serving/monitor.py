"""Live drift monitoring in the serving process: the rows a model answers, against its version's
reference sample.

:meth:`PredictionService.monitor_sync` attaches a :class:`LiveMonitor` to a model name: every
answered request (cached answers included) hands its float32 rows and outputs to
:meth:`LiveMonitor.submit`, which only appends them to a bounded deque (no lock, no wake-up);
a worker thread drains it every ``interval_s`` seconds into a
:class:`~ml_utilities.monitoring.DriftMonitor` (sliding window, scored every ``step`` rows,
alarm with hysteresis), off the request path.

The scoring (per-feature tests and a classifier two-sample test over the window) costs tens of
milliseconds, so at a high request rate the worker would take a large share of a core and of
the interpreter from serving. It keeps to ``cpu_share`` of one core instead (2%): it measures
its own cost per monitored row and, where the traffic would need more, monitors a uniform
random sample of the rows (``sample_fraction`` in the status), which is a sample of the same
distribution, so the statistics stay valid; the detection delay then counts sampled rows.
:meth:`LiveMonitor.flush` scores every row waiting, unsampled (reports, tests). The score and
the alarm are exported as ``ml_model_drift_score`` and ``ml_model_drift_alarm``.
"""

from __future__ import annotations

import collections
import logging
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
        self._pending: collections.deque[Any] = collections.deque(maxlen=_QUEUE_BATCHES)
        self._work_lock = threading.Lock()
        self._stop = threading.Event()
        self._score_gauge = metrics.drift_score.labels(name)
        self._alarm_gauge = metrics.drift_alarm.labels(name)
        self._alarm_gauge.set(0)
        self._thread = threading.Thread(target=self._run, name=f"mlu-drift-{name}", daemon=True)
        self._thread.start()

    def submit(self, x: np.ndarray, raw: np.ndarray, task: str) -> None:
        """Hand one answered batch to the worker: an append, never a wait (past
        ``_QUEUE_BATCHES`` waiting batches the oldest are dropped and counted)."""
        pending = self._pending
        if len(pending) == pending.maxlen:
            self.dropped_rows += len(pending[0][0])
        pending.append((x, raw, task))

    def _run(self) -> None:
        last = time.monotonic()
        while not self._stop.wait(self.interval_s):
            now = time.monotonic()
            self._drain(sample=True, elapsed=now - last)
            last = now

    def _drain(self, *, sample: bool, elapsed: float = 0.0) -> None:
        pending = self._pending
        batches = []
        while pending:
            try:
                batches.append(pending.popleft())
            except IndexError:  # pragma: no cover - drained by another caller meanwhile
                break
        if not batches:
            return
        with self._work_lock:
            n = sum(len(b[0]) for b in batches)
            self.submitted_rows += n
            if elapsed > 0:
                rate = n / elapsed
                self._rate = rate if self._rate == 0 else 0.8 * self._rate + 0.2 * rate
            x = np.concatenate([b[0].reshape(len(b[0]), -1) for b in batches])
            try:
                preds = np.concatenate(
                    [_numeric_predictions(b[1], b[2], len(b[0])) for b in batches]
                )
            except Exception as err:  # noqa: BLE001 - monitoring never breaks serving
                self.errors += 1
                logger.warning("drift monitor of %s: bad predictions: %s", self.name, err)
                return
            if sample:
                self._budget()
                if self.sample_fraction < 1.0:
                    keep = self._rng.random(len(x)) < self.sample_fraction
                    self.sampled_out_rows += int(len(x) - keep.sum())
                    x, preds = x[keep], preds[keep]
            if len(x):
                self._score(x.astype(np.float64), preds)

    def _budget(self) -> None:
        """The share of rows to monitor so that scoring stays within ``cpu_share``."""
        need = self._rate * self._cost_per_row  # cores the scoring would take unsampled
        self.sample_fraction = 1.0 if need <= self.cpu_share else self.cpu_share / need

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
        cost = (time.thread_time() - t0) / len(x)
        if reports:  # the cost of a row is what its share of the scoring took
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

    def flush(self, timeout: float = 30.0) -> bool:
        """Score every row submitted so far, unsampled, in the caller's thread (reports,
        tests); True once done (``timeout`` is kept for the interface: the work is bounded by
        what is waiting)."""
        self._drain(sample=False)
        return True

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
