"""train_multimodal_model: audio + text fusion beats either modality alone when the label needs
both."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from ml_utilities.pipeline import ParameterError

WORDS = {0: ["rain", "alone", "grey", "tears"], 1: ["sun", "dance", "party", "bright"]}
FILLER = ["the", "night", "road", "we", "go", "heart", "time", "city", "love", "again"]


def _data(rng, n=480):
    """label = (audio energy high) * 2 + (lyrics happy): 4 emotions, each modality gives half."""
    energetic = rng.integers(0, 2, n)
    happy = rng.integers(0, 2, n)
    audio = rng.normal(size=(n, 24))
    audio[:, 3] += 2.5 * energetic
    lyrics = [
        " ".join(rng.choice(FILLER, 8).tolist() + rng.choice(WORDS[h], 2).tolist()) for h in happy
    ]
    names = np.array(["sad", "content", "angry", "euphoric"])
    return audio, lyrics, names[energetic * 2 + happy]


@pytest.mark.parametrize("model_type", ["early_fusion", "late_fusion", "transformer_fusion"])
def test_fusion(pipeline, rng, model_type):
    audio, lyrics, labels = _data(rng)
    small = {"epochs": 15, "num_layers": 1} if model_type == "transformer_fusion" else {}
    model = asyncio.run(
        pipeline.train_multimodal_model(
            audio_features=audio,
            text_features=lyrics,
            emotion_labels=labels,
            model_type=model_type,
            text_components=16,
            **small,
        )
    )
    assert model.metrics["accuracy"] > 0.7  # one modality alone tops out near 0.5
    if model_type == "late_fusion":
        assert model.metrics["audio_only_accuracy"] < 0.65
        assert model.metrics["text_only_accuracy"] < 0.65
    pred = model.predict(audio[:5], lyrics[:5])
    assert set(pred) <= set(labels) and model.predict_proba(audio, lyrics).shape == (480, 4)


def test_numeric_text_features_and_errors(pipeline, rng):
    audio, _, labels = _data(rng, 120)
    text = rng.normal(size=(120, 5))
    model = pipeline.train_multimodal_model_sync(audio, text, labels, "early_fusion")
    assert 0 <= model.metrics["accuracy"] <= 1
    with pytest.raises(ParameterError, match="model_type='cnn'"):
        pipeline.train_multimodal_model_sync(audio, text, labels, "cnn")
    with pytest.raises(ParameterError, match="120 audio rows but 3 labels"):
        pipeline.train_multimodal_model_sync(audio, text, labels[:3], "early_fusion")
    with pytest.raises(ParameterError, match="unknown option"):
        pipeline.train_multimodal_model_sync(audio, text, labels, "early_fusion", epoch=3)
    with pytest.raises(ParameterError, match="list of strings"):
        pipeline.train_multimodal_model_sync(audio, 7, labels, "early_fusion")
