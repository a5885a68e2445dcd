"""Preprocessing as one scikit-learn Pipeline, built from the specification's names.

``missing_values``, ``scaling`` and ``encoding`` become a
:class:`~sklearn.compose.ColumnTransformer` (numbers: scaler then imputer, so KNN distances
are measured on scaled features; categories: constant fill then encoder) inside a
:class:`~sklearn.pipeline.Pipeline` that starts with the
:class:`~ml_utilities.pipeline.features.FeatureBuilder` and may end with a
:class:`~ml_utilities.pipeline.features.PolynomialExpansion`. The whole Pipeline is fitted on
training rows only (each cross-validation fold's, then the full training split's).

``outliers`` removes rows, which a transformer cannot do at prediction time; the detector is
therefore fitted on each training split's preprocessed rows and the flagged rows are left out
of the model's fit only. Validation, test and new rows are never dropped.

Each option is a name or ``{"method": name, **parameters}``:

=================  ==============================================================================
key                methods (parameters)
=================  ==============================================================================
missing_values     ``knn_imputation`` (n_neighbors=5, weights="uniform"), ``mean``, ``median``,
                   ``most_frequent``, ``iterative_imputation`` (max_iter=10), ``constant``
                   (fill_value=0), ``none``
scaling            ``robust_scaler`` (quantile_range=(25, 75)), ``standard_scaler``,
                   ``minmax_scaler``, ``maxabs_scaler``, ``quantile_transformer``
                   (n_quantiles=1000), ``power_transformer``, ``none``
encoding           ``target_encoding`` (smooth="auto", cv=5: cross-fitted on the training rows),
                   ``onehot_encoding`` (max_categories=20), ``ordinal_encoding``, ``none``
                   (categorical columns dropped)
outliers           ``isolation_forest`` (contamination="auto", n_estimators=100),
                   ``local_outlier_factor`` (n_neighbors=20, contamination="auto"), ``none``
=================  ==============================================================================
"""

from __future__ import annotations

from typing import Any

from .errors import PipelineConfigError

__all__ = [
    "ENCODERS",
    "IMPUTERS",
    "OUTLIER_DETECTORS",
    "PREPROCESSING_KEYS",
    "SCALERS",
    "build_column_transformer",
    "build_outlier_detector",
    "parse_option",
]

PREPROCESSING_KEYS = ("missing_values", "outliers", "scaling", "encoding")

IMPUTERS: dict[str, dict[str, Any]] = {
    "knn_imputation": {"n_neighbors": 5, "weights": "uniform"},
    "mean": {},
    "median": {},
    "most_frequent": {},
    "iterative_imputation": {"max_iter": 10},
    "constant": {"fill_value": 0.0},
    "none": {},
}
SCALERS: dict[str, dict[str, Any]] = {
    "robust_scaler": {"quantile_range": (25.0, 75.0)},
    "standard_scaler": {},
    "minmax_scaler": {},
    "maxabs_scaler": {},
    "quantile_transformer": {"n_quantiles": 1000},
    "power_transformer": {},
    "none": {},
}
ENCODERS: dict[str, dict[str, Any]] = {
    "target_encoding": {"smooth": "auto", "cv": 5},
    "onehot_encoding": {"max_categories": 20},
    "ordinal_encoding": {},
    "none": {},
}
OUTLIER_DETECTORS: dict[str, dict[str, Any]] = {
    "isolation_forest": {"contamination": "auto", "n_estimators": 100},
    "local_outlier_factor": {"n_neighbors": 20, "contamination": "auto"},
    "none": {},
}
_ALIASES = {
    "knn": "knn_imputation",
    "knn_imputer": "knn_imputation",
    "mean_imputation": "mean",
    "median_imputation": "median",
    "mode": "most_frequent",
    "iterative": "iterative_imputation",
    "robust": "robust_scaler",
    "standard": "standard_scaler",
    "minmax": "minmax_scaler",
    "maxabs": "maxabs_scaler",
    "quantile": "quantile_transformer",
    "power": "power_transformer",
    "target": "target_encoding",
    "onehot": "onehot_encoding",
    "one_hot": "onehot_encoding",
    "one_hot_encoding": "onehot_encoding",
    "ordinal": "ordinal_encoding",
    "isolationforest": "isolation_forest",
    "lof": "local_outlier_factor",
}
_TABLES = {
    "missing_values": IMPUTERS,
    "scaling": SCALERS,
    "encoding": ENCODERS,
    "outliers": OUTLIER_DETECTORS,
}


