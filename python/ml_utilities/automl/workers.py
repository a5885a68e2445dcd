"""Trial folds in worker processes that are killed at their deadline.

A fit that cannot be interrupted (libsvm, a k-NN prediction, a forest chunk under load) used to
run on in an abandoned thread after the search had returned, taking a core from everything
after it. Here every fold of every trial runs in a worker process: one per search thread
(``n_jobs`` of them), started from a ``forkserver`` that has imported scikit-learn, LightGBM and
XGBoost once, so a replacement starts in milliseconds. A fold that has not answered by its kill
time is stopped with SIGKILL, which frees its core at once; the thread's next fold gets a fresh
worker. The ``forkserver`` (not ``fork``) keeps the workers clear of the caller's threads and of
OpenMP runtimes the caller has already started, which are not fork-safe.

The data travels once per run: the encoded matrix, labels and groups are written as ``.npy``
files that every worker memory-maps; a job is only (family, parameters, fold, feature choices,
deadline). The worker builds the fold's feature engineering itself (mutual information computed
on its training rows, once per worker and fold), fits single-threaded, predicts the fold's
validation rows and sends back the feature engineering, the fitted adapter and the predictions.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import shutil
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, replace
from multiprocessing import forkserver
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .families import DeadlineExceeded

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

    from .options import AutoMLOptions
    from .search import Problem

__all__ = ["FoldJob", "FoldKilled", "FoldWorker", "TrialPool", "WorkerDied", "warm_up"]

logger = logging.getLogger(__name__)

#: what the forkserver imports once, so that each worker forked from it starts warm
PRELOAD = [
    "numpy",
    "threadpoolctl",
    "sklearn.ensemble",
    "sklearn.linear_model",
    "sklearn.neighbors",
    "sklearn.svm",
    "sklearn.pipeline",
    "sklearn.preprocessing",
    "sklearn.feature_selection",
    "lightgbm",
    "xgboost",
    "ml_utilities.automl.search",
]
#: seconds a worker gets to exit on a polite close before it is killed
CLOSE_GRACE_S = 1.0


class WorkerDied(RuntimeError):
    """A worker process ended without answering (a crash, or the kernel's OOM killer)."""


class FoldKilled(DeadlineExceeded):
    """A fold that had not answered by its kill time: its worker was killed."""


def _context() -> Any:
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(PRELOAD)
    return ctx


_MAIN_LOCK = threading.Lock()


@contextlib.contextmanager
def _main_module_hidden() -> Iterator[None]:
    """Start a worker without the caller's ``__main__``: multiprocessing would otherwise run
    the caller's script again in every worker (a script without an ``if __name__ ==
    '__main__'`` guard would start a search inside each). The worker needs nothing from it:
    its function, arguments and jobs are all ``ml_utilities`` objects and builtins."""
    main = sys.modules.get("__main__")
    if main is None:
        yield
        return
    with _MAIN_LOCK:
        spec = getattr(main, "__spec__", None)
        had_file = "__file__" in main.__dict__
        path = main.__dict__.pop("__file__", None)
        main.__spec__ = None
        try:
            yield
        finally:
            main.__spec__ = spec
            if had_file:
                main.__file__ = path


def warm_up() -> None:
    """Start the forkserver the workers come from (it imports the model frameworks, about 3 s
    the first time in a process), without waiting for it. AutoML calls this first thing, so the
    imports overlap the encoding of the data; a service may call it at start-up to keep that
    one-time cost out of its first search's budget."""
    _context()
    forkserver.ensure_running()


@dataclass(frozen=True)
class FoldJob:
    """One fold of one trial."""

    family: str
    params: dict[str, Any]
    fold: int
    keep: float
    products: bool
    deadline: float  # time.monotonic(), system-wide on Linux: the same clock in every process
    anytime: bool  # at the deadline, keep what boosting/forests/networks have built so far


def _serve(conn: Connection, data_dir: str, skeleton: Problem, opts: AutoMLOptions) -> None:
    """The worker's loop: fit the folds it is sent until it is sent None or its pipe closes."""
    from threadpoolctl import threadpool_limits

    from .search import fit_job

    threadpool_limits(limits=1)  # the search runs folds in parallel, one core each
    folder = Path(data_dir)
    arrays = {
        name: np.load(folder / f"{name}.npy", mmap_mode="r")
        for name in ("x", "y", "groups")
        if (folder / f"{name}.npy").is_file()
    }
    problem = replace(skeleton, x=arrays["x"], y=arrays["y"], groups=arrays.get("groups"))
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        try:
            fe, model, pred = fit_job(problem, job, opts)
            reply: tuple[Any, ...] = ("ok", fe, model, pred)
        except DeadlineExceeded as err:
            reply = ("timeout", str(err))
        except Exception as err:  # noqa: BLE001 - the trial records it; the worker goes on
            reply = ("error", f"{type(err).__name__}: {err}", traceback.format_exc(limit=8))
        try:
            conn.send(reply)
        except Exception as err:  # noqa: BLE001 - a model that cannot be pickled
            conn.send(("error", f"the fitted model could not be sent back: {err}", ""))


class FoldWorker:
    """One worker process, used by one search thread at a time; replaced when killed."""

    def __init__(self, pool: TrialPool) -> None:
        self._pool = pool
        self._proc: Any = None
        self._conn: Connection | None = None
        self.killed = 0

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    def _ensure(self) -> Connection:
        if self._proc is not None and self._proc.is_alive() and self._conn is not None:
            return self._conn
        self._reap()
        parent, child = self._pool.ctx.Pipe(duplex=True)
        proc = self._pool.ctx.Process(
            target=_serve,
            args=(child, str(self._pool.folder), self._pool.skeleton, self._pool.opts),
            daemon=True,
            name="mlu-automl-fold",
        )
        with _main_module_hidden():
            proc.start()
        child.close()
        self._proc, self._conn = proc, parent
        return parent

    def run(self, job: FoldJob, kill_at: float) -> tuple[Any, Any, np.ndarray]:
        """Fit ``job`` in the worker; kill the worker if it has not answered by ``kill_at``.

        Raises :class:`DeadlineExceeded` (the fit ran out of time: its own check, or the kill),
        :class:`WorkerDied`, or ``RuntimeError`` with the fit's error.
        """
        conn = self._ensure()
        conn.send(job)
        while True:
            left = kill_at - time.monotonic()
            if left <= 0:
                self.kill()
                raise FoldKilled("killed at the trial's deadline (the fit did not stop)")
            if conn.poll(min(left, 0.5)):
                break
        try:
            reply = conn.recv()
        except (EOFError, OSError):
            code = self._proc.exitcode if self._proc is not None else None
            self._reap()
            raise WorkerDied(f"the worker process ended (exit code {code})") from None
        status = reply[0]
        if status == "ok":
            return reply[1], reply[2], reply[3]
        if status == "timeout":
            raise DeadlineExceeded(reply[1])
        logger.debug("fold failed in worker: %s", reply[2] if len(reply) > 2 else "")
        raise RuntimeError(reply[1])

    def kill(self) -> None:
        if self._proc is not None and self._proc.is_alive():
            self._proc.kill()
            self.killed += 1
        self._reap()

    def _reap(self) -> None:
        if self._proc is not None:
            self._proc.join(CLOSE_GRACE_S)
            if self._proc.is_alive():  # pragma: no cover - SIGKILL cannot be refused
                self._proc.kill()
                self._proc.join()
            self._proc.close()
        if self._conn is not None:
            self._conn.close()
        self._proc, self._conn = None, None

    def close(self) -> None:
        if self._proc is not None and self._conn is not None and self._proc.is_alive():
            try:
                self._conn.send(None)
            except OSError:
                pass
            self._proc.join(CLOSE_GRACE_S)
            if self._proc.is_alive():
                self._proc.kill()
        self._reap()


class TrialPool:
    """The data files and one :class:`FoldWorker` per search thread, for one search."""

    def __init__(self, problem: Problem, opts: AutoMLOptions, n_workers: int) -> None:
        self.ctx = _context()
        self.opts = opts
        self.folder = Path(tempfile.mkdtemp(prefix="mlu-automl-"))
        try:
            np.save(self.folder / "x.npy", np.ascontiguousarray(problem.x))
            np.save(self.folder / "y.npy", np.ascontiguousarray(problem.y))
            if problem.groups is not None:
                np.save(self.folder / "groups.npy", np.ascontiguousarray(problem.groups))
        except BaseException:
            shutil.rmtree(self.folder, ignore_errors=True)
            raise
        empty = np.empty(0)
        # the metric stays here (the parent scores every fold); mutual information is computed
        # by each worker for the folds it fits
        self.skeleton = replace(
            problem,
            x=empty,
            y=empty,
            groups=None,
            metric=None,
            mi=None if problem.mi is None else {},
        )
        self.workers = [FoldWorker(self) for _ in range(n_workers)]

    @property
    def killed(self) -> int:
        return sum(w.killed for w in self.workers)

    def close(self) -> None:
        for w in self.workers:
            w.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> TrialPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
