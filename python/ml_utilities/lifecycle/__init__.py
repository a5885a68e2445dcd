"""The model lifecycle: register (with a reference sample), validate, performance-test and roll
out gradually with automatic rollback, monitor live drift, retrain.

:class:`ModelLifecycleManager` holds the loop of the specification over the registry
(:mod:`ml_utilities.models`), the prediction service whose rollouts and live monitors run in
this process (:mod:`ml_utilities.serving.rollout`, :mod:`ml_utilities.serving.monitor`) and
the drift statistics of :mod:`ml_utilities.monitoring`. ``render_monitoring_report`` writes
the HTML monitoring report.
"""

from __future__ import annotations

from typing import Any

from .manager import DEFAULT_LIFECYCLE_CONFIG, ModelLifecycleManager

__all__ = [
    "DEFAULT_LIFECYCLE_CONFIG",
    "ModelLifecycleManager",
    "RetrainingJob",
    "render_monitoring_report",
]


def __getattr__(name: str) -> Any:
    if name == "RetrainingJob":
        from .retrain import RetrainingJob

        return RetrainingJob
    if name == "render_monitoring_report":
        from .report import render_monitoring_report

        return render_monitoring_report
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
