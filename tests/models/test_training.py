"""ModelManager.train_model: every framework, tasks, metrics, seeds, early stopping, bad input."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from model_cases import ADAPTER_CASES

from ml_utilities.exceptions import ParameterError
from ml_utilities.models import ModelHandle, ModelManager


@pytest.mark.parametrize("case", list(ADAPTER_CASES))
def test_each_adapter_trains_with_validation_metrics(trained_models, case):
    handle = trained_models(case)
    assert isinstance(handle, ModelHandle)
    task = ADAPTER_CASES[case][4]
    if task == "regression":
        assert set(handle.metrics) >= {"rmse", "mae", "r2"}
        assert handle.metrics["r2"] > 0.5, handle.metrics
    else:
        assert set(handle.metrics) >= {"accuracy", "f1_weighted", "log_loss"}
        assert handle.metrics["accuracy"] > 0.55, handle.metrics
    assert handle.metrics["n_validation"] > 0 and handle.metrics["n_train"] > 0
    assert handle.fingerprint.startswith("sha256:") and len(handle.fingerprint) == 71
    assert handle.signature["inputs"]["shape"][0] is None
    assert handle.task == task


def test_classification_labels_come_back_as_given(trained_models, tabular):
    x, y, _ = tabular
    handle = trained_models("xgboost")
    assert handle.classes == ["jazz", "pop", "rock"]
    pred = handle.predict(x[:50])
    assert pred.dtype.kind == "U" and set(pred) <= {"jazz", "pop", "rock"}
    proba = handle.predict_proba(x[:50])
    assert proba.shape == (50, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    assert np.array_equal(np.asarray(handle.classes)[proba.argmax(1)], pred)


def test_async_and_sync_twins_agree(tabular):
    x, y, _ = tabular
    config = {
        "framework": "pytorch",
        "architecture": "mlp",
        "task": "classification",
        "hyperparameters": {"hidden_sizes": [16], "epochs": 5},
        "seed": 3,
    }
    manager = ModelManager()
    a = asyncio.run(manager.train_model(features=x, labels=y, config=config, validation_split=0.2))
    b = manager.train_model_sync(x, y, config, validation_split=0.2)
    # same seed, same data: the same weights, so identical probabilities
    assert np.array_equal(a.predict_proba(x), b.predict_proba(x))
    c = manager.train_model_sync(x, y, {**config, "seed": 4}, validation_split=0.2)
    assert not np.array_equal(a.predict_proba(x), c.predict_proba(x))


def test_early_stopping_stops_and_keeps_the_best_epoch(tabular):
    x, _, target = tabular
    rng = np.random.default_rng(0)
    noise = rng.standard_normal(len(x)).astype(np.float32)  # nothing to learn: stops early
    handle = ModelManager().train_model_sync(
        x,
        noise,
        {
            "framework": "pytorch",
            "architecture": "mlp",
            "task": "regression",
            "hyperparameters": {"epochs": 200, "hidden_sizes": [64]},
            "early_stopping_patience": 3,
        },
        validation_split=0.25,
    )
    history = handle.training["history"]["val_loss"]
    assert handle.training["epochs_run"] < 200
    assert handle.training["epochs_run"] == handle.training["best_iteration"] + 4
    assert min(history) == history[handle.training["best_iteration"]]


def test_xgboost_early_stopping_truncates_to_the_best_round(tabular):
    x, y, _ = tabular
    handle = ModelManager().train_model_sync(
        x,
        y,
        {
            "framework": "xgboost",
            "hyperparameters": {"n_estimators": 500, "learning_rate": 0.5},
            "early_stopping_patience": 5,
            "task": "classification",
        },
        0.2,
    )
    best = handle.training["best_iteration"]
    assert best is not None and best < 499
    assert handle.adapter.model.get_booster().num_boosted_rounds() == best + 1


def test_regression_with_lightgbm_and_sklearn(trained_models, tabular):
    x, _, target = tabular
    for case in ("lightgbm", "sklearn_linear"):
        handle = trained_models(case)
        pred = handle.predict(x)
        assert pred.shape == (len(x),) and pred.dtype == np.float32
        assert np.corrcoef(pred, target)[0, 1] > 0.8
        with pytest.raises(ParameterError, match="only defined for classification"):
            handle.predict_proba(x)


def test_transformer_follows_the_spec_hyperparameters(trained_models):
    from ml_utilities.models import MusicTransformer

    handle = trained_models("pytorch_transformer")
    net = handle.adapter.net
    assert isinstance(net, MusicTransformer)
    assert net.config.hidden_size == 32 and net.config.num_layers == 2
    assert net.config.num_heads == 4 and net.config.dropout == 0.1
    assert len(net.encoder.layers.layers) == 2
    assert net.classifier.out_features == 2


@pytest.mark.parametrize(
    ("config", "match"),
    [
        ({"architecture": "mlp"}, "no 'framework'"),
        ({"framework": "caffe"}, "framework='caffe' is not supported"),
        ({"framework": "pytorch", "architecture": "lstm"}, "architecture='lstm'"),
        ({"framework": "pytorch", "task": "ranking"}, "task='ranking'"),
        ({"framework": "pytorch", "optimizer": "sgd"}, r"unknown config key\(s\) \['optimizer'\]"),
        ({"framework": "pytorch", "hyperparameters": {"hiden_size": 3}}, "hiden_size"),
        (
            {
                "framework": "pytorch",
                "architecture": "transformer",
                "hyperparameters": {"hidden_size": 30, "num_heads": 4},
            },
            "not a multiple",
        ),
        ({"framework": "pytorch", "hyperparameters": {"epochs": 0}}, "epochs=0"),
        ({"framework": "sklearn", "hyperparameters": {"n_trees": 3}}, "n_trees"),
        ({"framework": "xgboost", "seed": -1}, "seed=-1"),
        ({"framework": "xgboost", "early_stopping_patience": "ten"}, "early_stopping_patience"),
        ({"framework": "sklearn", "name": "a/b"}, "name='a/b'"),
        ("pytorch", "expected a dict"),
    ],
)
def test_bad_configurations_are_clear_errors(tabular, sequences, config, match):
    x, y, _ = tabular
    if isinstance(config, dict) and config.get("architecture") == "transformer":
        x, y = sequences
    with pytest.raises(ParameterError, match=match):
        ModelManager().train_model_sync(x, y, config, validation_split=0.2)


@pytest.mark.parametrize(
    ("features", "labels", "split", "match"),
    [
        (np.zeros((10, 3)), np.zeros(9), 0.2, "labels has 9 entries"),
        (np.zeros(10), np.zeros(10), 0.2, "at least 2 axes"),
        (np.full((10, 3), np.nan), np.arange(10) % 2, 0.2, "non-finite"),
        (np.zeros((10, 3)), np.zeros(10), 0.2, "at least 2 classes"),
        (np.zeros((10, 3)), np.arange(10) % 2, 1.5, "validation_split=1.5"),
        (np.zeros((10, 3)), np.arange(10) % 2, 0.01, "empty training or validation"),
        (np.array([["a", "b"]] * 10), np.arange(10) % 2, 0.2, "expected a numeric array"),
    ],
)
def test_bad_data_is_a_clear_error(features, labels, split, match):
    with pytest.raises(ParameterError, match=match):
        ModelManager().train_model_sync(features, labels, {"framework": "sklearn"}, split)


def test_prediction_input_must_match_the_signature(trained_models, sequences):
    handle = trained_models("pytorch_transformer")
    x, _ = sequences
    with pytest.raises(ParameterError, match=r"expects \('n', 16, 12\)"):
        handle.predict(x[:, :8])


@pytest.mark.parametrize(
    ("variable", "framework"),
    [
        ("ML_UTILITIES_PYTORCH_ENABLED", "pytorch"),
        ("ML_UTILITIES_PYTORCH_ENABLED", "transformers"),
        ("ML_UTILITIES_TENSORFLOW_ENABLED", "keras"),
    ],
)
def test_frameworks_can_be_switched_off(monkeypatch, tabular, variable, framework):
    from ml_utilities import config
    from ml_utilities.exceptions import BackendUnavailableError

    monkeypatch.setenv(variable, "false")
    config.reload_settings()
    x, y, _ = tabular
    with pytest.raises(BackendUnavailableError, match=variable):
        ModelManager().train_model_sync(x, y, {"framework": framework})
