"""Cold start: the recommender with ``music_features`` ranking items nobody has played (new
releases), against popularity, a random ranking and the content generator alone; and the warm
ndcg@10 with and without ``music_features``.

Run:   python benchmarks/automl/bench_cold_start.py            (about 5 minutes on 2 cores)
       python benchmarks/automl/bench_cold_start.py --quick    (synthetic clusters only)

Protocol (``docs/automl.md``, "Cold start"; :mod:`ml_utilities.recommend.content`):

1. ``cold_start_split``: 20% of the items that have features and interactions, drawn with the
   seed, lose **all** their interactions; the recommender is trained on the rest with the
   whole ``music_features`` table (the cold items are in the catalogue, unplayed), ``evaluate``
   off, 20 s budget.
2. ``cold_start_scores``, over every user who had a cold item (and another item, so that the
   model knows the user): *catalogue*: ``recommend(user, 10)`` over every item, ndcg@10 and
   recall@10 of the user's cold items, against popularity (which holds no cold item: 0 by
   construction); and the share of the top 10 that is cold. *Cold only*: the cold items alone
   ranked for each user by the model (its ranker), by the content generator alone (cosine to
   the user's play-rank weighted profile), at random (mean of 20 seeded permutations) and by
   popularity (all 0: the catalogue order).
3. Warm: the recommender's own per-user holdout (``report['evaluation']``) on all the
   interactions, with and without ``music_features``, same seed and budget.

Data. **GTZAN** (``../shared/data/gtzan-features-5genre``; real audio features, no users): its
3-second rows averaged into 500 pseudo-tracks (the table has no track column; its rows run clip
by clip, ten per clip, so each genre's rows are cut into 100 blocks of 9 or 10 where
consecutive rows differ most), the 53 numeric features as ``music_features``, and
semi-synthetic listening (``content.taste_listening``: 300 users, each with a Dirichlet(0.3)
taste over the 5 genres, 10-40 tracks drawn with chance taste[genre] x a Zipf-like popularity
(rank^-0.8 over a seeded shuffle), Zipf play counts). Taste follows the genre *label*, never the
features, so the content generator only helps as far as the audio features tell the genres
apart. **Synthetic clusters** (always; no data needed): 240 items in 6 clusters of 12-d
Gaussian features, 150 users with cluster tastes, the same listening model. **Last.fm**
(``../shared/data/lastfm-hetrec2011``, real listening, no audio and no tags in this copy):
warm only, 60 s budget with the social graph, without ``music_features`` and with a table of
16 standard-normal columns per artist (seeded): content that carries no signal, the worst case
for the warm ranking; its AUC gate (``train.CONTENT_MIN_AUC``) leaves it out, and a third run
forces it on. The 7 clips of ``../shared/audio`` are too few for a catalogue.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ml_utilities.automl import AutoMLHelper
from ml_utilities.recommend import content
from ml_utilities.recommend import train as rec

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
GTZAN = DATA / "gtzan-features-5genre" / "features_3_sec.csv"
LASTFM = DATA / "lastfm-hetrec2011"
MIN_AUC = rec.CONTENT_MIN_AUC


def gtzan_tracks(path: Path) -> tuple[pd.DataFrame, np.ndarray]:
    """GTZAN's rows averaged into pseudo-tracks (see the module docstring), and their genre."""
    d = pd.read_csv(path)
    labels = d["label"].to_numpy()
    x = d.drop(columns="label")
    z = ((x - x.mean()) / x.std()).to_numpy()
    track = np.empty(len(d), dtype=np.int64)
    t = 0
    for lab in pd.unique(labels):
        idx = np.flatnonzero(labels == lab)
        jump = np.r_[np.linalg.norm(z[idx[1:]] - z[idx[:-1]], axis=1), 0.0]
        start = 0
        for end in _cuts(jump, len(idx), int(round(len(idx) / 10))):
            track[idx[start:end]] = t
            t, start = t + 1, end
    return x.groupby(track).mean(), pd.Series(labels).groupby(track).first().to_numpy()


