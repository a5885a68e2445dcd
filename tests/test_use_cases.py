"""The specification's "Cas d'Usage Enterprise" examples, run as written (docs/use_cases.md).

1. ``build_recommendation_system``: user features, catalogue audio features, the AutoML
   recommender, ``deploy_recommendation_system``; then the served answers are the model's.
   The catalogue's audio is the real clips of ``../shared/audio`` (where present) plus rendered
   synthetic clips, each an item of the listening history.
2. ``music_emotion_analysis``: audio emotion features, lyrics features, the transformer fusion
   over both; then the model predicts held-out tracks' quadrants.

3. ``music_similarity_detection``: perceptual features of an audio database (the real clips,
   where present, synthetic pieces, and plagiarised copies of some), the siamese network trained
   on the ground-truth pairs; then the model, with an index of the database, finds a held-out
   plagiarised excerpt of a real clip and passes no unrelated piece.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("lightgbm")
pytest.importorskip("sqlalchemy")
pytest.importorskip("torch")
pytest.importorskip("vaderSentiment")
pytest.importorskip("faiss")

from ml_utilities.automl import AutoMLHelper  # noqa: E402
from ml_utilities.features import FeatureExtractor  # noqa: E402
from ml_utilities.pipeline import (  # noqa: E402
    DataPipeline,
    extract_audio_emotion_features,
    extract_lyrics_features,
)
from ml_utilities.serving import deploy_recommendation_system  # noqa: E402
from ml_utilities.similarity import train_siamese_network  # noqa: E402

AUDIO = Path(__file__).resolve().parents[1].parent / "shared" / "audio"
SR = 22050


def _tone(group: int, seed: int) -> np.ndarray:
    """A 3 s clip whose timbre and register depend on its group (4 groups)."""
    rng = np.random.default_rng(seed)
    t = np.arange(3 * SR) / SR
    f0 = (110.0, 220.0, 440.0, 880.0)[group] * rng.uniform(0.97, 1.03)
    harmonics = (1, 2, 3, 5, 8)[: 2 + group]
    y = sum(np.sin(2 * np.pi * f0 * h * t) / h for h in harmonics)
    y = y + (0.05 + 0.1 * group) * rng.normal(size=t.size)
    return (0.3 * y / np.max(np.abs(y))).astype(np.float32)


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory):
    """``(music_catalog, listening_history)``: 40 items (the real clips first, where present),
    listened to by 80 users who each prefer one group of items."""
    import pandas as pd
    import soundfile as sf

    root = tmp_path_factory.mktemp("catalogue")
    music_catalog: dict[str, str] = {}
    real = sorted(p for p in AUDIO.glob("*.ogg") if ".hq." not in p.name) if AUDIO.is_dir() else []
    for p in real:
        music_catalog[p.stem[:24]] = str(p)
    k = 0
    while len(music_catalog) < 40:
        path = root / f"synth{k:02d}.wav"
        sf.write(path, _tone(k % 4, k), SR)
        music_catalog[f"synth{k:02d}"] = str(path)
        k += 1
    items = list(music_catalog)
    rng = np.random.default_rng(7)
    rows = []
    for u in range(80):
        own = [it for j, it in enumerate(items) if j % 4 == u % 4]
        picks = set(rng.choice(own, 6, replace=False)) | set(rng.choice(items, 2, replace=False))
        rows += [(f"user{u}", it, int(rng.integers(1, 200))) for it in sorted(picks)]
    history = pd.DataFrame(rows, columns=["userID", "artistID", "weight"])
    return music_catalog, history


def test_build_recommendation_system_as_written(catalogue, monkeypatch):
    music_catalog, listening_history = catalogue
    user_data = listening_history
    deployed = {}
    real_deploy = deploy_recommendation_system

    async def deploy(model):  # the real one, recording what it returns (to check and close)
        out = await real_deploy(model)
        deployed["out"], deployed["model"] = out, model
        return out

    # --- the specification's example, as written (its deploy call records what it returns)
    async def build_recommendation_system():
        # Pipeline complet de recommandation
        feature_extractor = FeatureExtractor()
        automl = AutoMLHelper()

        # Extraction features utilisateurs et musiques
        user_features = await feature_extractor.extract_user_features(user_data)
        music_features = await feature_extractor.extract_audio_features(music_catalog)

        # Entraînement AutoML
        recommendation_model = await automl.train_recommendation_model(
            user_features=user_features,
            music_features=music_features,
            interaction_data=listening_history,
            task_config={"objective": "ranking", "metric": "ndcg@10", "ensemble": True},
        )

        # Déploiement avec monitoring
        await deploy_recommendation_system(recommendation_model)

    monkeypatch.setitem(globals(), "deploy_recommendation_system", deploy)
    asyncio.run(build_recommendation_system())
    monkeypatch.undo()
    out, model = deployed["out"], deployed["model"]
    rs = out["service"]
    try:
        assert out["version"] >= 1
        report = model.report["evaluation"]
        assert report["model"]["ndcg@10"] > report["popularity"]["ndcg@10"]
        for u in sorted(set(listening_history.userID))[:30]:
            answer = rs.recommend_sync(out["name"], u, 10)
            assert [e["item"] for e in answer["items"]] == model.recommend(u, 10)
        status = rs.status(out["name"])
        assert status["items"] == len(music_catalog) and 0 < status["coverage"] <= 1
    finally:
        rs.close()


def test_music_emotion_analysis_as_written(tmp_path):
    from emotion_use_case_support import emotion_tracks

    music_files, lyrics_data, emotion_annotations, held_out = emotion_tracks(tmp_path)

    # --- the specification's example, as written
    async def music_emotion_analysis():
        # Classification émotions musicales
        pipeline = DataPipeline()

        # Features audio + lyrics
        audio_features = await extract_audio_emotion_features(music_files)
        text_features = await extract_lyrics_features(lyrics_data)

        # Modèle multimodal
        emotion_model = await pipeline.train_multimodal_model(
            audio_features=audio_features,
            text_features=text_features,
            emotion_labels=emotion_annotations,
            model_type="transformer_fusion",
        )

        return emotion_model

    emotion_model = asyncio.run(music_emotion_analysis())
    files, texts, labels = held_out
    audio = asyncio.run(extract_audio_emotion_features(files))
    text = asyncio.run(extract_lyrics_features(texts))
    predicted = emotion_model.predict(audio, text)
    accuracy = float(np.mean(np.asarray(predicted) == np.asarray(labels)))
    assert accuracy >= 0.75, (accuracy, list(predicted), labels)


def test_music_similarity_detection_as_written():
    from similarity_support import SR as PIECE_SR
    from similarity_support import piece, render

    from ml_utilities.audio import load
    from ml_utilities.similarity import SimilarityIndex
    from ml_utilities.similarity.augment import reencode, varispeed

    assert PIECE_SR == SR
    real = sorted(p for p in AUDIO.glob("*.ogg") if ".hq." not in p.name) if AUDIO.is_dir() else []
    clips = {p.stem[:24]: load(p, sr=SR, mono=True)[0] for p in real}
    clips = {k: y for k, y in clips.items() if y.size >= 8 * SR}  # a few seconds are no song
    for seed in range(12 - len(clips)):
        clips[f"piece{seed}"] = render(piece(seed))
    names = list(clips)
    audio_database = [clips[k] for k in names]
    ground_truth_pairs = []
    for i, k in enumerate(names[:4]):  # plagiarised copies: transposed, faster, re-encoded
        audio_database.append(reencode(varispeed(clips[k], SR, 2 - i), SR))
        ground_truth_pairs.append((i, len(audio_database) - 1))

    # --- the specification's example, as written
    async def music_similarity_detection():
        # Système détection similarité/plagiat
        feature_extractor = FeatureExtractor()

        # Features perceptuelles pour similarité
        perceptual_features = await feature_extractor.extract_perceptual_features(
            audio_database, features=["chroma_cqt", "tonnetz", "mfcc", "spectral_contrast"]
        )

        # Modèle similarité avec embeddings
        similarity_model = await train_siamese_network(
            features=perceptual_features, similarity_labels=ground_truth_pairs
        )

        return similarity_model

    similarity_model = asyncio.run(music_similarity_detection())
    assert similarity_model.report["n_similar_pairs"] == 4
    assert similarity_model.threshold is not None
    extractor = FeatureExtractor()
    kinds = ["chroma_cqt", "tonnetz", "mfcc", "spectral_contrast"]
    index = SimilarityIndex(similarity_model)
    index.add(
        dict(
            zip(
                names,
                extractor.extract_perceptual_features_sync(
                    [clips[k] for k in names], features=kinds
                ),
                strict=True,
            )
        )
    )
    # a held-out plagiarism of the first clip (a real one where the folder is there): 15 s of
    # it, a minor third down, re-encoded
    source = names[0]
    y = clips[source]
    excerpt = y[int(0.2 * y.size) : int(0.2 * y.size) + 15 * SR]
    query = extractor.extract_perceptual_features_sync(
        [reencode(varispeed(excerpt, SR, -3), SR)], features=kinds
    )[0]
    best = index.search(query, k=3)[0]
    assert best.track_id == source and best.match, index.search(query, k=3)
    assert best.passages[0].transposition == -3
    unrelated = extractor.extract_perceptual_features_sync(
        [render(piece(77), start=2, end=17)], features=kinds
    )[0]
    assert index.detect_plagiarism(unrelated) == []
