"""Drift monitoring (ml_utilities.monitoring) on GTZAN genre features: detection delay, false
alarms over a long no-drift stream, and what DriftMonitor.update costs per row against a fitted
scikit-learn model's predict on the same rows.

Run:   python benchmarks/bench_drift.py [--windows 400]
       python -m pytest benchmarks/bench_drift.py -o addopts="" --benchmark-enable -q
(``../shared/data/gtzan-features-5genre``; five synthetic Gaussian "genres" where it is absent.
Everything runs on one BLAS/OpenMP thread. The pytest form times the update against the predict
with pytest-benchmark and the benchmarks' conftest prints the ratio.)

- detection delay: rows from the start of a shift until the alarm is on (window 500, patience 2,
  ``step`` 500 and 100), after 1,000 rows without drift; shifts: each genre held out of the
  reference and streamed in, a gain x2 on 3 features, a mean shift of +1 and +0.5 standard
  deviation on 3 features and of +0.5 on one;
- false alarms: ``--windows`` windows of 500 held-out rows of the reference's distribution
  (drawn with replacement): the share of windows with the alarm on, the alarm's turn-ons, the
  share of scores above 0.3 and the score quantiles;
- cost: ``DriftMonitor.update`` per row (batches of 100 rows, scoring every 500 rows included;
  and the ingest alone, as when scoring runs on another thread) against the ``predict`` of a
  HistGradientBoostingClassifier and of a LogisticRegression fitted on the reference, on the same
  batches; and one ``score`` of 500 rows x 30 and x 53 features.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from ml_utilities.monitoring import DriftDetector, DriftMonitor

TABLE = (
    Path(__file__).resolve().parents[2]
    / "shared"
    / "data"
    / "gtzan-features-5genre"
    / "features_3_sec.csv"
)
WINDOW = 500
BATCH = 100


def load() -> tuple[np.ndarray, np.ndarray, list[str], str]:
    """(rows, genre labels, feature names, source)."""
    if TABLE.is_file():
        import pandas as pd

        table = pd.read_csv(TABLE)
        names = [c for c in table.columns if c != "label"]
        return table[names].to_numpy(dtype=float), table["label"].to_numpy(), names, "GTZAN"
    rng = np.random.default_rng(0)
    mix = np.eye(30) + 0.3 * rng.standard_normal((30, 30))
    centers = rng.normal(0, 0.8, (5, 30))
    labels = np.repeat([f"g{i}" for i in range(5)], 1000)
    rows = (rng.standard_normal((5000, 30)) + centers[np.repeat(np.arange(5), 1000)]) @ mix
    return rows, labels, [f"x{j}" for j in range(30)], "synthetic (GTZAN absent)"


def _draw(pool: np.ndarray, rng: np.random.Generator, n: int) -> np.ndarray:
    return pool[rng.integers(0, len(pool), n)]


def detection_delay(detector, calm, shifted, step, rng, limit=5000) -> int | None:
    monitor = DriftMonitor(detector, window=WINDOW, step=step)
    monitor.update(_draw(calm, rng, 2 * WINDOW))
    if monitor.alarm:
        raise RuntimeError("alarm on before the shift")
    seen = 0
    while seen < limit:
        monitor.update(shifted(50))
        seen += 50
        if monitor.alarm:
            return seen
    return None


def false_alarms(detector, pool, windows, rng) -> dict[str, float]:
    monitor = DriftMonitor(detector, window=WINDOW)
    scores, on, turn_ons, was = [], 0, 0, False
    for _ in range(windows):
        (report,) = monitor.update(_draw(pool, rng, WINDOW))
        scores.append(report.score)
        on += monitor.alarm
        turn_ons += monitor.alarm and not was
        was = monitor.alarm
    s = np.array(scores)
    return {
        "alarm_share": on / windows,
        "turn_ons": turn_ons,
        "above_0.3": float(np.mean(s > 0.3)),
        "zero": float(np.mean(s == 0)),
        "q50": float(np.quantile(s, 0.5)),
        "q99": float(np.quantile(s, 0.99)),
        "max": float(s.max()),
    }


def _time(fn, batches) -> tuple[float, float]:
    """(wall, CPU) seconds of ``fn`` over the batches (CPU: every thread of this process, which
    other load on a shared machine does not inflate)."""
    wall, cpu = time.perf_counter(), time.process_time()
    for b in batches:
        fn(b)
    return time.perf_counter() - wall, time.process_time() - cpu


def update_cost(detector, models, stream) -> dict[str, tuple[float, float]]:
    """(wall, CPU) seconds per row: monitor.update (with scoring; ingest only) and each model's
    predict (best of three)."""
    batches = [stream[i : i + BATCH] for i in range(0, len(stream), BATCH)]
    n = len(stream)
    out = {}
    for name, model in models.items():
        out[name] = tuple(x / n for x in min(_time(model.predict, batches) for _ in range(3)))
    out["update"] = tuple(
        x / n for x in _time(DriftMonitor(detector, window=WINDOW).update, batches)
    )
    big_step = DriftMonitor(detector, window=WINDOW, step=10**9)  # never scores
    out["ingest"] = tuple(x / n for x in min(_time(big_step.update, batches) for _ in range(3)))
    return out


def score_cost(n_features: int, rng) -> tuple[float, float]:
    """Median (wall, CPU) seconds of one score of 500 rows against 5,000 reference rows."""
    detector = DriftDetector(rng.standard_normal((5000, n_features)))
    windows = [rng.standard_normal((WINDOW, n_features)) for _ in range(6)]
    detector.score(windows[0])
    walls, cpus = [], []
    for w in windows[1:]:
        wall, cpu = _time(detector.score, [w])
        walls.append(wall)
        cpus.append(cpu)
    return float(np.median(walls)), float(np.median(cpus))


def fit_models(X: np.ndarray, y: np.ndarray) -> dict[str, object]:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return {
        "HistGradientBoosting predict": HistGradientBoostingClassifier(random_state=0).fit(X, y),
        "LogisticRegression predict": make_pipeline(
            StandardScaler(), LogisticRegression(max_iter=2000)
        ).fit(X, y),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, default=400, help="no-drift windows of 500 rows")
    parser.add_argument("--cost-rows", type=int, default=20000, help="rows of the cost stream")
    args = parser.parse_args()
    rng = np.random.default_rng(2026)
    X, labels, names, source = load()
    print(f"data: {source}, {X.shape[0]} rows x {X.shape[1]} features", flush=True)

    print("\none score of 500 rows against 5,000 reference rows (median of 5, wall / CPU):")
    for d in (30, X.shape[1]):
        wall, cpu = score_cost(d, rng)
        print(f"  {d:3d} features: {wall * 1e3:7.1f} ms / {cpu * 1e3:7.1f} ms", flush=True)

    print("\ndetection delay, rows after the shift until the alarm (window 500, patience 2):")
    print(f"  {'shift':32s} {'step 500':>9s} {'step 100':>9s}")
    for genre in np.unique(labels):
        others = np.flatnonzero(labels != genre)
        rng.shuffle(others)
        cut = int(0.6 * len(others))
        det = DriftDetector(X[others[:cut]], feature_names=names)
        calm, moved = X[others[cut:]], X[labels == genre]
        delays = [
            detection_delay(det, calm, lambda n, m=moved: _draw(m, rng, n), step, rng)
            for step in (WINDOW, 100)
        ]
        print(f"  {'genre ' + str(genre) + ' held out':32s} {delays[0]!s:>9s} {delays[1]!s:>9s}")
    idx = rng.permutation(len(X))
    reference, held = X[idx[:3000]], X[idx[3000:]]
    det = DriftDetector(reference, feature_names=names)
    mean, std = reference.mean(axis=0), reference.std(axis=0)
    three = np.arange(X.shape[1]) < 3
    one = np.arange(X.shape[1]) < 1
    shifts = {
        "gain x2 on 3 features": lambda r: np.where(three, mean + 2 * (r - mean), r),
        "mean +1 sd on 3 features": lambda r: r + np.where(three, std, 0),
        "mean +0.5 sd on 3 features": lambda r: r + np.where(three, 0.5 * std, 0),
        "mean +0.5 sd on 1 feature": lambda r: r + np.where(one, 0.5 * std, 0),
    }
    for label, fn in shifts.items():
        delays = [
            detection_delay(det, held, lambda n, f=fn: f(_draw(held, rng, n)), step, rng)
            for step in (WINDOW, 100)
        ]
        print(f"  {label:32s} {delays[0]!s:>9s} {delays[1]!s:>9s}", flush=True)

    print(f"\nfalse alarms over {args.windows} windows of 500 rows without drift:")
    gauss = rng.standard_normal((8000, 30)) @ (np.eye(30) + 0.3 * rng.standard_normal((30, 30)))
    for label, ref, pool, fn in (
        (source, reference, held, names),
        ("Gaussian, 30 features", gauss[:5000], gauss[5000:], None),
    ):
        start = time.perf_counter()
        r = false_alarms(DriftDetector(ref, feature_names=fn), pool, args.windows, rng)
        wall = time.perf_counter() - start
        print(
            f"  {label:24s} alarm on in {r['alarm_share']:.1%} of windows "
            f"({r['turn_ons']} turn-ons), scores > 0.3: {r['above_0.3']:.1%}, "
            f"score 0: {r['zero']:.0%}, q50 {r['q50']:.3f} q99 {r['q99']:.3f} "
            f"max {r['max']:.3f}  ({wall / args.windows * 1e3:.0f} ms a window)",
            flush=True,
        )

    print(f"\ncost per row, {args.cost_rows} rows in batches of {BATCH} (window 500, step 500):")
    genre_of = labels[idx[:3000]]
    models = fit_models(reference, genre_of)
    stream = _draw(held, rng, args.cost_rows)
    cost = update_cost(det, models, stream)
    print(f"  {'':36s} {'wall':>8s} {'CPU':>8s}  us/row")
    for name in (*models, "update", "ingest"):
        label = {
            "update": "DriftMonitor.update (with scoring)",
            "ingest": "DriftMonitor.update (ingest only)",
        }.get(name, name)
        print(f"  {label:36s} {cost[name][0] * 1e6:8.2f} {cost[name][1] * 1e6:8.2f}")
    for name in models:
        print(
            f"  overhead against {name} (CPU): x{cost['update'][1] / cost[name][1]:.1f} with "
            f"scoring, x{cost['ingest'][1] / cost[name][1]:.2f} ingest only"
        )


# -- pytest-benchmark form: the update against the predict, same rows ------------------------------


@pytest.fixture(scope="module")
def cost_setup():
    rng = np.random.default_rng(1)
    X, labels, names, _ = load()
    idx = rng.permutation(len(X))
    reference = X[idx[:3000]]
    det = DriftDetector(reference, feature_names=names)
    model = fit_models(reference, labels[idx[:3000]])["HistGradientBoosting predict"]
    stream = _draw(X[idx[3000:]], rng, 5000)
    return det, model, [stream[i : i + BATCH] for i in range(0, len(stream), BATCH)]


@pytest.mark.benchmark(group="drift: 5,000 rows in batches of 100")
def test_peer_hgb_predict(benchmark, cost_setup):
    _, model, batches = cost_setup
    with _one_thread():
        benchmark(lambda: [model.predict(b) for b in batches])


@pytest.mark.benchmark(group="drift: 5,000 rows in batches of 100")
def test_ours_monitor_update(benchmark, cost_setup):
    det, _, batches = cost_setup

    def run():
        monitor = DriftMonitor(det, window=WINDOW)
        reports = [r for b in batches for r in monitor.update(b)]
        assert len(reports) == 10 and monitor.rows_seen == 5000

    with _one_thread():
        benchmark(run)


def _one_thread() -> threadpool_limits:
    """One BLAS/OpenMP thread for everything timed here: the libraries are loaded first, as
    threadpoolctl limits only the ones loaded when it is called."""
    import scipy.stats  # noqa: F401
    import sklearn.ensemble  # noqa: F401
    import sklearn.linear_model  # noqa: F401

    return threadpool_limits(1)


if __name__ == "__main__":
    with _one_thread():
        main()
