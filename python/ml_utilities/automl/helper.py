"""AutoMLHelper: the specification's entry point to search, ensemble, report and register."""

from __future__ import annotations

import asyncio
import logging
import time
import warnings
from typing import Any

import numpy as np

from ..exceptions import ParameterError
from ..recommend.train import train_recommender
from .data import ColumnEncoder, make_folds, make_metric
from .ensemble import EnsembleResult, stacking, voting
from .families import DISPLAY_NAMES, FAMILIES
from .model import AutoMLAdapter, AutoMLModel
from .options import AutoMLOptions, parse_config
from .report import AutoMLReport, format_duration
from .search import Problem, TrialResult, prepare_mutual_information, run_search
from .workers import warm_up

__all__ = ["AutoMLHelper"]

logger = logging.getLogger(__name__)

#: candidates (best trials) offered to greedy ensemble selection
VOTING_CANDIDATES = 16
#: share of the budget kept free at the end against timing noise (load, garbage collection)
SAFETY_SHARE = 0.03
#: time kept for the steps after the search (ensembles, importances, latency, registration):
#: this share of the budget, and at least POST_MIN_S (+ REGISTER_MIN_S when registering)
POST_SHARE, POST_MIN_S, REGISTER_MIN_S = 0.07, 0.8, 0.8
#: fixed part of a registration's estimated time (registry rows, signature, report)
REGISTER_BASE_S = 0.3
#: a registration writes each file, hashes it and moves the folder into place: its time over
#: that of the timed save and hash of the same files
REGISTER_OVERHEAD = 1.3
#: families whose save was already timed in this process (the first is timed twice)
_PROBED: set[str] = set()
#: no trial starts within this share of the budget before the hard deadline of the search
LAST_START_SHARE = 0.05
#: columns taken as the user (group) of a ranking row when ``group_column`` is not given
GROUP_COLUMNS = ("user_id", "userID", "user", "query_id", "group")


