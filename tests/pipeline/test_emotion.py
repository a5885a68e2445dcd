"""Music emotion analysis (issue 22, part 3): the DEAM and PMEmo loaders, the audio and lyrics
feature extractors, a transformer-fusion model trained on both, registered, loaded back and
served with named inputs (PredictionService and the HTTP predict route), and an ablation.

The data are synthesised here (``emotion_support``): arousal lives in the audio only (fast,
loud pulses vs slow, soft ones), valence in the lyrics only (positive vs negative words), and
the mode and key vary independently of both."""

from __future__ import annotations

import asyncio
import json
import time

import numpy as np
import pandas as pd
import pytest
from emotion_support import SR, synth_clip, track_plan, write_deam, write_pmemo

from ml_utilities.exceptions import BackendUnavailableError
from ml_utilities.pipeline import (
    DataPipeline,
    EmotionDataset,
    ParameterError,
    extract_audio_emotion_features,
    extract_audio_emotion_features_sync,
    extract_lyrics_features,
    extract_lyrics_features_sync,
    load_emotion_dataset,
)
from ml_utilities.pipeline.emotion import AUDIO_EMOTION_COLUMNS, LYRICS_COLUMNS, strip_lrc

N_DEAM, N_PMEMO = 40, 24
#: a small transformer: the data set is 64 tracks
NET = {
    "epochs": 40,
    "hidden_size": 16,
    "num_layers": 1,
    "num_heads": 2,
    "text_components": 8,
    "batch_size": 8,
    "patience": 15,
}
HIGH_AROUSAL = ("happy", "angry")
POSITIVE = ("happy", "calm")


def _accuracy(pred, truth) -> float:
    return float(np.mean(np.asarray(pred) == np.asarray(truth)))


# -- the data set, the features and the models, made once for the module ----------------------
@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Both layouts written, loaded and featurised: ``(root, truth, datasets, audio, lyrics,
    quadrant)``, the tables indexed by track id."""
    root = tmp_path_factory.mktemp("emotion")
    truth = write_deam(root / "deam", track_plan(N_DEAM, 3))
    truth.update(write_pmemo(root / "pmemo", track_plan(N_PMEMO, 4)))
    deam = load_emotion_dataset(root / "deam")
    pmemo = load_emotion_dataset(root / "pmemo")

    async def features():
        audio = await asyncio.gather(
            extract_audio_emotion_features(deam.audio_files),
            extract_audio_emotion_features(pmemo.audio_files, max_workers=2),
        )
        lyrics = await extract_lyrics_features(
            pd.concat([deam.lyrics_series(), pmemo.lyrics_series()])
        )
        return pd.concat(audio), lyrics

    audio, lyrics = asyncio.run(features())
    quadrant = pd.concat([deam.quadrant, pmemo.quadrant])
    return root, truth, (deam, pmemo), audio, lyrics, quadrant


@pytest.fixture(scope="module")
def trained(corpus):
    """The fused model (trained through the specification's ``await
    pipeline.train_multimodal_model(...)`` and registered as ``emotion``), the held-out ids
    and the ablation's accuracies."""
    from sklearn.model_selection import train_test_split

    root, _, _, audio, lyrics, quadrant = corpus
    ids = np.asarray(audio.index)
    train, test = train_test_split(
        ids, test_size=0.25, random_state=0, stratify=quadrant.loc[ids].to_numpy()
    )
    pipeline = DataPipeline(
        registry_url=f"sqlite:///{root / 'registry.db'}", artifact_root=root / "artifacts"
    )

    async def music_emotion_analysis():
        # the specification's use case, with register/name and a small network
        return await pipeline.train_multimodal_model(
            audio_features=audio.loc[train],
            text_features=lyrics.loc[train].iloc[::-1],  # aligned on the track ids
            emotion_labels=quadrant.loc[train],
            model_type="transformer_fusion",
            register=True,
            name="emotion",
            **NET,
        )

    started = time.perf_counter()
    model = asyncio.run(music_emotion_analysis())
    fused_s = time.perf_counter() - started
    truth = quadrant.loc[test].to_numpy()
    zeros = np.zeros((len(train), 1)), np.zeros((len(test), 1))
    runs = {
        "fused": ((audio.loc[train], lyrics.loc[train]), (audio.loc[test], lyrics.loc[test])),
        "audio_only": ((audio.loc[train], zeros[0]), (audio.loc[test], zeros[1])),
        "lyrics_only": ((zeros[0], lyrics.loc[train]), (zeros[1], lyrics.loc[test])),
    }
    ablation = {}
    for kind, ((a_tr, t_tr), (a_te, t_te)) in runs.items():
        m = model
        if kind != "fused":
            m = pipeline.train_multimodal_model_sync(
                a_tr, t_tr, quadrant.loc[train].to_numpy(), "transformer_fusion", **NET
            )
        pred = m.predict(a_te, t_te)
        ablation[kind] = {
            "quadrant": _accuracy(pred, truth),
            "arousal": _accuracy(np.isin(pred, HIGH_AROUSAL), np.isin(truth, HIGH_AROUSAL)),
            "valence": _accuracy(np.isin(pred, POSITIVE), np.isin(truth, POSITIVE)),
        }
    print(f"\nablation on {len(test)} held-out tracks (fused trained in {fused_s:.1f}s):")
    for kind, acc in ablation.items():
        print(f"  {kind:12s} " + "  ".join(f"{k} {v:.3f}" for k, v in acc.items()))
    yield pipeline, model, train, test, ablation
    pipeline.model_manager.registry.dispose()


