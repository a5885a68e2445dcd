"""Model families of the search: their search spaces, good first settings and fits.

Every family trains single-threaded (the search runs trials in parallel instead), honours a
deadline (boosting rounds, forest chunks and network epochs check it; a fit past its deadline
raises :class:`DeadlineExceeded`), and stops boosting and networks early on the fold's
validation rows. Tasks are ``classification`` (raw output: probabilities), ``regression``
(values) and ``ranking`` (scores; LightGBM lambdarank and XGBoost ``rank:ndcg`` learn from the
groups, the others regress the relevance).

A fit returns its fold model inside the :mod:`ml_utilities.models` adapter of its framework
(:meth:`~ml_utilities.models.adapters.Adapter.adopt`), which predicts, saves, loads and exports
it: scikit-learn pipelines in a ``SklearnAdapter`` (architecture ``prefit``), boosters in an
``XGBoostAdapter`` or ``LightGBMAdapter``, the network in a ``TorchAdapter`` (``mlp``, with its
preprocessing and target scale). Ranking models are ``regression`` adapters: they give scores.
"""

from __future__ import annotations

import copy
import json
import math
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, cast

import numpy as np

from ..exceptions import ParameterError
from ..models.adapters.base import Adapter
from ..models.adapters.boosting import LightGBMAdapter, XGBoostAdapter
from ..models.adapters.sklearn import PREFIT, SklearnAdapter
from ..models.adapters.torch import TorchAdapter
from ..models.skops_io import load_skops

__all__ = [
    "FAMILIES",
    "DISPLAY_NAMES",
    "DeadlineExceeded",
    "FitContext",
    "Family",
    "family",
    "make_adapter",
]


#: share of a forest's trees saved to measure what saving the whole forest costs
PROBE_TREES_SHARE = 0.05


class DeadlineExceeded(RuntimeError):
    """A fit ran past its trial's deadline."""


@dataclass
class FitContext:
    """What a family needs to know about the data of one fold."""

    task: str  # classification, regression, ranking
    n_classes: int | None
    categorical: list[int]
    seed: int
    deadline: float = float("inf")
    groups_train: np.ndarray | None = None  # group sizes, rows contiguous
    groups_val: np.ndarray | None = None
    ranking_k: int = 10
    extra: dict[str, Any] = field(default_factory=dict)
    n_features: int = 0  # columns of the fold's input (after its feature engineering)
    #: at the deadline, a boosting run, forest or network keeps what it has built so far
    #: (the search's default configurations: they must give an answer) instead of raising
    anytime: bool = False

    def check(self) -> None:
        if time.monotonic() > self.deadline:
            raise DeadlineExceeded("trial deadline passed")

    def stop_here(self, built: bool) -> bool:
        """At a point where a fit could stop: True to stop and keep what was ``built``
        (anytime fits past their deadline); raises :class:`DeadlineExceeded` for the others."""
        if time.monotonic() <= self.deadline:
            return False
        if self.anytime and built:
            return True
        raise DeadlineExceeded("trial deadline passed")


def make_adapter(
    cls: type[Adapter],
    architecture: str,
    task: str,
    n_classes: int | None,
    n_features: int,
    seed: int,
    hyperparameters: dict[str, Any] | None = None,
) -> Adapter:
    """An unfitted adapter for a model of an AutoML ``task``: ranking models give scores, so
    they are ``regression`` adapters."""
    classify = task == "classification"
    return cls(
        architecture,
        "classification" if classify else "regression",
        hyperparameters or {},
        n_classes=n_classes if classify else None,
        input_shape=(int(n_features),),
        seed=seed,
    )


DISPLAY_NAMES = {
    "linear": "LinearModel",
    "knn": "KNeighbors",
    "svm": "SVM",
    "random_forest": "RandomForest",
    "extra_trees": "ExtraTrees",
    "xgboost": "XGBoost",
    "lightgbm": "LightGBM",
    "neural_network": "NeuralNetwork",
}