def _cuts(jump: np.ndarray, n: int, m: int) -> list[int]:
    """Ends of ``m`` blocks of 9 or 10 of ``n`` rows with the largest jumps at the cuts."""
    best = np.full((m + 1, n + 1), -np.inf)
    best[0, 0] = 0.0
    back = np.zeros((m + 1, n + 1), dtype=np.int64)
    for b in range(1, m + 1):
        for e in range(9 * b, min(10 * b, n) + 1):
            for size in (9, 10):
                s = e - size
                if s >= 0 and best[b - 1, s] > -np.inf:
                    v = best[b - 1, s] + (jump[e - 1] if e < n else 0.0)
                    if v > best[b, e]:
                        best[b, e], back[b, e] = v, s
    ends, e = [], n
    for b in range(m, 0, -1):
        ends.append(e)
        e = back[b, e]
    return ends[::-1]


def clusters(seed: int, n_items: int = 240, n_groups: int = 6, dim: int = 12):
    rng = np.random.default_rng(seed)
    group = rng.integers(0, n_groups, n_items)
    x = 2.0 * rng.normal(size=(n_groups, dim))[group] + rng.normal(size=(n_items, dim))
    return pd.DataFrame(x, columns=[f"f{j}" for j in range(dim)]), group


def _train(music, data, budget, seed, **cfg):
    return AutoMLHelper().train_recommendation_model_sync(
        music_features=music,
        interaction_data=data,
        task_config={"time_budget_seconds": budget, "seed": seed} | cfg,
    )


def cold_start(name, feats, groups, n_users, items, seeds, share, budget, n_cand) -> None:
    rows = []
    for seed in seeds:
        data = content.taste_listening(groups, n_users, seed, items_per_user=items)
        train, held, cold = content.cold_start_split(data, feats, share, seed)
        t = time.monotonic()
        model = _train(feats, train, budget, seed, evaluate=False, n_candidates=n_cand)
        r = content.cold_start_scores(model, held, cold, k=10, seed=seed)
        cold_s = time.monotonic() - t
        warm = {}
        for label, music in (("without", None), ("with", feats)):
            m = _train(music, data, budget, seed, n_candidates=n_cand)
            warm[label] = m.report["evaluation"]["model"]["ndcg@10"]
        c, a = r["cold_only"], r["catalogue"]
        row = [
            a["model"]["ndcg@10"],
            a["model"]["recall@10"],
            r["cold_share_of_top"],
            c["model"]["ndcg@10"],
            c["content"]["ndcg@10"],
            c["random"]["ndcg@10"],
            c["popularity"]["ndcg@10"],
            c["model"]["recall@10"],
            c["content"]["recall@10"],
            c["random"]["recall@10"],
            warm["without"],
            warm["with"],
        ]
        rows.append(row)
        print(
            f"{name} seed {seed}: {r['n_users']} users, {r['n_cold_items']} cold items "
            f"({r['n_unknown_users']} users unknown); catalogue ndcg@10 {row[0]:.4f} recall@10 "
            f"{row[1]:.4f} (popularity {a['popularity']['ndcg@10']:.4f}), cold share of the "
            f"top 10 {row[2]:.3f}; cold only ndcg@10 model {row[3]:.4f} content {row[4]:.4f} "
            f"random {row[5]:.4f} popularity {row[6]:.4f}; warm ndcg@10 without music "
            f"{row[10]:.4f} with {row[11]:.4f} ({cold_s:.1f} s cold run)",
            flush=True,
        )
    m = np.mean(rows, axis=0)
    print(
        f"| {name} (mean of seeds {','.join(map(str, seeds))}) | catalogue ndcg@10 {m[0]:.4f} "
        f"recall@10 {m[1]:.4f} cold share {m[2]:.3f} (popularity 0) | cold only ndcg@10 model "
        f"{m[3]:.4f} content {m[4]:.4f} random {m[5]:.4f} popularity {m[6]:.4f} "
        f"(model / random x{m[3] / m[5]:.2f}) | recall@10 model {m[7]:.4f} content {m[8]:.4f} "
        f"random {m[9]:.4f} | warm ndcg@10 without {m[10]:.4f} with {m[11]:.4f} "
        f"(x{m[11] / m[10]:.3f}) |",
        flush=True,
    )