# -- loaders -----------------------------------------------------------------------------------
def test_loaders_read_deam_and_pmemo_layouts(corpus):
    root, truth, (deam, pmemo), *_ = corpus
    assert isinstance(deam, EmotionDataset) and (deam.layout, pmemo.layout) == ("deam", "pmemo")
    assert (len(deam), len(pmemo)) == (N_DEAM, N_PMEMO) and deam.midpoint == 5.0
    assert pmemo.midpoint == 0.5 and deam.ids[:2] == ["10", "13"]
    for ds in (deam, pmemo):
        for i in ds.ids:
            plan = truth[i]
            expected = {(True, True): "happy", (False, True): "angry"}.get(
                (plan["positive"], plan["high_arousal"]),
                "calm" if plan["positive"] else "sad",
            )
            assert ds.quadrant[i] == expected
            assert ds.audio[i].stem == i and ds.audio[i].is_file()
            assert (ds.valence[i] >= ds.midpoint) == plan["positive"]
    # PMEmo's LRC: time and metadata tags gone, lines kept
    text = pmemo.lyrics[pmemo.ids[0]]
    assert "[" not in text and "Synthetic" not in text and len(text.splitlines()) == 6
    assert strip_lrc("[ar:X]\n[00:01.00]<00:01.20>la [00:05.00]la\n\n") == "la la"
    no_quadrant = load_emotion_dataset(root / "pmemo", quadrants=False, midpoint=0.3)
    assert no_quadrant.quadrant is None and no_quadrant.midpoint == 0.3


def test_loader_errors_name_what_is_missing(corpus, tmp_path):
    import shutil

    root = corpus[0]
    with pytest.raises(ParameterError, match="is not a folder"):
        load_emotion_dataset(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ParameterError, match=r"song_id.*notes\.csv"):
        load_emotion_dataset(tmp_path / "empty")
    copy = tmp_path / "pmemo"
    shutil.copytree(root / "pmemo", copy)
    (copy / "chorus" / "1003.wav").unlink()
    with pytest.raises(ParameterError, match=r"1 of 24 annotated tracks have no audio.*'1003'"):
        load_emotion_dataset(copy)
    skipped = load_emotion_dataset(copy, on_missing="skip")
    assert skipped.skipped == ["1003"] and len(skipped) == 23
    (copy / "lyrics" / "1004.lrc").unlink()
    assert load_emotion_dataset(copy, on_missing="skip").lyrics["1004"] == ""
    with pytest.raises(ParameterError, match="layout='gtzan'"):
        load_emotion_dataset(copy, layout="gtzan")
    with pytest.raises(ParameterError, match="on_missing='ignore'"):
        load_emotion_dataset(copy, on_missing="ignore")
    with pytest.raises(ParameterError, match="no annotations CSV"):
        load_emotion_dataset(copy, layout="deam")


