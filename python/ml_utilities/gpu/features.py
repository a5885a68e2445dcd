"""librosa-compatible features on device arrays: the CUDA twins of ``ml_utilities.audio``.

Each function takes the same keyword arguments as its CPU twin (the subset the CUDA plans
implement; anything else raises :class:`ParameterError` naming it), runs one CUDA plan on the
caller's current stream, and returns arrays of the input's kind (CuPy in, CuPy out; torch in,
torch out) on the input's device, with librosa's shapes and dtypes. Computation is float32 on
the device; float64 input gives float64 results (converted at the end), as librosa's dtypes.
"""

from __future__ import annotations

import warnings
from dataclasses import replace
from functools import lru_cache
from typing import Any

import numpy as np

from ..exceptions import ParameterError
from . import _arrays
from ._spec import OUTPUT_DTYPES, PlanSpec, get_plan

__all__ = [
    "beat_track",
    "chroma_stft",
    "extract_features",
    "melspectrogram",
    "mfcc",
    "onset_strength",
    "rms",
    "spectral_bandwidth",
    "spectral_centroid",
    "spectral_contrast",
    "spectral_flatness",
    "spectral_flux",
    "spectral_rolloff",
    "stft",
    "tempo",
    "zero_crossing_rate",
]

# dtype of each output for float64 input (librosa's rules); float32 input keeps OUTPUT_DTYPES.
_F64_DTYPES = {"stft": "complex128"}


def _rows(plan: Any, spec: PlanSpec, name: str) -> int:
    if name in ("stft", "spectrum"):
        return int(plan.bins)
    if name in ("mel", "mel_db"):
        return spec.n_mels
    if name.startswith("mfcc"):
        return spec.n_mfcc_out
    if name == "contrast":
        return int(plan.n_bands)
    if name == "chroma":
        return spec.n_chroma
    return 1


_MEL_OUTPUTS = {"mel", "mel_db", "mfcc", "mfcc_delta", "mfcc_delta2", "onset", "onset_median"}


def trim_spec(spec: PlanSpec, names: list[str]) -> PlanSpec:
    """``spec`` without the tables none of ``names`` reads (so a plain STFT builds no mel bank
    and warns about none, and plans for unrelated outputs share their cache entries)."""
    wanted = set(names)
    changes: dict[str, Any] = {}
    if not wanted & _MEL_OUTPUTS:
        changes["n_mels"] = 0
    if not wanted & {"mfcc", "mfcc_delta", "mfcc_delta2"}:
        changes["n_mfcc"] = 0
    if not wanted & {"mfcc_delta", "mfcc_delta2"}:
        changes["delta_width"] = 0
    if "contrast" not in wanted:
        changes["contrast_n_bands"] = 0
    if "chroma" not in wanted:
        changes["tuning"] = None
    return replace(spec, **changes) if changes else spec


@lru_cache(maxsize=128)
def _plan_for(spec: PlanSpec, names: tuple[str, ...], device: int) -> tuple[PlanSpec, Any]:
    """(trimmed normalised spec, plan) for one call's parameters: one dict lookup per call."""
    trimmed = trim_spec(spec, list(names)).normalized()
    return trimmed, get_plan(trimmed, device)


