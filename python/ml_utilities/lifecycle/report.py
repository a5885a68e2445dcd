"""The monitoring report: one self-contained HTML page on a model's drift and rollout.

:func:`render_monitoring_report` writes, for one model:

- a summary: rows of the reference and live samples, the latest drift score against the
  threshold, whether the drift alarm is on;
- the drift score over time, with the threshold as a dashed line;
- with a ``rollout``, the challenger (canary) against the champion: the traffic split, a
  table and bars of requests, error rate, p99 latency and metric, and the rollout's events;
- per feature, the reference and live distributions as overlaid histograms, the most drifted
  features first (by the population stability index over the reference's deciles), and a
  table of every feature's drift statistics.

Everything is drawn as inline SVG by this module: the page loads nothing (no script, no
stylesheet, no font, no image from elsewhere) and opens offline. Every string that comes from
the caller (model, feature names, statuses, events) is HTML-escaped.
"""

from __future__ import annotations

import datetime as _dt
import html
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._fs import atomic_file
from ..exceptions import ParameterError

__all__ = ["render_monitoring_report"]

#: the page's colours (the tests look for them in a screenshot)
COLORS = {
    "reference": "#1f77b4",
    "live": "#ff7f0e",
    "drift": "#6a3d9a",
    "threshold": "#d62728",
    "champion": "#2ca02c",
    "challenger": "#9467bd",
}
#: at most this many features get a histogram (the most drifted); the table lists more
MAX_PLOTS = 12
#: rows of the per-feature drift table
MAX_TABLE_ROWS = 200
#: bins of each histogram
HIST_BINS = 30
#: quantile bins of the population stability index
PSI_BINS = 10
_PSI_FLOOR = 1e-4


