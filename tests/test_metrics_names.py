"""The specification's Prometheus metrics, all in one registry (ml_utilities._metrics): after
one feature extraction and one small AutoML run, the seven names are in the exposition and the
two new histograms have samples; the lifecycle's gauges exist; without prometheus_client the
extractor and AutoML still work (no-op metrics) while serving still requires it."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from helpers import chirp

pytest.importorskip("prometheus_client")

from ml_utilities import _metrics  # noqa: E402
from ml_utilities._metrics import REGISTRY, metrics, render  # noqa: E402

SPEC_NAMES = (
    "ml_model_inference_duration_seconds",
    "ml_model_accuracy_score",
    "ml_model_prediction_count_total",
    "ml_feature_extraction_duration_seconds",
    "ml_automl_trial_duration_seconds",
    "ml_model_memory_usage_bytes",
    "ml_gpu_utilization_percentage",
)


def _declared(text: str) -> set[str]:
    """Names with a ``# TYPE`` line in an exposition text."""
    return {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")}


def _count(name: str, **labels: str) -> float:
    """The sum of ``<name>_count`` over the children whose labels include ``labels``."""
    total = 0.0
    for family in REGISTRY.collect():
        for sample in family.samples:
            if sample.name == f"{name}_count" and labels.items() <= sample.labels.items():
                total += sample.value
    return total


def test_serving_re_exports_the_one_registry():
    serving_metrics = pytest.importorskip("ml_utilities.serving.metrics")
    assert serving_metrics.REGISTRY is REGISTRY
    assert serving_metrics.metrics is metrics
    assert serving_metrics.render is render
    assert serving_metrics.ServingMetrics is _metrics.Metrics
    assert callable(serving_metrics.observe_many)


def test_the_specification_names_after_an_extraction_and_an_automl_run(tmp_path):
    from ml_utilities.automl import AutoMLHelper
    from ml_utilities.features import FeatureExtractor

    method = "extract_comprehensive_features"
    before_features = _count("ml_feature_extraction_duration_seconds", method=method)
    before_trials = _count("ml_automl_trial_duration_seconds", family="linear")

    y = chirp(seconds=1.0)
    fx = FeatureExtractor()
    fx.extract_comprehensive_features_sync(audio_data=y, sample_rate=22050)
    # the async method and its _sync twin share one label
    asyncio.run(fx.extract_comprehensive_features(audio_data=y, sample_rate=22050))
    assert _count("ml_feature_extraction_duration_seconds", method=method) == before_features + 2
    total = REGISTRY.get_sample_value(
        "ml_feature_extraction_duration_seconds_sum", {"method": method}
    )
    assert total is not None and total > 0

    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 4))
    labels = (x[:, 0] + 0.3 * rng.normal(size=120) > 0).astype(int)
    model = AutoMLHelper().train_automl_pipeline_sync(
        x,
        labels,
        {
            "task_type": "classification",
            "time_budget_seconds": 15,  # the run ends after its 2 trials; the rest is margin
            "cv_folds": 2,
            "n_jobs": 1,
            "max_trials": 2,
            "register": False,
            "storage": f"sqlite:///{tmp_path / 'studies.db'}",
            "model_search_space": {"algorithms": ["linear"]},
        },
    )
    history = model.report["search_history"]
    states = {h["state"] for h in history}
    assert history and _count("ml_automl_trial_duration_seconds", family="linear") == (
        before_trials + len(history)
    )
    for state in states:  # each trial under its own family and final state
        assert _count("ml_automl_trial_duration_seconds", family="linear", state=state) > 0

    text = render().decode()
    missing = [name for name in SPEC_NAMES if name not in _declared(text)]
    assert not missing, f"not in the exposition: {missing}"
    samples = [line for line in text.splitlines() if not line.startswith("#")]
    for name in ("ml_feature_extraction_duration_seconds", "ml_automl_trial_duration_seconds"):
        counts = [line for line in samples if line.startswith(f"{name}_count{{")]
        assert counts and all(float(line.rsplit(" ", 1)[1]) > 0 for line in counts), counts


def test_the_lifecycle_gauges():
    metrics.drift_score.labels("metrics-test-model").set(0.42)
    metrics.drift_alarm.labels("metrics-test-model").set(1)
    metrics.rollout_weight.labels("metrics-test-model", "3").set(0.25)
    metrics.rollout_weight.labels("metrics-test-model", "2").set(0.75)
    metrics.rollout_step.labels("metrics-test-model").set(25)
    text = render().decode()
    for name in (
        "ml_model_drift_score",
        "ml_model_drift_alarm",
        "ml_model_rollout_weight",
        "ml_model_rollout_step_percent",
    ):
        assert f"# TYPE {name} gauge" in text
    assert 'ml_model_drift_score{model="metrics-test-model"} 0.42' in text
    assert 'ml_model_drift_alarm{model="metrics-test-model"} 1.0' in text
    assert 'ml_model_rollout_weight{model="metrics-test-model",version="3"} 0.25' in text
    assert 'ml_model_rollout_weight{model="metrics-test-model",version="2"} 0.75' in text
    assert 'ml_model_rollout_step_percent{model="metrics-test-model"} 25.0' in text


def test_without_prometheus_client_features_and_automl_still_work():
    """prometheus_client is the serving extra: the extractor and AutoML's trial observation run
    on no-op metrics without it, and serving still refuses to import."""
    script = textwrap.dedent(
        """
        import sys
        sys.modules["prometheus_client"] = None  # as if not installed
        import numpy as np
        from ml_utilities import _metrics
        assert _metrics.AVAILABLE is False and _metrics.REGISTRY is None
        assert _metrics.render() == b""
        from ml_utilities.features import FeatureExtractor
        y = np.random.default_rng(0).standard_normal(22050).astype(np.float32)
        feats = FeatureExtractor().extract_comprehensive_features_sync(y, 22050)
        assert sorted(feats) == ["harmonic", "rhythm", "spectral", "temporal", "timbre"]
        from ml_utilities.automl.search import TrialResult, _observe_trial
        _observe_trial(TrialResult(0, "linear", {}, 1.0, False, "complete", 0.0, 0.5), 0.0)
        _metrics.metrics.rollout_weight.labels("m", "1").set(0.5)
        try:
            import ml_utilities.serving.metrics
        except ImportError:
            print("serving refused")
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ),
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "serving refused"
