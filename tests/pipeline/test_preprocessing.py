"""Preprocessing: the specification's names, fitted inside each fold only, outliers dropped from
fitting only, and configuration errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from ml_utilities.pipeline import PipelineConfigError
from ml_utilities.pipeline.preprocessing import build_column_transformer, parse_option

FAST_MODEL = {"framework": "sklearn", "architecture": "linear"}


def _mixed(rng, n=400):
    """Numbers with missing values, a high-cardinality category, a binary target."""
    frame = pd.DataFrame(
        {
            "x1": rng.normal(size=n),
            "x2": rng.normal(size=n) * 5 + 2,
            "artist": rng.choice([f"a{i}" for i in range(40)], n),
        }
    )
    frame.loc[rng.random(n) < 0.15, "x1"] = np.nan
    frame.loc[rng.random(n) < 0.15, "x2"] = np.nan
    logit = frame["x1"].fillna(0) + 0.3 * frame["x2"].fillna(2) - 0.6
    frame["y"] = (logit + rng.normal(scale=0.7, size=n) > 0).astype(int)
    return frame


SPEC_PRE = {
    "missing_values": "knn_imputation",
    "outliers": "isolation_forest",
    "scaling": "robust_scaler",
    "encoding": "target_encoding",
}


def test_target_encoding_and_imputation_are_fitted_inside_each_fold_only(pipeline, rng):
    data = _mixed(rng)
    cfg = {
        "preprocessing": SPEC_PRE,
        "model": FAST_MODEL,
        "register": False,
        "validation": {"cv_folds": 4, "test_size": 0.25},
    }
    res = pipeline.run_complete_pipeline_sync("y", cfg, data=data)
    x = data.drop(columns="y")
    y = data["y"].to_numpy()
    all_rows = clone(res["fold_models"][0].preprocessor).fit(x, y)
    enc = all_rows.named_steps["columns"].named_transformers_["cat"][-1]
    enc_all = dict(zip(enc.categories_[0], enc.encodings_[0], strict=True))
    seen_train = set()
    assert len(res["fold_models"]) == 4
    for fold, model in zip(res["cv_metrics"]["folds"], res["fold_models"], strict=True):
        tr = fold["train_index"]
        seen_train.update(tr.tolist())
        assert len(tr) == fold["n_train"]
        cols = model.preprocessor.named_steps["columns"]
        encoder = cols.named_transformers_["cat"][-1]
        imputer = cols.named_transformers_["num"].named_steps["impute"]
        # the same steps fitted by hand on this fold's training rows give the same state...
        manual = clone(model.preprocessor).fit(x.iloc[tr], y[tr])
        m_cols = manual.named_steps["columns"]
        m_enc = m_cols.named_transformers_["cat"][-1]
        np.testing.assert_array_equal(encoder.categories_[0], m_enc.categories_[0])
        np.testing.assert_allclose(encoder.encodings_[0], m_enc.encodings_[0])
        assert encoder.target_mean_ == pytest.approx(y[tr].mean())
        # KNN imputation keeps exactly the fold's training rows (scaled) as its neighbours
        fit_x = imputer._fit_X
        assert fit_x.shape[0] == len(tr)
        np.testing.assert_allclose(fit_x, m_cols.named_transformers_["num"]["impute"]._fit_X)
        # ...and not the state a fit on every row (validation and test included) would have
        fold_enc = dict(zip(encoder.categories_[0], encoder.encodings_[0], strict=True))
        assert max(abs(fold_enc[c] - enc_all[c]) for c in fold_enc) > 1e-3
        held_out = np.setdiff1d(np.arange(len(data)), tr)
        scaled_all = cols.named_transformers_["num"].named_steps["scale"].transform(x[["x1", "x2"]])
        fit_rows = {tuple(np.round(r, 9)) for r in np.nan_to_num(fit_x, nan=1e9)}
        leaked = [
            i
            for i in held_out
            if tuple(np.round(np.nan_to_num(scaled_all[i], nan=1e9), 9)) in fit_rows
            and not np.isnan(scaled_all[i]).any()
        ]
        assert leaked == []
    # test rows are in no fold's training rows
    assert not seen_train & set(res["test_index"].tolist())


def test_no_leak_from_a_noise_category(pipeline, rng):
    """A category with a random target: cross-validated AUC must stay near chance. Fitting the
    target encoder on all rows first (the classic leak) would score far above it."""
    n = 600
    data = pd.DataFrame(
        {"track": [f"t{i}" for i in rng.integers(0, 200, n)], "y": rng.integers(0, 2, n)}
    )
    cfg = {
        "preprocessing": {"encoding": "target_encoding"},
        "register": False,
        "model": FAST_MODEL,
        "validation": {"cv_folds": 5, "test_size": 0.2},
    }
    res = pipeline.run_complete_pipeline_sync("y", cfg, data=data)
    assert abs(res["cv_metrics"]["mean"]["roc_auc"] - 0.5) < 0.1
    # the leak this guards against, for contrast: encodings learned from every row
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score

    means = data.groupby("track")["y"].transform("mean").to_numpy().reshape(-1, 1)
    leaky = cross_val_score(LogisticRegression(), means, data["y"], cv=5, scoring="roc_auc")
    assert leaky.mean() > 0.7


def test_outliers_are_dropped_from_fitting_only(pipeline, rng):
    data = _mixed(rng, 500)
    data.loc[:24, "x2"] = rng.uniform(1e3, 1e4, 25)  # 5% wild values
    outliers = {"method": "isolation_forest", "contamination": 0.05}
    cfg = {
        "preprocessing": {"outliers": outliers, "scaling": "robust_scaler"},
        "model": FAST_MODEL,
        "register": False,
        "validation": {"cv_folds": 3, "test_size": 0.2},
    }
    res = pipeline.run_complete_pipeline_sync("y", cfg, data=data)
    folds = res["cv_metrics"]["folds"]
    # 5% of each fold's training rows are left out of the model's fit
    assert all(f["outliers_removed"] == pytest.approx(0.05 * f["n_train"], abs=2) for f in folds)
    assert sum(f["n_validation"] for f in folds) == 400  # every validation row scored
    assert res["test_metrics"]["n_test"] == 100
    assert len(res["model"].predict(data)) == len(data)
    assert res["model"].metrics["n_train"] + res["model"].metrics["n_validation"] < 400


@pytest.mark.parametrize(
    "pre",
    [
        {"missing_values": "mean", "scaling": "standard_scaler", "encoding": "onehot_encoding"},
        {
            "missing_values": "iterative_imputation",
            "scaling": "minmax_scaler",
            "encoding": "ordinal_encoding",
            "outliers": "local_outlier_factor",
        },
        {
            "missing_values": {"method": "knn_imputation", "n_neighbors": 3},
            "scaling": "quantile_transformer",
            "encoding": "none",
        },
    ],
)
def test_alternatives_run(pipeline, rng, pre):
    data = _mixed(rng, 300)
    cfg = {
        "preprocessing": pre,
        "model": FAST_MODEL,
        "register": False,
        "validation": {"cv_folds": 2, "test_size": 0.2},
    }
    res = pipeline.run_complete_pipeline_sync("y", cfg, data=data)
    assert res["test_metrics"]["accuracy"] > 0.6
    n_cat = {"onehot_encoding": 40, "ordinal_encoding": 1, "target_encoding": 1, "none": 0}
    enc = parse_option("encoding", pre.get("encoding"))[0]
    assert res["n_features"] <= 2 + min(n_cat[enc], 21) and res["n_features"] >= 2 + (enc != "none")


def test_bad_preprocessing_options(pipeline, rng):
    data = _mixed(rng, 100)
    for pre, match in (
        ({"missing_values": "magic"}, "'magic' is not known"),
        (
            {"scaling": {"method": "robust_scaler", "quantile": 3}},
            r"unknown parameter\(s\) \['quantile'\]",
        ),
        ({"encoding": {"n": 1}}, "needs 'method'"),
        ({"normalise": "yes"}, r"unknown key\(s\) \['normalise'\]"),
    ):
        with pytest.raises(PipelineConfigError, match=match):
            pipeline.run_complete_pipeline_sync("y", {"preprocessing": pre}, data=data)


def test_column_transformer_names():
    ct = build_column_transformer({"missing_values": "median", "encoding": "onehot_encoding"})
    frame = pd.DataFrame({"a": [1.0, np.nan, 3.0], "g": ["x", "y", "x"]})
    out = ct.fit_transform(frame, [0, 1, 0])
    assert out.shape == (3, 3)
    assert out[1, 0] == 2.0  # the median of the training rows
