"""Model families of the search: their search spaces, good first settings, fit and persistence.

Every family trains single-threaded (the search runs trials in parallel instead), honours a
deadline (boosting rounds, forest chunks and network epochs check it; a fit past its deadline
raises :class:`DeadlineExceeded`), and stops boosting and networks early on the fold's
validation rows. Tasks are ``classification`` (raw output: probabilities), ``regression``
(values) and ``ranking`` (scores; LightGBM lambdarank and XGBoost ``rank:ndcg`` learn from the
groups, the others regress the relevance).
"""

from __future__ import annotations

import json
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..exceptions import ParameterError
from ..models.skops_io import dump_skops, load_skops

__all__ = ["FAMILIES", "DISPLAY_NAMES", "DeadlineExceeded", "FitContext", "Family", "family"]


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

    def check(self) -> None:
        if time.monotonic() > self.deadline:
            raise DeadlineExceeded("trial deadline passed")


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
    """One model family: ``suggest`` a configuration, ``fit`` it, predict, save, load."""

    name: str = ""
    #: ONNX converter of one fitted model, or "" where none exists
    onnx: str = ""

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
    ) -> Any:
        """Fit on ``(x, y)``; boosting and networks stop early on ``(x_val, y_val)``."""

    @abstractmethod
    def predict_raw(self, model: Any, x: np.ndarray, ctx: FitContext) -> np.ndarray:
        """Probabilities ``(n, n_classes)``, values or ranking scores ``(n,)``."""

    def importances(self, model: Any, n_features: int) -> np.ndarray | None:
        return None

    def save_cost_s(self, model: Any) -> float:
        """A generous estimate of the seconds :meth:`save` and the registry's hashing take."""
        return 0.03

    @abstractmethod
    def save(self, model: Any, folder: Path) -> None:
        """Write one fitted model into the empty folder ``folder``."""

    @abstractmethod
    def load(self, folder: Path, ctx: FitContext, *, allow_pickle: bool = False) -> Any:
        """Read what :meth:`save` wrote."""


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
        return pipe

    def predict_raw(self, model, x, ctx):  # noqa: ANN001
        if ctx.task == "classification":
            return np.asarray(model.predict_proba(x), dtype=np.float32)
        return np.asarray(model.predict(x), dtype=np.float32)

    def save(self, model: Any, folder: Path) -> None:
        dump_skops(model, folder / "model.skops")

    def load(self, folder: Path, ctx: FitContext, *, allow_pickle: bool = False) -> Any:
        return load_skops(folder / "model.skops", allow_pickle=allow_pickle)


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
        return _pipeline_importances(model, n_features, np.abs(np.atleast_2d(model[-1].coef_)))


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
            ctx.check()
            step = min(params["n_estimators"] - total, self.chunk if total else 10)
            if total and time.monotonic() + 1.3 * step * per_tree > ctx.deadline:
                raise DeadlineExceeded("the next trees would pass the trial deadline")
            t = time.monotonic()
            model.set_params(n_estimators=total + step)
            model.fit(xt, y)
            per_tree = max(per_tree, (time.monotonic() - t) / step)
            total += step
        return Pipeline([("prep", prep), ("model", model)])

    def importances(self, model, n_features):  # noqa: ANN001
        return _pipeline_importances(model, n_features, model[-1].feature_importances_[None, :])

    def save_cost_s(self, model: Any) -> float:
        # skops writes every node (about 0.65 us each measured in memory; x3 for the disk write
        # and the registry's hashing of ~110 bytes per node)
        nodes = sum(int(e.tree_.node_count) for e in model[-1].estimators_)
        return 0.03 + 2e-6 * nodes


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
            ctx.check()

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
        return lgb.Booster(model_str=booster.model_to_string(num_iteration=best))

    def predict_raw(self, model, x, ctx):  # noqa: ANN001
        raw = np.asarray(model.predict(x), dtype=np.float32)
        if ctx.task == "classification" and raw.ndim == 1:
            raw = np.stack([1.0 - raw, raw], axis=1)
        return raw

    def importances(self, model, n_features):  # noqa: ANN001
        return np.asarray(model.feature_importance(importance_type="gain"), dtype=np.float64)

    def save(self, model: Any, folder: Path) -> None:
        model.save_model(str(folder / "model.txt"))

    def load(self, folder: Path, ctx: FitContext, *, allow_pickle: bool = False) -> Any:
        import lightgbm as lgb

        return lgb.Booster(model_file=str(folder / "model.txt"))


