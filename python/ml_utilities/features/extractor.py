"""FeatureExtractor: every feature group of the specification from one STFT pass per clip."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from ..exceptions import ParameterError
from .config import resolve_config
from .summary import TrackFeatures, summarize

__all__ = ["FeatureExtractor"]

logger = logging.getLogger(__name__)

PERCEPTUAL_FEATURES = (
    "chroma_cqt",
    "chroma_stft",
    "tonnetz",
    "mfcc",
    "spectral_contrast",
    "mel_spectrogram",
    "onset_strength",
)


def _as_mono(audio_data: Any) -> np.ndarray:
    from ..audio._validation import valid_audio

    y = np.asarray(audio_data) if not isinstance(audio_data, np.ndarray) else audio_data
    valid_audio(y)
    if y.ndim > 2:
        raise ParameterError(f"audio_data must be (n,) or (channels, n), got shape {y.shape}")
    if y.ndim == 2:
        y = y.mean(axis=0)
    return np.ascontiguousarray(y, dtype=np.float32 if y.dtype != np.float64 else np.float64)


def _check_rate(sample_rate: Any) -> float:
    if (
        isinstance(sample_rate, bool)
        or not isinstance(sample_rate, (int, float, np.integer, np.floating))
        or not sample_rate > 0
    ):
        raise ParameterError(f"sample_rate={sample_rate!r} must be a positive number")
    return float(sample_rate)


def _shared_pass(
    y: np.ndarray, sr: float, cfg: dict[str, dict[str, Any]]
) -> tuple[np.ndarray, np.ndarray]:
    """One native STFT pass: the magnitude spectrogram and the mel power spectrogram."""
    from ..audio import _plans
    from ..audio.spectrum import _frame_setup

    st, mf = cfg["stft"], cfg["mfcc"]
    dtype = np.dtype(np.float64) if y.dtype == np.float64 else np.dtype(np.float32)
    plan, signal, centre, head, tail, _ = _frame_setup(
        y,
        n_fft=st["n_fft"],
        hop_length=st["hop_length"],
        win_length=None,
        window=st["window"],
        center=st["center"],
        pad_mode="constant",
        compute_dtype=dtype,
    )
    _, bank = _plans.mel_bank(
        sr,
        st["n_fft"],
        {"n_mels": mf["n_mels"], "fmin": mf["fmin"], "fmax": mf["fmax"], "dtype": dtype},
    )
    frames = plan.n_frames(signal.shape[-1], centre)
    S = np.empty((1, plan.n_bins, frames), dtype=dtype)
    mel = np.empty((1, mf["n_mels"], frames), dtype=dtype)
    plan.execute(
        signal,
        centre,
        head,
        tail,
        spectrum=S,
        spectrum_power=1.0,
        mel=mel,
        mel_bank=bank,
        mel_power=2.0,
    )
    return S[0], mel[0]


def _is_device_array(audio_data: Any) -> bool:
    """True for a CuPy / torch CUDA / ``__cuda_array_interface__`` array (numpy: one type test)."""
    if type(audio_data) is np.ndarray:
        return False
    from ..gpu import is_device_array

    return is_device_array(audio_data)


def _device_pass(
    audio_data: Any, sr: float, cfg: dict[str, dict[str, Any]]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The shared pass of a device clip on the GPU: ``(y, S, mel)`` on the host, where the
    magnitude and mel spectrograms come from one CUDA plan and ``y`` is the mono clip copied
    once for the features computed on the host (temporal, tonnetz, HPSS)."""
    from ..gpu import _arrays
    from ..gpu._spec import PlanSpec
    from ..gpu.features import run

    desc = _arrays.describe(audio_data)
    if len(desc.lead) > 1:
        raise ParameterError(
            f"audio_data must be (n,) or (channels, n), got shape {(*desc.lead, desc.n)}"
        )
    mono = audio_data.mean(0) if desc.lead else audio_data
    st, mf = cfg["stft"], cfg["mfcc"]
    spec = PlanSpec(
        sr=sr,
        n_fft=st["n_fft"],
        hop_length=st["hop_length"],
        window=st["window"],
        center=st["center"],
        n_mels=mf["n_mels"],
        fmin=mf["fmin"],
        fmax=mf["fmax"],
    )
    res, _ = run(mono, spec, ["spectrum", "mel"], spectrum_power=1.0)
    y = _as_mono(_arrays.to_host(mono))
    dtype = np.float64 if y.dtype == np.float64 else np.float32
    S = np.ascontiguousarray(_arrays.to_host(res["spectrum"]), dtype=dtype)
    mel = np.ascontiguousarray(_arrays.to_host(res["mel"]), dtype=dtype)
    return y, S, mel


