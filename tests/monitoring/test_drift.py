"""ml_utilities.monitoring: the drift score, the sliding-window monitor and its alarm, on GTZAN
genre features (../shared/data; skipped with a reason where absent) and on synthetic data."""

from __future__ import annotations

import ast
import json
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

import ml_utilities.monitoring as monitoring
import ml_utilities.pipeline as pipeline
from ml_utilities.exceptions import ParameterError
from ml_utilities.monitoring import (
    MIN_ROWS,
    DriftDetector,
    DriftMonitor,
    DriftReport,
    population_stability_index,
)

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
GTZAN = DATA / "gtzan-features-5genre" / "features_3_sec.csv"
GENRES = ["blues", "classical", "hiphop", "pop", "rock"]


@pytest.fixture(autouse=True)
def one_thread():
    """One BLAS/OpenMP thread: the classifier test's matrices are small, and several threads
    fighting over two busy cores cost more than they give (the cost is stated for one core).
    The libraries are imported first: threadpoolctl limits only those already loaded."""
    import scipy.stats  # noqa: F401
    import sklearn.linear_model  # noqa: F401

    with threadpool_limits(1):
        yield


@pytest.fixture(scope="module")
def gtzan() -> tuple[np.ndarray, np.ndarray, list[str]]:
    if not GTZAN.is_file():
        pytest.skip(f"GTZAN features not found at {GTZAN} (the shared data folder is absent)")
    table = pd.read_csv(GTZAN)
    names = [c for c in table.columns if c != "label"]
    return table[names].to_numpy(dtype=float), table["label"].to_numpy(), names


@pytest.fixture(scope="module")
def gauss() -> np.ndarray:
    """8,000 rows of 30 correlated Gaussian features."""
    rng = np.random.default_rng(11)
    mix = np.eye(30) + 0.3 * rng.standard_normal((30, 30))
    return rng.standard_normal((8000, 30)) @ mix


def _split(n: int, rng: np.random.Generator, share: float = 0.6) -> tuple[np.ndarray, np.ndarray]:
    idx = rng.permutation(n)
    cut = int(share * n)
    return idx[:cut], idx[cut:]


def _draw(pool: np.ndarray, rng: np.random.Generator, n: int) -> np.ndarray:
    return pool[rng.integers(0, len(pool), n)]


def _no_drift(reference, pool, rng, names=None, windows=200, window=500):
    """Scores and alarm state of a monitor over ``windows`` windows drawn from ``pool``."""
    monitor = DriftMonitor(DriftDetector(reference, feature_names=names), window=window)
    scores, alarm_windows = [], 0
    for _ in range(windows):
        reports = monitor.update(_draw(pool, rng, window))
        assert len(reports) == 1
        scores.append(reports[0].score)
        alarm_windows += monitor.alarm
    assert monitor.rows_seen == windows * window
    return np.array(scores), alarm_windows


def _rows_until_alarm(monitor, draw, limit=1000, batch=50):
    """Rows streamed from ``draw(n)`` until the alarm turns on (None past ``limit``)."""
    seen = 0
    while seen < limit:
        monitor.update(draw(batch))
        seen += batch
        if monitor.alarm:
            return seen
    return None


# -- the population stability index ------------------------------------------------------------


def _psi_pandas(reference, current, bins=10):
    """The pipeline's former pandas implementation, kept here as the oracle."""
    ref = pd.Series(reference).dropna()
    cur = pd.Series(current).dropna()
    if len(ref) == 0 or len(cur) == 0:
        return float("nan")
    if pd.api.types.is_numeric_dtype(ref) and pd.api.types.is_numeric_dtype(cur):
        edges = np.unique(np.quantile(ref.to_numpy(dtype=float), np.linspace(0, 1, bins + 1)))
        if len(edges) < 2:
            edges = np.array([-np.inf, np.inf])
        edges[0], edges[-1] = -np.inf, np.inf
        p = np.histogram(ref.to_numpy(dtype=float), edges)[0].astype(float)
        q = np.histogram(cur.to_numpy(dtype=float), edges)[0].astype(float)
    else:
        cats = sorted(set(ref.astype(str)) | set(cur.astype(str)))
        p = ref.astype(str).value_counts().reindex(cats, fill_value=0).to_numpy(float)
        q = cur.astype(str).value_counts().reindex(cats, fill_value=0).to_numpy(float)
    p = np.clip(p / p.sum(), 1e-6, None)
    q = np.clip(q / q.sum(), 1e-6, None)
    return float(np.sum((q - p) * np.log(q / p)))


