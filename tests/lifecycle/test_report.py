"""The HTML monitoring report: one self-contained page, every user string escaped, the drift
over time, the distributions of the most drifted features, the rollout; checked as text and as
Chromium draws it."""

from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pytest

from ml_utilities.exceptions import ParameterError
from ml_utilities.lifecycle.report import COLORS, MAX_PLOTS, render_monitoring_report

EVIL = "<script>alert('x')</script>&tempo"
NOW = 1_750_000_000.0
ROLLOUT = {
    "step_percent": 25,
    "status": "running <canary>",
    "champion": {"version": 1, "requests": 1200, "errors": 0, "p99_ms": 3.1, "metric": 0.81},
    "challenger": {"version": 2, "requests": 400, "errors": 3, "p99_ms": 4.7, "metric": 0.8345},
    "events": [
        {"time": NOW, "event": "start", "detail": "5% of <traffic>"},
        {"time": NOW + 600, "event": "step", "detail": "25%"},
    ],
}


def _data(n_features=15, seed=0):
    rng = np.random.default_rng(seed)
    ref = rng.normal(size=(2000, n_features))
    live = rng.normal(size=(1500, n_features))
    live[:, 1] += 2.0  # the most drifted
    live[:, min(4, n_features - 1)] *= 2.5
    names = [f"feature_{i}" for i in range(n_features)]
    names[1] = EVIL
    return names, ref, live


HISTORY = [(NOW + 3600 * i, round(0.05 + 0.0375 * i, 4)) for i in range(12)]


@pytest.fixture
def page(tmp_path):
    names, ref, live = _data()
    path = render_monitoring_report(
        tmp_path / "out" / "report.html",
        model="genre <clf>",
        feature_names=names,
        reference=ref,
        live=live,
        drift_history=HISTORY[::-1],  # any order
        threshold=0.3,
        rollout=ROLLOUT,
    )
    return path


def test_the_page_is_written_escaped_and_self_contained(page):
    assert page.name == "report.html" and page.is_file()
    assert [p.name for p in page.parent.iterdir()] == ["report.html"]  # no temporary left
    text = page.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    # user strings escaped, never markup
    assert "<script" not in text.lower() and "<clf>" not in text and "<canary>" not in text
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;&amp;tempo" in text
    assert "genre &lt;clf&gt;" in text and "running &lt;canary&gt;" in text
    assert "5% of &lt;traffic&gt;" in text
    # nothing loaded from elsewhere
    assert not re.search(r"<(link|img|iframe|object|embed)\b", text)
    urls = set(re.findall(r"https?://[^\s\"'<>]+", text))
    assert urls <= {"http://www.w3.org/2000/svg"}, urls


def test_the_page_shows_drift_distributions_and_rollout(page):
    text = page.read_text(encoding="utf-8")
    # the drift history: the latest scores in the table, the threshold line, the alarm
    for _, score in HISTORY[-8:]:
        assert f"<td>{score:g}</td>" in text
    assert "threshold 0.3" in text and "ALARM" in text
    assert text.count("<circle") == len(HISTORY)
    # the histograms: at most MAX_PLOTS, the most drifted feature first
    labels = re.findall(r'<svg class="hist"[^>]*aria-label="([^"]*)"', text)
    assert len(labels) == MAX_PLOTS
    assert labels[0] == "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;&amp;tempo"
    assert labels[1] == "feature_4"
    # every feature in the table, with its statistics
    table = text.split('<table class="features">')[1].split("</table>")[0]
    assert table.count("<tr") == 16
    # the rollout: the split, the table, the bars, the events
    assert "champion 75%" in text and "challenger 25%" in text
    rollout = text.split('<table class="rollout">')[1].split("</table>")[0]
    for cell in ("1,200", "400", "0.00%", "0.75%", "3.1", "4.7", "0.81", "0.8345"):
        assert f"<td>{cell}</td>" in rollout, cell
    assert '<svg class="bars"' in text and COLORS["challenger"] in text
    events = text.split('<table class="events">')[1].split("</table>")[0]
    assert "2025-06-15 15:06:40 UTC" in events and ">step<" in events


