"""The AutoML report: the specification's fields, the search history, JSON and HTML."""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from .._fs import atomic_file

__all__ = ["AutoMLReport", "format_duration"]


def format_duration(seconds: float) -> str:
    """``'42.0 seconds'``, ``'3.5 minutes'``, ``'3.2 hours'``."""
    if seconds < 120:
        return f"{seconds:.1f} seconds"
    if seconds < 7200:
        return f"{seconds / 60:.1f} minutes"
    return f"{seconds / 3600:.1f} hours"


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, np.ndarray):
        return _clean(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


class AutoMLReport(dict):
    """A dict with the specification's keys and more.

    Keys: ``best_model`` (family of the best single model, e.g. ``'XGBoost'``), ``best_score``
    (its out-of-fold score), ``final_model`` (``'single_best'``, ``'voting_ensemble'`` or
    ``'stacking_ensemble'``: what the returned model serves), ``final_score``,
    ``training_time`` (``'58.2 seconds'``) and ``training_time_s``, ``models_evaluated``
    (completed trials), ``feature_importance`` (input column -> share, summing to 1),
    ``ensemble_performance`` (``single_best``, ``stacking_ensemble``, ``voting_ensemble``, all
    on the same folds), ``latency_ms_per_row`` (batch of up to 1000 rows),
    ``latency_ms_single_row``, ``search_history`` (one entry per trial), ``scores_by_family``,
    ``metric``, ``budget_s``, ``config``, ``study``.
    """

    def to_json(self, path: str | Path | None = None, *, indent: int | None = 1) -> str:
        """The report as JSON (NaN as null); written atomically to ``path`` when given."""
        text = json.dumps(_clean(dict(self)), indent=indent, sort_keys=False)
        if path is not None:
            _atomic_write(Path(path), text.encode())
        return text

    def figures(self) -> dict[str, bytes]:
        """PNG plots: optimisation history, scores by model family, feature importances."""
        from matplotlib.figure import Figure

        out: dict[str, bytes] = {}
        hist = [h for h in self.get("search_history", []) if h.get("score") is not None]
        if hist:
            fig = Figure(figsize=(7, 3.2))
            ax = fig.subplots()
            t = [h["trial"] for h in hist]
            s = [h["score"] for h in hist]
            ax.scatter(t, s, s=12, alpha=0.6, label="trial")
            greater = self.get("greater_is_better", True)
            best = np.maximum.accumulate(s) if greater else np.minimum.accumulate(s)
            ax.step(t, best, where="post", color="C3", label="best so far")
            ax.set_xlabel("trial")
            ax.set_ylabel(str(self.get("metric", "score")))
            ax.set_title("Optimisation history (out-of-fold score)")
            ax.legend(loc="lower right")
            out["optimisation_history"] = _png(fig)
            fams: dict[str, list[float]] = {}
            for h in hist:
                fams.setdefault(h["family"], []).append(h["score"])
            fig = Figure(figsize=(7, 3.2))
            ax = fig.subplots()
            names = sorted(fams)
            ax.boxplot([fams[n] for n in names])
            ax.set_xticks(range(1, len(names) + 1), names, rotation=30, ha="right")
            ax.set_ylabel(str(self.get("metric", "score")))
            ax.set_title("Scores by model family")
            fig.tight_layout()
            out["scores_by_family"] = _png(fig)
        imp = self.get("feature_importance") or {}
        if imp:
            items = list(imp.items())[:20][::-1]
            fig = Figure(figsize=(7, 0.3 * len(items) + 1.2))
            ax = fig.subplots()
            ax.barh([k for k, _ in items], [v for _, v in items])
            ax.set_title("Feature importance (share)")
            fig.tight_layout()
            out["feature_importance"] = _png(fig)
        return out

    def to_html(self, path: str | Path) -> Path:
        """A standalone HTML page with the summary, the plots (embedded PNG) and the history."""
        path = Path(path)
        esc = html.escape
        summary_keys = (
            "best_model",
            "best_score",
            "final_model",
            "final_score",
            "metric",
            "training_time",
            "models_evaluated",
            "trials_pruned",
            "latency_ms_per_row",
            "latency_ms_single_row",
            "budget_s",
        )
        rows = "".join(
            f"<tr><th>{esc(k)}</th><td>{esc(str(self.get(k)))}</td></tr>"
            for k in summary_keys
            if k in self
        )
        ens = "".join(
            f"<tr><th>{esc(k)}</th><td>{esc('skipped' if v is None else str(v))}</td></tr>"
            for k, v in (self.get("ensemble_performance") or {}).items()
        )
        imgs = "".join(
            f'<h2>{esc(name.replace("_", " "))}</h2><img alt="{esc(name)}" '
            f'src="data:image/png;base64,{base64.b64encode(png).decode()}"/>'
            for name, png in self.figures().items()
        )
        hist_rows = "".join(
            "<tr>"
            + "".join(
                f"<td>{esc(str(h.get(k)))}</td>"
                for k in ("trial", "family", "state", "score", "duration_s", "params")
            )
            + "</tr>"
            for h in self.get("search_history", [])
        )
        page = (
            "<!DOCTYPE html><html><head><meta charset='utf-8'><title>AutoML report</title>"
            "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:2px 6px;text-align:left;font-size:13px}"
            "</style></head><body><h1>AutoML report</h1>"
            f"<table>{rows}</table><h2>Ensembles (same folds)</h2><table>{ens}</table>{imgs}"
            "<h2>Search history</h2><table><tr><th>trial</th><th>family</th><th>state</th>"
            f"<th>score</th><th>duration (s)</th><th>params</th></tr>{hist_rows}</table>"
            "</body></html>"
        )
        _atomic_write(path, page.encode())
        return path


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    return buf.getvalue()


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as fh:  # renamed into place, with the umask's default mode
        fh.write(data)