def test_psi_is_one_implementation():
    from ml_utilities.pipeline import validation

    assert pipeline.population_stability_index is monitoring.population_stability_index
    assert validation.population_stability_index is population_stability_index
    assert population_stability_index.__module__ == "ml_utilities.monitoring.drift"


def _psi_cases():
    rng = np.random.default_rng(5)
    a, b = rng.normal(0, 1, 800), rng.normal(0.4, 1.3, 300)
    with_nan = a.copy()
    with_nan[::7] = np.nan
    return {
        "floats": (a, b),
        "floats with NaN": (with_nan, b),
        "integer lists": (rng.integers(0, 20, 500).tolist(), rng.integers(3, 25, 200).tolist()),
        "ints with None": ([1, 2, None, 3, 2, 2, 5], [1, 1, None, 9]),
        "constant": (np.full(50, 3.0), np.r_[np.full(20, 3.0), np.full(5, 4.0)]),
        "strings": (rng.choice(["rock", "pop", "jazz"], 400), rng.choice(["rock", "metal"], 90)),
        "strings with None": (["a", None, "b", "a"], ["a", "c", np.nan]),
        "numbers against text": (a[:50], ["1.0", "x"] * 10),
        "booleans": (rng.random(300) > 0.3, rng.random(100) > 0.6),
        "booleans with None": ([True, None, False, True], [True, True]),
        "Series": (pd.Series(a), pd.Series(b, index=np.arange(300) + 1000)),
        "nullable Int64": (
            pd.Series([1, 2, None, 4, 4, 6], dtype="Int64"),
            pd.Series([4, None, 9], dtype="Int64"),
        ),
        "categories": (
            pd.Series(["x", "y", "x", "z"], dtype="category"),
            pd.Series([1, 2, 2], dtype="category"),
        ),
        "all missing": ([None, np.nan], [1.0, 2.0]),
    }


@pytest.mark.parametrize("case", list(_psi_cases()))
def test_psi_matches_the_former_pandas_implementation(case):
    reference, current = _psi_cases()[case]
    expected = _psi_pandas(reference, current)
    got = population_stability_index(reference, current)
    if np.isnan(expected):
        assert np.isnan(got)
    else:
        assert got == pytest.approx(expected, rel=1e-12, abs=1e-12)


def test_psi_reads_a_shift():
    rng = np.random.default_rng(0)
    ref = rng.normal(size=5000)
    assert population_stability_index(ref, rng.normal(size=2000)) < 0.02
    assert population_stability_index(ref, rng.normal(1.0, 1.0, 2000)) > 0.5
    assert population_stability_index(ref, rng.normal(size=200), bins=4) < 0.1


# -- no false alarm ------------------------------------------------------------------------------


@pytest.mark.slow
def test_no_false_alarm_on_gtzan(gtzan):
    """200 windows of 500 held-out rows (drawn with replacement) of the training distribution."""
    X, _, names = gtzan
    rng = np.random.default_rng(20)
    train, held = _split(len(X), rng)
    scores, alarm_windows = _no_drift(X[train], X[held], rng, names)
    assert alarm_windows <= 2, f"the alarm was on in {alarm_windows} of 200 windows"
    assert np.mean(scores < 0.3) >= 0.99, np.sort(scores)[-5:]
    assert np.median(scores) < 0.05 and np.quantile(scores, 0.95) < 0.2, np.sort(scores)[-10:]