# -- audio features ----------------------------------------------------------------------------
def test_audio_features_follow_the_synthesis(corpus):
    _, truth, (deam, _), audio, _, _ = corpus
    assert list(audio.columns) == list(AUDIO_EMOTION_COLUMNS) and audio.index.name == "track_id"
    assert audio.shape == (N_DEAM + N_PMEMO, len(AUDIO_EMOTION_COLUMNS))
    assert np.isfinite(audio.to_numpy()).all()
    major = np.array([truth[i]["major"] for i in audio.index])
    fast = np.array([truth[i]["high_arousal"] for i in audio.index])
    # mode from Krumhansl-Schmuckler key finding: right on every track
    assert (audio["mode_major"].to_numpy() == major).all()
    assert (np.sign(audio["mode_strength"].to_numpy()) == np.where(major, 1, -1)).all()
    tonic = np.array([(truth[i]["tonic"] + 9) % 12 for i in audio.index])  # 220 Hz is A
    assert np.mean(audio["key_tonic"].to_numpy() == tonic) >= 0.9
    # 150 vs 70 BPM (the beat tracker may double a slow tempo now and then: octave errors
    # are part of tempo estimation), and a loud vs a soft level
    assert np.mean((audio["tempo_bpm"].to_numpy() > 100) == fast) >= 0.9
    assert audio["onset_rate"][fast].min() > audio["onset_rate"][~fast].max()
    assert audio["loudness_db_p90"][fast].min() > audio["loudness_db_p90"][~fast].max()
    assert audio["duration_s"].to_numpy() == pytest.approx(2.5, abs=0.01)
    # the other input forms give the same rows
    first = deam.ids[:2]
    paths = {i: deam.audio[i] for i in first}
    from_folder = extract_audio_emotion_features_sync(deam.root / "MEMD_audio").loc[first]
    pd.testing.assert_frame_equal(from_folder, audio.loc[first])
    pd.testing.assert_frame_equal(extract_audio_emotion_features_sync(paths), audio.loc[first])
    import soundfile as sf

    y, sr = sf.read(paths[first[0]], dtype="float32")
    pair = extract_audio_emotion_features_sync([(y, sr)], n_mfcc=5)
    assert list(pair.index) == ["0"] and pair.shape[1] == len(AUDIO_EMOTION_COLUMNS) - 16
    assert pair["tempo_bpm"].iloc[0] == pytest.approx(audio.loc[first[0], "tempo_bpm"], rel=0.05)


def test_bad_audio_input_raises_a_parameter_error_naming_it(tmp_path):
    assert issubclass(ParameterError, ValueError)
    clip = synth_clip(True, True, True, 0, 0)
    cases = [
        ([tmp_path / "missing.wav"], "missing.wav.*does not exist"),
        (tmp_path / "nowhere", "neither a file nor a folder"),
        ([42], "track '0'.*int 42.*neither an audio file path"),
        ([(clip[:100], SR)], "track '0' holds 100 samples"),
        ([(np.full(4096, np.nan, np.float32), SR)], "track '0' holds NaN"),
        ({"x": (clip, 0)}, "track 'x': sample rate 0"),
        ([], "holds no tracks"),
        (7, "music_files=7"),
    ]
    for given, message in cases:
        with pytest.raises(ParameterError, match=message):
            extract_audio_emotion_features_sync(given)
    (tmp_path / "broken.wav").write_bytes(b"RIFF not really a wave file")
    with pytest.raises(ParameterError, match="broken.wav.*cannot be decoded"):
        extract_audio_emotion_features_sync([tmp_path / "broken.wav"])
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    import soundfile as sf

    for sub in ("a", "b"):
        sf.write(tmp_path / sub / "same.wav", clip, SR)
    with pytest.raises(ParameterError, match=r"track ids \['same'\] occur more than once"):
        extract_audio_emotion_features_sync(tmp_path)
    for option, value in (("n_mfcc", 0), ("sample_rate", -1), ("duration", 0), ("max_workers", 0)):
        with pytest.raises(ParameterError, match=f"{option}="):
            extract_audio_emotion_features_sync([(clip, SR)], **{option: value})


# -- lyrics features ---------------------------------------------------------------------------
def test_lyrics_features(corpus, tmp_path):
    _, truth, _, _, lyrics, _ = corpus
    assert list(lyrics.columns) == [*LYRICS_COLUMNS, "text"]
    positive = np.array([truth[i]["positive"] for i in lyrics.index])
    assert (lyrics["valence"][positive] > 0.6).all() and (lyrics["valence"][~positive] < 0.4).all()
    assert (lyrics["repetition_ratio"] >= 1 / 6 - 1e-9).all()  # the chorus, twice
    assert lyrics["text"].str.contains("\n").all()
    texts = {
        "calm": "Sleep now, quiet and slow.\nRest in the soft breeze.",
        "wild": "FIRE! RUN! We scream and shout!\nBURN it down, wild and fast!",
        "none": None,
    }
    table = extract_lyrics_features_sync(texts)
    assert table.loc["wild", "arousal"] > table.loc["calm", "arousal"] + 0.3
    assert table.loc["wild", "caps_ratio"] > 0.2 and table.loc["wild", "exclamation_rate"] >= 1
    assert table.loc["none", "n_words"] == 0 and table.loc["none", "valence"] == 0.5
    assert table.loc["none", "text"] == ""
    from_list = extract_lyrics_features_sync(list(texts.values()))
    assert list(from_list.index) == ["0", "1", "2"]
    np.testing.assert_array_equal(from_list["arousal"].to_numpy(), table["arousal"].to_numpy())
    series = pd.Series(["happy love", "sad tears"], index=["a", "b"])
    assert list(extract_lyrics_features_sync(series).index) == ["a", "b"]
    with pytest.raises(ParameterError, match="lyrics 'b' is a int"):
        extract_lyrics_features_sync({"a": "la la", "b": 3})
    with pytest.raises(ParameterError, match="expected a mapping"):
        extract_lyrics_features_sync("just one string")
    with pytest.raises(ParameterError, match="no texts"):
        extract_lyrics_features_sync([])
    with pytest.raises(ParameterError, match="embedding_model=.*does not exist"):
        extract_lyrics_features_sync(["la"], embedding_model=tmp_path / "no-model")
    try:
        import sentence_transformers  # noqa: F401
    except ImportError:
        with pytest.raises(BackendUnavailableError, match="sentence-transformers"):
            extract_lyrics_features_sync(["la"], embedding_model=tmp_path)


