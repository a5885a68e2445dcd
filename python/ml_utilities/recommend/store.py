"""A trained recommender as a registry model: saved and loaded in safe formats only.

:class:`RecommenderAdapter` (framework ``"recommender"``) holds a
:class:`~ml_utilities.recommend.model.RecommendationModel`, so the model registry stores,
fingerprints, versions and aliases it like any other model (``ModelRegistry.register``,
``ModelRegistry.load``), and :func:`to_handle` makes the :class:`ModelHandle` to register.
The registry finds this adapter through the entry point ``ml_utilities.adapters`` (``models``
never imports ``recommend``).

Files (no pickle anywhere: loading a recommender runs no code from its files)

``recommender.json``
    Format, ranker kind, candidate count, optional generator set, the training report, the
    kind of the user and item ids (int or str).
``interactions.npz``
    The interactions the serving generators are built from (user index, item index, weight),
    the user and item ids, the user graph's edges where there is one.
``music.parquet``, ``user.parquet``
    The side tables of the ranker's ``music_*`` and ``user_*`` columns, where given.
``ranker/``
    LightGBM's text model of each booster of the LambdaMART bag (``booster{i}.txt``) and its
    columns and categories (``ranker.json``); or the AutoML ranker's own saved model folder.

The generators themselves are not stored: they are computed from the interactions when the
model first recommends (about 9 s for Last.fm's 1,892 users on this machine's 2 cores), exactly
as for the model ``train_recommendation_model`` returned.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..exceptions import ParameterError
from ..models.adapters import Adapter, register_adapter
from .generators import Interactions
from .lambdamart import LambdaMARTRanker
from .model import RecommendationModel

__all__ = ["RecommenderAdapter", "load_recommender", "save_recommender", "to_handle"]

FORMAT = 1
_META = "recommender.json"
_INTER = "interactions.npz"
_RANKER = "ranker"


def _ids_out(ids: np.ndarray, what: str) -> tuple[np.ndarray, str]:
    """``ids`` as an array NumPy reads back without pickle, and their kind."""
    values = [v.item() if isinstance(v, np.generic) else v for v in ids]
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return np.asarray(values, dtype=np.int64), "int"
    if all(isinstance(v, str) for v in values):
        return np.asarray(values, dtype=str), "str"
    kinds = sorted({type(v).__name__ for v in values})
    raise ParameterError(f"{what} ids mix or use unsupported types {kinds}: expected int or str")


def _ids_in(arr: np.ndarray, kind: str) -> np.ndarray:
    if kind == "int":
        return arr.astype(np.int64)
    out = np.empty(len(arr), dtype=object)
    out[:] = [str(v) for v in arr]
    return out


def save_recommender(model: RecommendationModel, folder: Path) -> None:
    """Write ``model`` into the existing empty ``folder``."""
    folder = Path(folder)
    inter = model._interactions
    if inter is None:
        raise ParameterError(
            "only the served model (the one train_recommendation_model returns) can be saved"
        )
    user_ids, user_kind = _ids_out(model.user_ids, "user")
    item_ids, item_kind = _ids_out(model.item_ids, "item")
    arrays = {
        "users": np.asarray(inter.users, dtype=np.int64),
        "items": np.asarray(inter.items, dtype=np.int64),
        "weights": np.asarray(inter.weights, dtype=np.float64),
        "user_ids": user_ids,
        "item_ids": item_ids,
    }
    if model.graph is not None:
        arrays["graph_user"] = np.asarray(model.graph[0], dtype=np.int64)
        arrays["graph_friend"] = np.asarray(model.graph[1], dtype=np.int64)
    np.savez(folder / _INTER, **arrays)
    side = {}
    for key in ("music", "user"):
        table = model.side.get(key)
        if table is not None:
            table.to_parquet(folder / f"{key}.parquet")
            side[key] = True
    (folder / _RANKER).mkdir()
    ranker = model.ranker
    if ranker is None:
        kind = "none"
    elif isinstance(ranker, LambdaMARTRanker):
        kind = "lambdamart"
        if not hasattr(ranker, "booster_"):
            raise ParameterError("the recommender's ranker is not fitted")
        boosters = getattr(ranker, "boosters_", [ranker.booster_])
        for i, booster in enumerate(boosters):
            (folder / _RANKER / f"booster{i}.txt").write_text(booster.model_to_string())
        (folder / _RANKER / "ranker.json").write_text(
            json.dumps(
                {
                    "params": {k: v for k, v in ranker.get_params().items() if k != "deadline"},
                    "columns": list(ranker.columns_),
                    "categories": ranker.categories_,
                    "boosters": len(boosters),
                    "report": ranker.report,
                },
                default=_json_default,
            )
        )
    elif hasattr(ranker, "write_folder"):  # the AutoML ranker: a ModelHandle of its own
        kind = "handle"
        ranker.write_folder(folder / _RANKER)
    else:
        raise ParameterError(f"cannot save a recommender ranked by {type(ranker).__name__}")
    meta = {
        "format": FORMAT,
        "ranker": kind,
        "n_candidates": int(model.n_candidates),
        "generator_names": None if model.generator_names is None else list(model.generator_names),
        "user_ids": user_kind,
        "item_ids": item_kind,
        "side": sorted(side),
        "report": model.report,
    }
    (folder / _META).write_text(json.dumps(meta, default=_json_default))


class _HandleRanker:
    """A loaded AutoML ranker: the adapter scores rows its own encoding makes."""

    def __init__(self, handle: Any) -> None:
        self.handle = handle
        self.adapter = handle.adapter

    def _features(self, frame: Any) -> np.ndarray:
        return np.asarray(self.adapter.encode(frame))


def load_recommender(folder: Path) -> RecommendationModel:
    """Read a folder written by :func:`save_recommender` (its sha256 manifest is checked by
    the registry or :meth:`ModelHandle.load` before)."""
    import pandas as pd

    folder = Path(folder)
    meta = json.loads((folder / _META).read_text())
    if meta.get("format") != FORMAT:
        raise ParameterError(
            f"{folder} holds recommender format {meta.get('format')!r}; this ml_utilities "
            f"reads {FORMAT}"
        )
    with np.load(folder / _INTER, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    user_ids = _ids_in(arrays["user_ids"], meta["user_ids"])
    item_ids = _ids_in(arrays["item_ids"], meta["item_ids"])
    inter = Interactions(
        arrays["users"], arrays["items"], arrays["weights"], len(user_ids), len(item_ids)
    )
    graph = None
    if "graph_user" in arrays:
        graph = (arrays["graph_user"], arrays["graph_friend"])
    side = {
        key: pd.read_parquet(folder / f"{key}.parquet") if key in meta["side"] else None
        for key in ("music", "user")
    }
    ranker: Any
    if meta["ranker"] == "none":
        ranker = None
    elif meta["ranker"] == "lambdamart":
        import lightgbm as lgb

        spec = json.loads((folder / _RANKER / "ranker.json").read_text())
        ranker = LambdaMARTRanker(**spec["params"])
        ranker.columns_ = spec["columns"]
        ranker.categories_ = spec["categories"]
        ranker.boosters_ = [
            lgb.Booster(model_str=(folder / _RANKER / f"booster{i}.txt").read_text())
            for i in range(int(spec["boosters"]))
        ]
        ranker.booster_ = ranker.boosters_[0]
        report = spec.get("report") or {}
        ranker.final_model_ = report.get("final_model")
        ranker.n_rounds_ = report.get("rounds")
        ranker.valid_score_ = report.get("valid_ndcg")
        ranker.fit_time_s_ = report.get("training_time_s") or 0.0
        ranker.feature_importance_ = report.get("feature_importance")
    elif meta["ranker"] == "handle":
        from ..models.handle import ModelHandle

        ranker = _HandleRanker(ModelHandle.load(folder / _RANKER))
    else:
        raise ParameterError(f"{folder}: unknown ranker kind {meta['ranker']!r}")
    names = meta["generator_names"]
    return RecommendationModel(
        ranker,
        inter,
        user_ids,
        item_ids,
        side,
        int(meta["n_candidates"]),
        meta["report"],
        graph,
        None if names is None else tuple(names),
    )


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


class RecommenderAdapter(Adapter):
    """The registry's view of a :class:`RecommendationModel` (``self.model``).

    A recommender answers ``recommend(user_id, k)``, not rows of features: :meth:`predict_raw`
    refuses arrays, and :meth:`fit` refuses to train (``train_recommendation_model`` does).
    """

    framework = "recommender"
    architectures = ("lambdamart", "automl", "generators")

    def __init__(self, architecture: str, task: str, hyperparameters: dict[str, Any], **kw: Any):
        super().__init__(architecture, task, hyperparameters, **kw)
        self.model: RecommendationModel | None = None

    def fit(self, x, y, x_val, y_val, *, patience):  # noqa: ANN001 - see Adapter.fit
        raise ParameterError(
            "a recommender is trained by AutoMLHelper.train_recommendation_model, not by "
            "ModelManager.train_model"
        )

    def predict_raw(self, x: np.ndarray) -> np.ndarray:
        raise ParameterError(
            "a recommender answers recommend(user_id, k), not feature rows: serve it with "
            "ml_utilities.serving.RecommenderService (route /v1/recommenders/{name}:recommend)"
        )

    def save(self, folder: Path, *, allow_pickle: bool = False) -> None:
        if self.model is None:
            raise ParameterError("this RecommenderAdapter holds no model")
        save_recommender(self.model, Path(folder))

    def load_files(self, folder: Path, *, allow_pickle: bool = False) -> None:
        self.model = load_recommender(Path(folder))

    def to_onnx(self, *args: Any, **kwargs: Any) -> Any:
        raise ParameterError(
            "a recommender (generators over the interactions, then a ranker) has no ONNX form"
        )


register_adapter("recommender", RecommenderAdapter)


def to_handle(model: RecommendationModel, name: str = "recommender") -> Any:
    """A :class:`ModelHandle` holding ``model``, to pass to ``ModelRegistry.register``.

    Its metrics are the training report's held-out evaluation (``ndcg@k`` and ``recall@k`` of
    the model, and of popularity and item-kNN on the same split) where it was evaluated."""
    import hashlib

    from ..models.handle import ModelHandle

    if not isinstance(model, RecommendationModel):
        raise ParameterError(f"model must be a RecommendationModel, got {type(model).__name__}")
    if model._interactions is None:
        raise ParameterError(
            "only the served model (the one train_recommendation_model returns) can be registered"
        )
    if model.ranker is None:
        arch = "generators"
    elif isinstance(model.ranker, LambdaMARTRanker):
        arch = "lambdamart"
    else:
        arch = "automl"
    adapter = RecommenderAdapter(
        arch,
        "regression",
        {"n_candidates": int(model.n_candidates)},
        n_classes=None,
        input_shape=(1,),
    )
    adapter.model = model
    inter = model._interactions
    h = hashlib.sha256()
    for arr in (inter.users, inter.items, inter.weights):
        h.update(np.ascontiguousarray(arr).tobytes())
    evaluation = (model.report or {}).get("evaluation") or {}
    metrics = {
        f"{who}_{metric}": float(value)
        for who, scores in evaluation.items()
        if isinstance(scores, dict)
        for metric, value in scores.items()
    }
    metrics["n_users"] = len(model.user_ids)
    metrics["n_items"] = len(model.item_ids)
    metrics["n_interactions"] = len(inter.users)
    return ModelHandle(
        adapter,
        name=name,
        task="ranking",
        config={"framework": "recommender", "architecture": arch},
        codec=None,
        metrics=metrics,
        training={"report": model.report},
        signature={"inputs": {"dtype": "object", "shape": [1]}, "classes": None},
        fingerprint=h.hexdigest(),
    )
