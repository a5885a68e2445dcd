"""The search: one Optuna study over model families and their hyperparameters.

Each trial draws a family, its hyperparameters and the feature-engineering choices, then fits one
model per cross-validation fold and predicts the fold it left out. The out-of-fold predictions
give the trial's score (on every row, each predicted by a model that never saw it) and feed the
ensembles; the fold models themselves are kept for the best trials and become the final model
(a bag of K models, as AutoGluon does), so no refit has to fit in the budget.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
import warnings
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from .data import FeatureEngineering, Metric, mutual_information, plan_feature_engineering
from .families import FAMILIES, DeadlineExceeded, FitContext
from .options import AutoMLOptions
from .workers import FoldJob, FoldKilled, TrialPool

__all__ = ["Problem", "SearchOutcome", "TrialResult", "run_search"]

logger = logging.getLogger(__name__)

#: trials whose fold models are kept for the ensembles and the final model
KEEP_MODELS = 24
#: keep-fractions the search may choose with ``feature_selection='mutual_info'``
KEEP_FRACTIONS = (1.0, 0.75, 0.5)
#: beyond this many rows an SVM (quadratic in rows) is left out of the search
SVM_MAX_ROWS = 10_000
#: families whose fit or prediction cannot be interrupted: a fold of theirs starts only when its
#: expected duration (the slowest fold measured for the family, times this margin) fits
BLOCKING = {"linear": 2.0, "knn": 1.5, "svm": 3.0}
#: a blocking family never measured yet may start only while this share of the search is left
FIRST_BLOCKING_SHARE = 0.4


@dataclass
class Problem:
    """The encoded data of one AutoML run: rows sorted by group for ranking."""

    x: np.ndarray
    y: np.ndarray
    task: str  # classification, regression, ranking
    n_classes: int | None
    categorical: list[int]
    folds: list[tuple[np.ndarray, np.ndarray]]
    metric: Metric
    seed: int
    groups: np.ndarray | None = None
    ranking_k: int = 10
    mi: dict[int, np.ndarray] | None = None  # per fold, on the training rows only (lazy)

    def group_sizes(self, idx: np.ndarray) -> np.ndarray | None:
        if self.groups is None:
            return None
        g = self.groups[idx]
        starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
        return np.diff(np.r_[starts, len(g)])

    def score(self, idx: np.ndarray | None, raw: np.ndarray) -> float:
        if idx is None:
            idx = np.arange(len(self.y))
        groups = None if self.groups is None else self.groups[idx]
        return self.metric.score(self.y[idx], raw, groups)

    def oof_shape(self) -> tuple[int, ...]:
        if self.task == "classification":
            return (len(self.y), int(self.n_classes or 2))
        return (len(self.y),)


@dataclass
class TrialResult:
    """One trial: its configuration, score, out-of-fold predictions and fold models."""

    number: int
    family: str
    params: dict[str, Any]
    keep_fraction: float
    products: bool
    state: str  # complete, pruned, timeout, killed, failed
    started_s: float
    duration_s: float
    score: float | None = None  # higher is better (losses negated)
    fold_scores: list[float] = field(default_factory=list)
    fit_s: list[float] = field(default_factory=list)
    oof: np.ndarray | None = None
    models: list[tuple[FeatureEngineering, Any]] | None = None
    error: str | None = None


@dataclass
class SearchOutcome:
    trials: list[TrialResult]
    storage: str
    study_name: str
    sampler: str
    n_jobs: int
    killed: int = 0  # worker processes killed at a fold's deadline


def default_storage() -> str:
    from ..config import get_settings

    folder = get_settings().home / "automl"
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / 'studies.db'}"


def prepare_mutual_information(problem: Problem, opts: AutoMLOptions) -> None:
    """Enable feature engineering: mutual information of each column with the target is then
    computed per fold, on the fold's training rows only, the first time a trial needs it (its
    cost falls on that trial and its deadline; the default configurations never need it)."""
    if opts.feature_selection != "mutual_info" and not (opts.polynomial or opts.interactions):
        return
    problem.mi = {}


def fold_mutual_information(problem: Problem, fold: int) -> np.ndarray:
    """The mutual information of fold ``fold`` (computed once, under a lock)."""
    assert problem.mi is not None
    with _MI_LOCK:
        if fold not in problem.mi:
            tr = problem.folds[fold][0]
            task = "classification" if problem.task == "classification" else "regression"
            problem.mi[fold] = mutual_information(
                problem.x[tr], problem.y[tr], task, problem.categorical, problem.seed
            )
        return problem.mi[fold]


_MI_LOCK = threading.Lock()


def _fe_for(problem: Problem, fold: int, keep: float, products: bool, opts: AutoMLOptions) -> Any:
    if problem.mi is None or (keep >= 1.0 and not products):
        return FeatureEngineering([], None)
    return plan_feature_engineering(
        fold_mutual_information(problem, fold),
        polynomial=products and opts.polynomial,
        interactions=products and opts.interactions,
        keep_fraction=keep,
        categorical=problem.categorical,
    )


def mapped_categorical(fe: FeatureEngineering, categorical: list[int]) -> list[int]:
    if fe.keep is None:
        return list(categorical)
    pos = {j: i for i, j in enumerate(fe.keep)}
    return [pos[c] for c in categorical if c in pos]


def fold_context(
    problem: Problem,
    fe: FeatureEngineering,
    tr: np.ndarray,
    va: np.ndarray,
    deadline: float = float("inf"),
    anytime: bool = False,
) -> FitContext:
    """What a family needs to fit on rows ``tr`` and predict rows ``va``."""
    return FitContext(
        task=problem.task,
        n_classes=problem.n_classes,
        categorical=mapped_categorical(fe, problem.categorical),
        seed=problem.seed,
        deadline=deadline,
        groups_train=problem.group_sizes(tr),
        groups_val=problem.group_sizes(va),
        ranking_k=problem.ranking_k,
        n_features=fe.n_outputs(problem.x.shape[1]),
        anytime=anytime,
    )


def fit_fold(
    problem: Problem,
    family_name: str,
    params: dict[str, Any],
    fe: FeatureEngineering,
    tr: np.ndarray,
    va: np.ndarray,
    deadline: float,
    anytime: bool = False,
) -> tuple[Any, np.ndarray]:
    fam = FAMILIES[family_name]
    x_tr, x_va = fe.transform(problem.x[tr]), fe.transform(problem.x[va])
    ctx = fold_context(problem, fe, tr, va, deadline, anytime)
    model = fam.fit(params, x_tr, problem.y[tr], x_va, problem.y[va], ctx)
    return model, model.predict_raw(x_va)


def fit_job(problem: Problem, job: FoldJob, opts: AutoMLOptions) -> tuple[Any, Any, np.ndarray]:
    """One fold of a trial, as a worker process runs it: (feature engineering, model,
    predictions of the fold's validation rows)."""
    if job.family == "neural_network":
        import torch

        torch.set_num_threads(1)
    tr, va = problem.folds[job.fold]
    fe = _fe_for(problem, job.fold, job.keep, job.products, opts)
    model, pred = fit_fold(problem, job.family, job.params, fe, tr, va, job.deadline, job.anytime)
    return fe, model, pred


def _families(opts: AutoMLOptions, n: int) -> list[str]:
    out = [a for a in opts.algorithms if not (a == "svm" and n > SVM_MAX_ROWS)]
    if not out:
        out = list(opts.algorithms)
    return out


#: families whose default configurations are scheduled first: strong on most tables, and their
#: boosting rounds stop at the deadline keeping what they have built
FIRST_DEFAULTS = ("lightgbm", "xgboost")


def run_search(
    problem: Problem,
    opts: AutoMLOptions,
    *,
    search_deadline: float,
    hard_deadline: float,
    kill_grace_s: float = 0.5,
) -> SearchOutcome:
    """Run the study until ``search_deadline`` (monotonic clock) or ``max_trials``.

    Every fold runs in a worker process (:mod:`.workers`). Trials still running at
    ``search_deadline`` stop at ``hard_deadline`` at the latest: their fits check it between
    boosting rounds, forest chunks and epochs, and a worker that has not answered
    ``kill_grace_s`` after its fold's deadline is killed, so nothing of the search runs on
    after it returns. The default configurations (LightGBM and XGBoost first) run with the
    hard deadline as their own and keep the rounds they have built when it comes. Each trial
    that ran is observed, once it is told to Optuna, in the Prometheus histogram
    ``ml_automl_trial_duration_seconds`` (labels family and state).
    """
    import optuna

    storage_url = opts.storage or default_storage()
    study_name = opts.study_name or f"automl-{uuid.uuid4().hex[:12]}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if opts.sampler == "random":
            sampler: Any = optuna.samplers.RandomSampler(seed=opts.seed)
        else:
            sampler = optuna.samplers.TPESampler(
                seed=opts.seed,
                multivariate=True,
                group=True,
                constant_liar=opts.n_jobs > 1,
                n_startup_trials=10,
            )
        storage = optuna.storages.RDBStorage(storage_url)
    optuna_logger = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name=study_name,
        storage=storage,
        sampler=sampler,
        pruner=optuna.pruners.PercentilePruner(25.0, n_startup_trials=10, n_warmup_steps=0),
        direction="maximize",
        load_if_exists=True,
    )
    n_rows = len(problem.y)
    n_train = int(n_rows * (1 - 1 / len(problem.folds)))
    families = _families(opts, n_rows)
    use_keep = problem.mi is not None and opts.feature_selection == "mutual_info"
    use_products = problem.mi is not None and (opts.polynomial or opts.interactions)
    if not study.trials:  # a new study starts from good defaults, the strong boosters first
        order = [f for f in FIRST_DEFAULTS if f in families]
        order += [f for f in families if f not in order]
        for name in order:
            for params in FAMILIES[name].defaults(n_train, problem.x.shape[1], problem.task):
                point: dict[str, Any] = {"family": name}
                point.update({f"{name}.{k}": v for k, v in params.items()})
                if use_keep:
                    point["fe.keep"] = 1.0
                if use_products:
                    point["fe.products"] = False
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                    study.enqueue_trial(point, user_attrs={"default": True})

    results: dict[int, TrialResult] = {}
    lock = threading.Lock()
    t_origin = time.monotonic()
    trial_timeout = opts.trial_timeout_s or max(10.0, 0.5 * opts.budget_s)
    #: slowest measured fold (fit + prediction) of each family, for the blocking ones' check
    fold_cost: dict[str, float] = {}
    closed = threading.Event()  # set when the search returns

    def may_start(name: str, rec: TrialResult, now: float, deadline: float) -> bool:
        """Whether a fold of family ``name`` can end by ``deadline`` if it starts ``now``."""
        if rec.fit_s:  # this trial's own folds: the same configuration, similar folds
            return now + 1.15 * max(rec.fit_s) <= deadline
        if name not in BLOCKING:  # interruptible: boosting rounds, trees, epochs check
            return True
        if name in fold_cost:  # other configurations of the family: a wider margin
            return now + fold_cost[name] * BLOCKING[name] <= deadline
        # never measured: only while most of the search is left
        return hard_deadline - now > FIRST_BLOCKING_SHARE * (hard_deadline - t_origin)

    def objective(trial: optuna.Trial, worker: Any) -> float:
        start = time.monotonic()
        if start >= search_deadline:
            raise optuna.TrialPruned("search time is up")
        name = trial.suggest_categorical("family", families)
        params = FAMILIES[name].suggest(trial, n_train, problem.x.shape[1], problem.task)
        keep = trial.suggest_categorical("fe.keep", list(KEEP_FRACTIONS)) if use_keep else 1.0
        products = (
            trial.suggest_categorical("fe.products", [False, True]) if use_products else False
        )
        rec = TrialResult(
            trial.number,
            name,
            params,
            float(keep),
            bool(products),
            "running",
            start - t_origin,
            0.0,
        )
        with lock:
            results[trial.number] = rec
        # a default configuration must give an answer: the whole search is its time, and at
        # the end its boosting keeps the rounds it has (a one-shot fit cannot, and is killed)
        anytime = bool(trial.user_attrs.get("default")) and name not in BLOCKING
        deadline = hard_deadline if anytime else min(start + trial_timeout, hard_deadline)
        oof = np.zeros(problem.oof_shape(), dtype=np.float32)
        models: list[tuple[FeatureEngineering, Any]] = []
        try:
            for f, (_, va) in enumerate(problem.folds):
                now = time.monotonic()
                if not (anytime or may_start(name, rec, now, deadline)):
                    raise DeadlineExceeded("the next fold would pass the deadline")
                if now >= deadline:
                    raise DeadlineExceeded("trial deadline passed")
                job = FoldJob(name, params, f, float(keep), bool(products), deadline, anytime)
                fe, model, pred = worker.run(job, deadline + kill_grace_s)
                rec.fit_s.append(time.monotonic() - now)
                with lock:
                    fold_cost[name] = max(fold_cost.get(name, 0.0), rec.fit_s[-1])
                oof[va] = pred
                models.append((fe, model))
                rec.fold_scores.append(problem.score(va, pred))
                trial.report(float(np.mean(rec.fold_scores)), f)
                if f < len(problem.folds) - 1 and trial.should_prune():
                    rec.state = "pruned"
                    raise optuna.TrialPruned(f"pruned after fold {f}")
        except DeadlineExceeded as err:
            rec.state = "killed" if isinstance(err, FoldKilled) else "timeout"
            rec.error = str(err)
            rec.duration_s = time.monotonic() - start
            if models:  # the folds done: an early answer when no trial completes
                with lock:
                    rec.oof, rec.models = oof, models
            raise optuna.TrialPruned(str(err)) from None
        except optuna.TrialPruned:
            rec.duration_s = time.monotonic() - start
            raise
        except Exception as err:
            rec.state, rec.error = "failed", f"{type(err).__name__}: {err}"
            rec.duration_s = time.monotonic() - start
            logger.warning("trial %d (%s) failed: %s", trial.number, name, rec.error)
            raise
        score = problem.score(None, oof)
        rec.score, rec.state = float(score), "complete"
        rec.duration_s = time.monotonic() - start
        with lock:
            rec.oof, rec.models = oof, models
            _drop_weak_models(results)
        return float(score)

    ask_lock = threading.Lock()
    counter = {"started": 0}

    def run_trials(worker: Any) -> None:
        # ask/tell under a lock: Optuna's own thread pool can hand one enqueued trial to two
        # threads on SQLite, which has no SELECT ... FOR UPDATE
        while time.monotonic() < search_deadline and not closed.is_set():
            with ask_lock:
                if counter["started"] >= opts.max_trials:
                    return
                counter["started"] += 1
                trial = study.ask()
            state, value = optuna.trial.TrialState.COMPLETE, None
            try:
                value = objective(trial, worker)
            except optuna.TrialPruned:
                state = optuna.trial.TrialState.PRUNED
            except Exception:  # noqa: BLE001 - recorded in the trial's history, search goes on
                state = optuna.trial.TrialState.FAIL
            with ask_lock:
                study.tell(trial, value, state=state)
            rec = results.get(trial.number)  # None: asked after the search time, never run
            if rec is not None:
                _observe_trial(rec, t_origin)

    threads: list[threading.Thread] = []
    pool = TrialPool(problem, opts, opts.n_jobs)
    try:
        threads = [
            threading.Thread(target=run_trials, args=(w,), daemon=True, name="mlu-automl-trials")
            for w in pool.workers
        ]
        for th in threads:
            th.start()
        # every fold ends by its kill time (its deadline + kill_grace_s), so the threads end
        # by the hard deadline and the grace; the margin covers scoring and Optuna's tell
        for th in threads:
            th.join(timeout=max(0.0, hard_deadline + kill_grace_s + 1.0 - time.monotonic()))
        with ask_lock, lock:
            closed.set()
            trials = [replace(results[k]) for k in sorted(results)]
            for t in trials:
                if t.state == "running":  # pragma: no cover - only past the join's margin
                    t.state, t.error = "killed", "still running after the hard deadline"
    finally:
        closed.set()
        pool.close()  # kills a worker still fitting: nothing of the search runs on
        optuna.logging.set_verbosity(optuna_logger)
        for th in threads:
            th.join(timeout=1.0)
        if not any(th.is_alive() for th in threads):
            storage.remove_session()
            storage.engine.dispose()  # close the pooled connections (PostgreSQL, SQLite)
    return SearchOutcome(
        trials, storage_url, study_name, opts.sampler, opts.n_jobs, killed=pool.killed
    )