# -- the fused model: ablation, registry round trip, serving -----------------------------------
def test_ablation_each_modality_carries_its_half_of_the_label(trained):
    """Arousal is in the audio only and valence in the lyrics only: each single-modality model
    gets its own half of the quadrant right and guesses the other; only the fused model gets
    both (it would fail these with either modality ignored)."""
    *_, ablation = trained
    audio, lyrics, fused = ablation["audio_only"], ablation["lyrics_only"], ablation["fused"]
    assert audio["arousal"] >= 0.8  # chance is 0.5
    assert lyrics["valence"] >= 0.8
    assert fused["arousal"] >= 0.8 and fused["valence"] >= 0.8 and fused["quadrant"] >= 0.8
    assert fused["quadrant"] >= max(audio["quadrant"], lyrics["quadrant"]) + 0.2


def test_registered_model_loads_back_with_identical_predictions(trained, corpus):
    pipeline, model, _, test, _ = trained
    audio, lyrics = corpus[3], corpus[4]
    assert (model.name, model.version) == ("emotion", 1)
    registry = pipeline.model_manager.registry
    mv = registry.get_version("emotion")
    assert mv.framework == "multimodal" and mv.architecture == "transformer_fusion"
    assert mv.metadata["feature_names"] == model.feature_names
    assert model.feature_names[0] == "audio:duration_s" and model.feature_names[-1] == (
        "text:repetition_ratio"
    )
    files = set(mv.manifest)
    assert "model/net.safetensors" in files and "model/text_vocabulary.json" in files
    assert not any(f.endswith((".pkl", ".pickle", ".skops", ".joblib")) for f in files)
    handle = registry.load("emotion")
    x = model.transform(audio.loc[test], lyrics.loc[test])
    expected = model.predict_proba(audio.loc[test], lyrics.loc[test])
    np.testing.assert_allclose(handle.predict_proba(x), expected, rtol=0, atol=1e-6)
    assert list(handle.predict(x)) == list(model.predict(audio.loc[test], lyrics.loc[test]))
    # from raw inputs: rows of floats and the texts alone (the lyrics features recomputed)
    raw = {
        "audio_features": audio.loc[test].to_numpy().tolist(),
        "text": list(lyrics.loc[test, "text"]),
    }
    np.testing.assert_allclose(
        handle.adapter.predict_raw(handle.adapter.prepare_inputs(raw)), expected, atol=1e-6
    )
    assert handle.holdout is not None and handle.reference is not None