def test_without_history_or_rollout(tmp_path):
    names, ref, live = _data(3)
    path = render_monitoring_report(
        tmp_path / "r.html", model="m", feature_names=names, reference=ref, live=live
    )
    text = path.read_text(encoding="utf-8")
    assert "No drift measurement yet" in text and "Rollout" not in text
    assert text.count('<svg class="hist"') == 3
    # NaN values are left out, a constant column still draws
    ref[:100, 0] = np.nan
    live[:, 2] = 1.0
    render_monitoring_report(
        tmp_path / "r.html", model="m", feature_names=names, reference=ref, live=live
    )
    assert "live missing" in (tmp_path / "r.html").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"live": np.zeros((10, 4))}, "reference has 3 features .* live has 4"),
        ({"reference": np.zeros((0, 3))}, "reference is empty"),
        ({"live": np.zeros((5, 0))}, "live is empty"),
        ({"live": np.zeros(5)}, "live must be a 2-D array"),
        ({"feature_names": ["a", "b"]}, "feature_names has 2 names"),
        ({"feature_names": "abc"}, "feature_names must be a sequence"),
        ({"model": ""}, "model must be a non-empty string"),
        ({"threshold": -0.1}, "threshold must be >= 0"),
        ({"threshold": float("nan")}, "threshold must be finite"),
        ({"drift_history": [(NOW, 0.1), (NOW, "high")]}, r"drift_history\[1\] score"),
        ({"drift_history": [(NOW,)]}, r"drift_history\[0\] must be a \(unix_time, score\)"),
        ({"rollout": {"step_percent": 150}}, r"rollout\['step_percent'\] must be within"),
        ({"rollout": {"champion": {"requests": -1}}}, r"rollout\['champion'\]\['requests'\]"),
        ({"rollout": [1]}, "rollout must be a dict"),
    ],
)
def test_bad_input_names_the_value(tmp_path, change, match):
    names, ref, live = _data(3)
    kwargs = {**dict(model="m", feature_names=names, reference=ref, live=live), **change}
    with pytest.raises(ParameterError, match=match):
        render_monitoring_report(tmp_path / "r.html", **kwargs)
    assert not list(tmp_path.iterdir())  # nothing written


@pytest.mark.parametrize("which", ["reference", "live"])
def test_a_nan_only_column_names_its_feature(tmp_path, which):
    names, ref, live = _data(3)
    (ref if which == "reference" else live)[:, 2] = np.nan
    with pytest.raises(ParameterError, match=f"{which} has no finite value in feature 'feature_2'"):
        render_monitoring_report(
            tmp_path / "r.html", model="m", feature_names=names, reference=ref, live=live
        )


# -- as a browser draws it -------------------------------------------------------------------
def _read_png(path):
    try:
        from PIL import Image
    except ImportError:
        import matplotlib.image as mpimg

        return (mpimg.imread(str(path))[..., :3] * 255).round().astype(np.int16)
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB")).astype(np.int16)


def _pixels_near(img, hex_color, tol=10):
    rgb = np.array([int(hex_color[i : i + 2], 16) for i in (1, 3, 5)], dtype=np.int16)
    return int(np.count_nonzero(np.all(np.abs(img - rgb) <= tol, axis=-1)))


def test_chromium_draws_the_report(page, tmp_path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("no chromium or chromium-browser binary on PATH (apt-get install chromium)")
    shot = tmp_path / "shot.png"
    try:
        subprocess.run(
            [
                browser,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                "--no-first-run",
                f"--user-data-dir={tmp_path / 'profile'}",
                f"--screenshot={shot}",
                "--window-size=1280,2400",
                page.as_uri(),
            ],
            capture_output=True,
            timeout=120,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("chromium did not finish within 120 s")
    assert shot.is_file(), "chromium wrote no screenshot"
    img = _read_png(shot)
    assert img.shape == (2400, 1280, 3)
    # not blank: many colours, a good part of the page drawn
    colours = np.unique(img.reshape(-1, 3), axis=0)
    assert len(colours) > 500, len(colours)
    assert np.count_nonzero(np.any(img < 235, axis=-1)) > 0.03 * img.shape[0] * img.shape[1]
    # the plots' colours: histogram outlines, the drift line, the threshold, the rollout bars
    for name, least in (
        ("reference", 2000),
        ("live", 2000),
        ("drift", 1000),
        ("threshold", 300),
        ("champion", 5000),
        ("challenger", 5000),
    ):
        found = _pixels_near(img, COLORS[name])
        assert found >= least, f"{name} ({COLORS[name]}): {found} pixels"