@pytest.mark.slow
def test_no_false_alarm_on_gaussian_data(gauss):
    rng = np.random.default_rng(21)
    scores, alarm_windows = _no_drift(gauss[:5000], gauss[5000:], rng)
    assert alarm_windows <= 2, f"the alarm was on in {alarm_windows} of 200 windows"
    assert np.mean(scores < 0.3) >= 0.99, np.sort(scores)[-5:]
    assert np.median(scores) < 0.05 and np.quantile(scores, 0.95) < 0.2, np.sort(scores)[-10:]


def test_no_drift_windows_score_well_below_the_threshold(gauss):
    """The quick form of the two long streams above (30 windows)."""
    rng = np.random.default_rng(23)
    scores, alarm_windows = _no_drift(gauss[:5000], gauss[5000:], rng, windows=30)
    assert alarm_windows == 0 and scores.max() < 0.2, scores


def test_repeated_rows_are_not_drift(gauss):
    """A window full of repeated rows (cached or replayed requests) drawn from the reference
    distribution: the classifier test keeps identical rows in one fold, so it cannot learn them."""
    rng = np.random.default_rng(22)
    det = DriftDetector(gauss[:5000])
    pool = gauss[5000:5100]  # 100 distinct rows, each about 5 times in a window
    scores = [det.score(_draw(pool, rng, 500)).components["classifier"] for _ in range(5)]
    assert max(scores) < 0.15, scores


# -- detection -------------------------------------------------------------------------------------


@pytest.mark.parametrize("genre", GENRES)
def test_a_genre_held_out_of_the_reference_raises_the_alarm_within_1000_rows(gtzan, genre):
    X, labels, names = gtzan
    rng = np.random.default_rng(GENRES.index(genre))
    others = np.flatnonzero(labels != genre)
    train, held = _split(len(others), rng)
    monitor = DriftMonitor(DriftDetector(X[others[train]], feature_names=names))
    monitor.update(_draw(X[others[held]], rng, 1000))  # two windows of no drift first
    assert not monitor.alarm and monitor.last.score < 0.3
    genre_rows = X[labels == genre]
    delay = _rows_until_alarm(monitor, lambda n: _draw(genre_rows, rng, n))
    assert delay is not None and delay <= 1000, monitor.history
    report = monitor.last
    assert report.drifted and report.score > 0.5
    assert report.top_features[0].drifted and report.top_features[0].name in names


@pytest.mark.parametrize("shift", ["gain x2 on 3 features", "mean +1 sd on 3 features"])
def test_a_synthetic_shift_raises_the_alarm_within_1000_rows(gauss, shift):
    rng = np.random.default_rng(30)
    reference, pool = gauss[:5000], gauss[5000:]
    mean, std = reference.mean(axis=0), reference.std(axis=0)
    moved = np.arange(30) < 3

    def shifted(n):
        rows = _draw(pool, rng, n)
        if shift.startswith("gain"):
            return np.where(moved, mean + 2.0 * (rows - mean), rows)
        return rows + np.where(moved, std, 0.0)

    monitor = DriftMonitor(DriftDetector(reference))
    monitor.update(_draw(pool, rng, 1000))
    assert not monitor.alarm
    delay = _rows_until_alarm(monitor, shifted)
    assert delay is not None and delay <= 1000, monitor.history
    top = {f.name for f in monitor.last.top_features[:3]}
    assert top == {"x0", "x1", "x2"}, monitor.last.top_features
    # the statistics of a moved feature against an unmoved one
    by_name = {f.name: f for f in monitor.last.features}
    assert by_name["x0"].drifted and not by_name["x29"].drifted
    assert by_name["x0"].psi > by_name["x29"].psi
    assert by_name["x0"].wasserstein > by_name["x29"].wasserstein


