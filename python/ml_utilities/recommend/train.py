"""Training the recommender: candidate generation, then a learning-to-rank model.

:func:`train_recommender` is what ``AutoMLHelper.train_recommendation_model`` runs. Protocol
(also in ``docs/automl.md``):

1. **Evaluation split.** For every user with at least 2 items, ``holdout_fraction`` (20%) of the
   user's items, drawn at random (seeded), are held out as the test set; the rest is ``train``.
2. **Ranker training data, inside ``train`` only.** ``train`` is split the same way again into
   ``history`` and ``targets`` (``RANKER_SPLITS`` times, with different seeds). Candidates and
   their features are computed from ``history``; a candidate's label is 1 when it is in the
   user's ``targets``.
3. **Candidates** per user (items already in the history are excluded): the union of the top
   items of the generators of :mod:`.generators` (item-kNN, EASE with DLAE's penalty on the
   user's play-count ranks, user-kNN, PureSVD, popularity), merged by best rank. With
   ``task_config['user_graph']`` ((user, friend) edges), social generators score the
   candidates too (for features, not candidates: the friends' mean play-rank profile, their
   cosine-weighted binary profiles, friends of friends), computed like the others from the
   interactions of the level at hand only (``history`` for the ranker's rows, ``train`` at
   evaluation), so no held-out item of anyone reaches a feature.
4. **Features** of a (user, item) pair: the rank and z-score of each generator's score among
   the user's candidates, and its gaps to the user's 10th and 100th best scores and to the
   item's 21st best score over all users (also the user-side EASE, RP3beta, PureSVD
   and iALS on binary and play-rank profiles, play-count item-kNN), the generators' agreement
   (mean, best and spread of the ranks, mean and best z-score), the item's popularity (listeners,
   log plays), the user's activity (items, log plays), and the columns of ``user_features``
   (by user) when given; with a user graph, the social generators' ranks, z-scores and gaps
   and how many (what share, what lift over all users) of the user's friends have the item.
   ``music_features`` reach the ranker through the content generator only (below).
5. **Ranker.** :class:`.lambdamart.LambdaMARTRanker` (default: a bag of :data:`RANKER_MODELS`
   LightGBM lambdarank models of :data:`RANKER_ROUNDS` rounds, scores averaged, as many as the
   time budget allows), or with ``ranker='automl'``
   the AutoML search of the ``helper`` given to :func:`train_recommender`
   (``AutoMLHelper.train_automl_pipeline`` with ``task_type='recommendation'``: LightGBM
   lambdarank, XGBoost ``rank:ndcg``) cross-validated by user.
6. **Evaluation.** Features are recomputed from all of ``train``, candidates ranked, and the top
   ``k`` scored against the held-out test items: ndcg@k (binary relevance, ideal DCG over
   ``min(k, held-out items)``) and recall@k (hits / ``min(k, held-out items)``), averaged over
   every user with held-out items. Popularity and item-kNN are scored on the same split.
7. **Serving.** ``recommend(user_id, k)`` ranks the candidates computed from every interaction
   (and the same user graph).
8. **Audio content** (``music_features``, a DataFrame indexed by item id; checked by
   :func:`.content.check_music_features`). Its items without interactions join the catalogue
   (``item_ids``). The content generator (:mod:`.content`: cosine between each user's
   play-rank weighted profile of standardised feature vectors and every item with features)
   is used when its AUC on the first ranker split reaches :data:`CONTENT_MIN_AUC`
   (``report['content']``); it adds features (rank, z-score, gaps; NaN for the other
   generators on items they do not score; ``item_cold``) and candidates on top of the
   ``n_candidates`` (:func:`.generators.content_sources`). Each ranker split also holds
   :data:`COLD_ITEM_SHARE` of the items out of its history entirely (their targets stay
   positives, their history pairs get no row, items nobody in ``train`` played get no row),
   and adds per user a group of such items ranked among themselves (:data:`COLD_GROUP_SHARE`).
   The raw feature columns are not ranker features (they let the ranker memorise items).
   The cold-start protocol is :func:`.content.cold_start_split` / ``cold_start_scores``.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np

from ..exceptions import ParameterError
from .content import check_music_features, content_auc
from .generators import OPTIONAL, Generators, Interactions, item_knn_scores
from .lambdamart import LambdaMARTRanker
from .metrics import holdout_scores, parse_ranking_metric
from .model import RecommendationModel, feature_frame

__all__ = ["cold_items", "holdout_split", "train_recommender"]

logger = logging.getLogger(__name__)

TASK_KEYS = (
    "objective",
    "metric",
    "ensemble",
    "time_budget_hours",
    "time_budget_seconds",
    "holdout_fraction",
    "n_candidates",
    "algorithms",
    "seed",
    "user_column",
    "item_column",
    "weight_column",
    "evaluate",
    "register",
    "name",
    "max_trials",
    "cv_folds",
    "ranker",
    "user_graph",
)
RANKERS = ("lambdamart", "automl")
#: history/targets splits of ``train`` whose candidates train the ranker
RANKER_SPLITS = 2
#: the LambdaMART ranker: a bag of RANKER_MODELS LightGBM models of RANKER_ROUNDS rounds each
#: (seeds seed, seed + 1, ...; scores averaged), no early stopping. Few rounds, because the
#: ranker learns on a shorter history than the one it ranks and every further round fits more
#: of that level's quirks; a fixed count, because early stopping on a fifth of the ranker's
#: users stopped almost anywhere and was worse than the short fixed run; a bag, because one
#: model this short varies with its seed and the mean of a few takes most of that spread away
#: (more members cost time without a further gain). Chosen on the validation splits inside the
#: training data; the measurements are in ``docs/automl.md``
RANKER_MODELS, RANKER_ROUNDS = 5, 40
USER_COLUMNS = ("user_id", "userID", "user", "userId")
ITEM_COLUMNS = ("item_id", "artistID", "artist_id", "track_id", "itemID", "item", "music_id")
WEIGHT_COLUMNS = ("weight", "plays", "play_count", "count", "rating", "listens")
#: accepted column names of ``user_graph`` (the user, then the friend); a headerless 2-column
#: table (integer column labels) is read in that order
FRIEND_COLUMNS = ("friend_id", "friendID", "friend", "friendId")
#: time kept after the ranker's search for ranking the evaluation candidates: this share of the
#: budget plus RANK_RESERVE_S
RANK_RESERVE_SHARE, RANK_RESERVE_S = 0.06, 1.0
#: share of the budget the preparation may take (generator sets, candidates, features and the
#: baselines; about half of a 60 s budget on Last.fm on a quiet 2-core machine)
PREP_SHARE = 0.65
#: share of a generator set's time its optional generators may start within
GENERATOR_SHARE = 0.85
#: a later generator set costs about this times the first (the evaluation set has more rows)
SET_GROWTH = 1.15
#: below this many seconds left for the ranker, the early answer (no learnt ranker)
MIN_RANKER_S = 1.0
#: with ``music_features``: the share of the items with features (and interactions) whose
#: interactions all leave the history of each ranker split, so that its rows hold items nobody
#: has played, as new releases are. Their interactions in the split's targets stay positives
#: (the same share of a user's items as a played item's: the ranker learns no prior for or
#: against new items), those in the history get no row. On top, COLD_GROUP_SHARE *
#: n_candidates of them per user, the content generator's best, form a group of their own,
#: labelled by every interaction of the user with them: how new releases rank among
#: themselves (measurements in ``docs/automl.md``, "Cold start")
COLD_ITEM_SHARE, COLD_GROUP_SHARE = 0.1, 0.5
#: the content generator is used when its AUC (each user's held-out items against the unplayed
#: items with features, on the first ranker split) reaches this: 0.67-0.77 on the GTZAN and
#: synthetic cold-start sets, 0.50 for 16 columns of noise on Last.fm (``docs/automl.md``)
CONTENT_MIN_AUC = 0.55


def _pick(frame: Any, given: str | None, names: tuple[str, ...], what: str) -> str:
    if given is not None:
        if given not in frame.columns:
            raise ParameterError(f"{what}={given!r} is not a column of interaction_data")
        return given
    for n in names:
        if n in frame.columns:
            return n
    raise ParameterError(
        f"interaction_data has no {what.replace('_column', '')} column (tried {list(names)}); "
        f"name it with task_config['{what}']"
    )


def _user_graph(graph: Any, user_ids: np.ndarray) -> tuple[tuple[np.ndarray, np.ndarray], dict]:
    """(user index, friend index) of the edges of ``graph`` between known users, and counts.

    ``graph``: a DataFrame of two columns (user, friend), named from :data:`USER_COLUMNS` and
    :data:`FRIEND_COLUMNS` or unnamed (integer labels, as ``read_csv(header=None)`` gives), or
    an array of shape (n, 2). Edges with a user or friend outside ``interaction_data`` are
    ignored and counted; self-loops and duplicates count once, as no edge.
    """
    import pandas as pd

    if isinstance(graph, pd.DataFrame):
        names = list(graph.columns)
        if len(names) != 2:
            raise ParameterError(
                f"user_graph has {len(names)} columns {names}: expected 2 (user, friend)"
            )
        named = [c for c in names if not isinstance(c, (int, np.integer))]
        if named:
            ucols = [c for c in names if c in USER_COLUMNS]
            fcols = [c for c in names if c in FRIEND_COLUMNS]
            if len(ucols) != 1 or len(fcols) != 1:
                bad = [c for c in names if c not in USER_COLUMNS + FRIEND_COLUMNS]
                raise ParameterError(
                    f"user_graph columns {names} (unknown: {bad}): expected one user column "
                    f"of {list(USER_COLUMNS)} and one friend column of {list(FRIEND_COLUMNS)}, "
                    "or two unnamed columns (user, friend)"
                )
            edges = graph[[ucols[0], fcols[0]]].to_numpy()
        else:
            edges = graph.to_numpy()
    elif isinstance(graph, (np.ndarray, list, tuple)):
        edges = np.asarray(graph, dtype=object)
        if edges.ndim != 2 or edges.shape[1] != 2:
            raise ParameterError(
                f"user_graph has shape {edges.shape}: expected (n_edges, 2) (user, friend)"
            )
    else:
        raise ParameterError(
            f"user_graph is a {type(graph).__name__}: expected a DataFrame or an array of "
            "(user, friend) rows, or None"
        )
    missing = pd.isna(pd.DataFrame(edges)).to_numpy().any(axis=1)
    if missing.any():
        raise ParameterError(
            f"user_graph has {int(missing.sum())} row(s) with a missing id "
            f"(first: row {int(np.flatnonzero(missing)[0])})"
        )
    index = pd.Index(user_ids)
    src = index.get_indexer(pd.Index(list(edges[:, 0])))
    dst = index.get_indexer(pd.Index(list(edges[:, 1])))
    known = (src >= 0) & (dst >= 0)
    pairs = {(a, b) for a, b in zip(src[known].tolist(), dst[known].tolist(), strict=True)}
    pairs = {(a, b) for a, b in pairs if a != b}
    s = np.array(sorted(pairs), dtype=np.int64).reshape(-1, 2)
    stats = {
        "edges": len(edges),
        "edges_used": len(s),
        "edges_unknown_users": int((~known).sum()),
        "users_with_friends": int(len(np.unique(s[:, 0]))),
    }
    return (s[:, 0], s[:, 1]), stats


def cold_items(
    inter: Interactions, music: Any, item_ids: np.ndarray, share: float, seed: int
) -> np.ndarray:
    """``share`` of the items that have interactions in ``inter`` and a row in ``music``,
    drawn at random (seeded; at least 1 when there are 2 such items or more)."""
    import pandas as pd

    listened = np.unique(inter.items)
    pool = listened[pd.Index(item_ids[listened]).isin(music.index)]
    if len(pool) < 2:
        return np.array([], dtype=np.int64)
    n = max(1, int(round(share * len(pool))))
    return np.sort(np.random.default_rng([seed, 7]).choice(pool, n, replace=False))


def holdout_split(inter: Interactions, fraction: float, seed: int) -> np.ndarray:
    """Boolean mask of held-out interactions: ``fraction`` of each user's items (>= 1 when the
    user has at least 2 items)."""
    rng = np.random.default_rng(seed)
    mask = np.zeros(len(inter.users), dtype=bool)
    order = np.argsort(inter.users, kind="stable")
    u_sorted = inter.users[order]
    starts = np.flatnonzero(np.r_[True, u_sorted[1:] != u_sorted[:-1]])
    ends = np.r_[starts[1:], len(order)]
    for s, e in zip(starts, ends, strict=True):
        n = e - s
        if n < 2:
            continue
        m = max(1, int(round(fraction * n)))
        mask[order[s + rng.choice(n, m, replace=False)]] = True
    return mask


def _mask_seen(scores: np.ndarray, seen: Any) -> np.ndarray:
    """``scores`` (users x all items) with each user's listened items set to -inf."""
    rows, cols = seen.nonzero()
    scores[rows, cols] = -np.inf
    return scores


