"""The recommender: candidate generators, a learning-to-rank model over their features.

``AutoMLHelper().train_recommendation_model(interaction_data=, task_config=)`` is the entry
point; it runs :func:`train_recommender`, which holds out a share of each user's items, trains
the ranker on candidates computed from the rest (:mod:`.generators`: item-kNN, EASE, RP3beta,
user-kNN, PureSVD, iALS, popularity, optionally a user graph) and returns a
:class:`RecommendationModel` with ``recommend(user_id, k)`` and its report. The default ranker
is :class:`LambdaMARTRanker`; ``ranker='automl'`` hands the ranker's rows to the AutoML search
of the helper passed in (this package does not import ``automl``; ``automl`` imports it).
:mod:`.metrics` holds the ranking metrics both use. See ``docs/automl.md``.
"""

from __future__ import annotations

from .generators import Generators, Interactions
from .lambdamart import LambdaMARTRanker
from .metrics import RANKING_METRICS, parse_ranking_metric, ranking_metric
from .model import RecommendationModel
from .train import holdout_split, train_recommender

__all__ = [
    "RANKING_METRICS",
    "Generators",
    "Interactions",
    "LambdaMARTRanker",
    "RecommendationModel",
    "holdout_split",
    "parse_ranking_metric",
    "ranking_metric",
    "train_recommender",
]