_SIDE_POOL: ThreadPoolExecutor | None = None
_SIDE_THREADS = 0
_SIDE_LOCK = threading.Lock()


def _side_pool() -> ThreadPoolExecutor | None:
    """A small shared pool for the work one extraction overlaps with its own (the CQT), of
    at most ``ML_UTILITIES_MAX_WORKERS - 1`` threads (and 2): None when that setting is 1,
    and the work then runs on the calling thread."""
    global _SIDE_POOL, _SIDE_THREADS
    from ..config import get_settings

    threads = min(2, get_settings().max_workers - 1)
    if threads < 1:
        return None
    with _SIDE_LOCK:
        if _SIDE_POOL is None or _SIDE_THREADS != threads:
            if _SIDE_POOL is not None:
                _SIDE_POOL.shutdown(wait=False)  # its running jobs finish; no new ones
            _SIDE_POOL = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="mlu-features")
            _SIDE_THREADS = threads
        return _SIDE_POOL


#: the labelled children of ml_feature_extraction_duration_seconds, one per method
_DURATIONS: dict[str, Any] = {}


def _observe_duration(method: str, started: float) -> None:
    """Observe the duration of a call of ``method`` that began at ``started``
    (``time.perf_counter``) in ``ml_feature_extraction_duration_seconds``. The metrics module
    (and ``prometheus_client``, where installed) is imported by the first call, so that
    ``import ml_utilities.features`` stays light; each later call costs one dict look-up and
    one ``observe``."""
    child = _DURATIONS.get(method)
    if child is None:
        from .._metrics import metrics

        child = _DURATIONS.setdefault(method, metrics.feature_extraction_duration.labels(method))
    child.observe(time.perf_counter() - started)


def _quiet(fn: Any, **kwargs: Any) -> Any:
    """Call a CQT-based feature without its "n_fft is too large" warnings: on short clips the
    low octaves' windows are longer than the (downsampled) signal, as in librosa, and the
    extractor's caller asked for the feature regardless."""
    from ..audio.spectrum import quiet_short_signals

    with quiet_short_signals():  # thread-safe, unlike warnings.catch_warnings
        return fn(**kwargs)