def _side_table(table: Any, what: str) -> Any:
    import pandas as pd

    if table is None:
        return None
    if not isinstance(table, pd.DataFrame) and callable(getattr(table, "to_pandas", None)):
        # FeatureExtractor.extract_audio_features' TrackFeatures: one row per track id
        table = table.to_pandas()
    if not isinstance(table, pd.DataFrame):
        raise ParameterError(
            f"{what} must be a pandas DataFrame indexed by id (or the TrackFeatures of "
            "FeatureExtractor.extract_audio_features), or None"
        )
    return table


def train_recommender(
    helper: Any,
    user_features: Any,
    music_features: Any,
    interaction_data: Any,
    task_config: dict[str, Any] | None,
) -> RecommendationModel:
    """See ``AutoMLHelper.train_recommendation_model`` and the module docstring.

    ``helper`` trains the ranker when ``task_config['ranker']`` is ``'automl'``: an object with
    ``train_automl_pipeline_sync(features, labels, config)`` (the ``AutoMLHelper`` whose
    ``train_recommendation_model`` calls this; this package does not import ``automl``).
    """
    t0 = time.monotonic()  # the budget counts from the call: imports included
    import scipy.linalg  # noqa: F401  (loads SciPy's own OpenBLAS before the limit below)
    import scipy.sparse.linalg  # noqa: F401
    from sklearn.utils import extmath  # noqa: F401
    from threadpoolctl import threadpool_limits

    # one BLAS thread: the generators' dense inverses and products are too small for more
    # threads to pay, and on a loaded machine a second thread made EASE's inverse several times
    # slower (``docs/automl.md``). threadpoolctl only limits the BLAS libraries already loaded,
    # hence the imports
    with threadpool_limits(limits=1):
        return _train_recommender(
            helper, user_features, music_features, interaction_data, task_config, t0
        )