#: the labelled children of ml_automl_trial_duration_seconds, by (family, state)
_TRIAL_DURATIONS: dict[tuple[str, str], Any] = {}


def _observe_trial(rec: TrialResult, t_origin: float) -> None:
    """Observe a finished trial in ``ml_automl_trial_duration_seconds`` (here, in the process
    of the search: its folds ran in worker processes). A trial whose objective raised outside
    its fold loop is still ``running``: it is counted as failed, timed up to now."""
    from .._metrics import metrics

    state, duration = rec.state, rec.duration_s
    if state == "running":
        state, duration = "failed", time.monotonic() - t_origin - rec.started_s
    child = _TRIAL_DURATIONS.get((rec.family, state))
    if child is None:
        child = _TRIAL_DURATIONS.setdefault(
            (rec.family, state), metrics.automl_trial_duration.labels(rec.family, state)
        )
    child.observe(max(0.0, duration))


def _drop_weak_models(results: dict[int, TrialResult]) -> None:
    """Keep the fold models and predictions of the best :data:`KEEP_MODELS` trials only (and
    those of unfinished trials only until a trial completes)."""
    for r in results.values():
        if r.state != "complete" and r.models is not None:
            r.models, r.oof = None, None
    done = [r for r in results.values() if r.state == "complete" and r.models is not None]
    if len(done) <= KEEP_MODELS:
        return
    done.sort(key=lambda r: r.score if r.score is not None else -np.inf, reverse=True)
    for r in done[KEEP_MODELS:]:
        r.models, r.oof = None, None
