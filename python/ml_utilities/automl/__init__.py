"""AutoMLHelper: Bayesian search across model families, honest ensembles, a report.

``AutoMLHelper().train_automl_pipeline(features=, labels=, config=)`` searches model families
(linear, k-NN, SVM, random forest, extra trees, XGBoost, LightGBM, a PyTorch MLP) and their
hyperparameters with one Optuna study, cross-validates every trial keeping its out-of-fold
predictions, builds voting (greedy selection) and stacking ensembles from them within the time
budget, and returns a ModelManager model with its report. ``train_recommendation_model`` trains a
candidate-generation plus learning-to-rank recommender (:mod:`ml_utilities.recommend`, which
uses this search for its ``ranker='automl'``). See ``docs/automl.md``.
"""

from __future__ import annotations

from .helper import AutoMLHelper
from .model import AutoMLAdapter, AutoMLModel
from .options import ALGORITHMS, CONFIG_KEYS
from .report import AutoMLReport

__all__ = [
    "ALGORITHMS",
    "CONFIG_KEYS",
    "AutoMLAdapter",
    "AutoMLHelper",
    "AutoMLModel",
    "AutoMLReport",
]