def lastfm_warm(seeds, budget) -> None:
    inter = pd.read_csv(LASTFM / "user_artists.dat", sep="\t")
    graph = pd.read_csv(
        LASTFM / "user_friends.dat", sep="\t", header=None, names=["userID", "friendID"]
    )
    ids = np.unique(inter.artistID)
    noise = pd.DataFrame(
        np.random.default_rng(0).normal(size=(len(ids), 16)),
        index=ids,
        columns=[f"a{j}" for j in range(16)],
    )
    out = {"without": [], "with": [], "forced": []}
    for seed in seeds:
        for label, music in (("without", None), ("with", noise), ("forced", noise)):
            t = time.monotonic()
            # "forced": the content generator used whatever its AUC (the gate left open)
            rec.CONTENT_MIN_AUC = 0.0 if label == "forced" else MIN_AUC
            m = _train(music, inter, budget, seed, user_graph=graph)
            rec.CONTENT_MIN_AUC = MIN_AUC
            ev = m.report["evaluation"]
            out[label].append(ev["model"]["ndcg@10"])
            model, knn = ev["model"], ev["item_knn"]
            auc = m.report.get("content", {}).get("auc")
            print(
                f"lastfm seed {seed} {label} music (content AUC {auc}): ndcg@10 "
                f"{model['ndcg@10']:.4f} recall@10 {model['recall@10']:.4f} "
                f"x{model['ndcg@10'] / knn['ndcg@10']:.3f} "
                f"item-kNN; wall {time.monotonic() - t:.1f} s, preparation "
                f"{m.report['preparation_s']} s, generators {m.report['generators']['optional']},"
                f" ranker models {m.report['ranker'].get('models')}, 1-min load "
                f"{os.getloadavg()[0]:.2f}",
                flush=True,
            )
    w, c, f = (np.mean(out[k]) for k in ("without", "with", "forced"))
    print(
        f"| lastfm warm (seeds {','.join(map(str, seeds))}) | ndcg@10 without music {w:.4f} | "
        f"with 16 noise columns {c:.4f} (x{c / w:.4f}) | the same, content forced on {f:.4f} "
        f"(x{f / w:.4f}) |",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2", help="comma list of seeds (cold start)")
    parser.add_argument("--share", type=float, default=0.2, help="share of items held out")
    parser.add_argument("--budget", type=float, default=20.0, help="seconds per training")
    parser.add_argument("--lastfm-seeds", default="0,1", help="comma list; empty: skip")
    parser.add_argument("--lastfm-budget", type=float, default=60.0)
    parser.add_argument("--quick", action="store_true", help="synthetic clusters only")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",") if s]
    print(f"load average {os.getloadavg()}, {os.cpu_count()} CPUs", flush=True)
    feats, groups = clusters(0)  # one catalogue; the listening and the split follow the seed
    cold_start(
        "synthetic clusters", feats, groups, 150, (8, 25), seeds, args.share, args.budget, 20
    )
    if args.quick:
        return
    if GTZAN.is_file():
        feats, genre = gtzan_tracks(GTZAN)
        cold_start("GTZAN", feats, genre, 300, (10, 40), seeds, args.share, args.budget, 30)
    else:
        print(f"GTZAN skipped: {GTZAN} is absent")
    lastfm_seeds = [int(s) for s in args.lastfm_seeds.split(",") if s]
    if lastfm_seeds and (LASTFM / "user_artists.dat").is_file():
        lastfm_warm(lastfm_seeds, args.lastfm_budget)
    elif lastfm_seeds:
        print(f"Last.fm skipped: {LASTFM} is absent")
    print(f"load average {os.getloadavg()}", flush=True)


if __name__ == "__main__":
    main()