def parse_option(key: str, value: Any) -> tuple[str, dict[str, Any]]:
    """``"knn_imputation"`` or ``{"method": "knn_imputation", "n_neighbors": 3}`` ->
    ``("knn_imputation", {"n_neighbors": 3, "weights": "uniform"})``."""
    table = _TABLES[key]
    if value is None or value is False:
        return "none", {}
    params: dict[str, Any] = {}
    if isinstance(value, dict):
        if "method" not in value:
            raise PipelineConfigError(
                f"preprocessing[{key!r}]={value!r}: a dict needs 'method' (one of {list(table)})"
            )
        params = {k: v for k, v in value.items() if k != "method"}
        value = value["method"]
    if not isinstance(value, str):
        raise PipelineConfigError(
            f"preprocessing[{key!r}]={value!r}: expected one of {list(table)}"
        )
    method = _ALIASES.get(value.lower(), value.lower())
    if method not in table:
        raise PipelineConfigError(
            f"preprocessing[{key!r}]={value!r} is not known; expected one of {list(table)}"
        )
    unknown = sorted(set(params) - set(table[method]))
    if unknown:
        raise PipelineConfigError(
            f"preprocessing[{key!r}] method {method!r}: unknown parameter(s) {unknown}; "
            f"accepted: {sorted(table[method])}"
        )
    return method, {**table[method], **params}


def _imputer(method: str, params: dict[str, Any]) -> Any:
    from sklearn import impute

    if method == "knn_imputation":
        return impute.KNNImputer(**params, keep_empty_features=True)
    if method in ("mean", "median", "most_frequent"):
        return impute.SimpleImputer(strategy=method, keep_empty_features=True)
    if method == "constant":
        return impute.SimpleImputer(strategy="constant", keep_empty_features=True, **params)
    if method == "iterative_imputation":
        from sklearn.experimental import enable_iterative_imputer  # noqa: F401

        return impute.IterativeImputer(**params, keep_empty_features=True, random_state=0)
    return None


def _scaler(method: str, params: dict[str, Any], n_samples: int | None) -> Any:
    from sklearn import preprocessing as p

    classes = {
        "robust_scaler": p.RobustScaler,
        "standard_scaler": p.StandardScaler,
        "minmax_scaler": p.MinMaxScaler,
        "maxabs_scaler": p.MaxAbsScaler,
        "quantile_transformer": p.QuantileTransformer,
        "power_transformer": p.PowerTransformer,
    }
    if method == "none":
        return None
    if method == "quantile_transformer":
        params = dict(params)
        if n_samples is not None:  # more quantiles than rows only earns a warning
            params["n_quantiles"] = max(1, min(int(params["n_quantiles"]), n_samples))
        return p.QuantileTransformer(**params, random_state=0)
    return classes[method](**params)


def _encoder(method: str, params: dict[str, Any], seed: int, task: str) -> Any:
    from sklearn import preprocessing as p

    if method == "target_encoding":
        from sklearn.model_selection import KFold, StratifiedKFold

        params = dict(params)
        folds = params.pop("cv")
        splitter = StratifiedKFold if task == "classification" else KFold
        cv = splitter(n_splits=folds, shuffle=True, random_state=seed)
        return p.TargetEncoder(**params, cv=cv)
    if method == "onehot_encoding":
        return p.OneHotEncoder(**params, handle_unknown="infrequent_if_exist", sparse_output=False)
    if method == "ordinal_encoding":
        return p.OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1)
    return None


def build_column_transformer(
    preprocessing: dict[str, Any],
    seed: int = 0,
    task: str = "classification",
    n_samples: int | None = None,
) -> Any:
    """The ColumnTransformer of numbers (scale, impute) and categories (fill, encode).

    ``n_samples`` (the rows it will be fitted on) caps ``quantile_transformer``'s quantiles.
    """
    from sklearn.compose import ColumnTransformer, make_column_selector
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline

    imp, imp_p = parse_option("missing_values", preprocessing.get("missing_values", "median"))
    sca, sca_p = parse_option("scaling", preprocessing.get("scaling", "none"))
    enc, enc_p = parse_option("encoding", preprocessing.get("encoding", "onehot_encoding"))
    num_steps = []
    scaler = _scaler(sca, sca_p, n_samples)
    if scaler is not None:
        num_steps.append(("scale", scaler))
    imputer = _imputer(imp, imp_p)
    if imputer is not None:
        num_steps.append(("impute", imputer))
    numeric = Pipeline(num_steps) if num_steps else "passthrough"
    transformers = [
        ("num", numeric, make_column_selector(dtype_include="number")),
    ]
    encoder = _encoder(enc, enc_p, seed, task)
    categorical = make_column_selector(dtype_include=["object", "string", "category", "bool"])
    if encoder is not None:
        fill = SimpleImputer(strategy="constant", fill_value="__missing__")
        transformers.append(("cat", Pipeline([("fill", fill), ("encode", encoder)]), categorical))
    return ColumnTransformer(transformers, remainder="drop", verbose_feature_names_out=True)


def build_outlier_detector(preprocessing: dict[str, Any], seed: int = 0) -> Any:
    """The detector of ``preprocessing['outliers']`` (None for ``none``)."""
    method, params = parse_option("outliers", preprocessing.get("outliers", "none"))
    if method == "isolation_forest":
        from sklearn.ensemble import IsolationForest

        return IsolationForest(**params, random_state=seed)
    if method == "local_outlier_factor":
        from sklearn.neighbors import LocalOutlierFactor

        return LocalOutlierFactor(**params)
    return None