def test_served_with_named_inputs_through_the_service_and_http(trained, corpus):
    import httpx

    from ml_utilities.models import ModelManager
    from ml_utilities.serving import ModelInputError, PredictionService
    from ml_utilities.serving.app import create_app

    pipeline, model, _, test, _ = trained
    audio, lyrics = corpus[3], corpus[4]
    registry = pipeline.model_manager.registry
    rows = audio.loc[test].to_numpy().tolist()
    texts = list(lyrics.loc[test, "text"])
    expected = list(model.predict(audio.loc[test], lyrics.loc[test]))
    rng = np.random.default_rng(0)
    plain = ModelManager(registry).train_model_sync(
        rng.normal(size=(60, 3)),
        rng.integers(0, 2, 60),
        {"framework": "sklearn", "architecture": "linear", "name": "plain"},
    )
    registry.register(plain)
    service = PredictionService(registry=registry, config={"gpu_enabled": False})
    try:
        out = service.predict_batch_sync("emotion", {"audio_features": rows, "text": texts})
        assert out["predictions"] == expected
        explained = service.predict_batch_sync(
            "emotion",
            {"audio_features": rows[:3], "text": texts[:3]},
            {"explain_predictions": True},
        )
        assert explained["predictions"] == expected[:3]
        for row in explained["explanations"]:
            assert all(f.split(":")[0] in ("audio", "text") for f in row["top_features"])
        importance = explained["metadata"]["modality_importance"]
        assert set(importance) == {"audio", "text"} and min(importance.values()) > 0
        # the async path and the result cache take the same dict
        again = asyncio.run(
            service.predict_batch("emotion", {"audio_features": rows, "text": texts})
        )
        assert again["predictions"] == expected and again["metadata"]["cache_hit"]
        bad = [
            ("emotion", {"audio_features": rows}, r"missing \['text'\]"),
            ("emotion", {**{"audio_features": rows, "text": texts}, "lyrics": []}, "unknown"),
            ("emotion", {"audio_features": rows, "text": texts[:2]}, "audio rows but 2 texts"),
            ("emotion", {"audio_features": [[1.0, 2.0]], "text": ["la"]}, "trained on 49"),
            ("plain", {"audio_features": rows, "text": texts}, "not named inputs"),
        ]
        for name, features, message in bad:
            with pytest.raises(ModelInputError, match=message):
                service.predict_batch_sync(name, features)

        async def http():
            transport = httpx.ASGITransport(app=create_app(service, close_service=False))
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                url = "/v1/models/emotion:predict"
                inputs = {"audio_features": rows, "text": texts}
                r = await client.post(url, json={"inputs": inputs})
                assert r.status_code == 200, r.text
                assert r.json()["predictions"] == expected
                r = await client.post(url, json={"inputs": {"text": texts}})
                assert r.status_code == 422 and "missing ['audio_features']" in r.json()["detail"]
                r = await client.post(url, json={"inputs": inputs, "features": rows})
                assert r.status_code == 400 and "either 'features' or 'inputs'" in r.text
                r = await client.post(url, content=json.dumps({"inputs": rows}))
                assert r.status_code == 422 and "named inputs" in r.json()["detail"]

        asyncio.run(http())
    finally:
        service.close_sync()


def test_train_multimodal_model_register_option_errors(trained, corpus):
    pipeline, *_ = trained
    audio, lyrics, quadrant = corpus[3], corpus[4], corpus[5]
    from ml_utilities.pipeline import PipelineConfigError

    with pytest.raises(PipelineConfigError, match=r"unknown register key\(s\) \['owner'\]"):
        pipeline.train_multimodal_model_sync(
            audio, lyrics, quadrant, "early_fusion", register={"owner": "me"}
        )
    with pytest.raises(ParameterError, match=r"text_features has no row for .*\['10'\]"):
        pipeline.train_multimodal_model_sync(
            audio, lyrics.rename(index={"10": "x"}), quadrant, "early_fusion"
        )


@pytest.mark.parametrize("model_type", ["early_fusion", "late_fusion"])
def test_sklearn_fusions_round_trip_without_pickle(trained, corpus, model_type):
    """Early and late fusion keep their scikit-learn members in skops through the sklearn
    adapter; integer labels stay integers through the registry and the conformal sets."""
    from ml_utilities.serving import PredictionService

    pipeline, _, train, test, _ = trained
    audio, lyrics, quadrant = corpus[3], corpus[4], corpus[5]
    labels = quadrant.map({"happy": 0, "angry": 1, "sad": 2, "calm": 3})
    model = pipeline.train_multimodal_model_sync(
        audio.loc[train], lyrics.loc[train], labels.loc[train], model_type, text_components=8
    )
    mv = model.register(pipeline.model_manager.registry, f"emotion-{model_type}")
    assert mv.framework == "multimodal" and any(f.endswith(".skops") for f in mv.manifest)
    handle = pipeline.model_manager.registry.load(mv.name)
    x = model.transform(audio.loc[test], lyrics.loc[test])
    np.testing.assert_array_equal(handle.predict_proba(x), model.predict_proba_matrix(x))
    assert handle.classes == [0, 1, 2, 3]
    service = PredictionService(
        registry=pipeline.model_manager.registry, config={"gpu_enabled": False}
    )
    try:
        out = service.predict_batch_sync(
            mv.name,
            {"audio_features": audio.loc[test], "text": lyrics.loc[test]},
            {"confidence_intervals": True},
        )
    finally:
        service.close_sync()
    assert out["predictions"] == [int(v) for v in model.predict(audio.loc[test], lyrics.loc[test])]
    assert all(set(s) <= {0, 1, 2, 3} for s in out["confidence_intervals"])