def test_a_step_shorter_than_the_window_detects_sooner(gauss):
    rng = np.random.default_rng(31)
    reference, pool = gauss[:5000], gauss[5000:]
    std = reference.std(axis=0)
    monitor = DriftMonitor(DriftDetector(reference), window=500, step=100)
    monitor.update(_draw(pool, rng, 600))
    assert not monitor.alarm
    delay = _rows_until_alarm(monitor, lambda n: _draw(pool, rng, n) + 0.5 * std)
    assert delay is not None and delay <= 500


def test_prediction_drift_alone_is_detected(gauss):
    """Same rows, shifted predictions: continuous scores, then class labels."""
    rng = np.random.default_rng(40)
    reference, pool = gauss[:4000], gauss[4000:]
    w = rng.standard_normal(30) / np.sqrt(30)
    ref_pred = reference @ w
    det = DriftDetector(reference, ref_pred)
    live = _draw(pool, rng, 500)
    same = det.score(live, live @ w)
    assert same.prediction is not None and same.prediction.kind == "continuous"
    assert same.score < 0.3 and not same.prediction.drifted
    moved = det.score(live, live @ w + ref_pred.std())
    assert moved.components["prediction"] > 0.3 and moved.drifted
    assert moved.components["classifier"] < 0.3 and moved.components["features"] < 0.3
    assert moved.prediction.drifted and moved.prediction.psi > 0.2

    monitor = DriftMonitor(det)
    monitor.update(live, live @ w)
    assert not monitor.alarm

    def shifted(n):
        rows = _draw(pool, rng, n)
        return rows, rows @ w + ref_pred.std()

    seen = 0
    while not monitor.alarm and seen < 1000:
        rows, pred = shifted(50)
        monitor.update(rows, pred)
        seen += 50
    assert monitor.alarm and seen <= 1000

    # class labels: the same rows, most answers moved to one class
    classes = np.array(["blues", "pop", "rock"])
    labels_of = lambda rows: classes[np.digitize(rows @ w, [-0.5, 0.5])]  # noqa: E731
    det = DriftDetector(reference, labels_of(reference))
    live_labels = labels_of(live)
    unchanged = det.score(live, live_labels)
    assert unchanged.components["prediction"] < 0.1 and unchanged.score < 0.3
    flipped = live_labels.copy()
    flipped[rng.random(len(flipped)) < 0.6] = "blues"
    report = det.score(live, flipped)
    assert report.prediction.kind == "labels" and report.prediction.drifted
    assert report.components["prediction"] > 0.3 and report.drifted
    assert report.components["classifier"] < 0.3 and report.components["features"] < 0.3
    shares = report.prediction.live_shares
    assert (
        set(shares) == set(classes)
        and shares["blues"] > report.prediction.reference_shares["blues"]
    )


def test_windows_missing_a_prediction_are_scored_without_it(gauss):
    rng = np.random.default_rng(41)
    reference, pool = gauss[:3000], gauss[3000:]
    det = DriftDetector(reference, (reference[:, 0] > 0).astype(int))
    monitor = DriftMonitor(det, window=100)
    rows = _draw(pool, rng, 100)
    (report,) = monitor.update(rows[:50], (rows[:50, 0] > 0).astype(int)) + monitor.update(
        rows[50:]
    )
    assert report.prediction is None
    rows = _draw(pool, rng, 100)
    (report,) = monitor.update(rows, (rows[:, 0] > 0).astype(int))
    assert report.prediction is not None and report.prediction.kind == "labels"


# -- reports ---------------------------------------------------------------------------------------


