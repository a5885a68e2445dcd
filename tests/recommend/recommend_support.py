"""Shared by the recommender tests (imported by name: pytest puts this folder on sys.path)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def listening(seed: int, n_users: int, n_items: int, per_user: int) -> pd.DataFrame:
    """Synthetic listening rows (userID, artistID, weight): each user ``per_user`` distinct
    artists drawn at random from ``n_items``, play counts 1-299, seeded."""
    rng = np.random.default_rng(seed)
    rows = [
        (u, int(i), int(rng.integers(1, 300)))
        for u in range(n_users)
        for i in rng.choice(n_items, per_user, replace=False)
    ]
    return pd.DataFrame(rows, columns=["userID", "artistID", "weight"])