class AutoMLHelper:
    """Bayesian search over model families, honest ensembles, a report, a registered model.

    Parameters
    ----------
    manager : ModelManager, optional
        Where the final model is registered (default: a :class:`ModelManager` on the default
        registry, ``$ML_UTILITIES_HOME``).
    registry_url, artifact_root : optional
        Passed to the default ModelManager.

    Examples
    --------
    >>> automl = AutoMLHelper()
    >>> model = await automl.train_automl_pipeline(  # doctest: +SKIP
    ...     features=frame, labels=genres,
    ...     config={"task_type": "classification", "time_budget_hours": 0.02})
    >>> model.report["best_model"], model.report["ensemble_performance"]  # doctest: +SKIP
    """

    def __init__(
        self,
        manager: Any = None,
        *,
        registry_url: str | None = None,
        artifact_root: Any = None,
    ) -> None:
        if manager is not None and (registry_url or artifact_root):
            raise ParameterError("pass either manager or registry_url/artifact_root, not both")
        self._manager = manager
        self._manager_args = (registry_url, artifact_root)

    @property
    def manager(self) -> Any:
        """The :class:`~ml_utilities.models.ModelManager` that registers the models."""
        if self._manager is None:
            from ..models import ModelManager

            url, root = self._manager_args
            self._manager = ModelManager(registry_url=url, artifact_root=root)
        return self._manager

    # -- tabular --------------------------------------------------------------------------------
    async def train_automl_pipeline(
        self, features: Any, labels: Any, config: dict[str, Any] | None = None
    ) -> AutoMLModel:
        """Search model families and hyperparameters within a time budget; return the best.

        Parameters
        ----------
        features : pandas.DataFrame or array-like (n_samples, n_features)
            Named mixed-type columns (numbers, booleans, categories or strings, datetimes;
            missing values allowed) or a numeric array (columns named ``feature_<i>``). For
            ``task_type='recommendation'`` one row per (user, item) pair, with a user column
            (``group_column``, default the first of ``user_id``, ``userID``, ``user``,
            ``query_id``, ``group`` present).
        labels : array-like (n_samples,)
            Classes of any kind, numbers (regression) or relevance grades >= 0
            (recommendation; integers up to 30 are used as they are, anything else is graded
            0 to 4 by quantile within each user).
        config : dict
            The specification's ``automl_config``; see ``docs/automl.md`` for every key.

        Returns
        -------
        AutoMLModel
            A :class:`~ml_utilities.models.ModelHandle` (framework ``automl``) with ``report``
            (:class:`AutoMLReport`), registered in :attr:`manager`'s registry unless
            ``config['register']`` is False.

        Raises
        ------
        ParameterError
            For an unknown configuration key or value, or unusable features or labels.
        """
        return await asyncio.to_thread(self.train_automl_pipeline_sync, features, labels, config)

    def train_automl_pipeline_sync(
        self, features: Any, labels: Any, config: dict[str, Any] | None = None
    ) -> AutoMLModel:
        """Synchronous twin of :meth:`train_automl_pipeline`."""
        t0 = time.monotonic()  # the budget counts from the call: imports and registration too
        opts = parse_config(config)
        warm_up()  # the workers' forkserver imports the frameworks while the data is encoded
        _import_frameworks(opts)  # the first call in a process: about 3 s
        if opts.register:
            _ = self.manager  # the registry's imports now: the deadlines below then allow for them
        problem, encoder, codec, y_given = self._problem(features, labels, opts)
        with warnings.catch_warnings():
            # single-threaded fits on tiny folds warn about convergence and tiny leaves; the
            # search scores them like any other configuration
            from sklearn.exceptions import ConvergenceWarning

            warnings.simplefilter("ignore", ConvergenceWarning)
            warnings.filterwarnings("ignore", category=UserWarning, module="lightgbm")
            warnings.filterwarnings("ignore", category=UserWarning, module="sklearn")
            warnings.filterwarnings("ignore", category=RuntimeWarning, module="sklearn")
            from threadpoolctl import threadpool_limits

            # trials run in parallel, one core each: a multi-threaded BLAS / OpenMP inside
            # them oversubscribes the cores (a logistic regression ran 40x slower)
            with threadpool_limits(limits=1):
                model = self._run(t0, opts, problem, encoder, codec, y_given)
        if opts.register:
            t_reg = time.monotonic()
            mv = self.manager.register_model_sync(
                model,
                name=model.name,
                metadata={"automl_report": _summary(model.report)},
            )
            model.report["registration_s"] = round(time.monotonic() - t_reg, 3)
            model.report["registered_version"] = mv.version
            _set_elapsed(model, t0, opts.budget_s)
        return model

    def _problem(
        self, features: Any, labels: Any, opts: AutoMLOptions
    ) -> tuple[Problem, ColumnEncoder, Any, np.ndarray]:
        from ..models._data import LabelCodec, as_labels

        groups = None
        drop: tuple[str, ...] = ()
        order = None
        if opts.task == "recommendation":
            import pandas as pd

            if not isinstance(features, pd.DataFrame):
                raise ParameterError(
                    "task_type='recommendation' needs features as a DataFrame with a user "
                    "column (group_column) so that rows are ranked per user"
                )
            col = opts.group_column
            if col is None:
                col = next((c for c in GROUP_COLUMNS if c in features.columns), None)
            if col is None or col not in features.columns:
                raise ParameterError(
                    f"group_column={col!r} is not a column of features; name the user column "
                    f"(tried {list(GROUP_COLUMNS)})"
                )
            drop = (col,)
            raw_groups = features[col].to_numpy()
            _, groups = np.unique(raw_groups, return_inverse=True)
            order = np.argsort(groups, kind="stable")
        encoder = ColumnEncoder.fit(features, drop=drop)
        x = encoder.transform(features)
        n = len(x)
        codec = None
        if opts.task == "classification":
            y_given = as_labels(labels, n, "classification")
            codec = LabelCodec.fit(y_given)
            y = codec.encode(y_given)
            n_classes: int | None = len(codec.classes)
        elif opts.task == "regression":
            y_given = as_labels(labels, n, "regression")
            y, n_classes = y_given.astype(np.float64), None
        else:
            y_given = np.asarray(labels)
            if y_given.shape != (n,) or not np.issubdtype(y_given.dtype, np.number):
                raise ParameterError(
                    f"labels has shape {y_given.shape} and dtype {y_given.dtype}: expected "
                    f"{n} relevance values >= 0"
                )
            if not np.all(np.isfinite(y_given)) or (y_given < 0).any():
                raise ParameterError("recommendation labels must be finite relevance values >= 0")
            y, n_classes = _grades(y_given.astype(np.float64), groups), None
        if order is not None:
            x, y, groups, y_given = x[order], y[order], groups[order], y_given[order]
        task = "ranking" if opts.task == "recommendation" else opts.task
        folds = make_folds(opts.task, y, opts.cv_folds, opts.seed, groups)
        problem = Problem(
            x=x,
            y=y,
            task=task,
            n_classes=n_classes,
            categorical=encoder.categorical_indices,
            folds=folds,
            metric=make_metric(opts.metric, opts.metric_k, n_classes),
            seed=opts.seed,
            groups=groups,
            ranking_k=opts.metric_k or 10,
        )
        return problem, encoder, codec, y_given

    def _run(
        self,
        t0: float,
        opts: AutoMLOptions,
        problem: Problem,
        encoder: ColumnEncoder,
        codec: Any,
        y_given: np.ndarray,
    ) -> AutoMLModel:
        budget = opts.budget_s
        end = t0 + (1.0 - SAFETY_SHARE) * budget
        post = max(POST_SHARE * budget, POST_MIN_S + (REGISTER_MIN_S if opts.register else 0.0))
        hard_deadline = end - post
        search_deadline = hard_deadline - LAST_START_SHARE * budget
        # steps after the ensembles: importances, latency, registration
        tail = 0.4 * post
        prepare_mutual_information(problem, opts)
        outcome = run_search(
            problem,
            opts,
            search_deadline=search_deadline,
            hard_deadline=hard_deadline,
            kill_grace_s=min(1.0, 0.25 * post),
        )
        t_search = time.monotonic() - t0
        done = sorted(
            (t for t in outcome.trials if t.state == "complete" and t.models is not None),
            key=lambda t: t.score if t.score is not None else -np.inf,
            reverse=True,
        )
        partial = None
        if not done:
            # an early answer: the trial with the best mean score over the folds it finished,
            # served as the bag of those folds' models
            partial = max(
                (t for t in outcome.trials if t.models and t.fold_scores),
                key=lambda t: float(np.mean(t.fold_scores)),
                default=None,
            )
            if partial is None:
                raise ParameterError(
                    f"no fold of any trial completed within time_budget={budget:g} s "
                    f"({len(outcome.trials)} started); give a larger budget or a smaller "
                    "search space"
                )
            partial.score = float(np.mean(partial.fold_scores))
            logger.warning(
                "no trial completed all %d folds in %g s: serving trial %d (%s) on %d fold(s)",
                len(problem.folds),
                budget,
                partial.number,
                partial.family,
                len(partial.models or []),
            )
            done = [partial]
        best = done[0]
        cands = done[:VOTING_CANDIDATES]
        preds = [t.oof for t in cands]
        marks = {"search": time.monotonic()}
        ens_results: dict[str, EnsembleResult] = {}
        skipped: list[str] = []
        for method, key, build in (
            ("voting", "voting_ensemble", voting),
            ("stacking", "stacking_ensemble", stacking),
        ):
            if method in opts.ensembles:
                # one completed trial has nothing to combine; a build returns None when it
                # could not end in time
                res = build(problem, preds, end - tail) if len(cands) >= 2 else None  # type: ignore[operator]
                if res is None:
                    skipped.append(key)
                else:
                    ens_results[key] = res
        metric = problem.metric
        # every requested ensemble has its key: its score, or None when it was skipped
        performance: dict[str, float | None] = {"single_best": metric.to_value(float(best.score))}
        for key in skipped:
            performance[key] = None
        for key, res in ens_results.items():
            performance[key] = metric.to_value(res.score)
        # the served model: a bag of fold models per member; the best of single / voting /
        # stacking whose registration (estimated from the members' sizes) still fits
        options = [("single_best", float(best.score))] + [
            (key, res.score) for key, res in ens_results.items()
        ]
        options.sort(key=lambda o: o[1], reverse=True)  # stable: the single model on ties

        def members_of(key: str) -> list[TrialResult]:
            if key == "single_best":
                return [best]
            return [cands[i] for i in ens_results[key].members]

        measured: dict[int, float] = {}

        def save_cost(key: str) -> float:
            """The registration's time, from saves timed now, on the machine as it is."""
            if not opts.register:
                return 0.0
            for m in members_of(key):
                if m.number not in measured:
                    measured[m.number] = _measure_save_s(m)
            return REGISTER_BASE_S + sum(measured[m.number] for m in members_of(key))

        # the best option whose registration fits, measured best first: the measuring stops at
        # the first that fits (each member costs about one fold model's save)
        for key, score in options:
            if save_cost(key) <= end - time.monotonic() - 0.5 * tail:
                final_key, final_score = key, score
                break
        else:
            final_key, final_score = min(options, key=lambda o: save_cost(o[0]))
        if final_key != options[0][0]:
            logger.info("%s would not register in time; serving %s", options[0][0], final_key)
        members = members_of(final_key)
        if final_key == "single_best":
            arch, weights, meta = "single", None, None
        else:
            res = ens_results[final_key]
            arch = "voting" if final_key == "voting_ensemble" else "stacking"
            weights, meta = res.weights, res.meta
        registration_estimate = save_cost(final_key)
        shrunk = None
        room = end - time.monotonic() - 0.5 * tail
        if registration_estimate > 0 and registration_estimate > room:
            # even the cheapest option would not register in time: its forests keep the share
            # of their trees that does (nothing to shrink where nothing is registered: the
            # estimate is 0 and a late search must not divide by it)
            fraction = max(0.0, room - REGISTER_BASE_S) / registration_estimate
            shrunk = _shrink_members(members, fraction)
            if shrunk is not None:
                registration_estimate = REGISTER_BASE_S + sum(_measure_save_s(m) for m in members)
        scales = None
        if problem.task == "ranking":
            scales = []
            for m in members:  # the rows the member's folds predicted
                rows = np.concatenate([va for _, va in problem.folds[: len(m.models or [])]])
                scales.append((float(np.mean(m.oof[rows])), float(np.std(m.oof[rows]))))
        marks["ensembles"] = time.monotonic()
        adapter = AutoMLAdapter.build(
            arch,
            problem.task,
            problem.n_classes,
            problem.x.shape[1],
            encoder,
            [{"family": m.family, "params": m.params, "trial": m.number} for m in members],
            [m.models for m in members],  # type: ignore[misc]
            weights,
            scales,
            meta,
            opts.seed,
        )
        marks["build"] = time.monotonic()
        importance, source = _feature_importance(done, encoder, problem)
        if not importance:  # families without importances of their own (k-NN, SVM, MLP)
            importance, source = _permutation_importance(
                best, encoder, problem, deadline=end - 0.5 * tail
            )
        marks["importance"] = time.monotonic()
        report = AutoMLReport(
            best_model=DISPLAY_NAMES[best.family],
            best_score=metric.to_value(float(best.score)),
            final_model=final_key,
            final_score=metric.to_value(final_score),
            training_time="",
            training_time_s=0.0,
            models_evaluated=len([t for t in outcome.trials if t.state == "complete"]),
            trials_pruned=len([t for t in outcome.trials if t.state in ("pruned", "timeout")]),
            trials_failed=len([t for t in outcome.trials if t.state == "failed"]),
            feature_importance=importance,
            feature_importance_source=source,
            ensemble_performance=performance,
            metric=metric.name,
            greater_is_better=metric.greater_is_better,
            task_type=opts.task,
            budget_s=budget,
            search_time_s=round(t_search, 3),
            cv_folds=len(problem.folds),
            n_rows=int(len(problem.y)),
            n_columns=int(problem.x.shape[1]),
            members=[
                {
                    "trial": m.number,
                    "family": m.family,
                    "params": m.params,
                    "weight": None if weights is None else weights[i],
                }
                for i, m in enumerate(members)
            ],
            scores_by_family=_by_family(outcome.trials, metric),
            search_history=[_history(t, metric) for t in outcome.trials],
            study={
                "storage": _redact(outcome.storage),
                "study_name": outcome.study_name,
                "sampler": "TPESampler(multivariate)"
                if outcome.sampler == "bayesian"
                else "RandomSampler",
                "n_jobs": outcome.n_jobs,
            },
            config=opts.to_dict(),
            ensembles_skipped=skipped,
            best_option=options[0][0],
            registration_estimate_s=round(registration_estimate, 3),
            trials_killed=outcome.killed,
            early_answer=None
            if partial is None
            else {"trial": partial.number, "folds": len(partial.models or [])},
            registration_shrunk_to=shrunk,
        )
        model = self._handle(adapter, opts, problem, encoder, codec, y_given, report)
        marks["handle"] = time.monotonic()
        # latency: one row, then a batch of up to 1000 rows when it fits before the end
        t = time.perf_counter()
        adapter.predict_raw(problem.x[:1])
        single = time.perf_counter() - t
        report["latency_ms_single_row"] = round(single * 1e3, 3)
        n_lat = min(100, len(problem.x))
        t = time.perf_counter()
        adapter.predict_raw(problem.x[:n_lat])
        batch = time.perf_counter() - t
        room = end - (REGISTER_MIN_S if opts.register else 0.0) - time.monotonic()
        if len(problem.x) > n_lat and 12 * batch < room:
            n_lat = min(1000, len(problem.x))
            t = time.perf_counter()
            adapter.predict_raw(problem.x[:n_lat])
            batch = time.perf_counter() - t
        report["latency_ms_per_row"] = round(batch * 1e3 / n_lat, 4)
        marks["latency"] = time.monotonic()
        steps, last = {}, t0
        for key, value in marks.items():
            steps[key] = round(value - last, 3)
            last = value
        report["step_times_s"] = steps
        model.training["automl_report"] = report
        _set_elapsed(model, t0, budget)
        return model

    def _handle(
        self,
        adapter: AutoMLAdapter,
        opts: AutoMLOptions,
        problem: Problem,
        encoder: ColumnEncoder,
        codec: Any,
        y_given: np.ndarray,
        report: AutoMLReport,
    ) -> AutoMLModel:
        from ..models._data import fingerprint, input_signature

        keep = np.arange(min(256, len(problem.x)))
        metrics = {report["metric"]: report["final_score"], "cv_folds": len(problem.folds)}
        for key, value in report["ensemble_performance"].items():
            if value is not None:
                metrics[f"{key}_{report['metric']}"] = value
        signature = {
            "inputs": dict(input_signature(problem.x), columns=encoder.columns),
            "classes": None if codec is None else codec.classes,
        }
        name = opts.name or f"automl-{opts.task}"
        model = AutoMLModel(
            adapter,
            name=name,
            task=opts.task,
            config=opts.to_dict(),
            codec=codec,
            metrics=metrics,
            training={"seed": opts.seed, "budget_s": opts.budget_s},
            signature=signature,
            fingerprint=fingerprint(problem.x, np.asarray(y_given)),
            holdout=(problem.x[keep], np.asarray(y_given)[keep]),
        )
        model.report = report
        return model

    # -- registry ---------------------------------------------------------------------------------
    def load_model_sync(self, name: str, version: int | str | None = None) -> AutoMLModel:
        """Load a registered AutoML model (its report included)."""
        return AutoMLModel.from_handle(self.manager.load_model_sync(name, version))

    async def load_model(self, name: str, version: int | str | None = None) -> AutoMLModel:
        """Coroutine of :meth:`load_model_sync`."""
        return await asyncio.to_thread(self.load_model_sync, name, version)

    # -- recommendation ---------------------------------------------------------------------------
    def train_recommendation_model_sync(
        self,
        user_features: Any = None,
        music_features: Any = None,
        interaction_data: Any = None,
        task_config: dict[str, Any] | None = None,
    ) -> Any:
        """Synchronous twin of :meth:`train_recommendation_model`."""
        return train_recommender(self, user_features, music_features, interaction_data, task_config)

    async def train_recommendation_model(
        self,
        user_features: Any = None,
        music_features: Any = None,
        interaction_data: Any = None,
        task_config: dict[str, Any] | None = None,
    ) -> Any:
        """Candidate generation then a learning-to-rank model; see ``docs/automl.md``.

        Returns a :class:`~ml_utilities.recommend.RecommendationModel` with
        ``recommend(user_id, k)`` and ``report`` (ndcg@k and recall@k of the model and of the
        popularity and item-kNN baselines on the held-out share of each user's items).
        """
        return await asyncio.to_thread(
            self.train_recommendation_model_sync,
            user_features,
            music_features,
            interaction_data,
            task_config,
        )