# -- checks ------------------------------------------------------------------------------------
def _matrix(name: str, value: Any) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ParameterError(f"{name} must be a 2-D array of numbers: {err}") from None
    if arr.ndim != 2:
        raise ParameterError(f"{name} must be a 2-D array (rows x features), got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ParameterError(f"{name} is empty (shape {arr.shape}): it needs rows and features")
    return arr


def _finite_columns(name: str, arr: np.ndarray, features: list[str]) -> list[np.ndarray]:
    cols = []
    for j, feature in enumerate(features):
        col = arr[:, j]
        col = col[np.isfinite(col)]
        if col.size == 0:
            raise ParameterError(
                f"{name} has no finite value in feature {feature!r} (column {j}): "
                "every value is NaN or infinite"
            )
        cols.append(col)
    return cols


def _number(name: str, value: Any, *, optional: bool = False) -> float | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ParameterError(f"{name} must be a number, got {value!r}")
    out = float(value)
    if not math.isfinite(out):
        raise ParameterError(f"{name} must be finite, got {value!r}")
    return out


def _history(drift_history: Any) -> list[tuple[float, float]]:
    try:
        if isinstance(drift_history, (str, bytes, Mapping)):
            raise TypeError
        entries = list(drift_history)
    except TypeError:
        raise ParameterError(
            f"drift_history must be a sequence of (unix_time, score) pairs, got {drift_history!r}"
        ) from None
    out = []
    for i, entry in enumerate(entries):
        try:
            t, score = entry
        except (TypeError, ValueError):
            raise ParameterError(
                f"drift_history[{i}] must be a (unix_time, score) pair, got {entry!r}"
            ) from None
        out.append(
            (
                _number(f"drift_history[{i}] time", t),
                _number(f"drift_history[{i}] score", score),
            )
        )
    out.sort(key=lambda p: p[0])
    return out


_SIDE_KEYS = ("version", "requests", "errors", "p99_ms", "metric")


def _rollout(rollout: Any) -> dict[str, Any] | None:
    if rollout is None:
        return None
    if not isinstance(rollout, Mapping):
        raise ParameterError(f"rollout must be a dict or None, got {type(rollout).__name__}")
    step = _number("rollout['step_percent']", rollout.get("step_percent"), optional=True)
    if step is not None and not 0 <= step <= 100:
        raise ParameterError(f"rollout['step_percent'] must be within 0..100, got {step!r}")
    out: dict[str, Any] = {"step_percent": step, "status": rollout.get("status")}
    for side in ("champion", "challenger"):
        data = rollout.get(side)
        if data is None:
            out[side] = None
            continue
        if not isinstance(data, Mapping):
            raise ParameterError(f"rollout[{side!r}] must be a dict, got {type(data).__name__}")
        entry: dict[str, Any] = {"version": data.get("version")}
        for key in ("requests", "errors", "p99_ms", "metric"):
            entry[key] = _number(f"rollout[{side!r}][{key!r}]", data.get(key), optional=True)
            if key != "metric" and entry[key] is not None and entry[key] < 0:
                raise ParameterError(f"rollout[{side!r}][{key!r}] must be >= 0, got {entry[key]}")
        requests, errors = entry["requests"], entry["errors"]
        entry["error_rate"] = errors / requests if requests and errors is not None else None
        out[side] = entry
    events = rollout.get("events") or ()
    if isinstance(events, (str, bytes, Mapping)):
        raise ParameterError("rollout['events'] must be a list of dicts")
    out["events"] = []
    for i, event in enumerate(events):
        if not isinstance(event, Mapping):
            raise ParameterError(f"rollout['events'][{i}] must be a dict, got {event!r}")
        when = _number(f"rollout['events'][{i}]['time']", event.get("time"), optional=True)
        out["events"].append((when, event.get("event"), event.get("detail")))
    return out


# -- statistics --------------------------------------------------------------------------------
def _psi(ref: np.ndarray, live: np.ndarray) -> float:
    """Population stability index of ``live`` against ``ref``, over the reference's quantile
    bins, with a bin of its own for values beyond each end of the reference."""
    edges = np.quantile(ref, np.linspace(0.0, 1.0, PSI_BINS + 1))
    edges = np.unique(np.append(edges, np.nextafter(edges[-1], np.inf)))
    r = np.bincount(np.searchsorted(edges, ref, side="right"), minlength=len(edges) + 1)
    v = np.bincount(np.searchsorted(edges, live, side="right"), minlength=len(edges) + 1)
    r = np.maximum(r / ref.size, _PSI_FLOOR)
    v = np.maximum(v / live.size, _PSI_FLOOR)
    return float(np.sum((v - r) * np.log(v / r)))


def _ks(ref: np.ndarray, live: np.ndarray) -> float:
    """Two-sample Kolmogorov-Smirnov statistic (the largest gap of the two CDFs)."""
    a, b = np.sort(ref), np.sort(live)
    points = np.concatenate([a, b])
    gap = np.searchsorted(a, points, side="right") / a.size
    gap -= np.searchsorted(b, points, side="right") / b.size
    return float(np.max(np.abs(gap)))


# -- formatting --------------------------------------------------------------------------------
def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _fmt(value: float | None, digits: int = 3) -> str:
    if value is None or not math.isfinite(value):
        return "—"
    if float(value).is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    if 1000 <= abs(value) < 1e5:
        return f"{value:,.1f}"
    return f"{value:.{digits}g}"


def _time(t: float | None) -> str:
    if t is None:
        return "—"
    return _dt.datetime.fromtimestamp(t, tz=_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About ``n`` round values spanning lo..hi."""
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / max(1, n)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    out, v = [], first
    while v <= hi + 1e-9 * step:
        out.append(0.0 if abs(v) < step * 1e-9 else v)
        v += step
    return out


# -- SVG ---------------------------------------------------------------------------------------
def _histogram_svg(feature: str, ref: np.ndarray, live: np.ndarray, stats: dict[str, float]) -> str:
    w, h = 380, 230
    left, right, top, bottom = 44, 10, 30, 34
    pw, ph = w - left - right, h - top - bottom
    lo = float(min(ref.min(), live.min()))
    hi = float(max(ref.max(), live.max()))
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    edges = np.linspace(lo, hi, HIST_BINS + 1)
    r = np.histogram(ref, edges)[0] / ref.size
    v = np.histogram(live, edges)[0] / live.size
    top_share = float(max(r.max(), v.max(), 1e-12)) * 1.1

    def x(value: float) -> float:
        return left + (value - lo) / (hi - lo) * pw

    def y(share: float) -> float:
        return top + ph - share / top_share * ph

    parts = [
        f'<svg class="hist" width="{w}" height="{h}" viewBox="0 0 {w} {h}" '
        f'xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{_e(feature)}">',
        f'<text x="{left}" y="16" class="ptitle">{_e(_short(feature, 44))}</text>',
        f'<text x="{w - right}" y="16" class="pstat" text-anchor="end">PSI '
        f"{_fmt(stats['psi'])} · KS {_fmt(stats['ks'])}</text>",
        f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" class="frame"/>',
    ]
    for name, shares in (("reference", r), ("live", v)):
        color = COLORS[name]
        path = [f"M{x(edges[0]):.1f},{y(0):.1f}"]
        for i, s in enumerate(shares):
            path.append(f"L{x(edges[i]):.1f},{y(s):.1f}L{x(edges[i + 1]):.1f},{y(s):.1f}")
        path.append(f"L{x(edges[-1]):.1f},{y(0):.1f}Z")
        d = "".join(path)
        parts.append(f'<path d="{d}" fill="{color}" fill-opacity="0.3" stroke="none"/>')
        parts.append(f'<path d="{d}" fill="none" stroke="{color}" stroke-width="2"/>')
    for t in _ticks(lo, hi, 4):
        parts.append(
            f'<text x="{x(t):.1f}" y="{top + ph + 14}" class="tick" text-anchor="middle">'
            f"{_fmt(t)}</text>"
        )
    for t in _ticks(0.0, top_share, 3):
        parts.append(
            f'<text x="{left - 4}" y="{y(t) + 3:.1f}" class="tick" text-anchor="end">{t:.0%}</text>'
        )
    parts.append(
        f'<text x="{left + pw / 2:.1f}" y="{h - 4}" class="tick" text-anchor="middle">'
        f"mean ref {_fmt(stats['mean_ref'])} · live {_fmt(stats['mean_live'])}</text>"
    )
    parts.append("</svg>")
    return "".join(parts)


def _drift_svg(history: list[tuple[float, float]], threshold: float) -> str:
    w, h = 1160, 300
    left, right, top, bottom = 56, 20, 20, 42
    pw, ph = w - left - right, h - top - bottom
    times = [t for t, _ in history]
    t0, t1 = min(times), max(times)
    if t1 <= t0:
        t0, t1 = t0 - 1.0, t1 + 1.0
    y_hi = max([s for _, s in history] + [threshold]) * 1.15 or 1.0
    y_lo = min(0.0, min(s for _, s in history))

    def x(t: float) -> float:
        return left + (t - t0) / (t1 - t0) * pw

    def y(s: float) -> float:
        return top + ph - (s - y_lo) / (y_hi - y_lo) * ph

    parts = [
        f'<svg class="drift" width="{w}" height="{h}" viewBox="0 0 {w} {h}" '
        'xmlns="http://www.w3.org/2000/svg" role="img" aria-label="drift score over time">',
        f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" class="frame"/>',
    ]
    for t in _ticks(y_lo, y_hi, 5):
        parts.append(
            f'<line x1="{left}" x2="{left + pw}" y1="{y(t):.1f}" y2="{y(t):.1f}" class="grid"/>'
            f'<text x="{left - 6}" y="{y(t) + 4:.1f}" class="tick" text-anchor="end">'
            f"{_fmt(t)}</text>"
        )
    for i in range(5):
        t = t0 + (t1 - t0) * i / 4
        label = _dt.datetime.fromtimestamp(t, tz=_dt.timezone.utc).strftime("%m-%d %H:%M")
        anchor = ("start", "middle", "middle", "middle", "end")[i]
        parts.append(
            f'<text x="{x(t):.1f}" y="{top + ph + 16}" class="tick" text-anchor="{anchor}">'
            f"{label}</text>"
        )
    parts.append(
        f'<text x="{left + pw / 2:.1f}" y="{h - 6}" class="tick" text-anchor="middle">'
        "time (UTC)</text>"
    )
    ty = y(threshold)
    parts.append(
        f'<line x1="{left}" x2="{left + pw}" y1="{ty:.1f}" y2="{ty:.1f}" '
        f'stroke="{COLORS["threshold"]}" stroke-width="2" stroke-dasharray="8 5"/>'
        f'<text x="{left + pw - 4}" y="{ty - 6:.1f}" class="tick" text-anchor="end" '
        f'fill="{COLORS["threshold"]}">threshold {_fmt(threshold)}</text>'
    )
    points = " ".join(f"{x(t):.1f},{y(s):.1f}" for t, s in history)
    parts.append(
        f'<polyline points="{points}" fill="none" stroke="{COLORS["drift"]}" stroke-width="2.5"/>'
    )
    for t, s in history:
        color = COLORS["threshold"] if s > threshold else COLORS["drift"]
        parts.append(
            f'<circle cx="{x(t):.1f}" cy="{y(s):.1f}" r="4" fill="{color}">'
            f"<title>{_e(_time(t))}: {_fmt(s)}</title></circle>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _rollout_bars_svg(roll: dict[str, Any]) -> str:
    rows = [
        ("requests", "requests", _fmt),
        ("error_rate", "error rate", lambda v: "—" if v is None else f"{v:.2%}"),
        ("p99_ms", "p99 latency (ms)", _fmt),
        ("metric", "metric", _fmt),
    ]
    w, label_w, bar_h = 760, 150, 16
    h = 24 + len(rows) * (2 * bar_h + 16)
    parts = [
        f'<svg class="bars" width="{w}" height="{h}" viewBox="0 0 {w} {h}" '
        'xmlns="http://www.w3.org/2000/svg" role="img" aria-label="champion and challenger">'
    ]
    y = 8
    span = w - label_w - 110
    for key, label, fmt in rows:
        values = [(roll[s] or {}).get(key) for s in ("champion", "challenger")]
        scale = max([abs(v) for v in values if v is not None] + [0.0]) or 1.0
        parts.append(f'<text x="0" y="{y + bar_h + 4}" class="blabel">{_e(label)}</text>')
        for i, side in enumerate(("champion", "challenger")):
            v = values[i]
            yy = y + i * (bar_h + 2)
            length = 0.0 if v is None else abs(v) / scale * span
            parts.append(
                f'<rect x="{label_w}" y="{yy}" width="{length:.1f}" height="{bar_h}" '
                f'fill="{COLORS[side]}"/>'
                f'<text x="{label_w + length + 6:.1f}" y="{yy + bar_h - 3}" class="tick">'
                f"{_e(side)} {fmt(v)}</text>"
            )
        y += 2 * bar_h + 16
    parts.append("</svg>")
    return "".join(parts)


def _short(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


# -- the page ----------------------------------------------------------------------------------
_CSS = """
body{font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;margin:24px;color:#222;
background:#fff}
h1{font-size:24px;margin:0 0 4px}h2{font-size:19px;margin:28px 0 10px;border-bottom:1px solid
#ddd;padding-bottom:4px}
.sub{color:#666;font-size:13px}
.cards{display:flex;gap:12px;flex-wrap:wrap;margin:16px 0}
.card{border:1px solid #ddd;border-radius:6px;padding:10px 16px;min-width:150px}
.card .k{font-size:12px;color:#666}.card .v{font-size:22px;font-weight:600}
.alarm{color:#fff;background:#d62728;border-color:#d62728}.alarm .k{color:#fde}
.ok{background:#eef7ee;border-color:#2ca02c}
.grid3{display:flex;flex-wrap:wrap;gap:8px}
svg text{font-family:inherit}.ptitle{font-size:13px;font-weight:600}.pstat{font-size:11px;
fill:#444}.tick{font-size:11px;fill:#444}.blabel{font-size:13px;fill:#222}
.frame{fill:none;stroke:#bbb}.grid{stroke:#eee}
table{border-collapse:collapse;font-size:13px;margin:8px 0}
td,th{border:1px solid #ddd;padding:4px 10px;text-align:right}
th{background:#f5f5f5}td.n,th.n{text-align:left}
tr.hot td{background:#fdecea}
.legend span{display:inline-block;width:14px;height:14px;vertical-align:middle;margin:0 6px 0
14px}
.split{display:flex;height:22px;width:760px;border:1px solid #bbb;margin:8px 0}
.split div{color:#fff;font-size:12px;line-height:22px;padding-left:6px;overflow:hidden}
.note{color:#666;font-style:italic}
"""


def render_monitoring_report(
    path: str | Path,
    *,
    model: str,
    feature_names: Sequence[str],
    reference: Any,
    live: Any,
    drift_history: Sequence[tuple[float, float]] = (),
    threshold: float = 0.3,
    rollout: Mapping[str, Any] | None = None,
    title: str | None = None,
) -> Path:
    """Write a self-contained HTML monitoring report of ``model`` to ``path``.

    Parameters
    ----------
    path : str or Path
        The HTML file, written atomically (its folder is created if needed).
    model : str
        The model's name (shown, escaped).
    feature_names : sequence of str
        One name per column of ``reference`` and ``live``.
    reference, live : array-like [shape=(rows, features)]
        The reference sample (training or validation data) and the live traffic. NaN and
        infinite values are left out of each feature's statistics; a feature with none
        finite in either raises.
    drift_history : sequence of (unix_time, score)
        The drift scores over time (any order; drawn sorted by time).
    threshold : float >= 0
        The drift score above which the alarm is on, drawn as a dashed line.
    rollout : dict or None
        The rollout's state: ``step_percent`` (0..100, the challenger's share), ``status``,
        ``champion`` and ``challenger`` (dicts of ``version``, ``requests``, ``errors``,
        ``p99_ms``, ``metric``) and ``events`` (dicts of ``time``, ``event``, ``detail``).
        Missing values are shown as "—".
    title : str or None
        The page's title (``"Monitoring report: <model>"`` by default).

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    ParameterError
        On input that cannot be drawn: arrays that are not 2-D, empty, of different column
        counts or not as many columns as ``feature_names``, a feature with no finite value,
        a malformed drift history or rollout, a negative or non-finite threshold.
    """
    if not isinstance(model, str) or not model:
        raise ParameterError(f"model must be a non-empty string, got {model!r}")
    if isinstance(feature_names, (str, bytes)):
        raise ParameterError(f"feature_names must be a sequence of names, got {feature_names!r}")
    try:
        features = [str(f) for f in feature_names]
    except TypeError:
        raise ParameterError(
            f"feature_names must be a sequence of names, got {feature_names!r}"
        ) from None
    ref = _matrix("reference", reference)
    cur = _matrix("live", live)
    if ref.shape[1] != cur.shape[1]:
        raise ParameterError(
            f"reference has {ref.shape[1]} features (columns) but live has {cur.shape[1]}"
        )
    if len(features) != ref.shape[1]:
        raise ParameterError(
            f"feature_names has {len(features)} names but reference and live have "
            f"{ref.shape[1]} features (columns)"
        )
    threshold_value = _number("threshold", threshold)
    assert threshold_value is not None
    if threshold_value < 0:
        raise ParameterError(f"threshold must be >= 0, got {threshold!r}")
    history = _history(drift_history)
    roll = _rollout(rollout)
    page_title = f"Monitoring report: {model}" if title is None else str(title)
    ref_cols = _finite_columns("reference", ref, features)
    live_cols = _finite_columns("live", cur, features)

    stats = []
    for j, feature in enumerate(features):
        r, v = ref_cols[j], live_cols[j]
        stats.append(
            {
                "index": j,
                "feature": feature,
                "psi": _psi(r, v),
                "ks": _ks(r, v),
                "mean_ref": float(r.mean()),
                "mean_live": float(v.mean()),
                "std_ref": float(r.std()),
                "std_live": float(v.std()),
                "missing_live": 1.0 - v.size / cur.shape[0],
            }
        )
    ranked = sorted(stats, key=lambda s: (-s["psi"], -s["ks"], s["index"]))

    latest = history[-1][1] if history else None
    alarm = latest is not None and latest > threshold_value
    out: list[str] = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(page_title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_e(page_title)}</h1>",
        f'<div class="sub">model <b>{_e(model)}</b> · generated '
        f"{_e(_time(_dt.datetime.now(_dt.timezone.utc).timestamp()))}</div>",
        '<div class="cards">',
        f'<div class="card"><div class="k">features</div><div class="v">{len(features)}'
        "</div></div>",
        f'<div class="card"><div class="k">reference rows</div><div class="v">{ref.shape[0]:,}'
        "</div></div>",
        f'<div class="card"><div class="k">live rows</div><div class="v">{cur.shape[0]:,}'
        "</div></div>",
        f'<div class="card {"alarm" if alarm else "ok"}"><div class="k">latest drift score '
        f'(threshold {_fmt(threshold_value)})</div><div class="v">{_fmt(latest)}'
        f"{' · ALARM' if alarm else ''}</div></div>",
    ]
    if roll is not None:
        out.append(
            f'<div class="card"><div class="k">rollout</div><div class="v">'
            f"{_e(roll['status'] if roll['status'] is not None else '—')} · "
            f"{_fmt(roll['step_percent'])}%</div></div>"
        )
    out.append("</div>")

    # drift over time
    out.append('<h2 id="drift">Drift score over time</h2>')
    if history:
        out.append(_drift_svg(history, threshold_value))
        above = sum(1 for _, s in history if s > threshold_value)
        out.append(
            f'<p class="sub">{len(history)} measurements from {_e(_time(history[0][0]))} to '
            f"{_e(_time(history[-1][0]))}; {above} above the threshold.</p>"
        )
        out.append('<table class="history"><tr><th class="n">time</th><th>drift score</th></tr>')
        for t, s in history[-8:][::-1]:
            hot = ' class="hot"' if s > threshold_value else ""
            out.append(f'<tr{hot}><td class="n">{_e(_time(t))}</td><td>{_fmt(s, 4)}</td></tr>')
        out.append("</table>")
    else:
        out.append('<p class="note">No drift measurement yet.</p>')

    # rollout
    if roll is not None:
        out.append('<h2 id="rollout">Rollout: challenger (canary) against champion</h2>')
        step = roll["step_percent"]
        if step is not None:
            out.append(
                '<div class="split">'
                f'<div style="width:{100 - step:.2f}%;background:{COLORS["champion"]}">'
                f"champion {_fmt(100 - step)}%</div>"
                f'<div style="width:{step:.2f}%;background:{COLORS["challenger"]}">'
                f"challenger {_fmt(step)}%</div></div>"
            )
        out.append(
            '<table class="rollout"><tr><th class="n"></th><th>version</th><th>requests</th>'
            "<th>errors</th><th>error rate</th><th>p99 (ms)</th><th>metric</th></tr>"
        )
        for side in ("champion", "challenger"):
            e = roll[side]
            if e is None:
                out.append(f'<tr><td class="n">{side}</td><td colspan="6">—</td></tr>')
                continue
            rate = "—" if e["error_rate"] is None else f"{e['error_rate']:.2%}"
            version = "—" if e["version"] is None else e["version"]
            out.append(
                f'<tr><td class="n"><span style="color:{COLORS[side]}">■</span> {side}</td>'
                f"<td>{_e(version)}</td><td>{_fmt(e['requests'])}</td>"
                f"<td>{_fmt(e['errors'])}</td><td>{rate}</td><td>{_fmt(e['p99_ms'])}</td>"
                f"<td>{_fmt(e['metric'], 4)}</td></tr>"
            )
        out.append("</table>")
        out.append(_rollout_bars_svg(roll))
        if roll["events"]:
            out.append(
                '<h2 id="events">Rollout events</h2><table class="events"><tr>'
                '<th class="n">time</th><th class="n">event</th><th class="n">detail</th></tr>'
            )
            for when, event, detail in roll["events"]:
                out.append(
                    f'<tr><td class="n">{_e(_time(when))}</td>'
                    f'<td class="n">{_e("" if event is None else event)}</td>'
                    f'<td class="n">{_e("" if detail is None else detail)}</td></tr>'
                )
            out.append("</table>")
    # distributions
    shown = ranked[:MAX_PLOTS]
    out.append('<h2 id="features">Feature distributions: reference against live</h2>')
    out.append(
        '<p class="legend sub">'
        f'<span style="background:{COLORS["reference"]}"></span>reference'
        f'<span style="background:{COLORS["live"]}"></span>live'
        f" · the {len(shown)} most drifted of {len(features)} features (population stability "
        "index over the reference's deciles), each as the share of rows per bin</p>"
    )
    out.append('<div class="grid3">')
    for s in shown:
        j = s["index"]
        out.append(_histogram_svg(s["feature"], ref_cols[j], live_cols[j], s))
    out.append("</div>")
    out.append(
        '<table class="features"><tr><th class="n">feature</th><th>PSI</th><th>KS</th>'
        "<th>mean ref</th><th>mean live</th><th>std ref</th><th>std live</th>"
        "<th>live missing</th></tr>"
    )
    for s in ranked[:MAX_TABLE_ROWS]:
        hot = ' class="hot"' if s["psi"] > threshold_value else ""
        out.append(
            f'<tr{hot}><td class="n">{_e(s["feature"])}</td><td>{_fmt(s["psi"], 4)}</td>'
            f"<td>{_fmt(s['ks'], 4)}</td><td>{_fmt(s['mean_ref'])}</td>"
            f"<td>{_fmt(s['mean_live'])}</td><td>{_fmt(s['std_ref'])}</td>"
            f"<td>{_fmt(s['std_live'])}</td><td>{s['missing_live']:.1%}</td></tr>"
        )
    out.append("</table>")
    if len(ranked) > MAX_TABLE_ROWS:
        out.append(f'<p class="note">{len(ranked) - MAX_TABLE_ROWS} more features not listed.</p>')

    out.append("</body></html>\n")

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(target, "wb") as fh:
        fh.write("\n".join(out).encode("utf-8"))
    return target