def _train_recommender(
    helper: Any,
    user_features: Any,
    music_features: Any,
    interaction_data: Any,
    task_config: dict[str, Any] | None,
    t0: float,
) -> RecommendationModel:
    import pandas as pd

    from ..config import get_settings

    cfg = dict(task_config or {})
    unknown = sorted(set(cfg) - set(TASK_KEYS))
    if unknown:
        raise ParameterError(f"unknown task_config key(s) {unknown}; accepted: {list(TASK_KEYS)}")
    if cfg.get("objective", "ranking") != "ranking":
        raise ParameterError(f"objective={cfg['objective']!r}: only 'ranking' is supported")
    metric, k = parse_ranking_metric(cfg.get("metric", "ndcg@10"), key="metric")
    if not isinstance(interaction_data, pd.DataFrame) or interaction_data.empty:
        raise ParameterError(
            "interaction_data must be a non-empty DataFrame of (user, item[, weight]) rows"
        )
    ucol = _pick(interaction_data, cfg.get("user_column"), USER_COLUMNS, "user_column")
    icol = _pick(interaction_data, cfg.get("item_column"), ITEM_COLUMNS, "item_column")
    wcol = cfg.get("weight_column")
    if wcol is None:
        wcol = next((c for c in WEIGHT_COLUMNS if c in interaction_data.columns), None)
    elif wcol not in interaction_data.columns:
        raise ParameterError(f"weight_column={wcol!r} is not a column of interaction_data")
    frac = cfg.get("holdout_fraction", 0.2)
    if isinstance(frac, bool) or not isinstance(frac, (int, float)) or not 0 < frac < 1:
        raise ParameterError(f"holdout_fraction={frac!r}: expected a number in (0, 1)")
    n_cand = cfg.get("n_candidates", 50)
    if isinstance(n_cand, bool) or not isinstance(n_cand, int) or n_cand < 10:
        raise ParameterError(f"n_candidates={n_cand!r}: expected an integer >= 10")
    seed = cfg.get("seed", 0)
    if "time_budget_seconds" in cfg:
        budget = float(cfg["time_budget_seconds"])
    else:
        budget = float(cfg.get("time_budget_hours", get_settings().automl_time_budget)) * 3600
    if not budget > 0:
        raise ParameterError(f"time budget {budget!r} s: expected > 0")
    evaluate = cfg.get("evaluate", True)
    ranker_kind = cfg.get("ranker", "lambdamart")
    if ranker_kind not in RANKERS:
        raise ParameterError(f"ranker={ranker_kind!r}: expected one of {list(RANKERS)}")
    if ranker_kind != "automl" and cfg.get("register", False):
        raise ParameterError(
            "register=True needs ranker='automl' (the registry stores AutoML models)"
        )
    side = {
        "music": _side_table(music_features, "music_features"),
        "user": _side_table(user_features, "user_features"),
    }
    # the music table reaches the ranker through the content generator's features only: its
    # raw columns let the ranker memorise items, which new releases are not (``docs/automl.md``)
    ranker_side = {**side, "music": None}
    data = interaction_data.drop_duplicates([ucol, icol])
    user_ids, u_idx = np.unique(data[ucol].to_numpy(), return_inverse=True)
    item_ids, i_idx = np.unique(data[icol].to_numpy(), return_inverse=True)
    music = side["music"]
    report_content = None
    if music is not None:
        # the items with features and no interaction join the catalogue (new releases): the
        # content generator can recommend them
        report_content = check_music_features(music, item_ids)
        extra = np.setdiff1d(np.asarray(music.index), item_ids)
        if len(extra):
            item_ids = np.unique(np.concatenate([item_ids, extra]))
            i_idx = np.searchsorted(item_ids, data[icol].to_numpy())
    w = data[wcol].to_numpy(dtype=np.float64) if wcol else np.ones(len(data))
    inter_all = Interactions(u_idx, i_idx, w, len(user_ids), len(item_ids))

    graph = None
    if cfg.get("user_graph") is not None:
        graph, report_graph = _user_graph(cfg["user_graph"], user_ids)
    else:
        report_graph = None

    def ranker_rows(
        history: Interactions,
        targets: Interactions,
        only: tuple[str, ...] | None,
        gen_end: float,
        drop: Interactions | None = None,
        held: Interactions | None = None,
    ) -> tuple[Any, np.ndarray, tuple[str, ...], tuple[Any, np.ndarray] | None]:
        gens = Generators(
            history, graph=graph, only=only, deadline=gen_end, music=music, item_ids=item_ids
        )
        users = np.unique(targets.users)
        cands = gens.candidates(users, n_cand)
        cols = gens.features(users, cands)
        truth = set(zip(targets.users.tolist(), targets.items.tolist(), strict=True))
        labels = np.array(
            [(u, i) in truth for u, i in zip(cols["user_index"], cols["item_index"], strict=True)],
            dtype=np.float64,
        )
        frame = feature_frame(cols, ranker_side, item_ids, user_ids)
        has_pos = pd.Series(labels).groupby(cols["user_index"]).transform("max").to_numpy()
        keep = has_pos > 0  # users without a positive candidate carry no ranking signal
        if music is not None:
            # an item nobody in ``train`` listened to (a new release) has no observed label:
            # its rows would teach the ranker that new releases are never relevant
            keep &= listened[cols["item_index"]]
        if drop is not None and len(drop.users):
            # pairs that are neither history nor targets: no label (neither 1 nor 0)
            pairs = cols["user_index"] * np.int64(len(item_ids)) + cols["item_index"]
            keep &= ~np.isin(pairs, drop.users * np.int64(len(item_ids)) + drop.items)
        frame, labels = frame[keep].reset_index(drop=True), labels[keep]
        cold_part = None
        if held is not None and len(held.users) and COLD_GROUP_SHARE > 0:
            cold_part = cold_rows(gens, held)
        return frame, labels, gens.names, cold_part

    def cold_rows(gens: Generators, held: Interactions) -> tuple[Any, np.ndarray]:
        """Groups of items held out whole, one per user who played one of them: the user's
        best of them by the content generator (``COLD_GROUP_SHARE * n_candidates``), labelled
        1 where the user played the item. Lambdarank learns from these how new releases rank
        among themselves: inside a user's whole candidate list they sit low, where its
        gradients hardly order them, and few of them are targets there."""
        items = np.unique(held.items)
        users = np.unique(held.users)
        m = min(len(items), max(1, int(round(COLD_GROUP_SHARE * n_cand))))
        s = gens.content_of(users, items)
        top = np.argpartition(-s, m - 1, axis=1)[:, :m] if m < len(items) else None
        cands = [np.sort(items if top is None else items[top[j]]) for j in range(len(users))]
        cols = gens.features(users, cands)
        truth = held.users * np.int64(len(item_ids)) + held.items
        pairs = cols["user_index"] * np.int64(len(item_ids)) + cols["item_index"]
        labels = np.isin(pairs, truth).astype(np.float64)
        frame = feature_frame(cols, ranker_side, item_ids, user_ids)
        pos = pd.Series(labels).groupby(cols["user_index"]).transform("max").to_numpy()
        return frame[pos > 0].reset_index(drop=True), labels[pos > 0]

    report: dict[str, Any] = {
        "protocol": "per-user holdout",
        "holdout_fraction": frac,
        "metric": f"{metric}@{k}",
        "n_users": len(user_ids),
        "n_items": len(item_ids),
        "n_interactions": len(data),
    }
    if report_graph is not None:
        report["user_graph"] = report_graph
    if report_content is not None:
        report["content"] = report_content | {"cold_item_share": COLD_ITEM_SHARE}
    test_mask = holdout_split(inter_all, frac, seed) if evaluate else np.zeros(len(data), bool)
    train = inter_all.subset(~test_mask)
    listened = np.bincount(train.items, minlength=len(item_ids)) > 0
    if music is not None:
        # the content generator only where it predicts listening: its AUC on the first ranker
        # split (``train`` only); below CONTENT_MIN_AUC the features carry no usable signal and
        # the pipeline runs as without them (their items stay in the catalogue, unranked)
        inner = holdout_split(train, frac, seed + 1)
        auc = content_auc(train.subset(~inner), train.subset(inner), music, item_ids)
        used = auc >= CONTENT_MIN_AUC
        report["content"] |= {"auc": round(auc, 4), "used": bool(used)}
        if not used:
            logger.warning(
                "music_features: the content generator's AUC on the training data is %.3f "
                "(< %.2f): left out",
                auc,
                CONTENT_MIN_AUC,
            )
            music = side["music"] = None
    # the preparation (generator sets, candidates, features, baselines) gets PREP_SHARE of the
    # budget, checked as it goes: the first set computes the optional generators while its
    # share lasts and every later set computes the same ones; a further ranker split is
    # dropped when the first set's measured cost says it would not fit
    prep_end = t0 + PREP_SHARE * budget
    n_sets = RANKER_SPLITS + (1 if evaluate else 0)
    names: tuple[str, ...] | None = None
    parts, cold_parts = [], []
    first_s = 0.0
    for split in range(RANKER_SPLITS):
        now = time.monotonic()
        if split and now + SET_GROWTH * first_s * (n_sets - split) > prep_end:
            break
        gen_end = now + GENERATOR_SHARE * (prep_end - now) / (n_sets - split)
        # each split's users get their own groups (user index + split * n_users)
        inner = holdout_split(train, frac, seed + 1 + split)
        history, drop, held = ~inner, None, None
        if music is not None:
            # whole items held out of the history too, so that the ranker's rows hold items
            # without a listener, as new releases are
            cold = np.isin(
                train.items, cold_items(train, music, item_ids, COLD_ITEM_SHARE, seed + 1 + split)
            )
            # their interactions in ``targets`` stay targets (as a new release's first
            # listeners); those in the history are neither history nor targets
            drop = train.subset(history & cold)
            held = train.subset(cold)
            history &= ~cold
        f, y, names, cold_part = ranker_rows(
            train.subset(history), train.subset(inner), names, gen_end, drop, held
        )
        f["user_id"] += split * len(user_ids)
        parts.append((f, y))
        if cold_part is not None:  # after every split's groups: group ids stay sorted
            cold_part[0]["user_id"] += (RANKER_SPLITS + split) * len(user_ids)
            cold_parts.append(cold_part)
        if not split:
            first_s = time.monotonic() - now
    report["ranker_splits"] = len(parts)
    if cold_parts:
        report["content"]["cold_groups"] = sum(f["user_id"].nunique() for f, _ in cold_parts)
    report["generators"] = {
        "optional": list(names or ()),
        "left_out": [g for g in OPTIONAL if g not in (names or ())],
    }
    parts += cold_parts
    frame = pd.concat([f for f, _ in parts], ignore_index=True)
    labels = np.concatenate([y for _, y in parts])
    ens = cfg.get("ensemble", True)
    if not isinstance(ens, bool):
        raise ParameterError(f"ensemble={ens!r}: expected True or False")
    # everything that does not need the ranker comes first, so that the ranker's search gets
    # exactly the time that is left (less a reserve for scoring the evaluation candidates)
    prepared = None
    if evaluate:
        gens = Generators(train, graph=graph, only=names, music=music, item_ids=item_ids)
        test = inter_all.subset(test_mask)
        truth: dict[int, set[int]] = {}
        for u, i in zip(test.users.tolist(), test.items.tolist(), strict=True):
            truth.setdefault(u, set()).add(i)
        users = np.array(sorted(truth))
        probe = RecommendationModel(
            None, gens, user_ids, item_ids, side, n_cand, report, graph, names
        )
        prepared = probe._candidates(users)
        # the peers rank every item (not only the generators' scored ones)
        seen = gens.seen[users]
        pop = _mask_seen(np.repeat(gens.popularity[None, :], len(users), axis=0), seen)
        knn = _mask_seen(item_knn_scores(gens.seen)[users], seen)
        base = {
            "popularity": {
                int(u): np.argsort(-pop[j], kind="stable")[:k] for j, u in enumerate(users)
            },
            "item_knn": {
                int(u): np.argsort(-knn[j], kind="stable")[:k] for j, u in enumerate(users)
            },
        }
        del pop, knn
    reserve = RANK_RESERVE_SHARE * budget + (RANK_RESERVE_S if evaluate else 0.0)
    ranker_budget = budget - (time.monotonic() - t0) - reserve
    report["preparation_s"] = round(time.monotonic() - t0, 3)
    ranker: Any = None
    if ranker_budget < MIN_RANKER_S:
        # an early answer rather than an error: the candidates ranked by the generators'
        # agreement (their mean z-score), with no learnt ranker
        logger.warning(
            "time budget %g s: the preparation took %.1f s, leaving no time for the ranker; "
            "ranking by the generators' agreement",
            budget,
            time.monotonic() - t0,
        )
        report["ranker"] = {"kind": "generators' agreement (mean z-score)", "early_answer": True}
    elif ranker_kind == "lambdamart":
        # one thread: on rows this few, LightGBM's threads contend more than they share the
        # work (a 2-thread fit took almost three times as long on a loaded 2-core machine)
        ranker = LambdaMARTRanker(
            group_column="user_id",
            k=k,
            seed=seed,
            deadline=time.monotonic() + ranker_budget,
            n_models=RANKER_MODELS,
            rounds=RANKER_ROUNDS,
        ).fit(frame, labels)
        report["ranker"] = ranker.report
    else:
        automl_config: dict[str, Any] = {
            "task_type": "recommendation",
            "optimization_metric": f"ndcg@{k}",
            "time_budget_seconds": ranker_budget,
            "ensemble_methods": ["voting", "stacking"] if ens else [],
            "feature_engineering": {"feature_selection": None},
            "model_search_space": {
                "algorithms": cfg.get("algorithms", ["lightgbm", "xgboost"]),
                "hyperparameter_optimization": "bayesian",
            },
            "group_column": "user_id",
            "seed": seed,
            "cv_folds": 3,
            "trial_timeout_seconds": max(5.0, 0.5 * ranker_budget),
            "register": bool(cfg.get("register", False)),
        }
        for key in ("max_trials", "cv_folds", "name"):
            if key in cfg:
                automl_config[key] = cfg[key]
        ranker = helper.train_automl_pipeline_sync(frame, labels, automl_config)
        report["ranker"] = {
            key: ranker.report.get(key)
            for key in (
                "best_model",
                "best_score",
                "final_model",
                "final_score",
                "ensemble_performance",
                "models_evaluated",
                "training_time_s",
            )
        }
    if evaluate:
        model = RecommendationModel(
            ranker, gens, user_ids, item_ids, side, n_cand, report, graph, names
        )
        ranked = model._rank(users, k, prepared)
        ours = holdout_scores(ranked, truth, k)
        report["evaluation"] = {
            "model": {f"ndcg@{k}": ours[0], f"recall@{k}": ours[1]},
            **{
                name: dict(
                    zip((f"ndcg@{k}", f"recall@{k}"), holdout_scores(r, truth, k), strict=True)
                )
                for name, r in base.items()
            },
            "n_test_users": len(users),
        }
    report["training_time_s"] = round(time.monotonic() - t0, 3)
    report["budget_s"] = budget
    return RecommendationModel(
        ranker, inter_all, user_ids, item_ids, side, n_cand, report, graph, names
    )
