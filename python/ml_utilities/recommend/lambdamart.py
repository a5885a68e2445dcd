"""LambdaMART ranker of the recommender: LightGBM lambdarank, small trees, few rounds, bagged.

The recommender's ranker learns on candidates computed from a smaller history than the one it
ranks at evaluation and serving time. What large trees and long boosting learn beyond the broad
ordering is that smaller history's quirks, which do not carry over to the larger one: on a
validation split inside the training data (the ranker trained one level down), 8-leaf trees
ranked better than 31-leaf ones, and 400 rounds worse than 150 (``docs/automl.md``). So the
trees stay small. The number of rounds is either chosen by early stopping on a held-out fifth
of the users, then the model is refitted on every user with that many rounds (the default), or
fixed (``rounds``). With ``n_models`` > 1 the ranker is a bag: that many models with different
seeds (so different row and feature subsamples), scores averaged.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np

from .._validators import integer
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
#: early stopping on a fifth of the users is noisy (its stopping round varies several-fold with
#: the seed), so the rounds are at least MIN_ROUNDS, a count at which no seed ranked measurably
#: worse than at its own best round
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
    n_models : int
        Models in the bag (>= 1): the first as set by ``rounds``, the others on every user with
        the first one's rounds and seeds ``seed + 1``, ``seed + 2``, ...; scores are the mean of
        the models'. A model is added only while the time of the one before says it ends before
        the deadline, and dropped when the deadline stops it all the same.
    rounds : int, optional
        Boosting rounds of every model (>= 1), no early stopping; None: early stopping on a
        fifth of the users, then a refit on every user.
    """

    def __init__(
        self,
        group_column: str = "user_id",
        k: int = 10,
        seed: int = 0,
        n_threads: int = 1,
        deadline: float | None = None,
        n_models: int = 1,
        rounds: int | None = None,
    ) -> None:
        self.group_column = group_column
        self.k = k
        self.seed = seed
        self.n_threads = n_threads
        self.deadline = deadline
        self.n_models = n_models
        self.rounds = rounds

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {
            "group_column": self.group_column,
            "k": self.k,
            "seed": self.seed,
            "n_threads": self.n_threads,
            "deadline": self.deadline,
            "n_models": self.n_models,
            "rounds": self.rounds,
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
        import pandas as pd

        n_models = integer("n_models", self.n_models, minimum=1)
        if self.rounds is not None:
            integer("rounds", self.rounds, minimum=1)
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
        _, sizes = np.unique(groups, return_counts=True)
        params = dict(PARAMS, seed=self.seed, num_threads=self.n_threads, eval_at=[self.k])
        t0 = time.monotonic()
        import lightgbm as lgb

        # every user's rows, binned once for the refit and every model of the bag (binning was
        # a third of a 40-round model's time on Last.fm); below LightGBM's 200,000-row sample
        # for the bins every row is binned, so the models are those of a Dataset each; above
        # it the members share the first seed's bins
        full = lgb.Dataset(x, y, group=sizes, free_raw_data=False)
        if self.rounds is None:
            member_s = self._fit_early_stopping(x, y, sizes, params, t0, full)
        else:
            member_s = self._fit_fixed(full, params)
        self.boosters_ = [self.booster_]
        if self.final_model_ in ("refit", "fixed"):  # else the time is short already
            self._fit_bag(full, params, n_models, member_s)
        self._finish(t0)
        return self

    def _fit_fixed(self, full: Any, params: dict) -> float:
        """The first model, ``rounds`` rounds on every user (``final_model`` "fixed", or "cut
        short" where the deadline stopped it); returns its time."""
        import lightgbm as lgb

        t = time.monotonic()
        self.valid_score_ = None  # no validation users: every user trains the fixed rounds
        self.booster_ = lgb.train(
            params,
            full,
            num_boost_round=self.rounds,
            callbacks=[self._deadline_callback()],
        )
        self.n_rounds_ = self.booster_.current_iteration()
        self.final_model_ = "fixed" if self.n_rounds_ >= self.rounds else "cut short"
        return time.monotonic() - t

    def _fit_early_stopping(
        self, x: np.ndarray, y: np.ndarray, sizes: np.ndarray, params: dict, t0: float, full: Any
    ) -> float:
        """The first model: rounds by early stopping on a fifth of the users, then a refit on
        every user with that many (``final_model`` "refit"), or the early-stopping model where
        the refit cannot finish before the deadline ("validated"); returns the refit's time."""
        import lightgbm as lgb

        rng = np.random.default_rng(self.seed)
        valid_users = rng.random(len(sizes)) < VALID_SHARE
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
                return refit_s
        else:
            self.valid_score_ = None
        self.n_rounds_ = rounds
        self.final_model_ = "refit"
        t = time.monotonic()
        self.booster_ = lgb.train(
            params,
            full,
            num_boost_round=rounds,
            callbacks=[self._deadline_callback()],
        )
        if validated is not None and self.booster_.current_iteration() < rounds:
            # stopped by the deadline after all: the validated model is the better one
            self._keep_validated(validated)
        return time.monotonic() - t

    def _fit_bag(self, full: Any, params: dict, n_models: int, member_s: float) -> None:
        """Models 2 to ``n_models``: every user, the first model's rounds, seeds ``seed + b``;
        each started only where the last one's time ``member_s`` says it ends before the
        deadline, and dropped where the deadline stops it all the same."""
        import lightgbm as lgb

        for b in range(1, n_models):
            if self.deadline is not None and time.monotonic() + member_s > self.deadline:
                logger.info("ranker bag stopped at %d of %d models by the time budget", b, n_models)
                break
            t = time.monotonic()
            booster = lgb.train(
                dict(params, seed=self.seed + b),
                full,
                num_boost_round=self.n_rounds_,
                callbacks=[self._deadline_callback()],
            )
            if booster.current_iteration() < self.n_rounds_:
                break
            self.boosters_.append(booster)
            member_s = time.monotonic() - t

    def _keep_validated(self, booster: Any) -> None:
        """Make the early-stopping model, cut at its best round, the final one."""
        best = booster.best_iteration or booster.current_iteration()
        booster.model_from_string(booster.model_to_string(num_iteration=best))
        self.booster_, self.n_rounds_, self.final_model_ = booster, best, "validated"

    def _finish(self, t0: float) -> None:
        """The fit's time and the final models' feature importance (share of the gain, the
        mean over the bag)."""
        self.fit_time_s_ = time.monotonic() - t0
        share = np.zeros(len(self.columns_))
        for booster in self.boosters_:
            gain = booster.feature_importance("gain")
            share += gain / (float(gain.sum()) or 1.0)
        share /= len(self.boosters_)
        self.feature_importance_ = {c: float(g) for c, g in zip(self.columns_, share, strict=True)}

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
        x = self._matrix(frame)
        boosters = getattr(self, "boosters_", [self.booster_])
        out = np.zeros(len(x), dtype=np.float64)
        for booster in boosters:
            out += booster.predict(x)
        return out / len(boosters)

    @property
    def report(self) -> dict[str, Any]:
        return {
            "best_model": "LambdaMART (LightGBM lambdarank)",
            # "refit": refitted on every user; "validated": the early-stopping model (on 80% of
            # the users), kept where the refit could not finish within the deadline; "fixed":
            # ``rounds`` rounds on every user; "cut short": fewer, stopped by the deadline
            "final_model": getattr(self, "final_model_", None),
            "rounds": getattr(self, "n_rounds_", None),
            "models": len(getattr(self, "boosters_", ())),
            # ndcg on the validation users of early stopping; None without them (fixed rounds)
            "valid_ndcg": getattr(self, "valid_score_", None),
            "training_time_s": round(getattr(self, "fit_time_s_", 0.0), 3),
            "feature_importance": getattr(self, "feature_importance_", None),
        }
