"""Music emotion analysis: audio and lyrics features, and loaders of public emotion datasets.

The specification's ``music_emotion_analysis`` use case::

    audio_features = await extract_audio_emotion_features(music_files)
    text_features = await extract_lyrics_features(lyrics_data)
    emotion_model = await pipeline.train_multimodal_model(
        audio_features=audio_features, text_features=text_features,
        emotion_labels=emotion_annotations, model_type="transformer_fusion")

Audio features (:data:`AUDIO_EMOTION_COLUMNS`, one row per track) are computed with this
library's :class:`~ml_utilities.features.FeatureExtractor` (one native STFT pass per clip:
RMS, spectral centroid / rolloff / flatness, chroma, MFCC, mel spectrogram, onsets, beats)
and the librosa-compatible :mod:`ml_utilities.audio` functions (local tempo, mel
frequencies). They follow the cues of the music-emotion literature (Eerola & Vuoskoski 2011;
Panda et al. 2018): tempo and its stability, mode and key clarity, loudness and dynamics,
spectral balance, timbre and onset density.

=========================  =====================================================================
column                     meaning
=========================  =====================================================================
``duration_s``             length of the analysed audio (seconds)
``tempo_bpm``              global tempo of the beat tracker (BPM; 0 where no beat is found)
``tempo_local_std``        std of the frame-wise local tempo (``audio.tempo(aggregate=None)``,
                           4-s autocorrelation windows), BPM: tempo (in)stability
``beat_interval_cv``       coefficient of variation of the inter-beat intervals (0 under 3 beats)
``onset_rate``             detected onsets per second
``key_tonic``              tonic pitch class of the best key (0 = C ... 11 = B; :data:`KEY_NAMES`)
``mode_major``             1.0 where the best key is major, 0.0 where minor
``key_correlation``        Pearson correlation of the mean chroma with the best Krumhansl-Kessler
                           key profile (Krumhansl-Schmuckler key finding)
``key_clarity``            that correlation minus the second best of the 24 keys
``mode_strength``          best major-key correlation minus best minor-key correlation (signed)
``loudness_db_mean``       mean frame RMS in dB (``20 log10(rms)``, floor -100 dB)
``loudness_db_std``        its standard deviation (dynamics)
``loudness_db_range``      95th minus 5th percentile of the frame loudness (dynamic range)
``loudness_db_p10``        10th, 50th and 90th percentiles of the frame loudness
``loudness_db_p50``
``loudness_db_p90``
``centroid_mean``          spectral centroid (Hz): mean and std over frames (brightness)
``centroid_std``
``rolloff_mean``           85 % spectral rolloff (Hz), mean
``flatness_mean``          spectral flatness (0 tonal ... 1 noise-like), mean
``low_energy_share``       share of the mel power below 250 Hz
``high_energy_share``      share of the mel power above 4 kHz
``low_high_ratio_db``      ``10 log10`` of the low over the high band power
``mfcc_mean_{i}``          mean and std over frames of MFCC ``i`` (``0 .. n_mfcc - 1``): timbre
``mfcc_std_{i}``
=========================  =====================================================================

Lyrics features (:data:`LYRICS_COLUMNS`) are VADER sentiment (Hutto & Gilbert 2014; the
``vaderSentiment`` package, whose lexicon ships with it) averaged over the sentences (lines and
``.!?``-terminated phrases) of each text, a valence score, an arousal proxy and text
statistics:

=========================  =====================================================================
``vader_compound``         mean sentence compound score (-1 ... 1)
``vader_pos``              mean sentence shares of positive, negative and neutral words
``vader_neg``
``vader_neu``
``valence``                ``(1 + vader_compound) / 2``: 0 negative, 0.5 neutral, 1 positive
``intensity``              mean absolute sentence compound score (how strongly emotional)
``exclamation_rate``       ``!`` per sentence
``caps_ratio``             share of words (2 letters or more) written in capitals
``high_arousal_ratio``     share of words in :data:`HIGH_AROUSAL_WORDS` (energy, agitation)
``low_arousal_ratio``      share of words in :data:`LOW_AROUSAL_WORDS` (calm, sleep)
``arousal``                the arousal proxy in [0, 1]: the mean of ``intensity``,
                           ``min(1, exclamation_rate)``, ``min(1, 5 caps_ratio)`` and
                           ``clip(0.5 + 10 (high_arousal_ratio - low_arousal_ratio), 0, 1)``
``n_words``                number of words
``n_sentences``            number of sentences
``unique_word_ratio``      distinct words over words (vocabulary richness)
``repetition_ratio``       share of the lines that repeat an earlier line (choruses)
``text``                   the text itself (for the TF-IDF of ``train_multimodal_model``)
=========================  =====================================================================

With ``embedding_model=`` (the path of a local sentence-transformers model; nothing is ever
downloaded) the columns ``emb_0 ... emb_{d-1}`` hold the text's sentence embedding.

:func:`load_emotion_dataset` reads the DEAM and PMEmo layouts (annotations, audio, lyrics).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import re
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..exceptions import BackendUnavailableError
from .errors import ParameterError

__all__ = [
    "AUDIO_EMOTION_COLUMNS",
    "HIGH_AROUSAL_WORDS",
    "KEY_NAMES",
    "LOW_AROUSAL_WORDS",
    "LYRICS_COLUMNS",
    "QUADRANTS",
    "EmotionDataset",
    "audio_emotion_columns",
    "extract_audio_emotion_features",
    "extract_audio_emotion_features_sync",
    "extract_lyrics_features",
    "extract_lyrics_features_sync",
    "load_emotion_dataset",
    "quadrant_labels",
    "strip_lrc",
]

logger = logging.getLogger(__name__)

KEY_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
#: Krumhansl & Kessler (1982) probe-tone profiles, tonic first
_MAJOR_PROFILE = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
_MINOR_PROFILE = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
_LOW_HZ = 250.0
_HIGH_HZ = 4000.0
_DB_FLOOR = -100.0
_SAMPLE_RATE = 22050
_N_MFCC = 13

_AUDIO_BASE = (
    "duration_s",
    "tempo_bpm",
    "tempo_local_std",
    "beat_interval_cv",
    "onset_rate",
    "key_tonic",
    "mode_major",
    "key_correlation",
    "key_clarity",
    "mode_strength",
    "loudness_db_mean",
    "loudness_db_std",
    "loudness_db_range",
    "loudness_db_p10",
    "loudness_db_p50",
    "loudness_db_p90",
    "centroid_mean",
    "centroid_std",
    "rolloff_mean",
    "flatness_mean",
    "low_energy_share",
    "high_energy_share",
    "low_high_ratio_db",
)


def audio_emotion_columns(n_mfcc: int = _N_MFCC) -> list[str]:
    """The columns of :func:`extract_audio_emotion_features` for ``n_mfcc`` coefficients."""
    return [
        *_AUDIO_BASE,
        *(f"mfcc_mean_{i}" for i in range(n_mfcc)),
        *(f"mfcc_std_{i}" for i in range(n_mfcc)),
    ]


#: the columns of :func:`extract_audio_emotion_features` (13 MFCCs, the default)
AUDIO_EMOTION_COLUMNS = tuple(audio_emotion_columns())

#: words of high arousal (energy, agitation), written for this module
HIGH_AROUSAL_WORDS = frozenset(
    """alive anger angry burn burning crazy dance dancing electric energy excited explode
    fast fever fight fire furious go hot jump kill loud mad panic party power race rage rock
    run running rush scream screaming shake shout storm thrill thunder war wild yell""".split()
)
#: words of low arousal (calm, tiredness), written for this module
LOW_AROUSAL_WORDS = frozenset(
    """asleep breeze calm drift drifting dream dreaming easy gentle gently hush lazy lullaby
    peace peaceful quiet quietly relax rest sleep sleepy slow slowly soft softly still
    silence silent tired whisper""".split()
)

LYRICS_COLUMNS = (
    "vader_compound",
    "vader_pos",
    "vader_neg",
    "vader_neu",
    "valence",
    "intensity",
    "exclamation_rate",
    "caps_ratio",
    "high_arousal_ratio",
    "low_arousal_ratio",
    "arousal",
    "n_words",
    "n_sentences",
    "unique_word_ratio",
    "repetition_ratio",
)

#: quadrant names of (valence, arousal) around the scale's midpoint (Russell's circumplex)
QUADRANTS = {
    (True, True): "happy",
    (False, True): "angry",
    (False, False): "sad",
    (True, False): "calm",
}


# ------------------------------------------------------------------------------ audio features
def _feature_config(n_mfcc: int) -> dict[str, Any]:
    return {
        "temporal": {"features": ["rms"]},
        "spectral": {"features": ["centroid", "rolloff", "flatness"]},
        "harmonic": {"tonnetz": False, "harmonicity": False},
        "chroma": {"harmonic": False},
        "rhythm": {"tempo_estimation": True, "beat_tracking": True, "onset_detection": True},
        "mfcc": {"n_mfcc": int(n_mfcc)},
    }


def _audio_items(music_files: Any) -> list[tuple[str, Any]]:
    """``(track id, path or (array, sr))`` of every track, ids unique."""
    from ..features.catalog import find_audio_files

    if isinstance(music_files, (str, os.PathLike)):
        path = Path(music_files)
        if path.is_dir():
            files = find_audio_files(path)
            if not files:
                raise ParameterError(f"music_files={str(path)!r} is a folder without audio files")
            music_files = files
        elif path.is_file():
            music_files = [path]
        else:
            raise ParameterError(f"music_files={str(path)!r} is neither a file nor a folder")
    if isinstance(music_files, tuple) and _is_pair(music_files):
        music_files = [music_files]
    if isinstance(music_files, pd.Series):
        items = [(str(k), v) for k, v in music_files.items()]
    elif isinstance(music_files, Mapping):
        items = [(str(k), v) for k, v in music_files.items()]
    elif isinstance(music_files, Iterable) and not isinstance(music_files, (bytes, np.ndarray)):
        items = []
        for i, entry in enumerate(music_files):
            key = Path(entry).stem if isinstance(entry, (str, os.PathLike)) else str(i)
            items.append((key, entry))
    else:
        raise ParameterError(
            f"music_files={music_files!r}: expected audio file paths, a folder, (array, "
            "sample_rate) pairs, or a mapping of track id to one of these"
        )
    if not items:
        raise ParameterError("music_files holds no tracks")
    seen: dict[str, int] = {}
    for key, _ in items:
        seen[key] = seen.get(key, 0) + 1
    dup = sorted(k for k, c in seen.items() if c > 1)
    if dup:
        raise ParameterError(
            f"track ids {dup[:10]} occur more than once (ids are file names without their "
            "extension): pass a mapping of unique ids to files"
        )
    return items


def _is_pair(value: Any) -> bool:
    return (
        isinstance(value, tuple)
        and len(value) == 2
        and isinstance(value[0], np.ndarray)
        and isinstance(value[1], (int, float, np.integer, np.floating))
        and not isinstance(value[1], bool)
    )


def _load_track(key: str, clip: Any, sr: int, duration: float | None) -> np.ndarray:
    from .. import audio

    if isinstance(clip, (str, os.PathLike)):
        path = Path(clip)
        if not path.is_file():
            raise ParameterError(f"track {key!r}: audio file {str(path)!r} does not exist")
        try:
            y, _ = audio.load(path, sr=sr, mono=True, duration=duration)
        except ParameterError:
            raise
        except Exception as err:  # noqa: BLE001 - a decoder's error, named with its file
            raise ParameterError(
                f"track {key!r}: audio file {str(path)!r} cannot be decoded ({err})"
            ) from None
    elif _is_pair(clip):
        y, rate = clip
        rate = float(rate)
        if not rate > 0 or not np.isfinite(rate):
            raise ParameterError(f"track {key!r}: sample rate {clip[1]!r} must be positive")
        y = np.asarray(y, dtype=np.float32)
        if y.ndim == 2:
            y = y.mean(axis=0)
        if y.ndim != 1:
            raise ParameterError(
                f"track {key!r}: audio of shape {np.shape(clip[0])}: expected (n,) or (ch, n)"
            )
        if duration is not None:
            y = y[: int(round(duration * rate))]
        if rate != sr and y.size:
            y = audio.resample(y, orig_sr=rate, target_sr=sr)
    else:
        raise ParameterError(
            f"track {key!r}: {type(clip).__name__} {clip!r:.80} is neither an audio file path "
            "nor an (array, sample_rate) pair"
        )
    y = np.ascontiguousarray(y, dtype=np.float32)
    if y.size < 2048:
        raise ParameterError(
            f"track {key!r} holds {y.size} samples: at least 2048 (about 0.1 s) are needed"
        )
    if not np.all(np.isfinite(y)):
        raise ParameterError(f"track {key!r} holds NaN or inf samples")
    return y


def _key_estimate(chroma_mean: np.ndarray) -> dict[str, float]:
    """Krumhansl-Schmuckler key finding on a mean chroma vector."""
    scores = np.zeros(24)
    if np.ptp(chroma_mean) > 1e-12:
        for tonic in range(12):
            for m, profile in enumerate((_MAJOR_PROFILE, _MINOR_PROFILE)):
                scores[m * 12 + tonic] = np.corrcoef(chroma_mean, np.roll(profile, tonic))[0, 1]
    scores = np.nan_to_num(scores)
    order = np.argsort(-scores, kind="stable")
    best = int(order[0])
    return {
        "key_tonic": float(best % 12),
        "mode_major": 1.0 if best < 12 else 0.0,
        "key_correlation": float(scores[best]),
        "key_clarity": float(scores[best] - scores[order[1]]),
        "mode_strength": float(scores[:12].max() - scores[12:].max()),
    }


def _track_features(y: np.ndarray, sr: int, n_mfcc: int, extractor: Any) -> dict[str, float]:
    from .. import audio
    from ..audio.spectrum import power_to_db

    feats = extractor.extract_comprehensive_features_sync(y, sr, _feature_config(n_mfcc))
    hop = 512
    duration = y.size / sr
    out: dict[str, float] = {"duration_s": float(duration)}

    # rhythm
    rhythm = feats["rhythm"]
    out["tempo_bpm"] = float(rhythm["tempo"] or 0.0)
    mel = feats["timbre"]["mel_spectrogram"]
    env = audio.onset_strength(S=power_to_db(mel), sr=sr, hop_length=hop)
    if env.size > 1 and float(np.max(env)) > 0:
        local = audio.tempo(onset_envelope=env, sr=sr, hop_length=hop, ac_size=4.0, aggregate=None)
        out["tempo_local_std"] = float(np.std(local))
    else:
        out["tempo_local_std"] = 0.0
    beats = np.asarray(rhythm["beats"], dtype=np.float64)
    ibi = np.diff(beats) * hop / sr
    out["beat_interval_cv"] = (
        float(np.std(ibi) / np.mean(ibi)) if len(ibi) >= 2 and np.mean(ibi) > 0 else 0.0
    )
    out["onset_rate"] = float(len(rhythm["onsets"]) / duration)

    # mode and key from the loudness-weighted mean chroma
    rms = feats["temporal"]["rms"][0].astype(np.float64)
    chroma = feats["harmonic"]["chroma"].astype(np.float64)
    t = min(chroma.shape[1], rms.size)
    w = rms[:t]
    chroma_mean = (
        (chroma[:, :t] * w).sum(axis=1) / w.sum() if w.sum() > 0 else chroma[:, :t].mean(axis=1)
    )
    out.update(_key_estimate(chroma_mean))

    # loudness and dynamics
    db = 20.0 * np.log10(np.maximum(rms, 10.0 ** (_DB_FLOOR / 20.0)))
    p5, p10, p50, p90, p95 = np.percentile(db, [5, 10, 50, 90, 95])
    out.update(
        loudness_db_mean=float(db.mean()),
        loudness_db_std=float(db.std()),
        loudness_db_range=float(p95 - p5),
        loudness_db_p10=float(p10),
        loudness_db_p50=float(p50),
        loudness_db_p90=float(p90),
    )

    # spectral balance
    spectral = feats["spectral"]
    centroid = spectral["centroid"][0]
    out.update(
        centroid_mean=float(centroid.mean()),
        centroid_std=float(centroid.std()),
        rolloff_mean=float(spectral["rolloff"][0].mean()),
        flatness_mean=float(spectral["flatness"][0].mean()),
    )
    freqs = audio.mel_frequencies(mel.shape[0] + 2, fmin=0.0, fmax=sr / 2.0)[1:-1]
    band = mel.astype(np.float64).sum(axis=1)
    total = float(band.sum())
    low, high = float(band[freqs < _LOW_HZ].sum()), float(band[freqs > _HIGH_HZ].sum())
    out.update(
        low_energy_share=low / total if total > 0 else 0.0,
        high_energy_share=high / total if total > 0 else 0.0,
        low_high_ratio_db=float(10.0 * np.log10((low + 1e-10) / (high + 1e-10))),
    )

    # timbre
    mfcc = feats["timbre"]["mfcc"].astype(np.float64)
    for i in range(n_mfcc):
        out[f"mfcc_mean_{i}"] = float(mfcc[i].mean())
    for i in range(n_mfcc):
        out[f"mfcc_std_{i}"] = float(mfcc[i].std())
    return out


def extract_audio_emotion_features_sync(
    music_files: Any,
    *,
    sample_rate: int = _SAMPLE_RATE,
    duration: float | None = None,
    n_mfcc: int = _N_MFCC,
    max_workers: int | None = None,
) -> pd.DataFrame:
    """Emotion-related audio features, one row per track (the module docstring lists them).

    Parameters
    ----------
    music_files : path, folder, list or mapping
        An audio file, a folder (searched recursively), a list of files or of
        ``(array, sample_rate)`` pairs, or a mapping ``{track id: file or pair}``. A file's
        track id is its name without the extension (DEAM's ``10.mp3`` is track ``"10"``); a
        pair's is its position in the list.
    sample_rate : int
        Rate every track is decoded or resampled to (Hz).
    duration : float, optional
        Analyse at most the first ``duration`` seconds of each track.
    n_mfcc : int
        MFCCs summarised (``mfcc_mean_*`` and ``mfcc_std_*`` columns).
    max_workers : int, optional
        Threads decoding and analysing tracks (default: the CPU count, at most 4; the native
        kernels release the GIL).

    Returns
    -------
    pandas.DataFrame
        Indexed by track id (``track_id``, strings, in input order), float64 columns
        :func:`audio_emotion_columns` ``(n_mfcc)``.

    Raises
    ------
    ParameterError
        A missing or undecodable file, an input that is neither a file nor a pair, a track
        shorter than 2048 samples or holding NaN/inf, duplicate ids, a bad option (the message
        names the track and value).
    """
    from ..features import FeatureExtractor

    for name, value in (("sample_rate", sample_rate), ("n_mfcc", n_mfcc)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
            raise ParameterError(f"{name}={value!r}: expected a positive integer")
    if duration is not None and (
        isinstance(duration, bool) or not isinstance(duration, (int, float)) or not duration > 0
    ):
        raise ParameterError(f"duration={duration!r}: expected a positive number of seconds")
    if max_workers is not None and (
        isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1
    ):
        raise ParameterError(f"max_workers={max_workers!r}: expected a positive integer")
    items = _audio_items(music_files)
    sr = int(sample_rate)
    extractor = FeatureExtractor()

    def one(item: tuple[str, Any]) -> dict[str, float]:
        key, clip = item
        return _track_features(_load_track(key, clip, sr, duration), sr, int(n_mfcc), extractor)

    workers = max_workers or min(4, os.cpu_count() or 1)
    workers = max(1, min(workers, len(items)))
    if workers == 1:
        rows = [one(item) for item in items]
    else:
        with ThreadPoolExecutor(workers, thread_name_prefix="mlu-emotion") as pool:
            rows = list(pool.map(one, items))
    frame = pd.DataFrame(
        rows, index=pd.Index([k for k, _ in items], name="track_id"), dtype=np.float64
    )
    return frame[audio_emotion_columns(int(n_mfcc))]


async def extract_audio_emotion_features(music_files: Any, **options: Any) -> pd.DataFrame:
    """Coroutine of :func:`extract_audio_emotion_features_sync` (same options)."""
    return await asyncio.to_thread(extract_audio_emotion_features_sync, music_files, **options)


# ------------------------------------------------------------------------------ lyrics features
_SENTENCE = re.compile(r"[^\n.!?]+[.!?]*")
_WORD = re.compile(r"[A-Za-z\u00C0-\u024F']+")
_analyzer: Any = None


def _vader() -> Any:
    global _analyzer
    if _analyzer is None:
        try:
            from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
        except ImportError as err:
            raise BackendUnavailableError(
                "lyrics sentiment needs vaderSentiment (pip install vaderSentiment, or "
                f"ml_utilities[pipeline]): {err}"
            ) from None
        _analyzer = SentimentIntensityAnalyzer()
    return _analyzer


def _lyrics_items(lyrics_data: Any) -> list[tuple[str, str]]:
    if isinstance(lyrics_data, pd.Series):
        pairs = list(zip(lyrics_data.index.astype(str), lyrics_data.tolist(), strict=True))
    elif isinstance(lyrics_data, Mapping):
        pairs = [(str(k), v) for k, v in lyrics_data.items()]
    elif isinstance(lyrics_data, (list, tuple)):
        pairs = [(str(i), v) for i, v in enumerate(lyrics_data)]
    else:
        raise ParameterError(
            f"lyrics_data of type {type(lyrics_data).__name__}: expected a mapping of id to "
            "text, a pandas Series or a list of texts"
        )
    if not pairs:
        raise ParameterError("lyrics_data holds no texts")
    out = []
    seen: set[str] = set()
    for key, text in pairs:
        if key in seen:
            raise ParameterError(f"lyrics id {key!r} occurs more than once")
        seen.add(key)
        if text is None or (isinstance(text, float) and np.isnan(text)):
            text = ""  # no lyrics (an instrumental): neutral features
        if not isinstance(text, str):
            raise ParameterError(
                f"lyrics {key!r} is a {type(text).__name__} ({text!r:.60}): expected a string"
            )
        out.append((key, text))
    return out


def _text_features(text: str, analyzer: Any) -> dict[str, float]:
    sentences = [s.strip() for s in _SENTENCE.findall(text) if _WORD.search(s)]
    words = _WORD.findall(text)
    lower = [w.lower() for w in words]
    n_words, n_sent = len(words), len(sentences)
    if n_sent:
        scores = [analyzer.polarity_scores(s) for s in sentences]
        comp = np.array([s["compound"] for s in scores])
        pos = float(np.mean([s["pos"] for s in scores]))
        neg = float(np.mean([s["neg"] for s in scores]))
        neu = float(np.mean([s["neu"] for s in scores]))
        compound, intensity = float(comp.mean()), float(np.abs(comp).mean())
    else:
        compound, intensity, pos, neg, neu = 0.0, 0.0, 0.0, 0.0, 1.0
    exclaim = text.count("!") / n_sent if n_sent else 0.0
    long_words = [w for w in words if len(w) >= 2]
    caps = sum(w.isupper() for w in long_words) / len(long_words) if long_words else 0.0
    high = sum(w in HIGH_AROUSAL_WORDS for w in lower) / n_words if n_words else 0.0
    low = sum(w in LOW_AROUSAL_WORDS for w in lower) / n_words if n_words else 0.0
    arousal = float(
        np.mean(
            [
                intensity,
                min(1.0, exclaim),
                min(1.0, 5.0 * caps),
                float(np.clip(0.5 + 10.0 * (high - low), 0.0, 1.0)),
            ]
        )
    )
    lines = [ln.strip().lower() for ln in text.splitlines() if _WORD.search(ln)]
    repeats = len(lines) - len(set(lines))
    return {
        "vader_compound": compound,
        "vader_pos": pos,
        "vader_neg": neg,
        "vader_neu": neu,
        "valence": (1.0 + compound) / 2.0,
        "intensity": intensity,
        "exclamation_rate": float(exclaim),
        "caps_ratio": float(caps),
        "high_arousal_ratio": float(high),
        "low_arousal_ratio": float(low),
        "arousal": arousal,
        "n_words": float(n_words),
        "n_sentences": float(n_sent),
        "unique_word_ratio": len(set(lower)) / n_words if n_words else 0.0,
        "repetition_ratio": repeats / len(lines) if lines else 0.0,
    }


def _embeddings(texts: list[str], embedding_model: Any) -> np.ndarray:
    path = Path(os.fspath(embedding_model))
    if not path.exists():
        raise ParameterError(
            f"embedding_model={str(path)!r} does not exist: give the folder of a local "
            "sentence-transformers model (nothing is downloaded)"
        )
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as err:
        raise BackendUnavailableError(
            "embedding_model needs the sentence-transformers package, which cannot be imported "
            f"({err}); install it, or leave embedding_model out"
        ) from None
    try:
        model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
    except TypeError:  # versions without local_files_only: a local folder is read as it is
        model = SentenceTransformer(str(path), device="cpu")
    return np.asarray(model.encode(texts, show_progress_bar=False), dtype=np.float64)


def extract_lyrics_features_sync(
    lyrics_data: Any, *, embedding_model: str | os.PathLike[str] | None = None
) -> pd.DataFrame:
    """Sentiment, valence/arousal and text statistics of each text (see the module docstring).

    Parameters
    ----------
    lyrics_data : mapping, pandas.Series or list
        ``{id: text}``, a Series of texts indexed by id, or a list (ids ``"0"``, ``"1"``...).
        None or NaN is a track without lyrics (neutral features, empty ``text``).
    embedding_model : path, optional
        Folder of a local sentence-transformers model: adds ``emb_*`` columns. Never
        downloaded; a missing path or package raises.

    Returns
    -------
    pandas.DataFrame
        Indexed by id (``track_id``, strings, in input order): the float columns
        :data:`LYRICS_COLUMNS`, then ``text`` (the raw text), then any ``emb_*``.

    Raises
    ------
    ParameterError
        A text that is not a string, duplicate ids, an input of another type, a missing
        ``embedding_model`` path.
    BackendUnavailableError
        ``embedding_model`` given without the sentence-transformers package.
    """
    items = _lyrics_items(lyrics_data)
    analyzer = _vader()
    rows = [_text_features(text, analyzer) for _, text in items]
    index = pd.Index([k for k, _ in items], name="track_id")
    frame = pd.DataFrame(rows, index=index, dtype=np.float64)[list(LYRICS_COLUMNS)]
    frame["text"] = [text for _, text in items]
    if embedding_model is not None:
        emb = _embeddings([text for _, text in items], embedding_model)
        cols = [f"emb_{i}" for i in range(emb.shape[1])]
        frame = pd.concat([frame, pd.DataFrame(emb, index=index, columns=cols)], axis=1)
    return frame


async def extract_lyrics_features(lyrics_data: Any, **options: Any) -> pd.DataFrame:
    """Coroutine of :func:`extract_lyrics_features_sync` (same options)."""
    return await asyncio.to_thread(extract_lyrics_features_sync, lyrics_data, **options)


# ------------------------------------------------------------------------------ datasets
_LRC_TAG = re.compile(r"\[[^\]]*\]|<\d+:\d+(?:[.:]\d+)?>")


def strip_lrc(text: str) -> str:
    """An LRC file's lyrics: time tags (``[01:02.50]``, ``<01:02.50>``) and metadata tags
    (``[ar:...]``, ``[ti:...]``, ``[offset:...]``) removed, empty lines dropped."""
    lines = (_LRC_TAG.sub("", line).strip() for line in text.splitlines())
    return "\n".join(line for line in lines if line)


def quadrant_labels(valence: Any, arousal: Any, midpoint: float) -> np.ndarray:
    """``happy`` (valence and arousal at or above ``midpoint``), ``angry`` (low valence, high
    arousal), ``sad`` (both low) or ``calm`` (high valence, low arousal), per track."""
    v = np.asarray(valence, dtype=np.float64) >= midpoint
    a = np.asarray(arousal, dtype=np.float64) >= midpoint
    return np.array(
        [QUADRANTS[(bool(x), bool(y))] for x, y in zip(v, a, strict=True)], dtype=object
    )


@dataclasses.dataclass
class EmotionDataset:
    """Tracks of an emotion dataset with their annotations.

    Attributes
    ----------
    root : Path
    layout : str
        ``"deam"`` or ``"pmemo"``.
    ids : list of str
        Track ids, in the annotations' order (those with an audio file).
    audio : dict
        ``{id: Path}`` of the audio files.
    lyrics : dict
        ``{id: text}`` (LRC tags stripped); ``""`` for a track without a lyrics file, and
        empty where the dataset has no lyrics folder.
    valence, arousal : pandas.Series
        Mean annotations indexed by id, on the dataset's scale (DEAM 1-9, PMEmo 0-1).
    midpoint : float
        The scale's middle (5 for DEAM, 0.5 for PMEmo, or as given).
    quadrant : pandas.Series or None
        :func:`quadrant_labels` of each track (None with ``quadrants=False``).
    skipped : list of str
        Annotated ids without audio, left out under ``on_missing="skip"``.
    """

    root: Path
    layout: str
    ids: list[str]
    audio: dict[str, Path]
    lyrics: dict[str, str]
    valence: pd.Series
    arousal: pd.Series
    midpoint: float
    quadrant: pd.Series | None = None
    skipped: list[str] = dataclasses.field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def audio_files(self) -> list[Path]:
        """The audio paths in :attr:`ids` order."""
        return [self.audio[i] for i in self.ids]

    def lyrics_series(self) -> pd.Series:
        """The lyrics of every track (``""`` where absent), indexed by id."""
        return pd.Series([self.lyrics.get(i, "") for i in self.ids], index=self.ids, dtype=object)


#: layout -> (id column, valence column, arousal column, default midpoint)
_LAYOUTS = {
    "deam": ("song_id", "valence_mean", "arousal_mean", 5.0),
    "pmemo": ("musicId", "Valence(mean)", "Arousal(mean)", 0.5),
}


def _read_annotations(root: Path, layout: str | None) -> tuple[str, pd.DataFrame]:
    csvs = sorted(p for p in root.rglob("*.csv") if p.is_file())
    found: dict[str, list[pd.DataFrame]] = {}
    for path in csvs:
        try:
            head = pd.read_csv(path, nrows=0, skipinitialspace=True)
        except Exception:  # noqa: BLE001 - not a CSV of annotations
            continue
        cols = {str(c).strip() for c in head.columns}
        for name, (id_col, v_col, a_col, _) in _LAYOUTS.items():
            if layout not in (None, name) or not {id_col, v_col, a_col} <= cols:
                continue
            frame = pd.read_csv(path, skipinitialspace=True)
            frame.columns = [str(c).strip() for c in frame.columns]
            found.setdefault(name, []).append(frame[[id_col, v_col, a_col]])
    if not found:
        wanted = "; ".join(
            f"{n}: {', '.join(c[:3])}" for n, c in _LAYOUTS.items() if layout in (None, n)
        )
        raise ParameterError(
            f"no annotations CSV under {str(root)!r} has the columns of a known layout ({wanted});"
            f" CSV files seen: {[p.name for p in csvs][:10]}"
        )
    if len(found) > 1:
        raise ParameterError(
            f"{str(root)!r} holds annotations of several layouts {sorted(found)}: pass layout="
        )
    name, frames = next(iter(found.items()))
    id_col, v_col, a_col, _ = _LAYOUTS[name]
    table = pd.concat(frames, ignore_index=True)
    table[id_col] = [_id_text(v) for v in table[id_col]]
    table = table.drop_duplicates(subset=id_col, keep="first")
    for col in (v_col, a_col):
        values = pd.to_numeric(table[col], errors="coerce")
        bad = table[id_col][values.isna()].tolist()
        if bad:
            raise ParameterError(f"column {col!r} has no number for track(s) {bad[:10]}")
        table[col] = values.astype(np.float64)
    return name, table.rename(columns={id_col: "id", v_col: "valence", a_col: "arousal"})


def _id_text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def load_emotion_dataset(
    root: str | os.PathLike[str],
    *,
    layout: str | None = None,
    midpoint: float | None = None,
    quadrants: bool = True,
    on_missing: str = "raise",
) -> EmotionDataset:
    """Read a music emotion dataset in the DEAM or PMEmo layout.

    DEAM
        Annotations CSV(s) anywhere under ``root`` with ``song_id``, ``valence_mean`` and
        ``arousal_mean`` (DEAM's ``static_annotations_averaged_songs_*.csv``: several are
        concatenated, spaces after commas allowed), on a 1-9 scale; audio files ``<id>.mp3``
        (or ``.wav``...) anywhere under ``root`` (DEAM's ``MEMD_audio/``).
    PMEmo
        An annotations CSV with ``musicId``, ``Valence(mean)`` and ``Arousal(mean)`` (0-1);
        the chorus audio ``<id>.mp3`` under ``root`` (``chorus/``) and lyrics ``<id>.lrc``
        or ``<id>.txt`` in a folder named ``lyrics``.

    Either layout may have a ``lyrics`` folder; LRC time and metadata tags are stripped.

    Parameters
    ----------
    root : path
    layout : {"deam", "pmemo"}, optional
        Found from the CSV columns by default.
    midpoint : float, optional
        The middle of the annotation scale for the quadrants (5 for DEAM, 0.5 for PMEmo).
    quadrants : bool
        Compute :attr:`EmotionDataset.quadrant`.
    on_missing : {"raise", "skip"}
        What to do with annotated tracks without an audio file.

    Raises
    ------
    ParameterError
        ``root`` missing, no recognised annotations CSV (the message names the columns
        expected and the CSVs seen), annotated tracks without audio (named), a bad option.
    """
    from ..features.catalog import AUDIO_EXTENSIONS

    if layout is not None and layout not in _LAYOUTS:
        raise ParameterError(f"layout={layout!r}: expected one of {sorted(_LAYOUTS)} or None")
    if on_missing not in ("raise", "skip"):
        raise ParameterError(f"on_missing={on_missing!r}: expected 'raise' or 'skip'")
    base = Path(root)
    if not base.is_dir():
        raise ParameterError(f"root={str(base)!r} is not a folder")
    name, table = _read_annotations(base, layout)
    mid = float(_LAYOUTS[name][3] if midpoint is None else midpoint)
    audio_files: dict[str, Path] = {}
    lyric_files: dict[str, Path] = {}
    for path in sorted(base.rglob("*")):
        if not path.is_file():
            continue
        suffix = path.suffix.lower()
        in_lyrics = any(part.lower() == "lyrics" for part in path.relative_to(base).parts[:-1])
        if in_lyrics and suffix in (".lrc", ".txt"):
            # an .lrc is preferred over a .txt of the same id
            if path.stem not in lyric_files or suffix == ".lrc":
                lyric_files[path.stem] = path
        elif suffix in AUDIO_EXTENSIONS:
            audio_files.setdefault(path.stem, path)
    ids = table["id"].tolist()
    missing = [i for i in ids if i not in audio_files]
    if missing and (on_missing == "raise" or len(missing) == len(ids)):
        raise ParameterError(
            f"{len(missing)} of {len(ids)} annotated tracks have no audio file under "
            f"{str(base)!r} (expected <id>.mp3 or .wav...): ids {missing[:10]}"
            + ("" if len(missing) == len(ids) else "; pass on_missing='skip' to leave them out")
        )
    table = table[[i not in set(missing) for i in ids]]
    ids = table["id"].tolist()
    lyrics = {}
    for i in ids:
        path = lyric_files.get(i)
        if path is None:
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        lyrics[i] = strip_lrc(text) if path.suffix.lower() == ".lrc" else text.strip()
    if lyric_files:
        lyrics = {i: lyrics.get(i, "") for i in ids}
    valence = pd.Series(table["valence"].to_numpy(), index=ids, name="valence")
    arousal = pd.Series(table["arousal"].to_numpy(), index=ids, name="arousal")
    quadrant = (
        pd.Series(quadrant_labels(valence, arousal, mid), index=ids, name="quadrant")
        if quadrants
        else None
    )
    return EmotionDataset(
        root=base,
        layout=name,
        ids=ids,
        audio={i: audio_files[i] for i in ids},
        lyrics=lyrics,
        valence=valence,
        arousal=arousal,
        midpoint=mid,
        quadrant=quadrant,
        skipped=missing,
    )
