"""docs/grafana/ml_utilities.json: an importable Grafana dashboard whose every query reads a
metric the library's registry exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

prometheus_client = pytest.importorskip("prometheus_client")

from ml_utilities._metrics import Metrics  # noqa: E402

DASHBOARD = Path(__file__).resolve().parents[1] / "docs" / "grafana" / "ml_utilities.json"
METRIC = re.compile(r"\bml_[a-z0-9_]+\b")


def _panels(panels: list[dict]) -> list[dict]:
    out = []
    for panel in panels:
        out.append(panel)
        out += _panels(panel.get("panels", []))
    return out


@pytest.fixture(scope="module")
def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def exported() -> set[str]:
    """Every sample name the registry exports once each labelled metric has a child (a fresh
    registry with the same collectors, so the library's own is left as it is)."""
    registry = prometheus_client.CollectorRegistry()
    collectors = Metrics(registry)
    for collector in vars(collectors).values():
        if collector._labelnames:
            collector.labels(*["x"] * len(collector._labelnames))
    text = prometheus_client.generate_latest(registry).decode()
    return {
        re.split(r"[{ ]", line, maxsplit=1)[0]
        for line in text.splitlines()
        if line and not line.startswith("#")
    }


def test_dashboard_loads_with_a_prometheus_datasource_variable(dashboard):
    assert 36 <= dashboard["schemaVersion"] <= 41
    assert dashboard["title"] and dashboard["uid"]
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["DS_PROMETHEUS"]["type"] == "datasource"
    assert variables["DS_PROMETHEUS"]["query"] == "prometheus"
    panels = [p for p in _panels(dashboard["panels"]) if p["type"] != "row"]
    assert len(panels) >= 12
    ids = [p["id"] for p in _panels(dashboard["panels"])]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in panels:
        assert panel["targets"], panel["title"]
        assert panel["datasource"] == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${DS_PROMETHEUS}"
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24 and grid["h"] > 0


def test_every_expression_reads_an_exported_metric(dashboard, exported):
    exprs = [t["expr"] for p in _panels(dashboard["panels"]) for t in p.get("targets", [])]
    assert exprs
    used = set()
    for expr in exprs:
        names = set(METRIC.findall(expr))
        assert names, f"no ml_ metric in {expr!r}"
        unknown = names - exported
        assert not unknown, f"{expr!r} reads metrics the registry does not export: {unknown}"
        used |= names
    # the panels the dashboard is for
    for name in (
        "ml_model_inference_duration_seconds_bucket",
        "ml_model_prediction_count_total",
        "ml_model_accuracy_score",
        "ml_model_memory_usage_bytes",
        "ml_gpu_utilization_percentage",
        "ml_serving_queue_time_seconds_bucket",
        "ml_feature_extraction_duration_seconds_bucket",
        "ml_automl_trial_duration_seconds_count",
        "ml_model_drift_score",
        "ml_model_drift_alarm",
        "ml_model_rollout_weight",
        "ml_model_rollout_step_percent",
    ):
        assert name in used, f"no panel reads {name}"


def test_latency_quantiles_and_the_drift_threshold(dashboard):
    panels = [p for p in _panels(dashboard["panels"]) if p["type"] != "row"]
    inference = " ".join(
        t["expr"]
        for p in panels
        for t in p["targets"]
        if "ml_model_inference_duration_seconds_bucket" in t["expr"]
    )
    assert "histogram_quantile(0.5," in inference and "histogram_quantile(0.99," in inference
    extraction = [
        t["expr"]
        for p in panels
        for t in p["targets"]
        if "ml_feature_extraction_duration_seconds_bucket" in t["expr"]
    ]
    assert any("histogram_quantile(0.99," in e and "method" in e for e in extraction)
    automl = [t["expr"] for p in panels for t in p["targets"] if "ml_automl_trial" in t["expr"]]
    assert any("family" in e and "state" in e for e in automl)

    (drift,) = [
        p
        for p in panels
        if any("ml_model_drift_score" in t["expr"] for t in p["targets"])
        and p["type"] == "timeseries"
    ]
    defaults = drift["fieldConfig"]["defaults"]
    assert defaults["custom"]["thresholdsStyle"]["mode"].startswith("line")
    assert 0.3 in [step["value"] for step in defaults["thresholds"]["steps"]]
    rollout = [t for p in panels for t in p["targets"] if "ml_model_rollout_weight" in t["expr"]]
    assert any("{{version}}" in t["legendFormat"] for t in rollout)