def run(
    y: Any,
    spec: PlanSpec,
    names: list[str],
    *,
    spectrum_power: float = 1.0,
    final_dtypes: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Execute one plan on a device array for the outputs ``names``.

    Returns ``({name: array of shape lead + (rows, frames)}, info)`` where ``info`` says what
    the plan decided (the tuning it estimated, its chunks and workspace).
    """
    for name in names:
        if name not in OUTPUT_DTYPES:
            raise ParameterError(f"unknown CUDA output {name!r}")
    desc = _arrays.describe(y)
    try:
        spec, plan = _plan_for(spec, tuple(names), desc.device)
    except TypeError:  # an unhashable spelling (an array window): no cache for the lookup
        spec = trim_spec(spec, names).normalized()
        plan = get_plan(spec, desc.device)
    n = desc.n
    if n == 0:
        raise ParameterError("the CUDA backend needs non-empty audio")
    frames = plan.frames(n) if any(k not in ("zcr", "rms") for k in names) else 0
    t_frames = plan.temporal_frames(n) if any(k in ("zcr", "rms") for k in names) else 0
    channels = desc.channels
    results: dict[str, Any] = {}
    pointers: dict[str, Any] = {}
    for name in names:
        if name in ("zcr", "rms"):
            width = t_frames
        elif name in ("onset", "onset_median"):
            width = int(plan.onset_frames(frames))
        else:
            width = frames
        arr = _arrays.allocate(
            desc, (channels, _rows(plan, spec, name), width), OUTPUT_DTYPES[name]
        )
        results[name] = arr
        pointers[name] = _arrays.pointer(arr)
    if "spectrum" in names:
        pointers["spectrum_power"] = float(spectrum_power)
    info = plan.execute(desc.signal(), pointers, desc.stream)
    wanted = final_dtypes or {}
    out = {}
    for name, arr in results.items():
        arr = _arrays.reshape(arr, (*desc.lead, arr.shape[-2], arr.shape[-1]))
        target = wanted.get(name)
        if target is None and desc.dtype == np.float64:
            target = _F64_DTYPES.get(name, "float64")
        if target is not None:
            arr = _arrays.as_dtype(arr, target)
        out[name] = arr
    return out, dict(info)


def _only(function: str, **unsupported: tuple[Any, Any]) -> None:
    """ParameterError for every argument whose value differs from the one the GPU supports."""
    for name, (value, allowed) in unsupported.items():
        if value is not None and value != allowed:
            raise ParameterError(
                f"{function}: {name}={value!r} is not supported by the CUDA backend "
                f"(only {allowed!r}); pass a numpy array to use the CPU"
            )


def _stft_spec(
    sr: float,
    n_fft: int,
    hop_length: int | None,
    win_length: int | None,
    window: Any,
    center: bool,
    pad_mode: Any,
    function: str,
    **more: Any,
) -> PlanSpec:
    _only(function, pad_mode=(pad_mode, "constant"))
    if hop_length is None:
        hop_length = (win_length if win_length is not None else n_fft) // 4
    return PlanSpec(
        sr=sr,
        n_fft=n_fft,
        hop_length=hop_length,
        win_length=win_length,
        window=window,
        center=center,
        **more,
    )


def stft(
    y: Any,
    *,
    n_fft: int = 2048,
    hop_length: int | None = None,
    win_length: int | None = None,
    window: Any = "hann",
    center: bool = True,
    dtype: Any = None,
    pad_mode: Any = "constant",
    out: Any = None,
) -> Any:
    """``librosa.stft`` of a device array: (..., 1 + n_fft // 2, frames), complex64
    (complex128 for float64 input)."""
    _only("stft", out=(out, None))
    spec = _stft_spec(22050.0, n_fft, hop_length, win_length, window, center, pad_mode, "stft")
    final = {"stft": np.dtype(dtype).name} if dtype is not None else None
    res, _ = run(y, spec, ["stft"], final_dtypes=final)
    return res["stft"]


def _mel_spec(
    sr: float,
    n_fft: int,
    hop_length: int,
    win_length: int | None,
    window: Any,
    center: bool,
    pad_mode: Any,
    power: float,
    function: str,
    kwargs: dict[str, Any],
    **more: Any,
) -> PlanSpec:
    mel_kwargs = dict(kwargs)
    dtype = mel_kwargs.pop("dtype", np.float32)
    _only(function, dtype=(np.dtype(dtype).name, "float32"))
    unknown = set(mel_kwargs) - {"n_mels", "fmin", "fmax", "htk", "norm"}
    if unknown:
        raise ParameterError(
            f"{function}: unsupported arguments for the CUDA backend: {sorted(unknown)}"
        )
    return _stft_spec(
        sr,
        n_fft,
        hop_length,
        win_length,
        window,
        center,
        pad_mode,
        function,
        n_mels=int(mel_kwargs.get("n_mels", 128)),
        fmin=float(mel_kwargs.get("fmin", 0.0)),
        fmax=mel_kwargs.get("fmax"),
        htk=bool(mel_kwargs.get("htk", False)),
        mel_norm=mel_kwargs.get("norm", "slaney"),
        mel_power=float(power),
        **more,
    )


def melspectrogram(
    *,
    y: Any = None,
    sr: float = 22050,
    S: Any = None,
    n_fft: int = 2048,
    hop_length: int = 512,
    win_length: int | None = None,
    window: Any = "hann",
    center: bool = True,
    pad_mode: Any = "constant",
    power: float = 2.0,
    **kwargs: Any,
) -> Any:
    """``librosa.feature.melspectrogram`` of a device array (sparse mel bank on the device)."""
    _only("melspectrogram", S=(None if S is None else "array", None))
    spec = _mel_spec(
        sr, n_fft, hop_length, win_length, window, center, pad_mode, power, "melspectrogram", kwargs
    )
    return run(y, spec, ["mel"])[0]["mel"]


def mfcc(
    *,
    y: Any = None,
    sr: float = 22050,
    S: Any = None,
    n_mfcc: int = 20,
    dct_type: int = 2,
    norm: str | None = "ortho",
    lifter: float = 0,
    mel_norm: Any = "slaney",
    **kwargs: Any,
) -> Any:
    """``librosa.feature.mfcc`` of a device array: mel, ``power_to_db`` (top_db over the whole
    batch, as librosa) and the DCT, fused on the device."""
    _only("mfcc", S=(None if S is None else "array", None))
    stft_args = {
        k: kwargs.pop(k)
        for k in ("n_fft", "hop_length", "win_length", "window", "center", "pad_mode", "power")
        if k in kwargs
    }
    kwargs["norm"] = mel_norm
    spec = _mel_spec(
        sr,
        stft_args.get("n_fft", 2048),
        stft_args.get("hop_length", 512),
        stft_args.get("win_length"),
        stft_args.get("window", "hann"),
        stft_args.get("center", True),
        stft_args.get("pad_mode", "constant"),
        stft_args.get("power", 2.0),
        "mfcc",
        kwargs,
        n_mfcc=int(n_mfcc),
        dct_type=int(dct_type),
        dct_norm=norm,
        lifter=float(lifter),
    )
    return run(y, spec, ["mfcc"])[0]["mfcc"]


def _spectral(
    name: str,
    output: str,
    y: Any,
    S: Any,
    sr: float,
    n_fft: int,
    hop_length: int,
    win_length: int | None,
    window: Any,
    center: bool,
    pad_mode: Any,
    freq: Any,
    **more: Any,
) -> Any:
    _only(
        name,
        S=(None if S is None else "array", None),
        freq=(None if freq is None else "array", None),
    )
    spec = _stft_spec(sr, n_fft, hop_length, win_length, window, center, pad_mode, name, **more)
    return run(y, spec, [output])[0][output]


def spectral_centroid(
    *,
    y: Any = None,
    sr: float = 22050,
    S: Any = None,
    n_fft: int = 2048,
    hop_length: int = 512,
    freq: Any = None,
    win_length: int | None = None,
    window: Any = "hann",
    center: bool = True,
    pad_mode: Any = "constant",
) -> Any:
    """``librosa.feature.spectral_centroid`` of a device array: (..., 1, t) float64."""
    return _spectral(
        "spectral_centroid",
        "centroid",
        y,
        S,
        sr,
        n_fft,
        hop_length,
        win_length,
        window,
        center,
        pad_mode,
        freq,
    )


def spectral_bandwidth(
    *,
    y: Any = None,
    sr: float = 22050,
    S: Any = None,
    n_fft: int = 2048,
    hop_length: int = 512,
    win_length: int | None = None,
    window: Any = "hann",
    center: bool = True,
    pad_mode: Any = "constant",
    freq: Any = None,
    centroid: Any = None,
    norm: bool = True,
    p: float = 2,
) -> Any:
    """``librosa.feature.spectral_bandwidth`` of a device array: (..., 1, t) float64."""
    _only("spectral_bandwidth", centroid=(None if centroid is None else "array", None))
    if not p > 0:
        raise ParameterError(f"p={p} must be positive")
    return _spectral(
        "spectral_bandwidth",
        "bandwidth",
        y,
        S,
        sr,
        n_fft,
        hop_length,
        win_length,
        window,
        center,
        pad_mode,
        freq,
        bandwidth_p=float(p),
        bandwidth_norm=bool(norm),
    )


def spectral_rolloff(
    *,
    y: Any = None,
    sr: float = 22050,
    S: Any = None,
    n_fft: int = 2048,
    hop_length: int = 512,
    win_length: int | None = None,
    window: Any = "hann",
    center: bool = True,
    pad_mode: Any = "constant",
    freq: Any = None,
    roll_percent: float = 0.85,
) -> Any:
    """``librosa.feature.spectral_rolloff`` of a device array: (..., 1, t) float64."""
    if not 0.0 < roll_percent < 1.0:
        raise ParameterError("roll_percent must lie in the range (0, 1)")
    return _spectral(
        "spectral_rolloff",
        "rolloff",
        y,
        S,
        sr,
        n_fft,
        hop_length,
        win_length,
        window,
        center,
        pad_mode,
        freq,
        roll_percent=float(roll_percent),
    )


def spectral_flatness(
    *,
    y: Any = None,
    S: Any = None,
    n_fft: int = 2048,
    hop_length: int = 512,
    win_length: int | None = None,
    window: Any = "hann",
    center: bool = True,
    pad_mode: Any = "constant",
    amin: float = 1e-10,
    power: float = 2.0,
) -> Any:
    """``librosa.feature.spectral_flatness`` of a device array: (..., 1, t)."""
    if amin <= 0:
        raise ParameterError("amin must be strictly positive")
    return _spectral(
        "spectral_flatness",
        "flatness",
        y,
        S,
        22050.0,
        n_fft,
        hop_length,
        win_length,
        window,
        center,
        pad_mode,
        None,
        flatness_amin=float(amin),
        flatness_power=float(power),
    )


def spectral_flux(
    *,
    y: Any = None,
    S: Any = None,
    n_fft: int = 2048,
    hop_length: int = 512,
    win_length: int | None = None,
    window: Any = "hann",
    center: bool = True,
    pad_mode: Any = "constant",
) -> Any:
    """This library's spectral flux (see :func:`ml_utilities.audio.spectral_flux`)."""
    return _spectral(
        "spectral_flux",
        "flux",
        y,
        S,
        22050.0,
        n_fft,
        hop_length,
        win_length,
        window,
        center,
        pad_mode,
        None,
    )


def spectral_contrast(
    *,
    y: Any = None,
    sr: float = 22050,
    S: Any = None,
    n_fft: int = 2048,
    hop_length: int = 512,
    win_length: int | None = None,
    window: Any = "hann",
    center: bool = True,
    pad_mode: Any = "constant",
    freq: Any = None,
    fmin: float = 200.0,
    n_bands: int = 6,
    quantile: float = 0.02,
    linear: bool = False,
) -> Any:
    """``librosa.feature.spectral_contrast`` of a device array: (..., n_bands + 1, t) float64.

    The CPU path transforms float32 audio in float64 for the valleys; the device transforms in
    float32 (see docs/gpu.md)."""
    from ..audio.convert import fft_frequencies
    from ._spec import contrast_bands

    # librosa's checks and messages, before any device work
    contrast_bands(
        fft_frequencies(sr=sr, n_fft=n_fft), float(sr), float(fmin), n_bands, float(quantile)
    )
    return _spectral(
        "spectral_contrast",
        "contrast",
        y,
        S,
        sr,
        n_fft,
        hop_length,
        win_length,
        window,
        center,
        pad_mode,
        freq,
        contrast_fmin=float(fmin),
        contrast_n_bands=int(n_bands),
        contrast_quantile=float(quantile),
        contrast_linear=bool(linear),
    )


def chroma_stft(
    *,
    y: Any = None,
    sr: float = 22050,
    S: Any = None,
    norm: Any = np.inf,
    n_fft: int = 2048,
    hop_length: int = 512,
    win_length: int | None = None,
    window: Any = "hann",
    center: bool = True,
    pad_mode: Any = "constant",
    tuning: float | None = None,
    n_chroma: int = 12,
    **kwargs: Any,
) -> Any:
    """``librosa.feature.chroma_stft`` of a device array; with ``tuning=None`` the tuning is
    estimated on the device (piptrack, median, residual histogram: one 400-byte download)."""
    _only("chroma_stft", S=(None if S is None else "array", None), norm=(norm, np.inf))
    if kwargs:
        raise ParameterError(
            f"chroma_stft: unsupported arguments for the CUDA backend: {sorted(kwargs)}"
        )
    spec = _stft_spec(
        sr,
        n_fft,
        hop_length,
        win_length,
        window,
        center,
        pad_mode,
        "chroma_stft",
        n_chroma=int(n_chroma),
        tuning=tuning,
    )
    res, info = run(y, spec, ["chroma"])
    if info.get("tuning_empty"):
        warnings.warn("Trying to estimate tuning from empty frequency set.", stacklevel=2)
    return res["chroma"]


def onset_strength(
    *,
    y: Any = None,
    sr: float = 22050,
    S: Any = None,
    lag: int = 1,
    max_size: int = 1,
    ref: Any = None,
    detrend: bool = False,
    center: bool = True,
    feature: Any = None,
    aggregate: Any = None,
    n_fft: int = 2048,
    hop_length: int = 512,
    **kwargs: Any,
) -> Any:
    """``librosa.onset.onset_strength`` of a device array (log-mel flux, mean or median over
    bands): (..., frames) float32."""
    _only(
        "onset_strength",
        S=(None if S is None else "array", None),
        max_size=(max_size, 1),
        ref=(None if ref is None else "array", None),
        detrend=(detrend, False),
        feature=(None if feature is None else "callable", None),
    )
    if aggregate is None or aggregate is np.mean:
        output = "onset"
    elif aggregate is np.median:
        output = "onset_median"
    else:
        raise ParameterError(
            "onset_strength: the CUDA backend aggregates with np.mean or np.median"
        )
    kwargs.setdefault("fmax", 0.5 * sr)
    spec = _mel_spec(
        sr,
        n_fft,
        hop_length,
        kwargs.pop("win_length", None),
        kwargs.pop("window", "hann"),
        center,
        kwargs.pop("pad_mode", "constant"),
        2.0,
        "onset_strength",
        kwargs,
        onset_lag=int(lag),
    )
    env = run(y, spec, [output])[0][output]
    return env[..., 0, :]


def tempo(
    *,
    y: Any = None,
    sr: float = 22050,
    onset_envelope: Any = None,
    hop_length: int = 512,
    **kwargs: Any,
) -> np.ndarray:
    """``librosa.feature.tempo`` of a device array: the onset envelope on the device, the
    tempogram on the host (numpy result, as the estimate is a handful of numbers)."""
    from ..audio import tempo as cpu_tempo

    if onset_envelope is None:
        onset_envelope = onset_strength(y=y, sr=sr, hop_length=hop_length)
    env = (
        _arrays.to_host(onset_envelope)
        if _arrays.is_device_array(onset_envelope)
        else onset_envelope
    )
    return np.asarray(cpu_tempo(onset_envelope=env, sr=sr, hop_length=hop_length, **kwargs))


def beat_track(
    *,
    y: Any = None,
    sr: float = 22050,
    onset_envelope: Any = None,
    hop_length: int = 512,
    **kwargs: Any,
) -> tuple[Any, Any]:
    """``librosa.beat.beat_track`` of a device array: the median onset envelope on the device,
    moved to the host (one value per frame) for the dynamic programme."""
    from ..audio import beat_track as cpu_beat_track

    if onset_envelope is None:
        onset_envelope = onset_strength(y=y, sr=sr, hop_length=hop_length, aggregate=np.median)
    env = (
        _arrays.to_host(onset_envelope)
        if _arrays.is_device_array(onset_envelope)
        else onset_envelope
    )
    return cpu_beat_track(onset_envelope=env, sr=sr, hop_length=hop_length, **kwargs)  # type: ignore[no-any-return]


def zero_crossing_rate(
    y: Any,
    *,
    frame_length: int = 2048,
    hop_length: int = 512,
    center: bool = True,
    threshold: float = 1e-10,
    ref_magnitude: Any = None,
    zero_pos: bool = True,
    **kwargs: Any,
) -> Any:
    """``librosa.feature.zero_crossing_rate`` of a device array: (..., 1, t) float64."""
    _only("zero_crossing_rate", ref_magnitude=(None if ref_magnitude is None else "set", None))
    if kwargs:
        raise ParameterError(f"unexpected arguments for zero_crossing_rate: {sorted(kwargs)}")
    spec = PlanSpec(
        frame_length=int(frame_length),
        temporal_hop=int(hop_length),
        temporal_center=bool(center),
        zcr_threshold=float(threshold),
        zero_pos=bool(zero_pos),
    )
    return run(y, spec, ["zcr"])[0]["zcr"]


def rms(
    *,
    y: Any = None,
    S: Any = None,
    frame_length: int = 2048,
    hop_length: int = 512,
    center: bool = True,
    pad_mode: Any = "constant",
    dtype: Any = np.float32,
) -> Any:
    """``librosa.feature.rms`` of a device array: (..., 1, t) of ``dtype`` (float32)."""
    _only("rms", S=(None if S is None else "array", None), pad_mode=(pad_mode, "constant"))
    if y is None:
        raise ParameterError("Either `y` or `S` must be input.")
    spec = PlanSpec(
        frame_length=int(frame_length), temporal_hop=int(hop_length), temporal_center=bool(center)
    )
    return run(y, spec, ["rms"], final_dtypes={"rms": np.dtype(dtype).name})[0]["rms"]


FULL_SET = (
    "mel",
    "mfcc",
    "mfcc_delta",
    "mfcc_delta2",
    "chroma",
    "centroid",
    "bandwidth",
    "rolloff",
    "flux",
    "contrast",
    "flatness",
    "onset",
    "zcr",
    "rms",
)


def extract_features(
    y: Any,
    *,
    sr: float = 22050,
    features: Any = FULL_SET,
    n_fft: int = 2048,
    hop_length: int = 512,
    n_mels: int = 128,
    n_mfcc: int = 13,
    delta_width: int = 9,
    tuning: float | None = None,
    **spec: Any,
) -> dict[str, Any]:
    """Every requested frame-level feature of a batch from ONE plan: one STFT per signal feeds
    all of them (a second STFT pass only for chroma with estimated tuning).

    Parameters
    ----------
    y : device array [shape=(..., n)], float32 or float64
    features : iterable of str
        Any of ``mel``, ``mel_db``, ``mfcc``, ``mfcc_delta``, ``mfcc_delta2``, ``chroma``,
        ``centroid``, ``bandwidth``, ``rolloff``, ``flux``, ``contrast``, ``flatness``,
        ``onset``, ``onset_median``, ``zcr``, ``rms``, ``stft``, ``spectrum``.

    Returns
    -------
    dict
        ``{name: array}`` of the input's kind, shapes ``(..., rows, frames)`` (the onset
        envelopes ``(..., frames)``), plus ``"tuning"`` (float) when chroma was estimated.
    """
    names = list(features)
    plan_spec = PlanSpec(
        sr=sr,
        n_fft=n_fft,
        hop_length=hop_length,
        n_mels=n_mels,
        n_mfcc=n_mfcc,
        delta_width=delta_width,
        tuning=tuning,
        temporal_hop=hop_length,
        **spec,
    )
    res, info = run(y, plan_spec, names)
    out: dict[str, Any] = {}
    for name, arr in res.items():
        out[name] = arr[..., 0, :] if name in ("onset", "onset_median") else arr
    if "chroma" in names:
        out["tuning"] = float(info["tuning"])
    return out
