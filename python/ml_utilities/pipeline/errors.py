"""Exceptions of the data pipeline, each a subclass of the package's own."""

from __future__ import annotations

from typing import Any

from ..exceptions import MLUtilitiesError, ParameterError

__all__ = ["DataValidationError", "ParameterError", "PipelineConfigError", "SourceError"]


class PipelineConfigError(ParameterError):
    """The pipeline configuration has an unknown key or a bad value (the message names it)."""


class SourceError(ParameterError):
    """A data source cannot be read: missing table or bucket, wrong key type, empty result..."""


class DataValidationError(MLUtilitiesError, ValueError):
    """The data failed hard validation checks.

    Attributes
    ----------
    violations : list of dict
        Every hard violation found (not only the first): ``check``, ``column`` (or None),
        ``message`` and the measured values.
    report : dict
        The whole validation report (hard errors, warnings and every measurement).
    """

    def __init__(self, violations: list[dict[str, Any]], report: dict[str, Any]) -> None:
        self.violations = list(violations)
        self.report = report
        lines = [f"  - {v['message']}" for v in self.violations]
        super().__init__(
            f"data validation failed with {len(self.violations)} violation(s):\n" + "\n".join(lines)
        )