def _deltas(mfcc: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    from ..audio import delta

    frames = mfcc.shape[-1]
    # librosa refuses a delta window wider than the clip: shrink it to the widest odd one that fits.
    width = min(width, frames if frames % 2 == 1 else frames - 1)
    if width < 3:
        return np.zeros_like(mfcc), np.zeros_like(mfcc)
    return delta(mfcc, width=width, order=1), delta(mfcc, width=width, order=2)


class FeatureExtractor:
    """Audio features of the specification's five groups, librosa-exact, natively computed.

    One STFT pass per clip gives the magnitude and mel spectrograms that every spectral, timbre,
    chroma and onset feature reads. Nothing is computed in ``__init__``. The duration of every
    extraction call that returns is observed in the Prometheus histogram
    ``ml_feature_extraction_duration_seconds``, labelled with the method's name (an async
    method and its ``_sync`` twin share one label; a catalogue's clips are also observed one
    by one as ``extract_comprehensive_features``).

    Parameters
    ----------
    feature_config : dict or None
        Default configuration for every call (see :data:`DEFAULT_FEATURE_CONFIG`); a call's own
        ``feature_config`` is merged over the defaults, not over this.
    max_workers : int or None
        Threads for catalogs (``ML_UTILITIES_MAX_WORKERS`` by default).

    Examples
    --------
    >>> import asyncio, numpy as np
    >>> from ml_utilities.features import FeatureExtractor
    >>> y = np.random.default_rng(0).standard_normal(22050 * 3).astype(np.float32)
    >>> fx = FeatureExtractor()
    >>> feats = fx.extract_comprehensive_features_sync(audio_data=y, sample_rate=22050)
    >>> sorted(feats)
    ['harmonic', 'rhythm', 'spectral', 'temporal', 'timbre']
    """

    def __init__(
        self, feature_config: dict[str, Any] | None = None, max_workers: int | None = None
    ):
        self.feature_config = feature_config
        self.max_workers = max_workers

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {"feature_config": self.feature_config, "max_workers": self.max_workers}

    # ------------------------------------------------------------------ one clip, all groups
    def extract_comprehensive_features_sync(
        self,
        audio_data: Any,
        sample_rate: float = 22050,
        feature_config: dict[str, Any] | None = None,
    ) -> dict[str, dict[str, Any]]:
        """Every group of the specification's dictionary for one clip.

        Parameters
        ----------
        audio_data : np.ndarray or device array [shape=(n,) or (channels, n)], float
            The clip (several channels are averaged to mono first). A CuPy array or torch
            CUDA tensor has its STFT, magnitude and mel spectrograms computed by the CUDA
            backend (one plan); the dictionary is on the host either way.
        sample_rate : float > 0
            Its sample rate (features are computed at this rate; nothing is resampled).
        feature_config : dict or None
            Sections ``stft``, ``temporal``, ``spectral``, ``harmonic``, ``chroma``, ``rhythm``,
            ``mfcc``; unknown sections, keys or values raise :class:`ParameterError`.

        Returns
        -------
        dict
            ``temporal``: ``zcr``, ``energy``, ``rms`` (1, t); ``spectral``: ``centroid``,
            ``bandwidth``, ``rolloff``, ``flux`` (1, t) and any extra requested (``contrast``
            (7, t), ``flatness``); ``harmonic``: ``chroma`` (n_chroma, t), ``tonnetz`` (6, t),
            ``harmonicity`` (float); ``rhythm``: ``tempo`` (float, BPM), ``beats`` and
            ``onsets`` (frame indices); ``timbre``: ``mfcc`` (n_mfcc, t), ``mfcc_delta``,
            ``mfcc_delta2``, ``mel_spectrogram`` (n_mels, t). A feature switched off in the
            configuration is ``None``.
        """
        started = time.perf_counter()
        from .. import audio
        from ..audio.feature import _dct
        from ..audio.spectrum import power_to_db

        cfg = resolve_config(feature_config if feature_config is not None else self.feature_config)
        sr = _check_rate(sample_rate)
        st = cfg["stft"]
        n_fft, hop = st["n_fft"], st["hop_length"]
        if _is_device_array(audio_data):
            y, S, mel = _device_pass(audio_data, sr, cfg)
        else:
            y = _as_mono(audio_data)
            S, mel = _shared_pass(y, sr, cfg)
        mel_db = power_to_db(mel)

        # timbre
        mf = cfg["mfcc"]
        mfcc = _dct(mel_db, mf["n_mfcc"], 2, "ortho", mf["lifter"])
        mfcc_delta, mfcc_delta2 = _deltas(mfcc, mf["delta_width"])
        timbre = {
            "mfcc": mfcc,
            "mfcc_delta": mfcc_delta,
            "mfcc_delta2": mfcc_delta2,
            "mel_spectrogram": mel,
        }

        # temporal
        tp = cfg["temporal"]
        wanted_t = set(tp["features"])
        t_hop = tp.get("hop_length", hop)
        temporal: dict[str, Any] = {"zcr": None, "energy": None, "rms": None}
        if "zcr" in wanted_t:
            temporal["zcr"] = audio.zero_crossing_rate(
                y, frame_length=tp["frame_length"], hop_length=t_hop
            )
        if "rms" in wanted_t:
            temporal["rms"] = audio.rms(y=y, frame_length=tp["frame_length"], hop_length=t_hop)
        if "energy" in wanted_t:
            temporal["energy"] = audio.frame_energy(
                y, frame_length=tp["frame_length"], hop_length=t_hop
            )

        # spectral: all from the shared magnitude spectrogram
        sp = cfg["spectral"]
        wanted_s = list(sp["features"])
        spectral: dict[str, Any] = {
            name: None for name in ("centroid", "bandwidth", "rolloff", "flux")
        }
        centroid = None
        for name in wanted_s:
            if name == "centroid" or (name == "bandwidth" and centroid is None):
                centroid = audio.spectral_centroid(S=S, sr=sr, n_fft=n_fft)
                if name == "centroid":
                    spectral["centroid"] = centroid
                    continue
            if name == "bandwidth":
                spectral["bandwidth"] = audio.spectral_bandwidth(
                    S=S, sr=sr, n_fft=n_fft, centroid=centroid
                )
            elif name == "rolloff":
                spectral["rolloff"] = audio.spectral_rolloff(
                    S=S, sr=sr, n_fft=n_fft, roll_percent=sp["roll_percent"]
                )
            elif name == "flux":
                spectral["flux"] = audio.spectral_flux(S=S)
            elif name == "contrast":
                spectral["contrast"] = audio.spectral_contrast(S=S, sr=sr, n_fft=n_fft)
            elif name == "flatness":
                spectral["flatness"] = audio.spectral_flatness(S=S)

        # harmonic: tonnetz (the CQT, partly sequential) runs on a second thread while HPSS
        # and the chroma run here
        ch, hm = cfg["chroma"], cfg["harmonic"]
        tonnetz_job = None
        tonnetz_args: dict[str, Any] = {}
        if hm["tonnetz"]:
            tonnetz_kwargs: dict[str, Any] = {}
            if n_fft == 2048 and hop == n_fft // 4 and st["window"] == "hann" and st["center"]:
                # chroma_cqt estimates its tuning (36 bins per octave) with piptrack on exactly
                # this magnitude spectrogram: estimate it once, here
                tonnetz_kwargs["tuning"] = audio.estimate_tuning(
                    S=S, sr=sr, n_fft=n_fft, bins_per_octave=36
                )
            pool = _side_pool()
            tonnetz_args = {"y": y, "sr": sr, "hop_length": hop, **tonnetz_kwargs}
            if pool is not None:
                tonnetz_job = pool.submit(_quiet, audio.tonnetz, **tonnetz_args)
        power = S.astype(np.float64) ** 2 if S.dtype == np.float64 else np.square(S)
        harmonicity = None
        H = None
        if ch["harmonic"]:
            H, _ = audio.hpss(power)
            if hm["harmonicity"]:
                total = float(power.sum(dtype=np.float64))
                harmonicity = float(H.sum(dtype=np.float64) / total) if total > 0 else 0.0
        elif hm["harmonicity"]:
            # the harmonic energy in one native pass, without forming H (audio.harmonicity)
            harmonicity = audio.harmonicity(S=power)
        chroma = audio.chroma_stft(
            S=H if ch["harmonic"] else power,
            sr=sr,
            n_fft=n_fft,
            hop_length=hop,
            tuning=ch["tuning"],
            n_chroma=ch["n_chroma"],
        )
        tonnetz = None
        if tonnetz_job is not None:
            tonnetz = tonnetz_job.result()
        elif hm["tonnetz"]:  # one worker thread in all: here, after the rest
            tonnetz = _quiet(audio.tonnetz, **tonnetz_args)
        harmonic = {"chroma": chroma, "tonnetz": tonnetz, "harmonicity": harmonicity}

        # rhythm: onsets from the shared log-mel spectrogram
        rh = cfg["rhythm"]
        lag_pad = {"sr": sr, "hop_length": hop, "n_fft": n_fft}
        rhythm: dict[str, Any] = {"tempo": None, "beats": None, "onsets": None}
        if rh["onset_detection"]:
            env = audio.onset_strength(S=mel_db, **lag_pad)
            rhythm["onsets"] = audio.onset_detect(onset_envelope=env, sr=sr, hop_length=hop)
        if rh["tempo_estimation"] or rh["beat_tracking"]:
            env_median = audio.onset_strength(S=mel_db, aggregate=np.median, **lag_pad)
            tempo, beats = audio.beat_track(onset_envelope=env_median, sr=sr, hop_length=hop)
            if rh["tempo_estimation"]:
                rhythm["tempo"] = float(np.asarray(tempo).reshape(-1)[0])
            if rh["beat_tracking"]:
                rhythm["beats"] = np.asarray(beats)

        logger.debug(
            "extracted features of %d samples in %.1f ms",
            y.size,
            (time.perf_counter() - started) * 1e3,
        )
        _observe_duration("extract_comprehensive_features", started)
        return {
            "temporal": temporal,
            "spectral": spectral,
            "harmonic": harmonic,
            "rhythm": rhythm,
            "timbre": timbre,
        }

    async def extract_comprehensive_features(
        self,
        audio_data: Any,
        sample_rate: float = 22050,
        feature_config: dict[str, Any] | None = None,
    ) -> dict[str, dict[str, Any]]:
        """Async twin of :meth:`extract_comprehensive_features_sync` (runs on a worker thread;
        the native code releases the GIL, so the event loop stays free)."""
        return await asyncio.to_thread(
            self.extract_comprehensive_features_sync, audio_data, sample_rate, feature_config
        )

    # ------------------------------------------------------------------ many clips
    def extract_perceptual_features_sync(
        self,
        audio_database: Any,
        features: Iterable[str] = ("chroma_cqt", "tonnetz", "mfcc", "spectral_contrast"),
        sample_rate: float = 22050,
    ) -> list[dict[str, np.ndarray]]:
        """Frame-level perceptual features of each clip, for similarity models.

        Parameters
        ----------
        audio_database : array, path, or a list / mapping of them
            Clips as arrays at ``sample_rate`` or audio files (decoded to mono at
            ``sample_rate``).
        features : iterable of str
            Any of ``chroma_cqt``, ``chroma_stft``, ``tonnetz``, ``mfcc``,
            ``spectral_contrast``, ``mel_spectrogram``, ``onset_strength``.

        Returns
        -------
        list of dict
            One ``{feature: ndarray}`` per clip, in input order.
        """
        started = time.perf_counter()
        from .. import audio

        names = list(features)
        unknown = [f for f in names if f not in PERCEPTUAL_FEATURES]
        if unknown:
            raise ParameterError(
                f"unknown perceptual feature(s) {unknown}; "
                f"expected some of {list(PERCEPTUAL_FEATURES)}"
            )
        sr = _check_rate(sample_rate)
        out = []
        for _, clip in _iter_clips(audio_database):
            y = _load_clip(clip, sr)
            row: dict[str, np.ndarray] = {}
            for name in names:
                if name == "chroma_cqt":
                    row[name] = _quiet(audio.chroma_cqt, y=y, sr=sr)
                elif name == "chroma_stft":
                    row[name] = audio.chroma_stft(y=y, sr=sr)
                elif name == "tonnetz":
                    row[name] = _quiet(audio.tonnetz, y=y, sr=sr)
                elif name == "mfcc":
                    row[name] = audio.mfcc(y=y, sr=sr, n_mfcc=13)
                elif name == "spectral_contrast":
                    row[name] = audio.spectral_contrast(y=y, sr=sr)
                elif name == "mel_spectrogram":
                    row[name] = audio.melspectrogram(y=y, sr=sr)
                else:
                    row[name] = audio.onset_strength(y=y, sr=sr)
            out.append(row)
        _observe_duration("extract_perceptual_features", started)
        return out

    async def extract_perceptual_features(
        self,
        audio_database: Any,
        features: Iterable[str] = ("chroma_cqt", "tonnetz", "mfcc", "spectral_contrast"),
        sample_rate: float = 22050,
    ) -> list[dict[str, np.ndarray]]:
        """Async twin of :meth:`extract_perceptual_features_sync`."""
        return await asyncio.to_thread(
            self.extract_perceptual_features_sync, audio_database, list(features), sample_rate
        )

    def extract_audio_features_sync(
        self,
        music_catalog: Any,
        sample_rate: float = 22050,
        feature_config: dict[str, Any] | None = None,
    ) -> TrackFeatures:
        """One fixed-length summary vector per clip (mean, std, percentiles of every feature).

        Parameters
        ----------
        music_catalog : array, path, folder, or a list / mapping of them
            Clips; files are decoded to mono at ``sample_rate``. A failing clip is reported in
            ``TrackFeatures.errors`` and does not stop the rest.

        Returns
        -------
        TrackFeatures
            ``ids``, stable ``columns`` and a (tracks, columns) float64 ``values`` matrix, ready
            for scikit-learn; ``to_pandas()`` and ``to_parquet(path)``.
        """
        started = time.perf_counter()
        from .catalog import extract_catalog

        table = extract_catalog(
            music_catalog,
            extractor=self,
            sample_rate=sample_rate,
            feature_config=feature_config,
            progress=False,
        )
        _observe_duration("extract_audio_features", started)
        return table

    async def extract_audio_features(
        self,
        music_catalog: Any,
        sample_rate: float = 22050,
        feature_config: dict[str, Any] | None = None,
    ) -> TrackFeatures:
        """Async twin of :meth:`extract_audio_features_sync`."""
        return await asyncio.to_thread(
            self.extract_audio_features_sync, music_catalog, sample_rate, feature_config
        )

    # ------------------------------------------------------------------ listeners
    def extract_user_features_sync(self, listening_history: Any, **options: Any) -> Any:
        """One feature vector per user from a listening history: activity, diversity, temporal
        habits (sessions, evening and weekend shares, recency) and a user embedding from the
        user x item matrix. The same code as the DataPipeline's ``temporal_features`` and
        ``embedding_features`` (:func:`ml_utilities.pipeline.features.user_features`, whose
        keyword options this takes).

        Parameters
        ----------
        listening_history : pandas.DataFrame
            One row per play or per (user, item) pair with a play count, e.g. Last.fm's
            ``user_artists.dat`` (``userID``, ``artistID``, ``weight``).

        Returns
        -------
        pandas.DataFrame
            Indexed by user id (sorted), one column per feature.
        """
        started = time.perf_counter()
        from .listening import user_features

        table = user_features(listening_history, **options)
        _observe_duration("extract_user_features", started)
        return table

    async def extract_user_features(self, listening_history: Any, **options: Any) -> Any:
        """Async twin of :meth:`extract_user_features_sync`."""
        return await asyncio.to_thread(
            self.extract_user_features_sync, listening_history, **options
        )

    def summarize(self, features: dict[str, dict[str, Any]]) -> tuple[list[str], np.ndarray]:
        """Column names and values of one clip's summary vector (see :func:`summarize`)."""
        return summarize(features)


def _iter_clips(database: Any) -> Iterable[tuple[str, Any]]:
    if isinstance(database, np.ndarray) or isinstance(database, (str, Path)):
        yield (str(database) if not isinstance(database, np.ndarray) else "0", database)
        return
    if isinstance(database, Mapping):
        yield from ((str(k), v) for k, v in database.items())
        return
    for i, clip in enumerate(database):
        yield (str(clip) if isinstance(clip, (str, Path)) else str(i), clip)


def _load_clip(clip: Any, sr: float) -> np.ndarray:
    if isinstance(clip, (str, Path)):
        from ..audio import load

        y, _ = load(clip, sr=sr, mono=True)
        return y
    return _as_mono(clip)