class Family(ABC):
    """One model family: ``suggest`` a configuration and ``fit`` it into its adapter."""

    name: str = ""
    #: ONNX converter of one fitted model, or "" where none exists
    onnx: str = ""
    #: the adapter that holds, predicts, saves and loads the family's fold models
    adapter_class: ClassVar[type[Adapter]]
    architecture: ClassVar[str]

    @abstractmethod
    def suggest(self, trial: Any, n: int, n_features: int, task: str) -> dict[str, Any]:
        """Draw a configuration from ``trial`` (names prefixed with the family)."""

    def defaults(self, n: int, n_features: int, task: str) -> list[dict[str, Any]]:
        return []

    @abstractmethod
    def fit(
        self,
        params: dict[str, Any],
        x: np.ndarray,
        y: np.ndarray,
        x_val: np.ndarray,
        y_val: np.ndarray,
        ctx: FitContext,
    ) -> Adapter:
        """Fit on ``(x, y)``; boosting and networks stop early on ``(x_val, y_val)``. Returns
        the fitted model in its adapter."""

    def adapter(
        self, ctx: FitContext, n_features: int, hyperparameters: dict[str, Any] | None = None
    ) -> Adapter:
        """An unfitted adapter of the family's framework for the fold ``ctx`` describes."""
        return make_adapter(
            self.adapter_class,
            self.architecture,
            ctx.task,
            ctx.n_classes,
            n_features,
            ctx.seed,
            hyperparameters,
        )

    def load(self, folder: Path, ctx: FitContext, *, allow_pickle: bool = False) -> Adapter:
        """Read a fold model that its adapter's ``save`` wrote into ``folder``."""
        adapter = self.adapter(ctx, ctx.n_features)
        adapter.load_files(folder, allow_pickle=allow_pickle)
        return adapter

    def importances(self, model: Any, n_features: int) -> np.ndarray | None:
        return None

    def save_probe(self, model: Adapter) -> tuple[Adapter, float]:
        """A part of fold model ``model`` whose save, timed on the machine as it is now,
        predicts the whole one's: (the part, the whole's cost over the part's)."""
        return model, 1.0

    def shrink(self, model: Adapter, fraction: float) -> Adapter | None:
        """A smaller ``model`` (about ``fraction`` of its size) that saves faster, or None
        where the family has no such thing."""
        return None


def _p(trial: Any, family: str) -> Any:
    """Prefix every hyperparameter with its family, so the spaces never collide."""

    class _Prefixed:
        def __getattr__(self, method: str) -> Any:
            fn = getattr(trial, method)

            def call(name: str, *args: Any, **kw: Any) -> Any:
                return fn(f"{family}.{name}", *args, **kw)

            return call

    return _Prefixed()


