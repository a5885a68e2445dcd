"""Similarity and plagiarism detection (issue 21): the encoder's key invariance, training on tiny
data, the aligner's evidence on constructed plagiarism, augmentations, the index's persistence,
the registry and serving, and bad inputs."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("faiss")

from similarity_support import SR, piece, render  # noqa: E402

from ml_utilities.exceptions import ParameterError  # noqa: E402
from ml_utilities.similarity import (  # noqa: E402
    SequenceFeatures,
    SimilarityIndex,
    SimilarityModel,
    as_sequence,
    augment,  # noqa: E402
    augmented_views,
    calibrate_threshold,
    compare,
    detect_plagiarism,
    plot_comparison,
    sequence_features,
    train_siamese_network,
    train_siamese_network_sync,
)

N_PIECES = 8


@pytest.fixture(scope="module")
def pieces():
    return [piece(seed) for seed in range(N_PIECES)]


@pytest.fixture(scope="module")
def catalogue(pieces):
    """Each piece rendered plainly: ``{"piece0": audio, ...}``."""
    return {f"piece{i}": render(p) for i, p in enumerate(pieces)}


@pytest.fixture(scope="module")
def sequences(catalogue):
    return {k: sequence_features(y) for k, y in catalogue.items()}


@pytest.fixture(scope="module")
def model(sequences, catalogue):
    """A small encoder trained on the catalogue, with one audio-augmented view of two pieces
    and one labelled similar pair (piece0 and a re-orchestration of it is not in the
    catalogue: the label links piece1 and piece2 for the mechanics)."""
    views = {
        "piece0": [sequence_features(v) for v in augmented_views(catalogue["piece0"], SR, 1)],
        "piece3": [sequence_features(v) for v in augmented_views(catalogue["piece3"], SR, 1)],
    }
    return train_siamese_network_sync(
        sequences,
        [("piece1", "piece2", 1), ("piece4", "piece5", 0)],
        augmented=views,
        steps=40,
        batch_size=8,
        calibration_pairs=60,
        seed=0,
    )


# -- the encoder -----------------------------------------------------------------------------------
def test_embedding_is_the_same_for_every_transposition_by_construction(model, sequences):
    seq = sequences["piece2"]
    base = model.embed(seq)
    assert base.shape == (model.dim,)
    assert np.isclose(np.linalg.norm(base), 1.0, atol=1e-5)
    for k in range(1, 12):
        rolled = SequenceFeatures(np.roll(seq.chroma, k, axis=0), seq.other, seq.other_names)
        np.testing.assert_allclose(model.embed(rolled), base, atol=1e-5)
    # and it does depend on the chroma: another piece embeds elsewhere
    assert float(base @ model.embed(sequences["piece5"])) < 0.999


def test_training_on_tiny_data_reports_and_calibrates(model):
    r = model.report
    assert r["n_tracks"] == N_PIECES and r["steps"] == 40
    assert r["n_similar_pairs"] == 1 and r["n_dissimilar_pairs"] == 1
    assert r["n_augmented_views"] == 2 and r["n_aligned_positives"] > 0
    assert np.isfinite(r["final_loss"]) and r["loss"][-1] < r["loss"][0]
    assert 0.0 <= r["augmented_recall_at_1"] <= 1.0
    cal = r["calibration"]
    assert cal["n_pairs"] == 56 - 2  # ordered unrelated pairs: 8 * 7 minus the similar pair
    assert model.threshold > cal["unrelated_score_max"] - 1e-9


def test_the_async_twin_trains_from_perceptual_feature_dicts(catalogue):
    """The specification's input: extract_perceptual_features' dicts (hop 512)."""
    import asyncio

    from ml_utilities.features import FeatureExtractor

    clips = [catalogue["piece0"], catalogue["piece1"], catalogue["piece2"]]
    feats = FeatureExtractor().extract_perceptual_features_sync(
        clips, features=["chroma_cqt", "tonnetz", "mfcc", "spectral_contrast"]
    )
    m = asyncio.run(
        train_siamese_network(feats, [(0, 1)], steps=5, batch_size=3, calibration_pairs=4)
    )
    assert m.config["other_names"] == ["mfcc:13", "tonnetz:6", "spectral_contrast:7"]
    seq = as_sequence(feats[0])
    assert abs(seq.n_frames - sequence_features(clips[0]).n_frames) <= 1
    assert m.embed(feats[1]).shape == (m.dim,)
    with pytest.raises(ParameterError, match="mfcc:13"):
        m.embed(sequence_features(clips[0]))  # other features than in training


# -- the aligner: evidence ---------------------------------------------------------------------
def test_compare_finds_a_transposed_faster_reorchestrated_excerpt(pieces, sequences):
    query = render(pieces[3], transpose=2, tempo=1.1, timbre=1, start=6.0, end=18.0)
    c = compare(query, sequences["piece3"])
    assert c.score > 0.8
    best = c.passages[0]
    assert best.transposition == 2
    assert abs(best.tempo_ratio - 1.1) < 0.04
    assert abs(best.reference_start - 6.0) < 0.6 and abs(best.reference_end - 18.0) < 1.0
    others = [compare(query, sequences[f"piece{i}"]).score for i in range(N_PIECES) if i != 3]
    assert max(others) < c.score - 0.3


def test_compare_locates_a_passage_pasted_into_another_track(pieces, catalogue):
    """A constructed plagiarism: 12 s of piece1 (transposed down 3) pasted at 10 s into a 36 s
    track made of piece6 and piece7: the evidence names both time ranges."""
    host = np.concatenate([render(pieces[6]), render(pieces[7])])[: 36 * SR]
    passage = render(pieces[1], transpose=-3, start=4.0, end=16.0)
    query = host.copy()
    query[10 * SR : 10 * SR + passage.size] = passage
    c = compare(query, catalogue["piece1"], window=8.0, hop=2.0)
    best = c.passages[0]
    assert best.transposition == -3 and abs(best.tempo_ratio - 1.0) < 0.04
    assert 9.0 <= best.query_start <= 12.5 and 19.5 <= best.query_end <= 23.0
    assert abs(best.reference_start - (4.0 + best.query_start - 10.0)) < 1.0
    # the windows outside the pasted passage do not match
    outside = [w.score for w in c.windows if w.query_end < 9.5 or w.query_start > 22.5]
    assert outside and max(outside) < best.score - 0.3
    assert c.to_dict()["passages"][0]["transposition"] == -3


def test_plot_of_a_comparison(tmp_path, pieces, sequences):
    c = compare(render(pieces[2], start=3, end=15), sequences["piece2"], threshold=0.5)
    assert c.match is True
    fig = plot_comparison(c, tmp_path / "evidence.png")
    assert (tmp_path / "evidence.png").read_bytes()[:4] == b"\x89PNG"
    assert "match" in fig.axes[0].get_title()
    no_matrix = compare(render(pieces[2], start=3, end=15), sequences["piece2"], keep_matrix=False)
    with pytest.raises(ParameterError, match="kept no matrix"):
        plot_comparison(no_matrix)


def test_short_fragments_score_lower_than_whole_windows(pieces, sequences):
    """The same exact passage, 3 s against 12 s: the fragment is weaker evidence."""
    long = compare(render(pieces[4], start=2, end=14), sequences["piece4"]).score
    short = compare(render(pieces[4], start=2, end=5), sequences["piece4"]).score
    assert long > 0.9 and short < 0.75 * long


# -- augmentations -------------------------------------------------------------------------------
def test_augmentations_keep_what_they_promise(catalogue):
    y = catalogue["piece5"]
    rng = np.random.default_rng(0)
    up = augment.varispeed(y, SR, 3)
    assert abs(up.size / y.size - 2 ** (-3 / 12)) < 0.01
    c = compare(up[: 15 * SR], y)
    assert c.passages[0].transposition == 3
    assert abs(c.passages[0].tempo_ratio - 2 ** (3 / 12)) < 0.04
    assert np.isclose(np.max(np.abs(augment.gain(y, -6))), np.max(np.abs(y)) * 10 ** (-6 / 20))
    noisy = augment.add_noise(y, 20, rng)
    snr = 10 * np.log10(np.mean(y.astype(float) ** 2) / np.mean((noisy - y).astype(float) ** 2))
    assert abs(snr - 20) < 0.5
    for changed in (
        augment.equalise(y, SR, 9, -9),
        augment.reencode(y, SR),
        augment.mix(y, catalogue["piece6"], -6),
    ):
        assert changed.shape == y.shape and np.isfinite(changed).all()
        assert not np.allclose(changed, y)
        assert compare(changed[: 15 * SR], y).score > 0.7
    assert augment.excerpt(y, SR, 2.0, 3.0).size == 3 * SR
    views = augmented_views(y, SR, 3, seed=1, others=[catalogue["piece7"]])
    assert len(views) == 3 and all(np.isfinite(v).all() for v in views)
    with pytest.raises(ParameterError, match="semitones"):
        augment.varispeed(y, SR, 13)
    with pytest.raises(ParameterError, match="NaN"):
        augment.gain(np.array([np.nan, 0.0], np.float32), 1)


# -- the index ---------------------------------------------------------------------------------
def test_index_search_persistence_and_incremental_adds(tmp_path, model, pieces, sequences):
    first = {k: sequences[k] for k in list(sequences)[:5]}
    index = SimilarityIndex(model)
    assert index.add(first) == 5 and len(index) == 5
    query = render(pieces[2], transpose=-2, tempo=0.9, timbre=2, start=5, end=17)
    hits = index.search(query, k=3)
    assert hits[0].track_id == "piece2" and hits[0].passages[0].transposition == -2
    assert hits[0].score >= hits[1].score
    assert [h.track_id for h in index.search(query, k=5, rerank=0)][0] == "piece2"
    path = index.save(tmp_path / "idx")
    assert index.version == 1
    loaded = SimilarityIndex.load(path)
    assert loaded.ids == index.ids and loaded.version == 1
    np.testing.assert_array_equal(loaded._emb, index._emb)
    again = loaded.search(query, k=3)
    assert [h.track_id for h in again] == [h.track_id for h in hits]
    assert np.allclose([h.score for h in again], [h.score for h in hits], atol=1e-3)
    # incremental: three more tracks, a second version; the first is kept beside it
    rest = {k: sequences[k] for k in list(sequences)[5:]}
    assert loaded.add(rest) == 3
    loaded.save(path)
    manifest = json.loads((path / "index.json").read_text())
    assert manifest["version"] == 2 and manifest["n_tracks"] == 8
    assert sorted(d.name for d in path.glob("v0*")) == ["v000001", "v000002"]
    third = SimilarityIndex.load(path)
    q7 = render(pieces[7], transpose=1, start=2, end=14)
    assert third.search(q7, k=1)[0].track_id == "piece7"
    found = third.detect_plagiarism(q7)
    assert [d.track_id for d in found] == ["piece7"] and found[0].match
    unrelated = render(piece(99), start=0, end=12)
    assert all(d.score < model.threshold for d in third.search(unrelated, k=8))
    assert third.detect_plagiarism(unrelated) == []
    with pytest.raises(ParameterError, match="already in the index"):
        third.add({"piece7": sequences["piece7"]})
    # the query-level threshold: excerpts searched as if their source were absent
    assert third.threshold == model.threshold
    thr = third.calibrate(sequences, n_queries=24, seed=1)
    assert third.threshold == thr and third.calibrated["n_queries"] == 24
    assert thr > third.calibrated["best_score_max"] - 1e-9
    assert third.detect_plagiarism(q7)[0].track_id == "piece7"
    third.save(path)
    assert SimilarityIndex.load(path).threshold == thr
    with pytest.raises(ParameterError, match="not in the index"):
        third.calibrate({"nope": sequences["piece0"]})


def test_index_refuses_another_models_folder_and_damaged_files(tmp_path, model, sequences):
    index = SimilarityIndex(model)
    index.add({k: sequences[k] for k in ("piece0", "piece1")})
    path = index.save(tmp_path / "idx")
    other = train_siamese_network_sync(
        {k: sequences[k] for k in ("piece0", "piece1", "piece2")},
        steps=2,
        batch_size=3,
        calibration_pairs=4,
        seed=5,
    )
    with pytest.raises(ParameterError, match="was built with model"):
        SimilarityIndex.load(path, other)
    second = SimilarityIndex(other)
    second.add({"piece0": sequences["piece0"]})
    with pytest.raises(ParameterError, match="another model"):
        second.save(path)
    current = path / json.loads((path / "index.json").read_text())["current"]
    np.save(current / "owner.npy", np.zeros(1, np.int64))
    with pytest.raises(ParameterError, match="inconsistent"):
        SimilarityIndex.load(path)
    with pytest.raises(ParameterError, match="no similarity index"):
        SimilarityIndex.load(tmp_path / "nothing")
    # a folder of the user's own is never written into (nor its v-folders removed)
    mine = tmp_path / "mine"
    (mine / "v000001").mkdir(parents=True)
    with pytest.raises(ParameterError, match="no index.json"):
        index.save(mine)
    assert (mine / "v000001").is_dir() and not (mine / "index.json").exists()


def test_detect_plagiarism_on_a_catalogue_of_tracks(model, catalogue, pieces):
    query = render(pieces[6], transpose=3, tempo=1.12, timbre=1, start=8, end=20)
    found = detect_plagiarism(query, catalogue, model=model)
    assert found and found[0].track_id == "piece6"
    assert found[0].passages[0].transposition == 3
    with pytest.raises(ParameterError, match="needs model="):
        detect_plagiarism(query, catalogue)


# -- registry, ONNX, serving -----------------------------------------------------------------------
def test_registered_loaded_exported_and_served(tmp_path, model, sequences):
    import onnxruntime as ort

    from ml_utilities.models import ModelRegistry
    from ml_utilities.serving import PredictionService

    registry = ModelRegistry(f"sqlite:///{tmp_path / 'r.db'}", tmp_path / "artifacts")
    try:
        mv = registry.register(model.to_handle("similarity"))
        assert mv.framework == "similarity"
        handle = registry.load("similarity")
        x = np.stack(
            [sequences[k].stacked()[:, : model.segment_frames] for k in ("piece0", "piece4")]
        )
        expected = model.embed_array(x)
        np.testing.assert_allclose(handle.predict(x), expected, atol=1e-6)
        export = handle.adapter.to_onnx()
        sess = ort.InferenceSession(export.model.SerializeToString())
        got = sess.run([export.score_output], {export.input_name: x})[0]
        np.testing.assert_allclose(got, expected, atol=1e-4)
        service = PredictionService(registry=registry, config={"gpu_enabled": False})
        try:
            out = service.predict_batch_sync("similarity", x.reshape(len(x), -1).tolist())
        finally:
            service.close_sync()
        np.testing.assert_allclose(np.asarray(out["predictions"]), expected, atol=1e-5)
    finally:
        registry.dispose()


def test_save_and_load_round_trip(tmp_path, model, sequences):
    model.save(tmp_path / "m")
    back = SimilarityModel.load(tmp_path / "m")
    assert back.threshold == model.threshold and back.fingerprint() == model.fingerprint()
    np.testing.assert_array_equal(back.embed(sequences["piece1"]), model.embed(sequences["piece1"]))
    with pytest.raises(ParameterError, match="no similarity model"):
        SimilarityModel.load(tmp_path / "empty")


# -- bad inputs ----------------------------------------------------------------------------------
def test_bad_inputs_are_named(model, sequences):
    with pytest.raises(ParameterError, match="NaN"):
        sequence_features(np.full(SR, np.nan, np.float32))
    with pytest.raises(ParameterError, match="too short"):
        sequence_features(np.zeros(1000, np.float32))
    with pytest.raises(ParameterError, match="sample rate"):
        sequence_features(np.zeros(SR, np.float32), sr=None)
    with pytest.raises(ParameterError, match="no chroma"):
        as_sequence({"mfcc": np.zeros((13, 40))})
    with pytest.raises(ParameterError, match=r"\(12, frames\)"):
        as_sequence({"chroma_cqt": np.zeros((10, 40))})
    with pytest.raises(ParameterError, match="cannot read similarity features"):
        as_sequence(42)
    with pytest.raises(ParameterError, match="unknown track 'nope'"):
        train_siamese_network_sync(sequences, [("piece0", "nope")], steps=1)
    with pytest.raises(ParameterError, match="at least two tracks"):
        train_siamese_network_sync({"a": sequences["piece0"]}, steps=1)
    with pytest.raises(ParameterError, match="batch_size"):
        train_siamese_network_sync(sequences, batch_size=1)
    with pytest.raises(ParameterError, match=r"\(n, 25, frames\)"):
        model.embed_array(np.zeros((2, 12, 50), np.float32))
    empty = SimilarityIndex(model)
    with pytest.raises(ParameterError, match="empty"):
        empty.search(sequences["piece0"])
    with pytest.raises(ParameterError, match="k=0"):
        empty.search(sequences["piece0"], k=0)
    with pytest.raises(ParameterError, match="window"):
        compare(sequences["piece0"], sequences["piece1"], window=0)
    with pytest.raises(ParameterError, match="target_fpr"):
        calibrate_threshold([0.1, 0.2], 1.5)
    with pytest.raises(ParameterError, match="NaN"):
        calibrate_threshold([0.1, np.nan])


def test_calibrated_threshold_lets_at_most_the_target_rate_through():
    scores = np.linspace(0, 1, 1000)
    thr = calibrate_threshold(scores, 0.01)
    assert np.mean(scores >= thr) <= 0.01 and np.mean(scores >= thr) >= 0.009
    assert calibrate_threshold([0.3], 0.01) > 0.3