def test_report_is_frozen_json_safe_and_deterministic(gauss):
    rng = np.random.default_rng(50)
    names = [f"f{j}" for j in range(30)]
    det = DriftDetector(gauss[:5000], gauss[:5000, 0], feature_names=names, seed=3)
    live = _draw(gauss[5000:], rng, 500)
    live[:, 4] += 1.0
    report = det.score(live, live[:, 0])
    assert isinstance(report, DriftReport)
    with pytest.raises(AttributeError):
        report.score = 0.0  # type: ignore[misc]
    data = report.to_dict()
    text = json.dumps(data, allow_nan=False)
    assert json.loads(text)["score"] == report.score
    assert data["top_features"][0]["name"] == "f4" and len(data["top_features"]) == 5
    assert len(data["features"]) == 30
    assert report.score == max(report.components.values())
    assert 0.0 <= report.score <= 1.0 and report.drifted == (report.score > 0.3)
    assert report.n_rows == 500 and report.n_reference == 5000
    ks = [f.ks_statistic for f in report.features]
    assert ks == sorted(ks, reverse=True)
    # equal calls, and an equal detector, give equal reports; another seed another draw
    assert det.score(live, live[:, 0]) == report
    again = DriftDetector(gauss[:5000], gauss[:5000, 0], feature_names=names, seed=3)
    assert again.score(live, live[:, 0]) == report
    other = DriftDetector(gauss[:5000], gauss[:5000, 0], feature_names=names, seed=4)
    assert other.score(live, live[:, 0]).classifier_auc != report.classifier_auc


def test_dataframes_are_matched_by_column_name(gauss):
    names = [f"c{j}" for j in range(30)]
    frame = pd.DataFrame(gauss[:2000], columns=names)
    det = DriftDetector(frame)
    assert det.feature_names == tuple(names)
    live = pd.DataFrame(gauss[2000:2300], columns=names)
    reordered = live[names[::-1]]
    assert det.score(reordered) == det.score(live)
    with pytest.raises(ParameterError, match="lacks column"):
        det.score(live.drop(columns="c3"))


def test_a_large_reference_is_subsampled(gauss):
    det = DriftDetector(gauss, gauss[:, 1], max_reference_rows=1000)
    assert det.n_reference == 1000
    assert det.score(gauss[:300], gauss[:300, 1]).n_reference == 1000


def test_score_costs_well_under_half_a_second_on_one_core():
    """500 rows x 30 features against 5,000 reference rows, one BLAS/OpenMP thread."""
    rng = np.random.default_rng(60)
    det = DriftDetector(rng.standard_normal((5000, 30)))
    windows = [rng.standard_normal((500, 30)) for _ in range(3)]
    det.score(windows[0])  # imports
    times = []
    for live in windows:
        start = time.perf_counter()
        det.score(live)
        times.append(time.perf_counter() - start)
    assert np.median(times) < 0.5, times


# -- the monitor's alarm ---------------------------------------------------------------------------


class _Scripted(DriftDetector):
    """A detector whose scores are given: the alarm logic alone."""

    def __init__(self, scores):
        super().__init__(np.arange(40.0).reshape(20, 2))
        self._scores = iter(scores)

    def score(self, X, pred=None):
        s = next(self._scores)
        return DriftReport(
            score=s,
            drifted=s > self.threshold,
            threshold=self.threshold,
            n_rows=len(X),
            n_reference=self.n_reference,
            components={"classifier": s, "features": 0.0, "prediction": 0.0},
            classifier_auc=0.5 + s / 2,
            classifier_pvalue=0.0,
            features=(),
        )


def test_alarm_has_patience_and_hysteresis():
    scores = [0.5, 0.1, 0.5, 0.5, 0.25, 0.31, 0.21, 0.19, 0.5, 0.29, 0.5, 0.5, 0.5]
    alarm = [0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1]
    monitor = DriftMonitor(_Scripted(scores), window=10, patience=2)
    assert monitor.clear_threshold == pytest.approx(0.2)
    states = []
    for _ in scores:
        (report,) = monitor.update(np.zeros((10, 2)))
        states.append(int(monitor.alarm))
    assert states == alarm
    assert monitor.last is report and report.score == 0.5
    assert [s for _, s in monitor.history] == scores

    monitor = DriftMonitor(
        _Scripted([0.4, 0.4, 0.4, 0.0]), window=10, patience=3, clear_threshold=0.0
    )
    states = [int(bool(monitor.update(np.zeros((10, 2))) and monitor.alarm)) for _ in range(4)]
    assert states == [0, 0, 1, 1]  # a clear threshold of 0 never clears


