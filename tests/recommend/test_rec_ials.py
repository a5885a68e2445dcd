"""The iALS generator (``ials_factors``, the ``implicit`` library): Hu-Koren-Volinsky's normal
equations at the solution, determinism with the seed, one thread, users and items without
interactions, clear errors on bad inputs, and its place among the generators' features."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

pytest.importorskip("implicit")

from ml_utilities.exceptions import ParameterError  # noqa: E402
from ml_utilities.recommend.generators import (  # noqa: E402
    Generators,
    Interactions,
    ials_factors,
    play_rank_weights,
)


def _weights(seed=0, n_users=40, n_items=25, density=0.3):
    rng = np.random.default_rng(seed)
    x = (rng.random((n_users, n_items)) < density) * rng.random((n_users, n_items))
    x[0, :] = 0.5  # every item has a listener
    return sp.csr_matrix(x.astype(np.float32))


def _normal_residual(x, fixed, solved, reg, alpha):
    """Largest relative residual of HKV's normal equations for the rows of ``solved`` given
    ``fixed``: ``(F' C_r F + reg I) s_r = F' C_r p_r`` with ``c = 1 + alpha x`` where x > 0
    (p = 1), c = 1 and p = 0 elsewhere."""
    x = x.toarray().astype(np.float64)
    f = fixed.astype(np.float64)
    worst = 0.0
    for r in range(x.shape[0]):
        c = np.where(x[r] > 0, 1.0 + alpha * x[r], 1.0)
        p = (x[r] > 0).astype(np.float64)
        a = f.T @ (c[:, None] * f) + reg * np.eye(f.shape[1])
        b = f.T @ (c * p)
        res = a @ solved[r].astype(np.float64) - b
        worst = max(worst, float(np.abs(res).max() / max(np.abs(b).max(), 1e-9)))
    return worst


def test_ials_factors_solve_the_hu_koren_volinsky_normal_equations():
    x = _weights()
    reg, alpha = 0.5, 10.0
    users, items = ials_factors(x, factors=6, regularization=reg, alpha=alpha, iterations=60)
    assert users.shape == (40, 6) and items.shape == (25, 6)
    assert users.dtype == items.dtype == np.float32
    # converged alternating least squares: each side is the exact solve given the other
    assert _normal_residual(x.T.tocsr(), users, items, reg, alpha) < 2e-3
    assert _normal_residual(x, items, users, reg, alpha) < 2e-3
    # and it fits: the listened items score higher than the others on average
    s = users @ items.T
    listened = x.toarray() > 0
    assert s[listened].mean() > s[~listened].mean() + 0.3


def test_ials_factors_are_deterministic_with_the_seed_and_use_one_thread(monkeypatch):
    import implicit.cpu.als as als

    x = _weights(1)
    a = ials_factors(x, factors=8, iterations=5, seed=3)
    b = ials_factors(x, factors=8, iterations=5, seed=3)
    c = ials_factors(x, factors=8, iterations=5, seed=4)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.allclose(a[1], c[1])
    made = []
    real = als.AlternatingLeastSquares

    def recording(**kw):
        made.append(kw)
        return real(**kw)

    monkeypatch.setattr(als, "AlternatingLeastSquares", recording)
    ials_factors(x, factors=4, iterations=2, seed=5)
    assert made and made[0]["num_threads"] == 1 and made[0]["random_state"] == 5


def test_users_and_items_without_interactions_get_zero_factors_and_change_nothing():
    x = _weights(2)
    users, items = ials_factors(x, factors=5, iterations=8)
    # an empty user row and two empty item columns added: the others' factors are unchanged
    wide = sp.vstack([x, sp.csr_matrix((1, 25), dtype=np.float32)])
    wide = sp.hstack([wide, sp.csr_matrix((41, 2), dtype=np.float32)]).tocsr()
    u2, i2 = ials_factors(wide, factors=5, iterations=8)
    np.testing.assert_array_equal(u2[:40], users)
    np.testing.assert_array_equal(i2[:25], items)
    assert not u2[40].any() and not i2[25:].any()
    empty_u, empty_i = ials_factors(sp.csr_matrix((3, 4), dtype=np.float32), factors=2)
    assert empty_u.shape == (3, 2) and empty_i.shape == (4, 2)
    assert not empty_u.any() and not empty_i.any()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"factors": 0}, "factors=0"),
        ({"factors": 2.5}, "factors=2.5"),
        ({"iterations": True}, "iterations=True"),
        ({"regularization": 0.0}, "regularization=0.0"),
        ({"regularization": "1"}, "regularization='1'"),
        ({"alpha": -1.0}, "alpha=-1.0"),
        ({"alpha": float("inf")}, "alpha=inf"),
        ({"seed": "0"}, "seed='0'"),
        ({"seed": -1}, "seed=-1"),
    ],
)
def test_ials_factors_bad_parameters_raise_parameter_error(kwargs, match):
    with pytest.raises(ParameterError, match=match):
        ials_factors(_weights(), **kwargs)


def test_ials_factors_bad_matrices_raise_parameter_error():
    with pytest.raises(ParameterError, match="scipy.sparse"):
        ials_factors(np.ones((3, 3)))
    neg = _weights()
    neg.data[0] = -1.0
    with pytest.raises(ParameterError, match=">= 0"):
        ials_factors(neg)
    nan = _weights()
    nan.data[0] = np.nan
    with pytest.raises(ParameterError, match="finite"):
        ials_factors(nan)


def test_generators_score_with_ials_on_play_ranks_and_binary():
    rng = np.random.default_rng(4)
    n_u, n_i = 30, 20
    draws = zip(rng.integers(0, n_u, 250), rng.integers(0, n_i, 250), strict=True)
    pairs = {(int(u), int(i)) for u, i in draws}
    u, i = (np.array(v) for v in zip(*sorted(pairs), strict=True))
    w = rng.integers(1, 500, len(u)).astype(np.float64)
    inter = Interactions(u, i, w, n_u, n_i)
    g = Generators(inter)
    for name, mat in (("ials", play_rank_weights(inter)), ("ials_bin", inter.matrix())):
        uf, itf = ials_factors(mat)
        np.testing.assert_allclose(g.scores[name], uf @ itf[g.cols].T, rtol=1e-5, atol=1e-6)
    users = np.arange(5)
    cands = g.candidates(users, 10)
    cols = g.features(users, cands)
    for name in ("ials", "ials_bin"):
        assert {f"{name}_rank", f"{name}_z", f"{name}_gap10", f"{name}_item_gap"} <= set(cols)