class XGBoostFamily(Family):
    name = "xgboost"
    onnx = "onnxmltools"

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
                ctx.check()
                return False

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
        return booster

    def predict_raw(self, model, x, ctx):  # noqa: ANN001
        import xgboost as xgb

        raw = np.asarray(model.predict(xgb.DMatrix(x)), dtype=np.float32)
        if ctx.task == "classification" and raw.ndim == 1:
            raw = np.stack([1.0 - raw, raw], axis=1)
        return raw

    def importances(self, model, n_features):  # noqa: ANN001
        gain = model.get_score(importance_type="total_gain")
        out = np.zeros(n_features)
        for key, value in gain.items():
            out[int(key[1:])] = value
        return out

    def save(self, model: Any, folder: Path) -> None:
        model.save_model(str(folder / "model.ubj"))

    def load(self, folder: Path, ctx: FitContext, *, allow_pickle: bool = False) -> Any:
        import xgboost as xgb

        booster = xgb.Booster()
        booster.load_model(str(folder / "model.ubj"))
        return booster


# -- PyTorch MLP -------------------------------------------------------------------------------
class NeuralNetworkFamily(Family):
    """A PyTorch MLP (ReLU, dropout, AdamW) on one-hot and standardised inputs."""

    name = "neural_network"
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

    @staticmethod
    def _net(n_in: int, n_out: int, params: dict[str, Any]) -> Any:
        from torch import nn

        layers: list[Any] = []
        width = n_in
        for _ in range(int(params["n_layers"])):
            layers += [nn.Linear(width, int(params["width"])), nn.ReLU()]
            if params["dropout"] > 0:
                layers.append(nn.Dropout(float(params["dropout"])))
            width = int(params["width"])
        layers.append(nn.Linear(width, n_out))
        return nn.Sequential(*layers)

    def fit(self, params, x, y, x_val, y_val, ctx):  # noqa: ANN001
        import torch

        prep = _preprocessor(ctx.categorical, x.shape[1], True)
        xt = torch.from_numpy(np.asarray(prep.fit_transform(x), dtype=np.float32))
        xv = torch.from_numpy(np.asarray(prep.transform(x_val), dtype=np.float32))
        classify = ctx.task == "classification"
        n_out = int(ctx.n_classes or 1) if classify else 1
        torch.manual_seed(ctx.seed)
        gen = torch.Generator().manual_seed(ctx.seed)
        net = self._net(xt.shape[1], n_out, params)
        if classify:
            yt, yv = torch.from_numpy(y.astype(np.int64)), torch.from_numpy(y_val.astype(np.int64))
            loss_fn: Any = torch.nn.CrossEntropyLoss()
            y_mean, y_std = 0.0, 1.0
        else:
            y_mean, y_std = float(np.mean(y)), float(np.std(y) or 1.0)
            yt = torch.from_numpy(((y - y_mean) / y_std).astype(np.float32))[:, None]
            yv = torch.from_numpy(((y_val - y_mean) / y_std).astype(np.float32))[:, None]
            loss_fn = torch.nn.MSELoss()
        opt = torch.optim.AdamW(
            net.parameters(), lr=float(params["lr"]), weight_decay=float(params["weight_decay"])
        )
        best, best_state, waited = float("inf"), None, 0
        bs = int(params["batch_size"])
        for _epoch in range(self.max_epochs):
            ctx.check()
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
        net.eval()
        return {
            "prep": prep,
            "net": net,
            "params": dict(params),
            "n_in": int(xt.shape[1]),
            "n_out": n_out,
            "y_mean": y_mean,
            "y_std": y_std,
        }

    def predict_raw(self, model, x, ctx):  # noqa: ANN001
        import torch

        xt = torch.from_numpy(np.asarray(model["prep"].transform(x), dtype=np.float32))
        with torch.no_grad():
            out = model["net"](xt)
            if ctx.task == "classification":
                return torch.softmax(out, dim=1).numpy().astype(np.float32)
        return (out[:, 0].numpy() * model["y_std"] + model["y_mean"]).astype(np.float32)

    def save(self, model: Any, folder: Path) -> None:
        from safetensors.torch import save_file

        dump_skops(model["prep"], folder / "prep.skops")
        save_file(
            {k: v.contiguous() for k, v in model["net"].state_dict().items()},
            str(folder / "net.safetensors"),
        )
        meta = {k: model[k] for k in ("params", "n_in", "n_out", "y_mean", "y_std")}
        (folder / "net.json").write_text(json.dumps(meta))

    def load(self, folder: Path, ctx: FitContext, *, allow_pickle: bool = False) -> Any:
        from safetensors.torch import load_file

        prep = load_skops(folder / "prep.skops", allow_pickle=allow_pickle)
        meta = json.loads((folder / "net.json").read_text())
        net = self._net(meta["n_in"], meta["n_out"], meta["params"])
        net.load_state_dict(load_file(str(folder / "net.safetensors")))
        net.eval()
        return dict(meta, prep=prep, net=net)


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
