"""Data validation: a schema (dict or pandera) and quality checks, gathered into one report.

Schema violations are hard: they stop the run with a :class:`DataValidationError` listing every
violation at once. Quality checks are warnings in the report unless their ``severity`` is
``"error"``.

Schema as a dict, one entry per column (a bare string is the dtype)::

    {"user_id": {"dtype": "int", "required": True, "nullable": False, "min": 1},
     "genre": {"dtype": "str", "allowed": ["rock", "pop"]},
     "plays": "float"}

dtypes: ``int``, ``float``, ``number``, ``str``, ``bool``, ``datetime``, ``category``.
Keys: ``dtype``, ``required`` (True), ``nullable`` (True), ``min``, ``max``, ``allowed``,
``unique`` (False). A :class:`pandera.api.pandas.container.DataFrameSchema` is validated with
``lazy=True`` and each of its failure cases becomes a violation.

Quality checks (each a threshold, or ``{"threshold": x, "severity": "error"|"warning"}``):

=====================  ========  =============================================================
key                    default   measured
=====================  ========  =============================================================
``max_missing_rate``   0.5       share of missing values, per column
``max_duplicate_rate`` 0.05      share of rows identical to an earlier row
``max_outlier_rate``   0.05      per numeric column, share of values more than ``outlier_iqr``
                                 (3.0) interquartile ranges outside the quartiles
``min_class_share``    0.02      share of the rarest class of the target (classification)
``drift``              off       against ``reference`` (a DataFrame or a source dict): PSI over
                                 10 reference-quantile bins (categories for text columns) and
                                 the two-sample Kolmogorov-Smirnov test per numeric column;
                                 ``max_psi`` (0.2) and ``min_ks_pvalue`` (off) are the limits
=====================  ========  =============================================================
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import pandas as pd

from ..monitoring.drift import population_stability_index
from .errors import DataValidationError, PipelineConfigError

__all__ = ["QUALITY_KEYS", "SCHEMA_DTYPES", "population_stability_index", "validate_frame"]

logger = logging.getLogger(__name__)

SCHEMA_DTYPES = ("int", "float", "number", "str", "bool", "datetime", "category")
_SCHEMA_KEYS = ("dtype", "required", "nullable", "min", "max", "allowed", "unique")
QUALITY_KEYS = (
    "max_missing_rate",
    "max_duplicate_rate",
    "max_outlier_rate",
    "outlier_iqr",
    "min_class_share",
    "drift",
    "severity",
)
_QUALITY_DEFAULTS = {
    "max_missing_rate": 0.5,
    "max_duplicate_rate": 0.05,
    "max_outlier_rate": 0.05,
    "min_class_share": 0.02,
}
_DRIFT_KEYS = ("reference", "max_psi", "min_ks_pvalue", "severity", "columns")


def _dtype_ok(series: pd.Series, dtype: str) -> bool:
    api = pd.api.types
    if dtype == "int":
        if api.is_integer_dtype(series):
            return True
        # integers stored as float because of missing values are still integers
        vals = series.dropna()
        return api.is_float_dtype(series) and bool(np.all(np.mod(vals, 1) == 0))
    if dtype == "float":
        return api.is_float_dtype(series) or api.is_integer_dtype(series)
    if dtype == "number":
        return api.is_numeric_dtype(series) and not api.is_bool_dtype(series)
    if dtype == "str":
        return api.is_string_dtype(series) or (
            series.dtype == object and series.dropna().map(type).eq(str).all()
        )
    if dtype == "bool":
        return api.is_bool_dtype(series)
    if dtype == "datetime":
        return api.is_datetime64_any_dtype(series)
    return isinstance(series.dtype, pd.CategoricalDtype) or api.is_string_dtype(series)


def _violation(check: str, column: str | None, message: str, **values: Any) -> dict[str, Any]:
    return {"check": check, "column": column, "message": message, **values}


def _check_dict_schema(frame: pd.DataFrame, schema: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for col, rule in schema.items():
        if isinstance(rule, str):
            rule = {"dtype": rule}
        if not isinstance(rule, dict):
            raise PipelineConfigError(f"schema[{col!r}]={rule!r}: expected a dtype or a dict")
        unknown = sorted(set(rule) - set(_SCHEMA_KEYS))
        if unknown:
            raise PipelineConfigError(
                f"schema[{col!r}]: unknown key(s) {unknown}; accepted: {list(_SCHEMA_KEYS)}"
            )
        dtype = rule.get("dtype")
        if dtype is not None and dtype not in SCHEMA_DTYPES:
            raise PipelineConfigError(
                f"schema[{col!r}]: dtype={dtype!r}; expected one of {list(SCHEMA_DTYPES)}"
            )
        if col not in frame.columns:
            if rule.get("required", True):
                out.append(_violation("required", col, f"required column {col!r} is missing"))
            continue
        s = frame[col]
        if dtype is not None and not _dtype_ok(s, dtype):
            out.append(
                _violation(
                    "dtype",
                    col,
                    f"column {col!r} has dtype {s.dtype}, expected {dtype}",
                    expected=dtype,
                    actual=str(s.dtype),
                )
            )
            continue
        n_null = int(s.isna().sum())
        if not rule.get("nullable", True) and n_null:
            out.append(
                _violation(
                    "nullable", col, f"column {col!r} has {n_null} missing value(s)", count=n_null
                )
            )
        vals = s.dropna()
        for key, op in (("min", np.less), ("max", np.greater)):
            if key in rule and len(vals):
                bad = vals[op(vals, rule[key])]
                if len(bad):
                    out.append(
                        _violation(
                            key,
                            col,
                            f"column {col!r}: {len(bad)} value(s) "
                            f"{'below min' if key == 'min' else 'above max'} {rule[key]!r} "
                            f"(e.g. {bad.iloc[0]!r})",
                            count=int(len(bad)),
                            example=_plain(bad.iloc[0]),
                        )
                    )
        if "allowed" in rule:
            bad = vals[~vals.isin(list(rule["allowed"]))]
            if len(bad):
                out.append(
                    _violation(
                        "allowed",
                        col,
                        f"column {col!r}: {len(bad)} value(s) not in {list(rule['allowed'])} "
                        f"(e.g. {sorted(map(str, bad.unique()))[:5]})",
                        count=int(len(bad)),
                        examples=[_plain(v) for v in bad.unique()[:5]],
                    )
                )
        if rule.get("unique") and vals.duplicated().any():
            n_dup = int(vals.duplicated().sum())
            out.append(
                _violation(
                    "unique", col, f"column {col!r} has {n_dup} duplicated value(s)", count=n_dup
                )
            )
    return out


def _check_pandera(frame: pd.DataFrame, schema: Any) -> list[dict[str, Any]]:
    import pandera.errors as pe

    try:
        schema.validate(frame, lazy=True)
    except pe.SchemaErrors as err:
        out = []
        cases = err.failure_cases
        for _, row in cases.iterrows():
            col = row.get("column")
            col = None if col is None or (isinstance(col, float) and math.isnan(col)) else col
            out.append(
                _violation(
                    f"pandera:{row.get('check')}",
                    col,
                    f"pandera: column {col!r} failed {row.get('check')!r} "
                    f"(failure case {row.get('failure_case')!r}, index {row.get('index')!r})",
                    failure_case=_plain(row.get("failure_case")),
                )
            )
        return out
    except pe.SchemaError as err:  # raised by some checks even with lazy=True
        return [_violation("pandera", None, f"pandera: {err}")]
    return []


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value


def _limit(quality: dict[str, Any], key: str) -> tuple[float | None, str]:
    default_sev = quality.get("severity", "warning")
    raw = quality.get(key, _QUALITY_DEFAULTS.get(key))
    if raw is None or raw is False:
        return None, default_sev
    sev = default_sev
    if isinstance(raw, dict):
        extra = sorted(set(raw) - {"threshold", "severity"})
        if extra:
            raise PipelineConfigError(
                f"quality[{key!r}]: unknown key(s) {extra}; accepted: ['severity', 'threshold']"
            )
        sev = raw.get("severity", default_sev)
        raw = raw.get("threshold", _QUALITY_DEFAULTS.get(key))
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not 0 <= raw <= 1:
        raise PipelineConfigError(f"quality[{key!r}]={raw!r}: expected a rate in [0, 1]")
    if sev not in ("warning", "error"):
        raise PipelineConfigError(
            f"quality[{key!r}] severity={sev!r}: expected 'warning' or 'error'"
        )
    return float(raw), sev


def _drift(
    frame: pd.DataFrame, drift: dict[str, Any], report: dict[str, Any]
) -> tuple[list[dict[str, Any]], str]:
    from scipy import stats

    unknown = sorted(set(drift) - set(_DRIFT_KEYS))
    if unknown:
        raise PipelineConfigError(
            f"quality['drift']: unknown key(s) {unknown}; accepted: {list(_DRIFT_KEYS)}"
        )
    ref = drift.get("reference")
    if isinstance(ref, dict):
        from .sources import read_source

        ref = read_source(ref)
    if not isinstance(ref, pd.DataFrame):
        raise PipelineConfigError(
            "quality['drift']['reference'] must be a DataFrame or a source dict"
        )
    max_psi = drift.get("max_psi", 0.2)
    min_p = drift.get("min_ks_pvalue")
    sev = drift.get("severity", "warning")
    cols = drift.get("columns") or [c for c in frame.columns if c in ref.columns]
    found: list[dict[str, Any]] = []
    out: dict[str, Any] = {}
    for col in cols:
        if col not in frame.columns or col not in ref.columns:
            raise PipelineConfigError(f"quality['drift']: column {col!r} is not in both frames")
        entry: dict[str, Any] = {"psi": population_stability_index(ref[col], frame[col])}
        numeric = pd.api.types.is_numeric_dtype(frame[col]) and pd.api.types.is_numeric_dtype(
            ref[col]
        )
        if numeric and frame[col].notna().any() and ref[col].notna().any():
            ks = stats.ks_2samp(ref[col].dropna(), frame[col].dropna())
            entry.update(ks_statistic=float(ks.statistic), ks_pvalue=float(ks.pvalue))
        out[col] = entry
        if max_psi is not None and entry["psi"] > max_psi:
            found.append(
                _violation(
                    "drift_psi",
                    col,
                    f"column {col!r} drifted from the reference: PSI "
                    f"{entry['psi']:.3f} > {max_psi}",
                    psi=entry["psi"],
                )
            )
        elif min_p is not None and entry.get("ks_pvalue", 1.0) < min_p:
            found.append(
                _violation(
                    "drift_ks",
                    col,
                    f"column {col!r} drifted from the reference: KS p-value "
                    f"{entry['ks_pvalue']:.2e} < {min_p}",
                    ks_pvalue=entry["ks_pvalue"],
                )
            )
    report["drift"] = out
    return found, sev


def validate_frame(
    frame: pd.DataFrame,
    *,
    schema: Any = None,
    quality: dict[str, Any] | None = None,
    target_column: str | None = None,
    task: str | None = None,
    raise_on_error: bool = True,
) -> dict[str, Any]:
    """Check ``frame`` against a schema and quality limits; see the module docstring.

    Returns
    -------
    dict
        ``passed``, ``errors`` and ``warnings`` (lists of violations: ``check``, ``column``,
        ``message`` and the measured values), ``n_rows``, ``n_columns``, ``missing_rate``,
        ``duplicate_rate``, ``outlier_rate``, ``class_balance`` and ``drift``.

    Raises
    ------
    DataValidationError
        With every hard violation, if there is any and ``raise_on_error``.
    """
    quality = dict(quality or {})
    unknown = sorted(set(quality) - set(QUALITY_KEYS))
    if unknown:
        raise PipelineConfigError(
            f"quality: unknown key(s) {unknown}; accepted: {list(QUALITY_KEYS)}"
        )
    errors: list[dict[str, Any]] = []
    warnings: list[dict[str, Any]] = []
    report: dict[str, Any] = {"n_rows": int(len(frame)), "n_columns": int(frame.shape[1])}

    if schema is not None:
        if isinstance(schema, dict):
            errors.extend(_check_dict_schema(frame, schema))
        elif hasattr(schema, "validate") and type(schema).__module__.startswith("pandera"):
            errors.extend(_check_pandera(frame, schema))
        else:
            raise PipelineConfigError(
                f"schema={type(schema).__name__}: expected a dict or a pandera DataFrameSchema"
            )

    def add(found: list[dict[str, Any]], sev: str) -> None:
        for v in found:
            v["severity"] = sev
        (errors if sev == "error" else warnings).extend(found)

    n = max(len(frame), 1)
    missing = frame.isna().sum() / n
    report["missing_rate"] = {c: float(v) for c, v in missing.items()}
    limit, sev = _limit(quality, "max_missing_rate")
    if limit is not None:
        add(
            [
                _violation(
                    "missing_rate",
                    c,
                    f"column {c!r} is {v:.1%} missing (> {limit:.1%})",
                    rate=float(v),
                )
                for c, v in missing.items()
                if v > limit
            ],
            sev,
        )

    hashable = frame.apply(lambda s: s.map(repr) if s.dtype == object else s)
    dup_rate = float(hashable.duplicated().sum() / n)
    report["duplicate_rate"] = dup_rate
    limit, sev = _limit(quality, "max_duplicate_rate")
    if limit is not None and dup_rate > limit:
        add(
            [
                _violation(
                    "duplicate_rate",
                    None,
                    f"{dup_rate:.1%} of the rows are duplicates (> {limit:.1%})",
                    rate=dup_rate,
                )
            ],
            sev,
        )

    k = float(quality.get("outlier_iqr", 3.0))
    outliers: dict[str, float] = {}
    for col in frame.columns:
        s = frame[col]
        if col == target_column or not pd.api.types.is_numeric_dtype(s) or s.dtype == bool:
            continue
        vals = s.dropna().to_numpy(dtype=float)
        if len(vals) < 4:
            continue
        q1, q3 = np.quantile(vals, [0.25, 0.75])
        iqr = q3 - q1
        if iqr == 0:
            continue
        outliers[col] = float(np.mean((vals < q1 - k * iqr) | (vals > q3 + k * iqr)))
    report["outlier_rate"] = outliers
    limit, sev = _limit(quality, "max_outlier_rate")
    if limit is not None:
        add(
            [
                _violation(
                    "outlier_rate",
                    c,
                    f"column {c!r} has {v:.1%} outliers beyond {k} IQR (> {limit:.1%})",
                    rate=v,
                )
                for c, v in outliers.items()
                if v > limit
            ],
            sev,
        )

    if target_column is not None and target_column in frame.columns and task != "regression":
        shares = frame[target_column].value_counts(normalize=True, dropna=True)
        report["class_balance"] = {str(k_): float(v) for k_, v in shares.items()}
        limit, sev = _limit(quality, "min_class_share")
        if limit is not None and len(shares) and shares.min() < limit:
            rare = shares.idxmin()
            add(
                [
                    _violation(
                        "class_balance",
                        target_column,
                        f"class {rare!r} of {target_column!r} is {shares.min():.2%} of the "
                        f"rows (< {limit:.2%})",
                        rate=float(shares.min()),
                    )
                ],
                sev,
            )

    drift = quality.get("drift")
    if drift:
        if not isinstance(drift, dict):
            raise PipelineConfigError(
                f"quality['drift']={drift!r}: expected a dict with 'reference'"
            )
        found, sev = _drift(frame, drift, report)
        add(found, sev)

    report.update(passed=not errors, errors=errors, warnings=warnings)
    for w in warnings:
        logger.warning("data validation: %s", w["message"])
    if errors and raise_on_error:
        raise DataValidationError(errors, report)
    return report