# -- scikit-learn families (with a preprocessing pipeline) ---------------------------------
def _preprocessor(categorical: list[int], n_features: int, scale: bool) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = [j for j in range(n_features) if j not in set(categorical)]
    num_steps: list[tuple[str, Any]] = [
        ("impute", SimpleImputer(strategy="median", keep_empty_features=True))
    ]
    if scale:
        num_steps.append(("scale", StandardScaler()))
    parts: list[tuple[str, Any, list[int]]] = []
    if numeric:
        parts.append(("num", Pipeline(num_steps), numeric))
    if categorical:
        cat = Pipeline(
            [
                ("impute", SimpleImputer(strategy="constant", fill_value=-1.0)),
                ("onehot", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
            ]
        )
        parts.append(("cat", cat, list(categorical)))
    return ColumnTransformer(parts, remainder="drop", sparse_threshold=0.0)


class SklearnFamily(Family):
    onnx = "skl2onnx"
    adapter_class = SklearnAdapter
    architecture = PREFIT
    scale = True

    def estimator(self, params: dict[str, Any], ctx: FitContext, n: int) -> Any:
        """The scikit-learn estimator after the preprocessing (families that use ``fit``)."""
        raise ParameterError(f"{self.name} builds its own pipeline")

    def fit(self, params, x, y, x_val, y_val, ctx):  # noqa: ANN001 - see Family.fit
        from sklearn.pipeline import Pipeline

        ctx.check()
        pipe = Pipeline(
            [
                ("prep", _preprocessor(ctx.categorical, x.shape[1], self.scale)),
                ("model", self.estimator(params, ctx, len(x))),
            ]
        )
        pipe.fit(x, y)
        return self.adapter(ctx, x.shape[1]).adopt(pipe)


class LinearFamily(SklearnFamily):
    name = "linear"

    def suggest(self, trial, n, n_features, task):  # noqa: ANN001
        t = _p(trial, self.name)
        if task == "classification":
            return {"C": t.suggest_float("C", 1e-3, 1e3, log=True)}
        return {"alpha": t.suggest_float("alpha", 1e-3, 1e3, log=True)}

    def defaults(self, n, n_features, task):  # noqa: ANN001
        return [{"C": 1.0}] if task == "classification" else [{"alpha": 1.0}]

    def estimator(self, params, ctx, n):  # noqa: ANN001
        from sklearn.linear_model import LogisticRegression, Ridge

        if ctx.task == "classification":
            return LogisticRegression(C=params["C"], max_iter=2000)
        return Ridge(alpha=params["alpha"])

    def importances(self, model, n_features):  # noqa: ANN001
        pipe = model.model
        return _pipeline_importances(pipe, n_features, np.abs(np.atleast_2d(pipe[-1].coef_)))


class KNNFamily(SklearnFamily):
    name = "knn"

    def suggest(self, trial, n, n_features, task):  # noqa: ANN001
        t = _p(trial, self.name)
        return {
            "n_neighbors": t.suggest_int("n_neighbors", 1, max(2, min(64, n // 4)), log=True),
            "weights": t.suggest_categorical("weights", ["uniform", "distance"]),
        }

    def defaults(self, n, n_features, task):  # noqa: ANN001
        return [{"n_neighbors": min(5, max(1, n // 4)), "weights": "distance"}]

    def estimator(self, params, ctx, n):  # noqa: ANN001
        from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor

        cls = KNeighborsClassifier if ctx.task == "classification" else KNeighborsRegressor
        return cls(n_neighbors=min(params["n_neighbors"], n - 1), weights=params["weights"])


class SVMFamily(SklearnFamily):
    name = "svm"

    def suggest(self, trial, n, n_features, task):  # noqa: ANN001
        t = _p(trial, self.name)
        out = {
            "C": t.suggest_float("C", 1e-2, 1e3, log=True),
            "gamma": t.suggest_float("gamma", 1e-4, 1.0, log=True),
        }
        if task != "classification":
            out["epsilon"] = t.suggest_float("epsilon", 1e-3, 1.0, log=True)
        return out

    def defaults(self, n, n_features, task):  # noqa: ANN001
        d: dict[str, Any] = {"C": 1.0, "gamma": 1.0 / max(n_features, 1)}
        if task != "classification":
            d["epsilon"] = 0.1
        return [d]

    def estimator(self, params, ctx, n):  # noqa: ANN001
        from sklearn.calibration import CalibratedClassifierCV
        from sklearn.svm import SVC, SVR

        if ctx.task == "classification":
            # Platt scaling on 3 internal folds (what SVC(probability=True) did before 1.9)
            return CalibratedClassifierCV(
                SVC(C=params["C"], gamma=params["gamma"]), method="sigmoid", cv=3, ensemble=False
            )
        return SVR(C=params["C"], gamma=params["gamma"], epsilon=params["epsilon"])


class ForestFamily(SklearnFamily):
    scale = False
    chunk = 50

    def suggest(self, trial, n, n_features, task):  # noqa: ANN001
        t = _p(trial, self.name)
        return {
            "n_estimators": t.suggest_int("n_estimators", 100, 500, step=50),
            "max_features": t.suggest_float("max_features", 0.05, 1.0),
            "min_samples_leaf": t.suggest_int("min_samples_leaf", 1, 20, log=True),
            "criterion": t.suggest_categorical(
                "criterion",
                ["gini", "entropy"] if task == "classification" else ["squared_error"],
            ),
        }

    def defaults(self, n, n_features, task):  # noqa: ANN001
        return [
            {
                "n_estimators": 300,
                "max_features": float(np.sqrt(n_features) / n_features)
                if task == "classification"
                else 1.0,
                "min_samples_leaf": 1,
                "criterion": "gini" if task == "classification" else "squared_error",
            }
        ]

    @abstractmethod
    def _cls(self, task: str) -> Any:
        """The forest class for ``task``."""

    def fit(self, params, x, y, x_val, y_val, ctx):  # noqa: ANN001
        from sklearn.pipeline import Pipeline

        task = "classification" if ctx.task == "classification" else "regression"
        model = self._cls(task)(
            n_estimators=0,
            max_features=params["max_features"],
            min_samples_leaf=params["min_samples_leaf"],
            criterion=params["criterion"],
            random_state=ctx.seed,
            warm_start=True,
            n_jobs=1,
        )
        prep = _preprocessor(ctx.categorical, x.shape[1], False)
        xt = prep.fit_transform(x)
        # grow in chunks (10 trees first, then up to `chunk`) so a slow forest stops before its
        # deadline: a chunk starts only when its expected time, from the trees so far, fits
        total, per_tree = 0, 0.0
        while total < params["n_estimators"]:
            if ctx.stop_here(total > 0):
                break
            # an anytime fit (a default configuration) starts with 2 trees, so that it has a
            # forest even when the deadline comes soon (the trees are the same whatever the
            # chunks: warm_start draws each new tree's seed in turn)
            first = 2 if ctx.anytime else 10
            step = min(params["n_estimators"] - total, self.chunk if total else first)
            if total and time.monotonic() + 1.3 * step * per_tree > ctx.deadline:
                if ctx.anytime:
                    break
                raise DeadlineExceeded("the next trees would pass the trial deadline")
            t = time.monotonic()
            model.set_params(n_estimators=total + step)
            model.fit(xt, y)
            per_tree = max(per_tree, (time.monotonic() - t) / step)
            total += step
        return self.adapter(ctx, x.shape[1]).adopt(Pipeline([("prep", prep), ("model", model)]))

    def importances(self, model, n_features):  # noqa: ANN001
        pipe = model.model
        return _pipeline_importances(pipe, n_features, pipe[-1].feature_importances_[None, :])

    def save_probe(self, model: Adapter) -> tuple[Adapter, float]:
        # skops writes every node: a few of the trees, saved, predict the whole forest
        forest = model.model[-1]
        n = len(forest.estimators_)
        m = max(1, math.ceil(PROBE_TREES_SHARE * n))
        if m >= n:
            return model, 1.0
        part = self._first_trees(model, m)
        return part, _nodes(forest) / max(1, _nodes(part.model[-1]))

    def shrink(self, model: Adapter, fraction: float) -> Adapter | None:
        n = len(model.model[-1].estimators_)
        return self._first_trees(model, max(1, min(n, int(fraction * n))))

    @staticmethod
    def _first_trees(model: Adapter, m: int) -> Adapter:
        """``model`` with the first ``m`` trees of its forest (an unbiased forest of m trees:
        each tree was grown on its own bootstrap and features)."""
        from sklearn.pipeline import Pipeline

        pipe = model.model
        forest = copy.copy(pipe[-1])
        forest.estimators_ = forest.estimators_[:m]
        forest.n_estimators = m
        part = copy.copy(model)
        part.model = Pipeline(list(pipe.steps[:-1]) + [(pipe.steps[-1][0], forest)])
        return part


def _nodes(forest: Any) -> int:
    return sum(int(e.tree_.node_count) for e in forest.estimators_)


class RandomForestFamily(ForestFamily):
    name = "random_forest"

    def _cls(self, task: str) -> Any:
        from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

        return RandomForestClassifier if task == "classification" else RandomForestRegressor


class ExtraTreesFamily(ForestFamily):
    name = "extra_trees"

    def _cls(self, task: str) -> Any:
        from sklearn.ensemble import ExtraTreesClassifier, ExtraTreesRegressor

        return ExtraTreesClassifier if task == "classification" else ExtraTreesRegressor


def _pipeline_importances(model: Any, n_features: int, weights: np.ndarray) -> np.ndarray:
    """Map a pipeline's per-output-column importances back to its input columns."""
    prep = model[0]
    w = np.abs(weights).sum(axis=0)
    out = np.zeros(n_features)
    pos = 0
    for name, trans, cols in prep.transformers_:
        if name == "remainder" or trans == "drop":
            continue
        if name == "cat":
            cats = trans.named_steps["onehot"].categories_
            for col, c in zip(cols, cats, strict=True):
                out[col] += w[pos : pos + len(c)].sum()
                pos += len(c)
        else:
            out[list(cols)] += w[pos : pos + len(cols)]
            pos += len(cols)
    return out


# -- gradient boosting -------------------------------------------------------------------------
_BOOST_ROUNDS = 1000
_PATIENCE = 50
#: rankers see many rows per user; their ndcg plateaus early
_RANK_ROUNDS, _RANK_PATIENCE = 400, 20


class LightGBMFamily(Family):
    name = "lightgbm"
    onnx = "onnxmltools"
    adapter_class = LightGBMAdapter
    architecture = "gbdt"

    def suggest(self, trial, n, n_features, task):  # noqa: ANN001
        t = _p(trial, self.name)
        return {
            "learning_rate": t.suggest_float("learning_rate", 0.01, 0.3, log=True),
            "num_leaves": t.suggest_int("num_leaves", 4, 256, log=True),
            "min_child_samples": t.suggest_int("min_child_samples", 2, 100, log=True),
            "feature_fraction": t.suggest_float("feature_fraction", 0.3, 1.0),
            "bagging_fraction": t.suggest_float("bagging_fraction", 0.5, 1.0),
            "lambda_l2": t.suggest_float("lambda_l2", 1e-3, 10.0, log=True),
        }

    def defaults(self, n, n_features, task):  # noqa: ANN001
        base = {
            "learning_rate": 0.1,
            "num_leaves": 31,
            "min_child_samples": 20,
            "feature_fraction": 1.0,
            "bagging_fraction": 1.0,
            "lambda_l2": 1e-3,
        }
        small = dict(
            base,
            learning_rate=0.05,
            num_leaves=8,
            min_child_samples=5,
            feature_fraction=0.7,
            bagging_fraction=0.8,
            lambda_l2=1.0,
        )
        return [base, small]

    def _params(self, params: dict[str, Any], ctx: FitContext) -> dict[str, Any]:
        out: dict[str, Any] = {
            "verbosity": -1,
            "num_threads": 1,
            "seed": ctx.seed,
            "deterministic": True,
            "force_col_wise": True,
            "learning_rate": params["learning_rate"],
            "num_leaves": params["num_leaves"],
            "min_child_samples": params["min_child_samples"],
            "feature_fraction": params["feature_fraction"],
            "bagging_fraction": params["bagging_fraction"],
            "bagging_freq": 1 if params["bagging_fraction"] < 1.0 else 0,
            "lambda_l2": params["lambda_l2"],
            "min_data_in_bin": 1,
        }
        if ctx.task == "classification":
            if ctx.n_classes == 2:
                out.update(objective="binary", metric="binary_logloss")
            else:
                out.update(objective="multiclass", num_class=ctx.n_classes, metric="multi_logloss")
        elif ctx.task == "ranking":
            out.update(objective="lambdarank", metric="ndcg", eval_at=[ctx.ranking_k])
        else:
            out.update(objective="regression", metric="l2")
        return out

    def fit(self, params, x, y, x_val, y_val, ctx):  # noqa: ANN001
        import lightgbm as lgb

        def deadline(env: Any) -> None:
            if ctx.stop_here(env.iteration > env.begin_iteration):
                raise lgb.callback.EarlyStopException(env.iteration, env.evaluation_result_list)

        train = lgb.Dataset(
            x,
            y,
            group=ctx.groups_train,
            categorical_feature=ctx.categorical or "auto",
            free_raw_data=True,
        )
        valid = lgb.Dataset(
            x_val,
            y_val,
            group=ctx.groups_val,
            reference=train,
            categorical_feature=ctx.categorical or "auto",
        )
        ranking = ctx.task == "ranking"
        booster = lgb.train(
            self._params(params, ctx),
            train,
            num_boost_round=_RANK_ROUNDS if ranking else _BOOST_ROUNDS,
            valid_sets=[valid],
            callbacks=[
                lgb.early_stopping(_RANK_PATIENCE if ranking else _PATIENCE, verbose=False),
                deadline,
            ],
        )
        best = booster.best_iteration or booster.current_iteration()
        best_only = lgb.Booster(model_str=booster.model_to_string(num_iteration=best))
        return self.adapter(ctx, x.shape[1]).adopt(best_only)

    def importances(self, model, n_features):  # noqa: ANN001
        gain = model.booster.feature_importance(importance_type="gain")
        return np.asarray(gain, dtype=np.float64)


class XGBoostFamily(Family):
    name = "xgboost"
    onnx = "onnxmltools"
    adapter_class = XGBoostAdapter
    architecture = "gbtree"

    def suggest(self, trial, n, n_features, task):  # noqa: ANN001
        t = _p(trial, self.name)
        return {
            "eta": t.suggest_float("eta", 0.01, 0.3, log=True),
            "max_depth": t.suggest_int("max_depth", 2, 10),
            "min_child_weight": t.suggest_float("min_child_weight", 1e-2, 20.0, log=True),
            "subsample": t.suggest_float("subsample", 0.5, 1.0),
            "colsample_bytree": t.suggest_float("colsample_bytree", 0.3, 1.0),
            "lambda": t.suggest_float("lambda", 1e-3, 10.0, log=True),
        }

    def defaults(self, n, n_features, task):  # noqa: ANN001
        return [
            {
                "eta": 0.3,
                "max_depth": 6,
                "min_child_weight": 1.0,
                "subsample": 1.0,
                "colsample_bytree": 1.0,
                "lambda": 1.0,
            }
        ]

    def _params(self, params: dict[str, Any], ctx: FitContext) -> dict[str, Any]:
        out = dict(params, nthread=1, seed=ctx.seed, tree_method="hist", verbosity=0)
        if ctx.task == "classification":
            if ctx.n_classes == 2:
                out.update(objective="binary:logistic", eval_metric="logloss")
            else:
                out.update(
                    objective="multi:softprob", num_class=ctx.n_classes, eval_metric="mlogloss"
                )
        elif ctx.task == "ranking":
            out.update(objective="rank:ndcg", eval_metric=f"ndcg@{ctx.ranking_k}")
        else:
            out.update(objective="reg:squarederror", eval_metric="rmse")
        return out

    def fit(self, params, x, y, x_val, y_val, ctx):  # noqa: ANN001
        import xgboost as xgb

        class Deadline(xgb.callback.TrainingCallback):
            def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
                return ctx.stop_here(True)  # True stops the training, keeping the rounds

        dtrain = xgb.DMatrix(x, y, group=ctx.groups_train)
        dval = xgb.DMatrix(x_val, y_val, group=ctx.groups_val)
        ranking = ctx.task == "ranking"
        booster = xgb.train(
            self._params(params, ctx),
            dtrain,
            num_boost_round=_RANK_ROUNDS if ranking else _BOOST_ROUNDS,
            evals=[(dval, "val")],
            early_stopping_rounds=_RANK_PATIENCE if ranking else _PATIENCE,
            verbose_eval=False,
            callbacks=[Deadline()],
        )
        best = getattr(booster, "best_iteration", None)
        if best is not None:
            booster = booster[: int(best) + 1]
        # predictions during the search stay single-threaded too; a loaded fold uses every core
        return self.adapter(ctx, x.shape[1], {"n_jobs": 1}).adopt(booster)

    def importances(self, model, n_features):  # noqa: ANN001
        gain = model.model.get_booster().get_score(importance_type="total_gain")
        out = np.zeros(n_features)
        for key, value in gain.items():
            out[int(key[1:])] = value
        return out


# -- PyTorch MLP -------------------------------------------------------------------------------
class NeuralNetworkFamily(Family):
    """A PyTorch MLP (ReLU, dropout, AdamW) on one-hot and standardised inputs."""

    name = "neural_network"
    adapter_class = TorchAdapter
    architecture = "mlp"
    max_epochs = 200
    patience = 12

    def suggest(self, trial, n, n_features, task):  # noqa: ANN001
        t = _p(trial, self.name)
        return {
            "n_layers": t.suggest_int("n_layers", 1, 3),
            "width": t.suggest_int("width", 32, 512, log=True),
            "dropout": t.suggest_float("dropout", 0.0, 0.5),
            "lr": t.suggest_float("lr", 1e-4, 1e-2, log=True),
            "weight_decay": t.suggest_float("weight_decay", 1e-6, 1e-1, log=True),
            "batch_size": t.suggest_categorical("batch_size", [32, 64, 128, 256]),
        }

    def defaults(self, n, n_features, task):  # noqa: ANN001
        return [
            {
                "n_layers": 2,
                "width": 256,
                "dropout": 0.1,
                "lr": 1e-3,
                "weight_decay": 1e-4,
                "batch_size": 64 if n < 5000 else 256,
            }
        ]

    def _adapter(self, params: dict[str, Any], ctx: FitContext, n_in: int) -> TorchAdapter:
        """The ``mlp`` adapter of ``params``: ``n_layers`` hidden layers of ``width`` units."""
        hyper = {
            "hidden_sizes": [int(params["width"])] * int(params["n_layers"]),
            "dropout": float(params["dropout"]),
            "activation": "relu",
            "learning_rate": float(params["lr"]),
            "weight_decay": float(params["weight_decay"]),
            "batch_size": int(params["batch_size"]),
            "epochs": self.max_epochs,
        }
        return cast(TorchAdapter, self.adapter(ctx, n_in, hyper))

    def fit(self, params, x, y, x_val, y_val, ctx):  # noqa: ANN001
        import torch

        prep = _preprocessor(ctx.categorical, x.shape[1], True)
        xt = torch.from_numpy(np.asarray(prep.fit_transform(x), dtype=np.float32))
        xv = torch.from_numpy(np.asarray(prep.transform(x_val), dtype=np.float32))
        classify = ctx.task == "classification"
        torch.manual_seed(ctx.seed)
        gen = torch.Generator().manual_seed(ctx.seed)
        adapter = self._adapter(params, ctx, int(xt.shape[1]))
        net = adapter.build()
        scale = None
        if classify:
            yt, yv = torch.from_numpy(y.astype(np.int64)), torch.from_numpy(y_val.astype(np.int64))
            loss_fn: Any = torch.nn.CrossEntropyLoss()
        else:
            y_mean, y_std = float(np.mean(y)), float(np.std(y) or 1.0)
            scale = (y_mean, y_std)
            yt = torch.from_numpy(((y - y_mean) / y_std).astype(np.float32))[:, None]
            yv = torch.from_numpy(((y_val - y_mean) / y_std).astype(np.float32))[:, None]
            loss_fn = torch.nn.MSELoss()
        opt = torch.optim.AdamW(
            net.parameters(), lr=float(params["lr"]), weight_decay=float(params["weight_decay"])
        )
        best, best_state, waited = float("inf"), None, 0
        bs = int(params["batch_size"])
        for _epoch in range(self.max_epochs):
            if ctx.stop_here(best_state is not None):
                break
            net.train()
            perm = torch.randperm(len(xt), generator=gen)
            for i in range(0, len(xt), bs):
                idx = perm[i : i + bs]
                if len(idx) < 2:
                    continue
                opt.zero_grad()
                loss = loss_fn(net(xt[idx]), yt[idx])
                loss.backward()
                opt.step()
            net.eval()
            with torch.no_grad():
                val = float(loss_fn(net(xv), yv))
            if val < best - 1e-6:
                best, waited = val, 0
                best_state = {k: v.clone() for k, v in net.state_dict().items()}
            else:
                waited += 1
                if waited >= self.patience:
                    break
        if best_state is not None:
            net.load_state_dict(best_state)
        return adapter.adopt(net, preprocessor=prep, target_scale=scale)

    def load(self, folder: Path, ctx: FitContext, *, allow_pickle: bool = False) -> Adapter:
        if not (folder / "net.json").exists():
            return TorchAdapter.read(folder, allow_pickle=allow_pickle)
        return self._load_format1(folder, ctx, allow_pickle=allow_pickle)

    def _load_format1(self, folder: Path, ctx: FitContext, *, allow_pickle: bool) -> Adapter:
        """A fold saved by a bag of format 1: ``prep.skops``, ``net.json`` and the weights of
        an ``nn.Sequential`` (Linear, ReLU, and Dropout where its rate is positive, per hidden
        layer) in ``net.safetensors``; the same network as the ``mlp`` of :meth:`_adapter`."""
        import torch
        from safetensors.torch import load_file

        prep = load_skops(folder / "prep.skops", allow_pickle=allow_pickle)
        meta = json.loads((folder / "net.json").read_text())
        n_in = int(meta["n_in"])
        adapter = self._adapter(meta["params"], ctx, n_in)
        # the Sequential's k-th Linear layer (at k * step) is layer 3 k of the MLP's body, whose
        # input standardisation is the identity (the preprocessor scales)
        step = 3 if float(meta["params"]["dropout"]) > 0 else 2
        state = {"norm.mean": torch.zeros(n_in), "norm.scale": torch.ones(n_in)}
        for key, value in load_file(str(folder / "net.safetensors")).items():
            index, name = key.split(".", 1)
            state[f"body.{int(index) // step * 3}.{name}"] = value
        adapter.load_state(state)
        scale = None if ctx.task == "classification" else (meta["y_mean"], meta["y_std"])
        return adapter.adopt(adapter.net, preprocessor=prep, target_scale=scale)


FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        LinearFamily(),
        KNNFamily(),
        SVMFamily(),
        RandomForestFamily(),
        ExtraTreesFamily(),
        XGBoostFamily(),
        LightGBMFamily(),
        NeuralNetworkFamily(),
    )
}


def family(name: str) -> Family:
    try:
        return FAMILIES[name]
    except KeyError:
        raise ParameterError(f"unknown model family {name!r}; known: {list(FAMILIES)}") from None