def _import_frameworks(opts: AutoMLOptions) -> None:
    import optuna  # noqa: F401
    import sklearn.ensemble  # noqa: F401
    import sklearn.linear_model  # noqa: F401

    if "lightgbm" in opts.algorithms:
        import lightgbm  # noqa: F401
    if "xgboost" in opts.algorithms:
        import xgboost  # noqa: F401
    if "neural_network" in opts.algorithms:
        import torch  # noqa: F401


def _grades(y: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Relevance as LightGBM/XGBoost rankers want it: integers 0..30."""
    if np.all(y == np.round(y)) and y.max() <= 30:
        return y
    out = np.zeros_like(y)
    for g in np.unique(groups):
        idx = np.flatnonzero(groups == g)
        pos = idx[y[idx] > 0]
        if len(pos):
            ranks = np.argsort(np.argsort(y[pos], kind="stable"), kind="stable")
            out[pos] = 1 + np.floor(4 * ranks / max(len(pos), 1)).clip(0, 3)
    return out


def _history(t: TrialResult, metric: Any) -> dict[str, Any]:
    return {
        "trial": t.number,
        "family": t.family,
        "state": t.state,
        "score": None if t.score is None else metric.to_value(t.score),
        "fold_scores": [metric.to_value(s) for s in t.fold_scores],
        "duration_s": round(t.duration_s, 4),
        "started_s": round(t.started_s, 4),
        "params": t.params,
        "feature_keep_fraction": t.keep_fraction,
        "feature_products": t.products,
        "error": t.error,
    }


def _by_family(trials: list[TrialResult], metric: Any) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for t in trials:
        d = out.setdefault(t.family, {"trials": 0, "completed": 0, "best": None})
        d["trials"] += 1
        if t.state == "complete" and t.score is not None:
            d["completed"] += 1
            v = metric.to_value(t.score)
            if d["best"] is None or (v > d["best"]) == metric.greater_is_better:
                d["best"] = v
    return out


def _feature_importance(
    done: list[TrialResult], encoder: ColumnEncoder, problem: Problem
) -> tuple[dict[str, float], str | None]:
    """Importances of the best trial whose family has them, mapped to the input columns."""
    n_in = problem.x.shape[1]
    for t in done:
        fam = FAMILIES[t.family]
        total = np.zeros(n_in)
        ok = True
        for fe, model in t.models or []:
            n_fe = fe.n_outputs(n_in)
            imp = fam.importances(model, n_fe)
            if imp is None:
                ok = False
                break
            imp = np.asarray(imp, dtype=np.float64)
            s = imp.sum()
            if s <= 0:
                continue
            for j, v in enumerate(imp / s):
                src = fe.source_columns(j, n_in)
                for c in src:
                    total[c] += v / len(src)
        if ok and total.sum() > 0:
            share = total / total.sum()
            order = np.argsort(-share, kind="stable")
            return (
                {encoder.columns[i]: round(float(share[i]), 6) for i in order if share[i] > 0},
                f"trial {t.number} ({DISPLAY_NAMES[t.family]})",
            )
    return {}, None


def _set_elapsed(model: AutoMLModel, t0: float, budget: float) -> None:
    elapsed = time.monotonic() - t0
    report = model.report
    report["training_time_s"] = round(elapsed, 3)
    report["training_time"] = format_duration(elapsed)
    report["budget_used"] = round(elapsed / budget, 4)
    model.training["duration_s"] = round(elapsed, 3)


def _measure_save_s(trial: TrialResult) -> float:
    """Seconds registering ``trial``'s fold models will take: one fold model's part
    (:meth:`Family.save_probe`) saved and hashed now, scaled to the whole, times the folds."""
    import tempfile
    from pathlib import Path

    from ..models._files import sha256_file

    if not trial.models:
        return 0.0
    fam = FAMILIES[trial.family]
    part, scale = fam.save_probe(trial.models[0][1])

    def timed() -> float:
        with tempfile.TemporaryDirectory(prefix="mlu-save-probe-") as tmp:
            t = time.perf_counter()
            part.save(Path(tmp))
            for f in Path(tmp).rglob("*"):
                if f.is_file():
                    sha256_file(f)
            return time.perf_counter() - t

    one = timed()
    if trial.family not in _PROBED:  # a process's first save holds its format's imports
        _PROBED.add(trial.family)
        one = min(one, timed())
    return REGISTER_OVERHEAD * one * scale * len(trial.models)


def _shrink_members(members: list[TrialResult], fraction: float) -> float | None:
    """Shrink the fold models of ``members`` to about ``fraction`` of their size where their
    family can (forests keep their first trees); the fraction kept, or None if none could."""
    fraction = min(1.0, 0.9 * fraction)
    done = False
    for m in members:
        fam = FAMILIES[m.family]
        folds = [(fe, fam.shrink(model, fraction)) for fe, model in m.models or []]
        if folds and all(model is not None for _, model in folds):
            m.models = folds  # type: ignore[assignment]
            done = True
    if done:
        logger.warning(
            "the model would not register within the budget: its forests keep %.0f%% of their "
            "trees",
            100 * fraction,
        )
    return round(fraction, 4) if done else None


#: validation rows per fold that permutation importance scores at most
PERMUTATION_ROWS = 400


def _permutation_importance(
    trial: TrialResult, encoder: ColumnEncoder, problem: Problem, deadline: float
) -> tuple[dict[str, float], str | None]:
    """Permutation importance of ``trial``'s fold models on their own validation rows.

    Each input column is shuffled (products built from it follow) in up to
    :data:`PERMUTATION_ROWS` validation rows of each fold, and the drop of the score is the
    column's importance (negative drops count as 0). Folds are added while they fit before
    ``deadline`` (the first fold's cost, measured, predicts the next); empty when even one
    fold does not fit.
    """
    if trial.models is None:
        return {}, None
    n_in = problem.x.shape[1]
    rng = np.random.default_rng(problem.seed)
    drops = np.zeros(n_in)
    used = 0
    started = time.monotonic()
    # an early answer holds the first folds only
    for (fe, model), (_, va) in zip(trial.models, problem.folds[: len(trial.models)], strict=True):
        now = time.monotonic()
        if used and now + 1.2 * (now - started) / used > deadline:
            break
        if problem.groups is not None or len(va) <= PERMUTATION_ROWS:
            rows = va  # ranking: whole groups
        else:
            rows = np.sort(rng.choice(va, PERMUTATION_ROWS, replace=False))
        x = problem.x[rows]
        base = problem.score(rows, model.predict_raw(fe.transform(x)))
        t_one = time.monotonic()
        fold = np.zeros(n_in)
        for j in range(n_in):
            if j == 1 and time.monotonic() + (time.monotonic() - t_one) * n_in > deadline:
                return _importance_dict(drops, encoder, used, trial)
            xp = x.copy()
            xp[:, j] = x[rng.permutation(len(rows)), j]
            fold[j] = base - problem.score(rows, model.predict_raw(fe.transform(xp)))
        drops += fold
        used += 1
    return _importance_dict(drops, encoder, used, trial)


def _importance_dict(
    drops: np.ndarray, encoder: ColumnEncoder, used: int, trial: TrialResult
) -> tuple[dict[str, float], str | None]:
    share = np.clip(drops, 0.0, None)
    if not used or share.sum() <= 0:
        return {}, None
    share = share / share.sum()
    order = np.argsort(-share, kind="stable")
    return (
        {encoder.columns[i]: round(float(share[i]), 6) for i in order if share[i] > 0},
        f"permutation, trial {trial.number} ({DISPLAY_NAMES[trial.family]}), {used} fold(s)",
    )


def _summary(report: AutoMLReport) -> dict[str, Any]:
    keys = (
        "best_model",
        "best_score",
        "final_model",
        "final_score",
        "training_time",
        "training_time_s",
        "models_evaluated",
        "feature_importance",
        "ensemble_performance",
        "metric",
        "latency_ms_per_row",
        "budget_s",
    )
    from .report import _clean

    return _clean({k: report.get(k) for k in keys})


def _redact(url: str) -> str:
    """A storage URL without its password."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a URL SQLAlchemy cannot parse is shown as given
        return url