def test_history_is_bounded():
    monitor = DriftMonitor(_Scripted([0.01] * 1100), window=10)
    for _ in range(11):
        assert len(monitor.update(np.zeros((1000, 2)))) == 100
    history = monitor.history
    assert len(history) == 1000 and monitor.rows_seen == 11000
    times = [t for t, _ in history]
    assert times == sorted(times) and abs(times[-1] - time.time()) < 60


def test_scores_fall_at_the_same_rows_however_the_stream_is_batched(gauss):
    rng = np.random.default_rng(70)
    det = DriftDetector(gauss[:2000, :8])
    stream = _draw(gauss[2000:, :8], rng, 700)
    whole = DriftMonitor(det, window=200, step=150).update(stream)
    assert len(whole) == (700 - 200) // 150 + 1
    pieces = DriftMonitor(det, window=200, step=150)
    reports, start = [], 0
    for size in [1, 1, 57, 199, 3, 250, 189]:
        batch = stream[start : start + size]
        reports += pieces.update(batch[0] if size == 1 else batch)  # a single row as 1-D
        start += size
    assert start == 700 and reports == whole
    # the window is the ring buffer's: no more memory than window x features
    assert pieces._X.shape == (200, 8)


def test_concurrent_updates_lose_no_rows(gauss):
    rng = np.random.default_rng(80)
    det = DriftDetector(gauss[:2000, :10])
    monitor = DriftMonitor(det, window=100, step=200)
    batches = [
        [_draw(gauss[2000:, :10], rng, int(n)) for n in rng.integers(1, 40, 70)] for _ in range(4)
    ]
    total = sum(len(b) for per_thread in batches for b in per_thread)
    got: list[list[DriftReport]] = [[] for _ in range(4)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def work(i):
        try:
            barrier.wait()
            for b in batches[i]:
                got[i] += monitor.update(b)
                if len(b) == 1:
                    got[i] += monitor.update(b[0])  # and as a 1-D row
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    total += sum(1 for per_thread in batches for b in per_thread if len(b) == 1)
    assert monitor.rows_seen == total
    expected = (total - 100) // 200 + 1
    assert sum(len(r) for r in got) == expected == len(monitor.history)
    assert all(r.n_rows == 100 for per_thread in got for r in per_thread)


# -- bad input -------------------------------------------------------------------------------------


def test_bad_input_raises_parameter_error_naming_the_value(gauss):
    ref = gauss[:1000, :4]
    assert issubclass(ParameterError, ValueError)
    bad = ref.copy()
    bad[[2, 9], 1] = np.nan
    with pytest.raises(ParameterError, match=r"reference_X has NaN or inf .* row\(s\) \[2, 9\]"):
        DriftDetector(bad)
    with pytest.raises(ParameterError, match=f"3 row\\(s\\); expected at least {MIN_ROWS}"):
        DriftDetector(ref[:3])
    with pytest.raises(ParameterError, match="threshold=1.5"):
        DriftDetector(ref, threshold=1.5)
    with pytest.raises(ParameterError, match="alpha=0"):
        DriftDetector(ref, alpha=0)
    with pytest.raises(ParameterError, match="seed=-1"):
        DriftDetector(ref, seed=-1)
    with pytest.raises(ParameterError, match="max_reference_rows=3"):
        DriftDetector(ref, max_reference_rows=3)
    with pytest.raises(ParameterError, match="feature_names has 2 name"):
        DriftDetector(ref, feature_names=["a", "b"])
    with pytest.raises(ParameterError, match=r"duplicated name\(s\) \['a'\]"):
        DriftDetector(ref, feature_names=["a", "a", "b", "c"])
    with pytest.raises(ParameterError, match="reference_pred has dtype complex"):
        DriftDetector(ref, np.ones(1000, dtype=complex))

    det = DriftDetector(ref)
    live = gauss[1000:1100, :4].copy()
    live[7, 3] = np.inf
    with pytest.raises(ParameterError, match=r"X has NaN or inf values in row\(s\) \[7\]"):
        det.score(live)
    with pytest.raises(ParameterError, match=r"X has 5 column\(s\); the reference has 4"):
        det.score(gauss[1000:1100, :5])
    with pytest.raises(ParameterError, match=r"shape \(100,\)"):
        det.score(gauss[1000:1100, 0])
    with pytest.raises(ParameterError, match=r"X has 5 row\(s\); a window needs at least 10"):
        det.score(gauss[1000:1005, :4])
    with pytest.raises(ParameterError, match="no reference_pred"):
        det.score(gauss[1000:1100, :4], np.zeros(100))
    with pytest.raises(ParameterError, match="expected numbers"):
        det.score([["a", "b", "c", "d"]] * 20)

    det = DriftDetector(ref, np.where(ref[:, 0] > 0, "up", "down"))
    with pytest.raises(ParameterError, match=r"pred has shape \(99,\); expected 100 row"):
        det.score(gauss[1000:1100, :4], np.array(["up"] * 99))
    with pytest.raises(ParameterError, match=r"missing labels \(None/NaN\) in row\(s\) \[1\]"):
        det.score(gauss[1000:1100, :4], np.array(["up", None] + ["down"] * 98, dtype=object))

    for kwargs, match in [
        ({"window": 1}, "window=1"),
        ({"window": 0}, "window=0"),
        ({"window": MIN_ROWS - 1}, f"window={MIN_ROWS - 1}: expected an integer >= {MIN_ROWS}"),
        ({"window": 2.5}, "window=2.5"),
        ({"step": 0}, "step=0"),
        ({"patience": 0}, "patience=0"),
        ({"clear_threshold": 0.5}, "clear_threshold=0.5"),
        ({"clear_threshold": -0.1}, "clear_threshold=-0.1"),
    ]:
        with pytest.raises(ParameterError, match=match):
            DriftMonitor(DriftDetector(ref), **kwargs)
    with pytest.raises(ParameterError, match="expected a DriftDetector"):
        DriftMonitor(object())  # type: ignore[arg-type]

    monitor = DriftMonitor(DriftDetector(ref), window=50)
    monitor.update(gauss[1000:1020, :4])
    bad = gauss[1020:1040, :4].copy()
    bad[12, 0] = np.nan
    with pytest.raises(ParameterError, match=r"row\(s\) \[12\]"):
        monitor.update(bad)
    with pytest.raises(ParameterError, match=r"3 column\(s\)"):
        monitor.update(gauss[1020:1040, :3])
    assert monitor.rows_seen == 20  # a rejected batch adds no row


# -- layering --------------------------------------------------------------------------------------


def test_monitoring_imports_only_numpy_scipy_sklearn_and_exceptions():
    root = Path(monitoring.__file__).resolve().parent
    allowed = {"numpy", "scipy", "sklearn"} | set(sys.stdlib_module_names)
    for path in root.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                roots = {a.name.split(".")[0] for a in node.names}
                assert roots <= allowed, f"{path.name}: import {roots - allowed}"
            elif isinstance(node, ast.ImportFrom):
                if node.level == 0:
                    assert node.module.split(".")[0] in allowed, f"{path.name}: {node.module}"
                elif node.level == 2:
                    assert node.module == "exceptions", f"{path.name}: from ..{node.module}"
                else:
                    assert node.level == 1, f"{path.name}: {ast.dump(node)}"
