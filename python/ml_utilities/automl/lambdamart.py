"""LambdaMART ranker of the recommender: LightGBM lambdarank, small trees, rounds by early stopping.

The recommender's ranker learns on candidates computed from a smaller history than the one it
ranks at evaluation and serving time, and on Last.fm large trees overfit it: on a validation
split inside the training data (ranker trained one level down), ndcg@10 was 0.163 with 31-leaf
trees at learning rate 0.05 for 300 rounds, 0.180 with 8-leaf trees for 150 rounds and 0.172 for
400. So the trees stay small, and the number of rounds is chosen by early stopping on a
held-out fifth of the users, then the model is refitted on every user with that many rounds.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np

from ..exceptions import ParameterError

__all__ = ["LambdaMARTRanker"]

logger = logging.getLogger(__name__)

#: LightGBM parameters (validated as described in the module docstring)
PARAMS = {
    "objective": "lambdarank",
    "metric": "ndcg",
    "learning_rate": 0.05,
    "num_leaves": 8,
    "min_child_samples": 5,
    "feature_fraction": 0.7,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "verbosity": -1,
    "force_col_wise": True,
}
#: early stopping on a fifth of the users is noisy (it stopped anywhere from 8 to 74 rounds on
#: Last.fm): the rounds are at least MIN_ROUNDS, where every seed scored within 0.002 of the best
MAX_ROUNDS, MIN_ROUNDS, PATIENCE, VALID_SHARE = 600, 40, 50, 0.2


class LambdaMARTRanker:
    """LightGBM lambdarank on rows grouped by user (scikit-learn style ``fit`` / ``predict``).

    Parameters
    ----------
    group_column : str
        The user column of the frames (rows of one user contiguous); not a feature.
    k : int
        The cut-off of the ndcg the early stopping watches.
    seed : int
    n_threads : int
    deadline : float, optional
        ``time.monotonic()`` value after which boosting stops at the next round.
    """

    def __init__(
        self,
        group_column: str = "user_id",
        k: int = 10,
        seed: int = 0,
        n_threads: int = 1,
        deadline: float | None = None,
    ) -> None:
        self.group_column = group_column
        self.k = k
        self.seed = seed
        self.n_threads = n_threads
        self.deadline = deadline

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {
            "group_column": self.group_column,
            "k": self.k,
            "seed": self.seed,
            "n_threads": self.n_threads,
            "deadline": self.deadline,
        }

    def _matrix(self, frame: Any) -> np.ndarray:
        missing = [c for c in self.columns_ if c not in frame.columns]
        if missing:
            raise ParameterError(f"the frame lacks the ranker's columns {missing}")
        out = np.empty((len(frame), len(self.columns_)), dtype=np.float32)
        for j, c in enumerate(self.columns_):
            col = frame[c]
            if c in self.categories_:  # strings as codes of the training values, else NaN
                codes = col.astype(str).map(self.categories_[c])
                out[:, j] = codes.to_numpy(dtype=np.float32, na_value=np.nan)
            else:
                out[:, j] = col.to_numpy(dtype=np.float32, na_value=np.nan)
        return out

    def fit(self, frame: Any, labels: np.ndarray) -> LambdaMARTRanker:
        """Fit on ``frame`` (features and the group column) and binary or graded ``labels``."""
        import lightgbm as lgb
        import pandas as pd

        if not isinstance(frame, pd.DataFrame) or self.group_column not in frame.columns:
            raise ParameterError(f"frame must be a DataFrame with a {self.group_column!r} column")
        y = np.asarray(labels, dtype=np.float64)
        if y.shape != (len(frame),) or not np.all(np.isfinite(y)) or np.any(y < 0):
            raise ParameterError(f"labels: expected {len(frame)} finite values >= 0")
        groups = frame[self.group_column].to_numpy()
        if len(groups) and np.any(groups[1:] < groups[:-1]):
            raise ParameterError(f"rows must be sorted by {self.group_column!r}")
        self.columns_ = [c for c in frame.columns if c != self.group_column]
        self.categories_ = {
            c: {v: i for i, v in enumerate(sorted(frame[c].dropna().astype(str).unique()))}
            for c in self.columns_
            if not pd.api.types.is_numeric_dtype(frame[c])
        }
        x = self._matrix(frame)
        users, sizes = np.unique(groups, return_counts=True)
        rng = np.random.default_rng(self.seed)
        valid_users = rng.random(len(users)) < VALID_SHARE
        params = dict(PARAMS, seed=self.seed, num_threads=self.n_threads, eval_at=[self.k])
        t0 = time.monotonic()
        rows_valid = np.repeat(valid_users, sizes)
        rounds = MAX_ROUNDS
        validated = None
        if valid_users.any() and (~valid_users).any():
            validated = lgb.train(
                params,
                lgb.Dataset(x[~rows_valid], y[~rows_valid], group=sizes[~valid_users]),
                num_boost_round=MAX_ROUNDS,
                valid_sets=[lgb.Dataset(x[rows_valid], y[rows_valid], group=sizes[valid_users])],
                callbacks=[lgb.early_stopping(PATIENCE, verbose=False), self._deadline_callback()],
            )
            best = validated.best_iteration or validated.current_iteration()
            rounds = max(MIN_ROUNDS, best)
            self.valid_score_ = float(validated.best_score["valid_0"][f"ndcg@{self.k}"])
            # the refit on every user costs about the first fit's time per round, scaled by
            # its rows; where it cannot finish before the deadline, a refit cut short would
            # be a worse model than the validated one, which is kept (at its best round)
            per_round = (time.monotonic() - t0) / max(1, validated.current_iteration())
            refit_s = per_round * rounds * len(y) / max(1, int((~rows_valid).sum()))
            if self.deadline is not None and time.monotonic() + refit_s > self.deadline:
                self._keep_validated(validated)
                self._finish(t0)
                return self
        else:
            self.valid_score_ = float("nan")
        self.n_rounds_ = rounds
        self.final_model_ = "refit"
        self.booster_ = lgb.train(
            params,
            lgb.Dataset(x, y, group=sizes),
            num_boost_round=rounds,
            callbacks=[self._deadline_callback()],
        )
        if validated is not None and self.booster_.current_iteration() < rounds:
            # stopped by the deadline after all: the validated model is the better one
            self._keep_validated(validated)
        self._finish(t0)
        return self

    def _keep_validated(self, booster: Any) -> None:
        """Make the early-stopping model, cut at its best round, the final one."""
        best = booster.best_iteration or booster.current_iteration()
        booster.model_from_string(booster.model_to_string(num_iteration=best))
        self.booster_, self.n_rounds_, self.final_model_ = booster, best, "validated"

    def _finish(self, t0: float) -> None:
        """The fit's time and the final model's feature importance (share of the gain)."""
        self.fit_time_s_ = time.monotonic() - t0
        gain = self.booster_.feature_importance("gain")
        total = float(gain.sum()) or 1.0
        self.feature_importance_ = {
            c: float(g / total) for c, g in zip(self.columns_, gain, strict=True)
        }

    def _deadline_callback(self) -> Any:
        def check(env: Any) -> None:
            if self.deadline is not None and time.monotonic() > self.deadline:
                logger.warning("ranker stopped at round %d by the time budget", env.iteration)
                raise _Stop(env)

        import lightgbm as lgb

        class _Stop(lgb.callback.EarlyStopException):
            def __init__(self, env: Any) -> None:
                super().__init__(env.iteration, env.evaluation_result_list or [])

        return check

    def predict(self, frame: Any) -> np.ndarray:
        """Ranking scores, one per row (higher first)."""
        if not hasattr(self, "booster_"):
            raise ParameterError("this LambdaMARTRanker is not fitted yet")
        return np.asarray(self.booster_.predict(self._matrix(frame)), dtype=np.float64)

    @property
    def report(self) -> dict[str, Any]:
        return {
            "best_model": "LambdaMART (LightGBM lambdarank)",
            # "refit": refitted on every user; "validated": the early-stopping model (on 80% of
            # the users), kept where the refit could not finish within the deadline
            "final_model": getattr(self, "final_model_", None),
            "rounds": getattr(self, "n_rounds_", None),
            "valid_ndcg": getattr(self, "valid_score_", None),
            "training_time_s": round(getattr(self, "fit_time_s_", 0.0), 3),
            "feature_importance": getattr(self, "feature_importance_", None),
        }
