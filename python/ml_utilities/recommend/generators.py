"""Candidate generators of the recommender: item-kNN, EASE, user-side EASE, RP3beta, user-kNN,
PureSVD, iALS, popularity; with a user graph (``graph``: (user index, friend index) edges), the
friends' generators too.

Every generator scores (user, item) pairs from one set of interactions: a binary user x item
matrix, plus play counts (log plays for the weighted item-kNN; each user's play-count ranks,
:func:`play_rank_weights`, for EASE and the second RP3beta, PureSVD and iALS).
:class:`Generators` computes them all once, merges their top lists into each user's candidates
and turns the candidates into ranker features.

The dense score matrices cover only the items with at least 2 listeners (``scored`` items): an
item with a single listener co-occurs with other items only inside that listener's own profile,
so item-item models cannot rank it for anyone else, and dropping those columns (about two thirds
of Last.fm's artists) makes every dense product about three times cheaper. The item-kNN *baseline*
(:func:`item_knn_scores`) keeps every item.

With ``music`` (the ``music_features`` table, see :mod:`.content`), a content generator scores
every item that has features, those with no interaction included (``scores["content"]``, over
its own columns): :attr:`Generators.cols` then holds the scored items *and* the items with
features, the other generators' scores stay over the scored items only (their features are NaN
for an item they do not score), and the content generator's top lists join the candidates
(:data:`CONTENT_CANDIDATES`). Without ``music`` nothing changes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._validators import integer, number
from ..exceptions import ParameterError

__all__ = [
    "Generators",
    "Interactions",
    "ease_weights",
    "content_sources",
    "ials_factors",
    "item_knn_scores",
    "play_rank_weights",
    "rp3beta_weights",
]

#: items EASE models at most (the most listened to); EASE inverts an items x items matrix.
#: Its penalty is DLAE's (Steck 2020) rather than EASE's uniform one: the dropout term shrinks
#: the weights of popular items more, and on a validation split inside the training data plain
#: EASE ranked worse at any uniform penalty (with the dropout term, the uniform part that ranks
#: best is a quarter of plain EASE's best)
EASE_ITEMS = 2500
EASE_LAMBDA, EASE_DROPOUT = 50.0, 0.6
#: RP3beta: transition probabilities raised to ALPHA, arrival item damped by listeners ** -BETA
#: (BETA > 0 keeps the popular items every walk arrives at from crowding out the user's own
#: taste; both chosen on a validation split inside the training data)
RP3_ALPHA, RP3_BETA = 1.0, 0.2
#: latent factors of the PureSVD generator, and the popularity damping of its item columns
SVD_FACTORS, SVD_POPULARITY_EXPONENT = 64, -0.25
#: neighbours of user-kNN
USER_NEIGHBOURS = 50
#: an item is scored by the dense generators when it has at least this many listeners
MIN_LISTENERS = 2
#: user-side EASE (users regressed on the other users over items): penalty and DLAE dropout
USER_EASE_LAMBDA, USER_EASE_DROPOUT = 50.0, 0.5
#: iALS (Hu, Koren, Volinsky 2008; the ``implicit`` library) on the play-rank weights ``w``:
#: confidence ``1 + ALPHA * w`` on each listened item, 1 elsewhere, L2 penalty REGULARIZATION,
#: conjugate-gradient ALS for ITERATIONS sweeps from a seeded start. Chosen on the validation
#: splits inside the training data, where it is the strongest single generator; what matters
#: is the ratio of the penalty to ALPHA (the factors and ALPHA at a fixed ratio hardly change
#: it). ``Generators`` also fits it on the binary matrix, a view the ranker gains from beside
#: the play-rank one. 8 sweeps: the ranking no worse than with 15, at half the cost of a fit
#: (fewer sweeps than 8 lose accuracy); the measurements are in ``docs/automl.md``
IALS_FACTORS, IALS_REGULARIZATION, IALS_ALPHA, IALS_ITERATIONS = 128, 100.0, 40.0, 8
#: where a candidate's score stands among *all* the scores of its generator, not only among
#: the user's candidates: its gap to the user's USER_GAPS-th best scores (over every scored
#: item, in the user's standard deviations) and to the ITEM_GAP-th best score the item gets
#: from any user (in the item's standard deviations: how far up the item's own list of users
#: this user is, which discounts items every user scores high). Ranks and z-scores within the
#: candidates cannot tell a strong candidate list from a weak one, and a raw score depends on
#: the size of the history; gaps in standard deviations place the score among everything the
#: generator scores without either flaw. The two sides measure different things, and on the
#: validation splits inside the training data each added to the other (``docs/automl.md``)
USER_GAPS, ITEM_GAP = (10, 100), 20
#: with a user graph: the top items of the ``friends`` generator each user's candidates draw on
#: (0: none, the social generators give features only; candidates from them did not change the
#: ranking measurably on the validation splits, see ``docs/automl.md``)
FRIEND_CANDIDATES = 0
#: the generators whose top items are the candidates (with popularity), always computed
CORE = ("itemknn", "userknn", "ease", "svd")
#: groups of generators that give features only, in the order a short budget computes them
#: (the strongest first: iALS, the friends, then the cheaper views of the same data)
OPTIONAL = ("ials", "social", "svd_plays", "rp3", "user_ease", "itemknn_plays", "ials_bin")
#: the order of the score matrices, hence of the ranker's feature columns
SCORE_ORDER = (
    "itemknn",
    "itemknn_plays",
    "ease",
    "user_ease",
    "userknn",
    "rp3",
    "rp3_plays",
    "svd",
    "svd_plays",
    "ials",
    "ials_bin",
    "friends",
    "friends_cos",
    "friends2",
    "content",
)
#: with ``music``: the candidate sources of the content generator and the share of ``n``
#: (candidates per user) each adds on top of the ``n`` of the others: ``content`` its top items
#: among every item with features, ``content_new`` its top items among those the other
#: generators do not score (no or a single listener: new releases). The core's ``n``
#: candidates are those of the pipeline without ``music``
CONTENT_CANDIDATES = {"content": 0.2, "content_new": 0.3}


def content_sources(n: int) -> dict[str, int]:
    """How many candidates each content source adds when a user gets ``n`` from the others."""
    return {name: max(3, int(round(share * n))) for name, share in CONTENT_CANDIDATES.items()}


@dataclass
class Interactions:
    users: np.ndarray  # user index per interaction
    items: np.ndarray
    weights: np.ndarray
    n_users: int
    n_items: int

    def matrix(self) -> Any:
        import scipy.sparse as sp

        return sp.csr_matrix(
            (np.ones(len(self.users), dtype=np.float32), (self.users, self.items)),
            shape=(self.n_users, self.n_items),
        )

    def subset(self, mask: np.ndarray) -> Interactions:
        return Interactions(
            self.users[mask], self.items[mask], self.weights[mask], self.n_users, self.n_items
        )


def play_rank_weights(inter: Interactions) -> Any:
    """Each (user, item) weighted by the item's place in the user's own play counts:
    ``1 - (items the user played strictly more) / (items of the user)``, so 1 for the user's
    most played items, towards 0 for the least played; ties share the higher weight, and equal
    play counts (or no weight column) give the binary matrix.

    On Last.fm a user's most played artists say more about the rest of the user's list than the
    least played ones: EASE, RP3beta and PureSVD fed these weights instead of 0/1 raised the
    ranker's ndcg@10 on a validation split inside the training data (see ``docs/automl.md``).

    Returns
    -------
    scipy.sparse.csr_matrix, shape (n_users, n_items), float32
    """
    import scipy.sparse as sp

    u, it, w = inter.users, inter.items, np.asarray(inter.weights, dtype=np.float64)
    order = np.lexsort((-w, u))
    u_s, w_s = u[order], w[order]
    idx = np.arange(len(u_s))
    user_start = np.searchsorted(u_s, u_s, side="left")
    new = np.r_[True, (u_s[1:] != u_s[:-1]) | (w_s[1:] != w_s[:-1])] if len(u_s) else idx > 0
    first_equal = np.maximum.accumulate(np.where(new, idx, 0)) if len(u_s) else idx
    counts = np.bincount(u_s, minlength=inter.n_users)
    weight = 1.0 - (first_equal - user_start) / np.maximum(counts[u_s], 1)
    return sp.csr_matrix(
        (weight.astype(np.float32), (u_s, it[order])), shape=(inter.n_users, inter.n_items)
    )


def ease_weights(x: Any, lam: float, dropout: float = 0.0) -> np.ndarray:
    """EASE item-item weights (Steck 2019): ``B = argmin |X - XB|^2 + |Lambda^1/2 B|^2,
    diag(B) = 0``, with ``Lambda = lam I`` (EASE) or, with ``dropout`` p > 0, the denoising
    penalty of DLAE (Steck 2020) ``Lambda = lam I + p / (1 - p) diag(X'X)``: popular items'
    weights shrink more, as if each input were dropped out with probability p.

    Parameters
    ----------
    x : np.ndarray or scipy.sparse matrix, shape (n_users, n_items)
        Binary (or weighted) interactions.
    lam : float
        L2 penalty, > 0.
    dropout : float
        DLAE's dropout probability, in [0, 1); 0 is plain EASE.

    Returns
    -------
    np.ndarray, shape (n_items, n_items), float64
        Closed form: with ``P = (X'X + lam I)^-1``, ``B = I - P diag(1 / diag(P))``, so column
        ``j`` of ``B`` is the ridge regression of item ``j`` on the other items.

    Raises
    ------
    ParameterError
        ``lam`` not a positive number, ``dropout`` outside [0, 1), or ``x`` not 2-D.
    """
    import scipy.sparse as sp

    if isinstance(lam, bool) or not isinstance(lam, (int, float)) or not lam > 0:
        raise ParameterError(f"lam={lam!r}: expected a number > 0")
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        raise ParameterError(f"dropout={dropout!r}: expected a number in [0, 1)")
    if sp.issparse(x):
        g = (x.T @ x).astype(np.float64).toarray()
    else:
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2:
            raise ParameterError(f"x has shape {x.shape}: expected (n_users, n_items)")
        g = x.T @ x
    return _ease_from_gram(g, lam, dropout)


def _ease_from_gram(g: np.ndarray, lam: float, dropout: float) -> np.ndarray:
    """EASE / DLAE weights from the Gram matrix ``X'X`` (overwritten), in its dtype: float64,
    or float32 inside :class:`Generators` (half the time of the inverse, which dominates their
    cost; the penalty keeps the matrix well conditioned)."""
    from scipy.linalg import lapack

    g[np.diag_indices_from(g)] += lam + dropout / (1.0 - dropout) * np.diag(g)
    potrf, potri = (
        (lapack.spotrf, lapack.spotri) if g.dtype == np.float32 else (lapack.dpotrf, lapack.dpotri)
    )
    # X'X + lam I is symmetric positive definite: Cholesky inverse, half the cost of LU
    c, info = potrf(g, lower=False, overwrite_a=True)
    if info == 0:
        p, info = potri(c, lower=False, overwrite_c=True)
    if info != 0:
        raise ParameterError(f"EASE: X'X + {lam:g} I is not positive definite (LAPACK {info})")
    p = np.triu(p) + np.triu(p, 1).T
    b = -p / np.diag(p)[None, :]
    b[np.diag_indices_from(b)] = 0.0
    return b


def ials_factors(
    x: Any,
    factors: int = IALS_FACTORS,
    regularization: float = IALS_REGULARIZATION,
    alpha: float = IALS_ALPHA,
    iterations: int = IALS_ITERATIONS,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Implicit-feedback ALS (Hu, Koren, Volinsky 2008) with the ``implicit`` library, one
    thread, seeded: minimises ``sum_ui c_ui (p_ui - u_u . v_i)^2 + regularization (|U|^2 +
    |V|^2)`` with ``p_ui = 1`` and ``c_ui = 1 + alpha x_ui`` where ``x_ui > 0``, ``p_ui = 0`` and
    ``c_ui = 1`` elsewhere (conjugate-gradient solves, ``implicit``'s default).

    Parameters
    ----------
    x : scipy.sparse matrix, shape (n_users, n_items)
        Non-negative interaction weights (binary, or play-rank weights).
    factors, iterations : int
        Latent factors (>= 1); ALS sweeps (>= 1), each solving users then items.
    regularization, alpha : float
        L2 penalty, confidence slope: finite numbers > 0.
    seed : int
        Seed of the random start; with one thread the result is deterministic.

    Returns
    -------
    (np.ndarray, np.ndarray)
        User factors ``(n_users, factors)`` and item factors ``(n_items, factors)``, float32;
        scores are ``users @ items.T``. Users and items without an interaction get zeros.

    Raises
    ------
    ParameterError
        A parameter out of range, or ``x`` not a 2-D sparse matrix with finite weights >= 0.
    """
    import scipy.sparse as sp

    factors = integer("factors", factors, minimum=1)
    iterations = integer("iterations", iterations, minimum=1)
    seed = integer("seed", seed, minimum=0)
    regularization = number("regularization", regularization, above=0.0)
    alpha = number("alpha", alpha, above=0.0)
    if not sp.issparse(x) or len(x.shape) != 2:
        raise ParameterError(f"x: expected a 2-D scipy.sparse matrix, got {type(x).__name__}")
    c = sp.csr_matrix(x, dtype=np.float32, copy=True)
    c.eliminate_zeros()
    if c.nnz and (not np.all(np.isfinite(c.data)) or c.data.min() < 0):
        raise ParameterError("x: expected finite weights >= 0")
    try:
        from implicit.cpu.als import AlternatingLeastSquares
    except ImportError as exc:  # pragma: no cover - the [automl] extra installs it
        raise ImportError(
            "the recommender's iALS generator needs the 'implicit' package: "
            "pip install 'ml_utilities[automl]' (or implicit>=0.7.2)"
        ) from exc

    n_u, n_i = c.shape
    # only the users and items with an interaction are fitted; the others keep zero factors
    # (their exact solution; fitted from the random start they would keep some of it, and
    # the factors of everyone else would depend on how many empty rows and columns there are)
    rows = np.flatnonzero(np.diff(c.indptr) > 0)
    cols = np.flatnonzero(np.bincount(c.indices, minlength=n_i) > 0)
    user_f = np.zeros((n_u, factors), dtype=np.float32)
    item_f = np.zeros((n_i, factors), dtype=np.float32)
    if not c.nnz:
        return user_f, item_f
    c = c[rows][:, cols].tocsr()
    # implicit's confidence is its alpha times the stored value: storing x + 1 / alpha gives
    # Hu et al.'s 1 + alpha x
    c.data += np.float32(1.0 / alpha)
    from threadpoolctl import threadpool_limits

    # one thread, BLAS included (the recommender's training runs under this limit already;
    # implicit warns when a multi-threaded BLAS is loaded)
    with threadpool_limits(limits=1, user_api="blas"):
        model = AlternatingLeastSquares(
            factors=factors,
            regularization=regularization,
            alpha=alpha,
            iterations=iterations,
            calculate_training_loss=False,
            num_threads=1,
            random_state=seed,
        )
        model.fit(c, show_progress=False)
    user_f[rows] = model.user_factors
    item_f[cols] = model.item_factors
    return user_f, item_f


def rp3beta_weights(
    r: Any, alpha: float = RP3_ALPHA, beta: float = RP3_BETA, cols: np.ndarray | None = None
) -> np.ndarray:
    """RP3beta item-item weights (Paudel et al. 2017): a random walk item -> user -> item.

    ``W[i, j] = sum_u (r_ui / listeners_i) ** alpha * (r_uj / items_u) ** alpha /
    listeners_j ** beta`` with a zero diagonal; scores are ``r @ W``.

    Parameters
    ----------
    r : scipy.sparse matrix, shape (n_users, n_items)
        Binary interactions.
    alpha, beta : float
        Exponent of the transition probabilities; popularity damping of the arrival item.
    cols : np.ndarray of int, optional
        Items kept (rows and columns of ``W``); all when None.

    Returns
    -------
    np.ndarray, shape (n_cols, n_cols), float32
    """
    import scipy.sparse as sp

    r = sp.csr_matrix(r, dtype=np.float64)
    if cols is not None:
        r = r[:, cols]
    listeners = np.maximum(np.asarray(r.sum(axis=0)).ravel(), 1.0)
    items = np.maximum(np.asarray(r.sum(axis=1)).ravel(), 1.0)
    p_iu = (sp.diags(1.0 / listeners) @ r.T).tocsr()
    p_ui = (sp.diags(1.0 / items) @ r).tocsr()
    if alpha != 1.0:
        p_iu.data **= alpha
        p_ui.data **= alpha
    w = (p_iu @ p_ui).toarray() / listeners[None, :] ** beta
    np.fill_diagonal(w, 0.0)
    return w.astype(np.float32)


def item_knn_scores(r: Any, cols: np.ndarray | None = None) -> np.ndarray:
    """Item-kNN (cosine between items over users) scores ``r @ S[:, cols]``.

    Computed as ``(r rn') rn`` with ``rn`` the column-normalised matrix: users x users first,
    which is cheap when there are fewer users than items.

    Returns
    -------
    np.ndarray, shape (n_users, n_cols), float32
    """
    import scipy.sparse as sp

    norm = np.sqrt(np.asarray(r.sum(axis=0)).ravel())
    norm[norm == 0] = 1.0
    rn = (r @ sp.diags(1.0 / norm)).tocsr()
    right = rn if cols is None else rn[:, cols]
    return np.asarray((r @ rn.T).toarray() @ right, dtype=np.float32)


class Generators:
    """Scores of every (user, scored item) from the interactions, merged candidates, features.

    ``scores[name]`` has shape ``(n_users, len(cols))``: column ``c`` is item ``cols[c]``.
    """

    def __init__(
        self,
        inter: Interactions,
        graph: Any = None,
        *,
        only: tuple[str, ...] | None = None,
        deadline: float = float("inf"),
        music: Any = None,
        item_ids: np.ndarray | None = None,
    ) -> None:
        """Score every user against the scored items.

        The candidate generators (:data:`CORE`) are always computed; the others
        (:data:`OPTIONAL`, features only) in that order, each only while ``deadline``
        (``time.monotonic()``) has not passed, or exactly those named in ``only`` (the
        generators of an earlier set, so that the ranker sees the same features at training,
        evaluation and serving). :attr:`names` lists the optional groups computed.

        ``music``: the ``music_features`` DataFrame (indexed by item id; ``item_ids`` gives the
        id of each item index) for the content generator (:mod:`.content`), or None.
        """
        import scipy.sparse as sp

        r = inter.matrix()
        r.data[:] = 1.0
        self.seen = r
        n_u, n_i = r.shape
        listeners = np.asarray(r.sum(axis=0)).ravel()
        cols = np.flatnonzero(listeners >= MIN_LISTENERS)
        if len(cols) < 10:  # tiny data: keep every listened item
            cols = np.flatnonzero(listeners >= 1)
        self.cols = cols
        self.col_of = np.full(n_i, -1, dtype=np.int64)
        self.col_of[cols] = np.arange(len(cols))
        rc = r[:, cols].tocsr()
        scores: dict[str, np.ndarray] = {}
        scores["itemknn"] = self.itemknn = item_knn_scores(r, cols)
        # users x users co-occurrence, shared by user-kNN (cosine) and the user-side EASE
        user_gram = np.asarray((r @ r.T).toarray(), dtype=np.float32)
        user_norm = np.sqrt(np.diag(user_gram).copy())
        user_norm[user_norm == 0] = 1.0
        usim = (user_gram / user_norm[:, None] / user_norm[None, :]).astype(np.float32)
        np.fill_diagonal(usim, 0.0)
        # cosine between each user and each friend, taken before the neighbour cut below
        friends = None if graph is None else _graph_matrix(graph, n_u)
        friend_cos = None if friends is None else friends.multiply(usim).tocsr()
        k = min(USER_NEIGHBOURS, n_u - 1)
        if k > 0:  # keep each user's nearest neighbours
            thresh = -np.partition(-usim, k - 1, axis=1)[:, k - 1 : k]
            usim[usim < thresh] = 0.0
        scores["userknn"] = self.userknn = np.asarray(
            (sp.csr_matrix(usim) @ rc).toarray(), dtype=np.float32
        )
        del usim
        self.popularity = listeners.astype(np.float32)
        plays = np.bincount(inter.items, weights=inter.weights, minlength=n_i)
        self.log_plays = np.log1p(plays).astype(np.float32)
        self.user_items = np.asarray(r.sum(axis=1)).ravel().astype(np.float32)
        self.user_log_plays = np.log1p(
            np.bincount(inter.users, weights=inter.weights, minlength=n_u)
        ).astype(np.float32)
        # the user's play-count ranks as weights (1 for the most played): the input of EASE,
        # of a second RP3beta and of a second PureSVD
        rank_w = play_rank_weights(inter)
        rank_wc = rank_w[:, cols].tocsr()
        # EASE (DLAE penalty) over the most popular items, on the play-rank weighted profiles
        top = np.argsort(-listeners[cols], kind="stable")[: min(EASE_ITEMS, len(cols))]
        top = top[listeners[cols[top]] > 0]
        x = rank_wc[:, top].tocsr()
        self.ease = np.zeros((n_u, len(cols)), dtype=np.float32)
        gram = (x.T @ x).toarray().astype(np.float32)
        self.ease[:, top] = np.asarray(
            x @ _ease_from_gram(gram, EASE_LAMBDA, EASE_DROPOUT), dtype=np.float32
        )
        scores["ease"] = self.ease
        del gram, x
        # PureSVD factorises every item and keeps the scored ones: the single-listener columns
        # still shape the factors of the users and items they belong to (without them it
        # ranked clearly worse on the validation split)
        svd = _pure_svd(r, listeners, cols)
        if svd is not None:
            scores["svd"] = svd

        def user_ease() -> None:
            # user-side EASE: each user regressed on the other users (a users x users inverse)
            bu = _ease_from_gram(user_gram, USER_EASE_LAMBDA, USER_EASE_DROPOUT)
            scores["user_ease"] = np.asarray((rc.T @ bu).T, dtype=np.float32)

        def itemknn_plays() -> None:
            # item-kNN over log play counts, each user's profile scaled to unit sum
            rw = sp.csr_matrix(
                (np.log1p(inter.weights).astype(np.float32), (inter.users, inter.items)),
                shape=(n_u, n_i),
            )
            rs = np.asarray(rw.sum(axis=1)).ravel()
            rs[rs == 0] = 1.0
            rw = sp.diags(1.0 / rs) @ rw
            norm = np.sqrt(np.maximum(listeners, 1.0))
            rn = (r @ sp.diags(1.0 / norm)).tocsr()
            scores["itemknn_plays"] = np.asarray(
                (rw @ rn.T).toarray() @ rn[:, cols], dtype=np.float32
            )

        def rp3() -> None:
            w_rp3 = rp3beta_weights(rc)
            scores["rp3"] = np.asarray(rc @ w_rp3, dtype=np.float32)
            scores["rp3_plays"] = np.asarray(rank_wc @ w_rp3, dtype=np.float32)

        def svd_plays() -> None:
            # PureSVD once more, on the play-rank weights
            m = _pure_svd(rank_w, listeners, cols)
            if m is not None:
                scores["svd_plays"] = m

        def ials(name: str, mat: Any) -> Any:
            # iALS over every item (features only: the top 50 of the first as candidates too
            # measured no better on the validation splits)
            def run() -> None:
                uf, itf = ials_factors(mat)
                scores[name] = uf @ itf[cols].T

            return run

        def social() -> None:
            if friends is not None:
                self._friend_scores(friends, friend_cos, rc, rank_wc, scores)

        groups = {
            "ials": ials("ials", rank_w),
            "social": social,
            "svd_plays": svd_plays,
            "rp3": rp3,
            "user_ease": user_ease,
            "itemknn_plays": itemknn_plays,
            "ials_bin": ials("ials_bin", r),
        }
        assert tuple(groups) == OPTIONAL
        self.friends = None
        done = []
        for name, build in groups.items():
            if only is not None:
                if name not in only:
                    continue
            elif time.monotonic() > deadline:
                break
            build()
            done.append(name)
        #: the optional groups computed (pass as ``only`` to score the same way elsewhere)
        self.names = tuple(done)
        #: the scored items (the columns of every score matrix but the content generator's)
        self.warm_cols, self.warm_col_of = cols, self.col_of
        #: whether :attr:`cols` holds more than the scored items (the content generator's)
        self.wide = False
        if music is not None:
            self._content(music, item_ids, rank_w, scores)
        self.scores = {name: scores[name] for name in SCORE_ORDER if name in scores}
        self.context = {name: _score_context(m) for name, m in self.scores.items()}

    def _content(
        self, music: Any, item_ids: np.ndarray | None, rank_w: Any, scores: dict[str, np.ndarray]
    ) -> None:
        """The content generator (:mod:`.content`): every item with features scored by the
        cosine between its standardised vector and each user's play-rank weighted profile;
        :attr:`cols` becomes the scored items and the items with features."""
        from .content import content_scores, item_vectors

        n_i = self.seen.shape[1]
        if item_ids is None or len(item_ids) != n_i:
            raise ParameterError(
                f"music needs item_ids: the id of each of the {n_i} items (got "
                f"{None if item_ids is None else len(item_ids)})"
            )
        items, vectors = item_vectors(music, np.asarray(item_ids))
        if not len(items) or not vectors.shape[1]:
            return
        scores["content"], self.content_users = content_scores(rank_w, items, vectors)
        #: the items the content generator scores (its columns) and their column of each item
        self.content_items = items
        self.content_col_of = np.full(n_i, -1, dtype=np.int64)
        self.content_col_of[items] = np.arange(len(items))
        #: the content generator's columns whose items the other generators do not score
        self.content_new = np.flatnonzero(self.warm_col_of[items] < 0)
        self.cols = np.union1d(self.warm_cols, items)
        self.col_of = np.full(n_i, -1, dtype=np.int64)
        self.col_of[self.cols] = np.arange(len(self.cols))
        self.wide = True

    def content_of(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """The content generator's scores of ``users`` for ``items`` (which must have
        features), float32 ``(len(users), len(items))``."""
        c = self.content_col_of[np.asarray(items, dtype=np.int64)]
        if np.any(c < 0):
            raise ParameterError("content_of: items without features")
        return self.scores["content"][np.asarray(users)][:, c]

    def _own_col_of(self, name: str) -> np.ndarray:
        """Each item's column in generator ``name``'s score matrix (-1: not scored by it)."""
        return self.content_col_of if name == "content" else self.warm_col_of

    def _source(self, name: str, users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Scores of ``users`` by candidate source ``name`` over the source's own columns, the
        items the users already have set to -inf; and the items of the columns."""
        if name == "popularity":
            items = self.cols
            out = np.repeat(self.popularity[items][None, :], len(users), axis=0)
        elif name == "content_new":
            items = self.content_items[self.content_new]
            out = self.scores["content"][users][:, self.content_new]
        else:
            items = self.content_items if name == "content" else self.warm_cols
            out = np.array(self.scores[name][users], copy=True)
        rows, seen = self.seen[users].nonzero()
        if items is self.cols:
            c = self.col_of[seen]
        else:
            col_of = np.full(self.seen.shape[1], -1, dtype=np.int64)
            col_of[items] = np.arange(len(items))
            c = col_of[seen]
        out[rows[c >= 0], c[c >= 0]] = -np.inf
        return out, items

    def _friend_scores(
        self, a: Any, friend_cos: Any, rc: Any, rank_wc: Any, scores: dict[str, np.ndarray]
    ) -> None:
        """The social generators, from the interactions given to the generators only (the
        friends' included): the mean play-rank profile of the user's friends (``friends``),
        the sum of the friends' binary profiles weighted by the cosine between the user and
        each friend (``friends_cos``), the mean play-rank profile of friends of friends
        (``friends2``); and how many friends have each item (``friend_count``, features)."""
        import scipy.sparse as sp

        n_friends = np.asarray(a.sum(axis=1)).ravel().astype(np.float32)
        inv = sp.diags(1.0 / np.maximum(n_friends, 1.0))
        self.friends = a
        self.n_friends = n_friends
        self.friend_count = np.asarray((a @ rc).toarray(), dtype=np.float32)
        scores["friends"] = np.asarray((inv @ a @ rank_wc).toarray(), dtype=np.float32)
        scores["friends_cos"] = np.asarray((friend_cos @ rc).toarray(), dtype=np.float32)
        # friends of friends: each user two steps away weighted by log(1 + paths), the
        # user's own weights scaled to unit sum, over play-rank profiles
        a2 = (a @ a).tocoo()
        off = a2.row != a2.col
        a2 = sp.csr_matrix((np.log1p(a2.data[off]), (a2.row[off], a2.col[off])), shape=a.shape)
        rs = np.asarray(a2.sum(axis=1)).ravel()
        a2 = sp.diags(1.0 / np.maximum(rs, 1e-9)) @ a2
        scores["friends2"] = np.asarray((a2 @ rank_wc).toarray(), dtype=np.float32)

    def masked(self, name: str, users: np.ndarray) -> np.ndarray:
        """Scores of ``users`` over :attr:`cols` (column ``c`` is item ``cols[c]``), those they
        already have set to -inf, as do the items generator ``name`` does not score."""
        out, items = self._source(name, users)
        if items is self.cols:
            return out
        wide = np.full((len(users), len(self.cols)), -np.inf, dtype=np.float32)
        wide[:, self.col_of[items]] = out
        return wide

    def candidate_sources(self, n: int) -> dict[str, int]:
        """The generators whose top lists make the candidates, and how many items each gives
        when a user gets ``n`` candidates (in the order :meth:`candidates` merges them)."""
        per = {"itemknn": n, "ease": n, "userknn": n, "popularity": max(5, n // 5)}
        if "svd" in self.scores:
            per["svd"] = n
        if "friends" in self.scores and FRIEND_CANDIDATES:
            per["friends"] = FRIEND_CANDIDATES
        if "content" in self.scores:
            per.update(content_sources(n))
        return per

    def candidates(self, users: np.ndarray, n: int) -> list[np.ndarray]:
        """Up to ``n`` unseen items per user: the generators' top lists merged, ordered by the
        best rank an item has in any of them (ties by item index), returned sorted by item.
        With the content generator, its sources' top items are added to these ``n``
        (:func:`content_sources`)."""
        per = self.candidate_sources(n)
        extra = {name: per.pop(name) for name in CONTENT_CANDIDATES if name in per}
        merged = self._merge(users, n, per)
        if not extra:
            return merged
        tops = [self._top(users, name, m) for name, m in extra.items()]
        return [
            np.union1d(merged[j], np.concatenate([t[j] for t in tops])).astype(np.int64)
            for j in range(len(users))
        ]

    def _top(self, users: np.ndarray, name: str, m: int) -> list[np.ndarray]:
        """Each user's ``m`` best unseen items by source ``name``."""
        s, items = self._source(name, users)
        m = min(m, s.shape[1] - 1)
        if m < 1:
            return [np.array([], dtype=np.int64) for _ in users]
        top = np.argpartition(-s, m, axis=1)[:, :m]
        ok = np.isfinite(np.take_along_axis(s, top, axis=1))
        return [items[top[j][ok[j]]].astype(np.int64) for j in range(len(users))]

    def _merge(self, users: np.ndarray, n: int, per: dict[str, int]) -> list[np.ndarray]:
        parts_u, parts_i, parts_r = [], [], []
        for name, m in per.items():
            s, items = self._source(name, users)
            m = min(m, s.shape[1] - 1)
            if m < 1:
                continue
            top = np.argpartition(-s, m, axis=1)[:, :m]
            vals = np.take_along_axis(s, top, axis=1)
            order = np.argsort(-vals, axis=1, kind="stable")
            top = np.take_along_axis(top, order, axis=1)
            vals = np.take_along_axis(vals, order, axis=1)
            ok = np.isfinite(vals)
            ranks = np.broadcast_to(np.arange(m), top.shape)
            rows = np.broadcast_to(np.arange(len(users))[:, None], top.shape)
            parts_u.append(rows[ok])
            parts_i.append(items[top[ok]])
            parts_r.append(ranks[ok])
        if not parts_u:
            return [np.array([], dtype=np.int64) for _ in users]
        u = np.concatenate(parts_u)
        it = np.concatenate(parts_i).astype(np.int64)
        rk = np.concatenate(parts_r)
        # best rank of each (user, item), then each user's n best by (rank, item)
        order = np.lexsort((rk, it, u))
        u, it, rk = u[order], it[order], rk[order]
        first = np.r_[True, (u[1:] != u[:-1]) | (it[1:] != it[:-1])]
        u, it, rk = u[first], it[first], rk[first]
        order = np.lexsort((it, rk, u))
        u, it = u[order], it[order]
        starts = np.searchsorted(u, np.arange(len(users)))
        pos = np.arange(len(u)) - starts[u]
        keep = pos < n
        u, it = u[keep], it[keep]
        bounds = np.searchsorted(u, np.arange(len(users) + 1))
        return [np.sort(it[bounds[j] : bounds[j + 1]]) for j in range(len(users))]

    def features(self, users: np.ndarray, cands: list[np.ndarray]) -> dict[str, np.ndarray]:
        """Ranker features of each (user, candidate): per generator the rank of its score among
        the user's candidates, its z-score within them, its gaps to the user's
        :data:`USER_GAPS`-th best scores and to the item's :data:`ITEM_GAP`-th best score (over
        all scored items, all users); item popularity and the user's activity. Candidates must
        be items of :attr:`cols`; with the content generator, a generator's columns are NaN
        for the candidates it does not score, and ``item_cold`` flags items without a
        listener."""
        u = np.concatenate(
            [np.full(len(c), uu, dtype=np.int64) for uu, c in zip(users, cands, strict=True)]
            or [np.array([], dtype=np.int64)]
        )
        i = np.concatenate(list(cands) or [np.array([], dtype=np.int64)]).astype(np.int64)
        c = self.col_of[i]
        if np.any(c < 0):
            raise ParameterError("candidates must be items the generators score")
        sizes = [len(cc) for cc in cands]
        cols: dict[str, np.ndarray] = {"user_index": u, "item_index": i}
        for name, mat in self.scores.items():
            # no raw score: it grows with the history, which is smaller for the ranker's rows
            # than at evaluation and far smaller than at serving (all interactions), so a tree
            # split on a raw score learnt on the ranker's rows falls in the wrong place at
            # serving time (``docs/automl.md`` has the test that showed it)
            own = self._own_col_of(name)[i] if self.wide else c
            scored = own >= 0
            if scored.all():
                score = mat[u, own]
            else:  # with the content generator: NaN where this generator does not score
                score = np.full(len(u), np.nan, dtype=np.float32)
                score[scored] = mat[u[scored], own[scored]]
                own = np.where(scored, own, 0)
            ranks = np.empty(len(u), dtype=np.float32)
            pos = 0
            for n in sizes:
                # NaN sorts last: the scored candidates get the ranks they have among themselves
                ranks[pos : pos + n] = np.argsort(np.argsort(-score[pos : pos + n], kind="stable"))
                pos += n
            if not scored.all():
                ranks[~scored] = np.nan
            cols[f"{name}_rank"] = ranks
            # the same score standardised within the user's candidates: raw scores grow with
            # the size of the history, so the ranker learns on a smaller history than it serves
            cols[f"{name}_z"] = (
                _per_user_z(score, sizes) if scored.all() else _per_user_z_nan(score, sizes)
            )
            # and against all of the generator's scores: the user's and the item's
            user_sd, user_kth, item_sd, item_kth = self.context[name]
            for j, k in enumerate(USER_GAPS):
                cols[f"{name}_gap{k}"] = (score - user_kth[u, j]) / user_sd[u]
            cols[f"{name}_item_gap"] = (score - item_kth[own]) / item_sd[own]
        # agreement of the generators: mean, best and spread of the ranks, mean and best z-score
        ranks_all = np.stack([cols[f"{n}_rank"] for n in self.scores], axis=1)
        z_all = np.stack([cols[f"{n}_z"] for n in self.scores], axis=1)
        if self.wide and np.isnan(ranks_all).any():
            import warnings

            with warnings.catch_warnings():  # every candidate has a generator that scores it
                warnings.simplefilter("ignore", RuntimeWarning)
                cols["mean_rank"] = np.nanmean(ranks_all, axis=1)
                cols["min_rank"] = np.nanmin(ranks_all, axis=1)
                cols["std_rank"] = np.nanstd(ranks_all, axis=1)
                cols["mean_z"] = np.nanmean(z_all, axis=1)
                cols["max_z"] = np.nanmax(z_all, axis=1)
        else:
            cols["mean_rank"] = ranks_all.mean(axis=1)
            cols["min_rank"] = ranks_all.min(axis=1)
            cols["std_rank"] = ranks_all.std(axis=1)
            cols["mean_z"] = z_all.mean(axis=1)
            cols["max_z"] = z_all.max(axis=1)
        cols["item_listeners"] = self.popularity[i]
        cols["item_log_plays"] = self.log_plays[i]
        cols["user_items"] = self.user_items[u]
        cols["user_log_plays"] = self.user_log_plays[u]
        if self.wide:
            # no listener in these interactions: a new release, or an item held out whole
            cols["item_cold"] = (self.popularity[i] == 0).astype(np.float32)
        if self.friends is not None:
            if self.wide:  # the friends' counts cover the scored items only
                w = self.warm_col_of[i]
                have = np.zeros(len(u), dtype=np.float32)
                have[w >= 0] = self.friend_count[u[w >= 0], w[w >= 0]]
            else:
                have = self.friend_count[u, c]
            cols["friends_have"] = have
            cols["friends_share"] = have / np.maximum(self.n_friends[u], 1.0)
            cols["user_friends"] = self.n_friends[u]
            # the share of friends against the share of all users who have the item
            base = self.popularity[i] / max(float(len(self.user_items)), 1.0)
            cols["friends_lift"] = cols["friends_share"] / np.maximum(base, 1e-6)
        return cols


def _graph_matrix(graph: Any, n_users: int) -> Any:
    """The user x user friendship matrix (binary, float32, no self-loops) of ``graph``: a
    scipy.sparse matrix, or a pair of arrays (user index, friend index)."""
    import scipy.sparse as sp

    if sp.issparse(graph):
        if graph.shape != (n_users, n_users):
            raise ParameterError(f"graph has shape {graph.shape}: expected ({n_users}, {n_users})")
        coo = sp.coo_matrix(graph)
        src, dst = coo.row[coo.data != 0], coo.col[coo.data != 0]
    else:
        src, dst = (np.asarray(v, dtype=np.int64) for v in graph)
    keep = src != dst
    a = sp.csr_matrix(
        (np.ones(int(keep.sum()), dtype=np.float32), (src[keep], dst[keep])),
        shape=(n_users, n_users),
    )
    a.data[:] = 1.0  # duplicate edges count once
    return a


def _pure_svd(r: Any, listeners: np.ndarray, cols: np.ndarray) -> np.ndarray | None:
    """PureSVD scores (Cremonesi et al. 2010) of ``r`` (binary, or play-rank weights), with
    popular items' columns damped by ``listeners ** -0.25`` (tuned on a validation split of the
    training data)."""
    import scipy.sparse as sp
    from scipy.sparse.linalg import svds
    from sklearn.utils.extmath import randomized_svd

    k = min(SVD_FACTORS, min(r.shape) - 1)
    if k < 2:
        return None
    damp = np.power(np.maximum(listeners, 1.0), SVD_POPULARITY_EXPONENT)
    x = (r @ sp.diags(damp)).astype(np.float64)
    if min(r.shape) > 4 * k:
        # randomized (Halko et al. 2011; seeded): several times faster than ARPACK at this
        # rank, and the ranking on the validation split did not change
        u, s, vt = randomized_svd(x, k, n_iter=4, random_state=0)
    else:
        v0 = np.full(min(r.shape), 1.0 / np.sqrt(min(r.shape)))  # deterministic start
        u, s, vt = svds(x, k=k, v0=v0)
    return ((u * s) @ (vt[:, cols] * damp[None, cols])).astype(np.float32)


def _per_user_z(score: np.ndarray, sizes: list[int]) -> np.ndarray:
    """Each score standardised within its user's (``sizes``: consecutive runs of rows)."""
    z = np.empty(len(score), dtype=np.float32)
    pos = 0
    for n in sizes:
        v = score[pos : pos + n]
        if n:
            z[pos : pos + n] = (v - v.mean()) / (float(v.std()) or 1.0)
        pos += n
    return z


def _per_user_z_nan(score: np.ndarray, sizes: list[int]) -> np.ndarray:
    """:func:`_per_user_z` over the finite scores of each user, NaN staying NaN."""
    z = np.full(len(score), np.nan, dtype=np.float32)
    pos = 0
    for n in sizes:
        v = score[pos : pos + n]
        ok = np.isfinite(v)
        if ok.any():
            f = v[ok]
            z[pos : pos + n][ok] = (f - f.mean()) / (float(f.std()) or 1.0)
        pos += n
    return z


def _score_context(m: np.ndarray) -> tuple[np.ndarray, ...]:
    """Of a (users, scored items) score matrix: each user's standard deviation and
    :data:`USER_GAPS`-th best scores, each item's standard deviation and :data:`ITEM_GAP`-th
    best score (counting from 0, capped at the last; deviations of 0 become 1), float32."""
    n_u, n_c = m.shape
    if n_u == 0 or n_c == 0:
        empty = np.zeros(0, dtype=np.float32)
        return empty, np.zeros((n_u, len(USER_GAPS)), np.float32), empty, empty
    user_sd = m.std(axis=1).astype(np.float32)
    user_sd[user_sd == 0] = 1.0
    ks = [min(k, n_c - 1) for k in USER_GAPS]
    user_kth = -np.partition(-m, ks, axis=1)[:, ks]
    item_sd = m.std(axis=0).astype(np.float32)
    item_sd[item_sd == 0] = 1.0
    k = min(ITEM_GAP, n_u - 1)
    item_kth = -np.partition(-np.ascontiguousarray(m.T), k, axis=1)[:, k]
    return user_sd, user_kth.astype(np.float32), item_sd, item_kth.astype(np.float32)
