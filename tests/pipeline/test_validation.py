"""Data validation: every hard violation listed in one exception, soft ones as warnings."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml_utilities.pipeline import (
    DataValidationError,
    PipelineConfigError,
    population_stability_index,
    validate_frame,
)


@pytest.fixture
def frame(rng):
    n = 200
    return pd.DataFrame(
        {
            "user_id": np.arange(n),
            "plays": rng.integers(0, 100, n).astype(float),
            "genre": rng.choice(["rock", "pop"], n),
            "label": rng.choice(["a", "b"], n),
        }
    )


def test_dict_schema_lists_every_violation(frame):
    bad = frame.copy()
    bad.loc[3, "plays"] = -5.0
    bad.loc[4, "genre"] = "polka"
    bad.loc[5, "user_id"] = 0  # duplicate of row 0
    schema = {
        "user_id": {"dtype": "int", "unique": True, "nullable": False},
        "plays": {"dtype": "float", "min": 0, "max": 1000},
        "genre": {"dtype": "str", "allowed": ["rock", "pop"]},
        "label": "int",  # wrong type
        "country": {"dtype": "str"},  # required and missing
        "optional": {"dtype": "str", "required": False},
    }
    with pytest.raises(DataValidationError) as info:
        validate_frame(bad, schema=schema)
    err = info.value
    checks = sorted((v["check"], v["column"]) for v in err.violations)
    assert checks == [
        ("allowed", "genre"),
        ("dtype", "label"),
        ("min", "plays"),
        ("required", "country"),
        ("unique", "user_id"),
    ]
    text = str(err)
    assert "5 violation(s)" in text and "'polka'" in text and "-5.0" in text
    assert err.report["passed"] is False
    # the good frame passes
    good = {k: v for k, v in schema.items() if k not in ("label", "country")}
    assert validate_frame(frame, schema=good)["passed"]


def test_pandera_schema(frame):
    import pandera.pandas as pa

    schema = pa.DataFrameSchema(
        {
            "plays": pa.Column(float, pa.Check.ge(0)),
            "genre": pa.Column(str, pa.Check.isin(["rock", "pop"])),
        }
    )
    assert validate_frame(frame, schema=schema)["passed"]
    bad = frame.copy()
    bad.loc[[1, 2], "plays"] = -1.0
    bad.loc[7, "genre"] = "ska"
    with pytest.raises(DataValidationError) as info:
        validate_frame(bad, schema=schema)
    cases = {(v["column"], v["failure_case"]) for v in info.value.violations}
    assert cases == {("plays", -1.0), ("genre", "ska")} and len(info.value.violations) == 3


def test_quality_checks_soft_and_hard(frame, rng):
    bad = frame.copy()
    bad.loc[:79, "plays"] = np.nan  # 40% missing
    bad.loc[100:114, "label"] = "rare"
    bad = pd.concat([bad, bad.iloc[:30]], ignore_index=True)  # 13% duplicates
    report = validate_frame(
        bad, target_column="label", quality={"max_missing_rate": 0.3, "min_class_share": 0.1}
    )
    assert report["passed"]
    kinds = sorted(w["check"] for w in report["warnings"])
    assert kinds == ["class_balance", "duplicate_rate", "missing_rate"]
    assert report["missing_rate"]["plays"] == pytest.approx(110 / 230)
    assert report["duplicate_rate"] == pytest.approx(30 / 230)
    assert report["class_balance"]["rare"] == pytest.approx(15 / 230)
    with pytest.raises(DataValidationError) as info:
        validate_frame(
            bad,
            target_column="label",
            quality={
                "max_missing_rate": {"threshold": 0.3, "severity": "error"},
                "max_duplicate_rate": {"threshold": 0.05, "severity": "error"},
            },
        )
    assert sorted(v["check"] for v in info.value.violations) == ["duplicate_rate", "missing_rate"]


def test_outlier_rate(frame):
    bad = frame.copy()
    bad.loc[:19, "plays"] = 1e6
    report = validate_frame(bad, quality={"max_outlier_rate": 0.05})
    assert report["outlier_rate"]["plays"] == pytest.approx(0.1)
    assert [w["column"] for w in report["warnings"] if w["check"] == "outlier_rate"] == ["plays"]


def test_drift_against_a_reference(rng):
    ref = pd.DataFrame({"tempo": rng.normal(120, 10, 2000), "genre": rng.choice(["a", "b"], 2000)})
    same = pd.DataFrame({"tempo": rng.normal(120, 10, 1000), "genre": rng.choice(["a", "b"], 1000)})
    moved = pd.DataFrame(
        {"tempo": rng.normal(135, 10, 1000), "genre": rng.choice(["a", "b"], 1000, p=[0.9, 0.1])}
    )
    drift = {"reference": ref, "max_psi": 0.2, "min_ks_pvalue": 1e-3, "severity": "error"}
    report = validate_frame(same, quality={"drift": drift})
    assert report["drift"]["tempo"]["psi"] < 0.05 and report["drift"]["tempo"]["ks_pvalue"] > 1e-3
    with pytest.raises(DataValidationError) as info:
        validate_frame(moved, quality={"drift": drift})
    assert {v["column"] for v in info.value.violations} == {"tempo", "genre"}
    assert population_stability_index(ref["tempo"], moved["tempo"]) > 0.5


def test_bad_validation_config(frame):
    with pytest.raises(PipelineConfigError, match="unknown key"):
        validate_frame(frame, quality={"max_missing": 0.1})
    with pytest.raises(PipelineConfigError, match="dtype='integer'"):
        validate_frame(frame, schema={"plays": "integer"})
    with pytest.raises(PipelineConfigError, match="rate in"):
        validate_frame(frame, quality={"max_missing_rate": 3})
    with pytest.raises(PipelineConfigError, match="dict or a pandera"):
        validate_frame(frame, schema=["plays"])


def test_pipeline_stops_on_hard_failures_listing_all(pipeline, frame):
    bad = frame.copy()
    bad.loc[0, "plays"] = -1.0
    cfg = {
        "schema": {"plays": {"min": 0}, "genre": {"allowed": ["rock"]}, "missing": "str"},
        "register": False,
        "validation": {"cv_folds": 2},
    }
    with pytest.raises(DataValidationError) as info:
        pipeline.run_complete_pipeline_sync("label", cfg, data=bad)
    assert len(info.value.violations) == 3
