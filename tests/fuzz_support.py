"""The error-contract fuzzer shared by ``tests/test_fuzz.py`` (CI) and
``benchmarks/fuzz_contract.py`` (the long run).

Each case is one public audio function called through ``ml_utilities.compat.librosa`` (which
runs ml_utilities' own code where it implements the name and forwards to librosa otherwise) and
the same call on librosa 0.11 where it is installed, with hypothesis-drawn arrays (empty, one
sample, short, batched; zeros, tiny, huge, NaN, inf; float32, float64, integer, complex) and
drawn keyword arguments (valid values and invalid ones: negative, zero, NaN, inf, wrong types).
:func:`classify` sorts the two outcomes into the classes below; the ``FAILURES`` are what the
contract forbids.

Tolerances are the ones the parity tests use for each function (relative Frobenius error in
tests/test_*.py), applied element by element: ``|a - e| <= tol * (|e| + max|e|)`` on the finite
entries, and the non-finite entries equal (NaN where NaN, the same infinity where infinite).
"""

from __future__ import annotations

import io
import math
import os
import re
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from hypothesis import strategies as st

import ml_utilities.compat.librosa as L
from ml_utilities.exceptions import AudioFileError, ParameterError

try:
    import librosa
except ImportError:  # the fuzzer still checks our side alone
    librosa = None

NAN = float("nan")
INF = float("inf")

#: Invalid values drawn for integer-like and float-like parameters.
BAD_INT = [0, -1, -2048, 2.5, NAN, INF, "512", True, [4]]
BAD_FLOAT = [NAN, INF, -INF, -1.0, 0.0, "x", [1.0]]

# -- outcome classes ----------------------------------------------------------------------------

AGREE = "both succeed, same numbers"
BOTH_REFUSE = "both raise, ours a ParameterError naming the value"
OURS_ONLY_OK = "no librosa: ours succeeds"
OURS_ONLY_REFUSE = "no librosa: ours raises a ParameterError naming the value"
DELIBERATE_REFUSAL = "we refuse, librosa succeeds: a documented deliberate refusal"
DELIBERATE_ACCEPT = "we succeed, librosa raises: a documented deliberate acceptance"
AGREE_F64 = "both succeed, same numbers as librosa on the float64 input (its float32 overflows)"
DELIBERATE_NUMBERS = "both succeed, different numbers: a documented deliberate difference"
MISMATCH = "FAIL: both succeed, different numbers"
UNNAMED = "FAIL: ParameterError whose message names no argument and value"
GAP = "FAIL: we raise, librosa succeeds (API gap)"
LAX = "FAIL: we succeed, librosa raises"
WRONG_TYPE = "FAIL: we raise an exception outside the contract"

FAILURES = (MISMATCH, UNNAMED, GAP, LAX, WRONG_TYPE)


@dataclass
class Case:
    """One drawn call: ``function(*args, **kwargs)``."""

    name: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    notes: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        parts = [_short(a) for a in self.args]
        parts += [f"{k}={_short(v)}" for k, v in self.kwargs.items()]
        return f"{self.name}({', '.join(parts)}) {self.notes}"


def _short(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"array(shape={value.shape}, dtype={value.dtype})"
    if isinstance(value, io.BytesIO):
        return f"BytesIO({len(value.getvalue())} bytes)"
    text = repr(value)
    return text if len(text) < 60 else text[:57] + "..."


# -- drawn arrays -------------------------------------------------------------------------------

SCALES = [1.0, 1.0, 1.0, 0.5, 0.0, 1e-3, 1e-20, 1e-40, 1e17, 1e30]
SPECIALS = [None, None, None, None, None, None, "nan", "inf", "-inf"]


@st.composite
def signals(draw: Any, *, allow_bad_dtype: bool = True) -> tuple[np.ndarray, dict[str, Any]]:
    """An audio signal ``(n,)`` or ``(2, n)`` and a description of how it was drawn."""
    layout = draw(st.sampled_from(["empty", "one", "short", "short", "long", "batch", "0-d"]))
    n = {
        "empty": 0,
        "one": 1,
        "short": draw(st.integers(2, 700)),
        "long": draw(st.integers(2048, 6000)),
        "batch": draw(st.integers(1, 3000)),
        "0-d": 1,
    }[layout]
    dtypes = ["float32", "float32", "float64"]
    if allow_bad_dtype:
        dtypes += ["int16", "complex64"]
    dtype = draw(st.sampled_from(dtypes))
    scale = draw(st.sampled_from(SCALES))
    special = draw(st.sampled_from(SPECIALS))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 22050.0
    shape = (2, n) if layout == "batch" else (n,)
    y = 0.5 * np.sin(2 * np.pi * rng.uniform(50, 5000) * t) + 0.1 * rng.standard_normal(shape)
    y = y * scale
    if special is not None and y.size:
        y.flat[int(rng.integers(y.size))] = float(special)
    with np.errstate(all="ignore"):
        if dtype == "int16":
            y = np.clip(np.nan_to_num(y * 1000), -32768, 32767).astype(np.int16)
        else:
            y = y.astype(dtype)
    if layout == "0-d":
        y = y.reshape(())
    return y, {"layout": layout, "dtype": dtype, "scale": scale, "special": special}


@st.composite
def spectrograms(draw: Any, *, complex_: bool = False) -> tuple[np.ndarray, dict[str, Any]]:
    """A non-negative (or complex) matrix ``(d, t)``, ``(2, d, t)`` or ``(t,)``."""
    d = draw(st.sampled_from([0, 1, 2, 5, 33, 129, 1025]))
    t = draw(st.sampled_from([0, 1, 2, 3, 9, 40]))
    layout = draw(st.sampled_from(["2-d", "2-d", "2-d", "batch", "1-d"]))
    shape = {"2-d": (d, t), "batch": (2, d, t), "1-d": (t,)}[layout]
    scale = draw(st.sampled_from(SCALES))
    special = draw(st.sampled_from(SPECIALS))
    dtype = draw(st.sampled_from(["float32", "float64", "float64"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    S = np.abs(rng.standard_normal(shape)) ** 2 * scale
    if complex_:
        S = S * np.exp(2j * np.pi * rng.uniform(size=shape))
        dtype = "complex64" if dtype == "float32" else "complex128"
    if special is not None and S.size:
        S.flat[int(rng.integers(S.size))] = float(special)
    with np.errstate(all="ignore"):
        S = S.astype(dtype)
    return S, {"layout": layout, "dtype": dtype, "scale": scale, "special": special}


# -- drawn files --------------------------------------------------------------------------------

_TMP = tempfile.mkdtemp(prefix="mlu-fuzz-")
_counter = [0]
CORRUPTIONS = ["none", "truncate", "flip", "garbage", "empty", "header"]


@st.composite
def audio_files(draw: Any) -> tuple[Any, dict[str, Any]]:
    """A WAV/FLAC/OGG file (a path or a BytesIO), intact or corrupted."""
    import soundfile as sf

    fmt = draw(st.sampled_from(["WAV", "FLAC", "OGG"]))
    corruption = draw(st.sampled_from(CORRUPTIONS))
    channels = draw(st.sampled_from([1, 2]))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    data = (0.3 * rng.standard_normal((1600, channels))).astype(np.float32)
    buffer = io.BytesIO()
    sf.write(buffer, data, 16000, format=fmt)
    raw = bytearray(buffer.getvalue())
    if corruption == "truncate":
        raw = raw[: int(rng.integers(1, max(2, len(raw) - 1)))]
    elif corruption == "flip":
        for i in rng.integers(0, len(raw), size=int(rng.integers(1, 40))):
            raw[int(i)] ^= 0xFF
    elif corruption == "garbage":
        raw = bytearray(rng.integers(0, 256, size=int(rng.integers(1, 4000)), dtype=np.uint8))
    elif corruption == "empty":
        raw = bytearray()
    elif corruption == "header":
        raw = raw[:44]
    as_path = draw(st.booleans())
    if as_path:
        _counter[0] += 1
        path = os.path.join(_TMP, f"case{_counter[0]}.{fmt.lower()}")
        with open(path, "wb") as handle:
            handle.write(bytes(raw))
        source: Any = path
    else:
        source = io.BytesIO(bytes(raw))
    return source, {"format": fmt, "corruption": corruption, "as_path": as_path}


# -- the functions and their parameters ---------------------------------------------------------


def _p(valid: list[Any], bad: list[Any]) -> tuple[list[Any], list[Any]]:
    return valid, bad


N_FFT = _p([16, 64, 256, 512, 2048], BAD_INT)
HOP = _p([None, 8, 64, 128, 512], BAD_INT)
HOP_INT = _p([64, 128, 512], BAD_INT)
SR = _p([22050, 8000, 44100.0, 16000], [0, -1, NAN, INF, "22050", None])
CENTER = _p([True, False], ["no", None])
WINDOW = _p(["hann", "hamming", "boxcar"], ["nope", 3.5])
PAD = _p(["constant", "reflect"], ["bogus"])
N_MELS = _p([8, 40, 128], [0, -1, 2.5, NAN])
POWER = _p([2.0, 1.0], [0.0, -1.0, NAN, INF, "2"])


@dataclass
class Spec:
    """A fuzzed function: how to draw its inputs and what tolerance its parity tests use."""

    ours: Callable[[], Callable[..., Any]]
    theirs: Callable[[], Callable[..., Any]] | None
    data: str  # "y", "y=", "S", "data", "C" (complex STFT), "file"
    params: dict[str, tuple[list[Any], list[Any]]]
    tol: float
    atol: float = 0.0  # absolute, for outputs in decibels


def _mod(path: str) -> Callable[[], Callable[..., Any]]:
    def resolve_ours() -> Callable[..., Any]:
        obj: Any = L
        for part in path.split("."):
            obj = getattr(obj, part)
        return obj  # type: ignore[no-any-return]

    return resolve_ours


def _lib(path: str) -> Callable[[], Callable[..., Any]] | None:
    if librosa is None:
        return None

    def resolve_theirs() -> Callable[..., Any]:
        obj: Any = librosa
        for part in path.split("."):
            obj = getattr(obj, part)
        return obj  # type: ignore[no-any-return]

    return resolve_theirs


def _spec(path: str, data: str, params: dict[str, Any], tol: float, atol: float = 0.0) -> Spec:
    return Spec(_mod(path), _lib(path), data, params, tol, atol)


_STFT = {"n_fft": N_FFT, "hop_length": HOP_INT, "center": CENTER}
_SPECTRAL = {"sr": SR, **_STFT}

SPECS: dict[str, Spec] = {
    "stft": _spec(
        "stft",
        "y",
        {
            "n_fft": N_FFT,
            "hop_length": HOP,
            "win_length": _p([None, 16], BAD_INT),
            "window": WINDOW,
            "center": CENTER,
            "pad_mode": PAD,
        },
        1e-4,
    ),
    "istft": _spec(
        "istft",
        "C",
        {
            "hop_length": HOP,
            "n_fft": _p([None, 64, 256], BAD_INT),
            "window": WINDOW,
            "center": CENTER,
            "length": _p([None, 100, 1], [-1, 2.5, NAN]),
        },
        1e-6,
    ),
    "melspectrogram": _spec(
        "feature.melspectrogram",
        "y=",
        {
            **_SPECTRAL,
            "power": POWER,
            "n_mels": N_MELS,
            "fmin": _p([0.0, 100.0], [-1.0, NAN, INF]),
            "fmax": _p([None, 4000.0], [-1.0, NAN]),
            "htk": _p([False, True], []),
        },
        1e-4,
    ),
    "mfcc": _spec(
        "feature.mfcc",
        "y=",
        {
            **_SPECTRAL,
            "n_mfcc": _p([1, 13, 20], [0, -1, 2.5, NAN]),
            "dct_type": _p([1, 2, 3], [0, 4, NAN]),
            "norm": _p(["ortho", None], ["bogus"]),
            "lifter": _p([0, 22, 1.5], [-1, NAN, INF]),
            "n_mels": N_MELS,
        },
        1e-4,
    ),
    "chroma_stft": _spec(
        "feature.chroma_stft",
        "y=",
        {
            **_SPECTRAL,
            "n_chroma": _p([12, 24], [0, -1, 2.5]),
            "norm": _p([INF, 1, 2, None], [-3, "x"]),
            "tuning": _p([None, 0.0, 0.25], [NAN, INF]),
        },
        1e-3,
    ),
    "spectral_centroid": _spec("feature.spectral_centroid", "y=", _SPECTRAL, 1e-4),
    "spectral_bandwidth": _spec(
        "feature.spectral_bandwidth",
        "y=",
        {**_SPECTRAL, "p": _p([1, 2, 3], [0, -1, NAN]), "norm": _p([True, False], [])},
        1e-4,
    ),
    "spectral_rolloff": _spec(
        "feature.spectral_rolloff",
        "y=",
        {**_SPECTRAL, "roll_percent": _p([0.85, 0.5, 0.99], [0.0, 1.0, 1.5, -0.1, NAN])},
        1e-4,
    ),
    "spectral_contrast": _spec(
        "feature.spectral_contrast",
        "y=",
        {
            **_SPECTRAL,
            "fmin": _p([200.0, 100.0], [0.0, -1.0, NAN]),
            "n_bands": _p([6, 3], [0, -1, 2.5]),
            "quantile": _p([0.02, 0.1], [0.0, 1.0, -0.1, NAN]),
            "linear": _p([False, True], []),
        },
        1e-4,
    ),
    "spectral_flatness": _spec(
        "feature.spectral_flatness",
        "y=",
        {**_STFT, "amin": _p([1e-10, 1e-5], [0.0, -1.0, NAN]), "power": POWER},
        1e-4,
    ),
    "rms": _spec(
        "feature.rms",
        "y=",
        {
            "frame_length": _p([2048, 256, 1], BAD_INT),
            "hop_length": HOP_INT,
            "center": CENTER,
            "pad_mode": PAD,
        },
        1e-6,
    ),
    "zero_crossing_rate": _spec(
        "feature.zero_crossing_rate",
        "y",
        {
            "frame_length": _p([2048, 256, 1], BAD_INT),
            "hop_length": HOP_INT,
            "center": CENTER,
            "threshold": _p([1e-10, 0.0, 0.1], [NAN, "x"]),
        },
        1e-6,
    ),
    "onset_strength": _spec(
        "onset.onset_strength",
        "y=",
        {
            "sr": SR,
            "hop_length": HOP_INT,
            "lag": _p([1, 2], [0, -1, 2.5]),
            "max_size": _p([1, 3], [0, -1, 2.5]),
            "detrend": _p([False, True], []),
            "center": _p([True, False], []),
            "n_mels": N_MELS,
        },
        1e-4,
    ),
    "tempo": _spec(
        "feature.tempo",
        "y=",
        {
            "sr": SR,
            "hop_length": HOP_INT,
            "start_bpm": _p([120.0, 60.0], [0.0, -1.0, NAN, INF]),
            "std_bpm": _p([1.0, 0.5], [0.0, -1.0, NAN]),
            "ac_size": _p([8.0, 4.0], [0.0, -1.0, NAN]),
            "max_tempo": _p([320.0, None, 200.0], [0.0, -1.0, NAN]),
        },
        1e-4,
    ),
    "beat_track": _spec(
        "beat.beat_track",
        "y=",
        {
            "sr": SR,
            "hop_length": HOP_INT,
            "start_bpm": _p([120.0, 60.0], [0.0, -1.0, NAN]),
            "tightness": _p([100.0, 50.0], [0.0, -1.0, NAN]),
            "trim": _p([True, False], []),
            "units": _p(["frames", "samples", "time"], ["bogus"]),
            "bpm": _p([None, 120.0], [0.0, -1.0, NAN]),
        },
        1e-4,
    ),
    "hpss": _spec(
        "effects.hpss",
        "y",
        {
            "kernel_size": _p([31, 5, (3, 5)], [0, -1, 2.5, (0, 3)]),
            "margin": _p([1.0, 2.0, (1.0, 2.0)], [0.5, -1.0, NAN]),
            "power": _p([2.0, 1.0], [-1.0, NAN]),
            "mask": _p([False, True], []),
            "n_fft": _p([2048, 512], BAD_INT),
        },
        1e-4,
    ),
    "decompose.hpss": _spec(
        "decompose.hpss",
        "S",
        {
            "kernel_size": _p([31, 5, (3, 5)], [0, -1, 2.5, (0, 3)]),
            "margin": _p([1.0, 2.0, (1.0, 2.0)], [0.5, -1.0, NAN]),
            "power": _p([2.0, 1.0], [-1.0, NAN]),
            "mask": _p([False, True], []),
        },
        1e-4,
    ),
    "cqt": _spec(
        "cqt",
        "y",
        {
            "sr": SR,
            "hop_length": _p([512, 256, 64], [0, -1, 2.5, 100]),
            "fmin": _p([None, 55.0, 110.0], [0.0, -1.0, NAN]),
            "n_bins": _p([84, 36, 12], [0, -1, 2.5]),
            "bins_per_octave": _p([12, 24], [0, -1, 2.5]),
            "filter_scale": _p([1, 0.5], [0, -1, NAN]),
            "norm": _p([1, 2, None], []),
            "sparsity": _p([0.01, 0.0], [-0.1, 1.5]),
            "tuning": _p([0.0, None], [NAN]),
        },
        1e-3,
    ),
    "tonnetz": _spec("feature.tonnetz", "y=", {"sr": SR}, 1e-3),
    "delta": _spec(
        "feature.delta",
        "data",
        {
            "width": _p([9, 3, 5], [1, 2, 4, 0, -1, 2.5]),
            "order": _p([1, 2], [0, -1, 2.5]),
            "axis": _p([-1, 0], [5, 2.5]),
            "mode": _p(["interp", "nearest", "mirror"], ["bogus"]),
        },
        2e-5,
    ),
    "power_to_db": _spec(
        "power_to_db",
        "S",
        {
            "ref": _p([1.0, np.max, 1e-3], [0.0, -1.0, NAN]),
            "amin": _p([1e-10, 1e-5], [0.0, -1.0, NAN]),
            "top_db": _p([80.0, None, 40.0], [-1.0, NAN]),
        },
        1e-5,
        atol=1e-4,  # dB: one float32 rounding of a -100 dB term is 7.6e-6
    ),
    "amplitude_to_db": _spec(
        "amplitude_to_db",
        "S",
        {
            "ref": _p([1.0, np.max, 1e-3], [0.0, -1.0, NAN]),
            "amin": _p([1e-5, 1e-10], [0.0, -1.0, NAN]),
            "top_db": _p([80.0, None, 40.0], [-1.0, NAN]),
        },
        1e-5,
        atol=1e-4,  # dB: one float32 rounding of a -100 dB term is 7.6e-6
    ),
    "resample": _spec(
        "resample",
        "y",
        {
            "orig_sr": _p([22050, 16000], [0, -1, NAN, INF, "x"]),
            "target_sr": _p([8000, 22050, 44100], [0, -1, NAN, INF, "x"]),
            "res_type": _p(["soxr_hq", "soxr_qq", "soxr_vhq"], ["bogus"]),
            "fix": _p([True, False], []),
            "scale": _p([False, True], []),
        },
        1e-5,
    ),
    "load": _spec(
        "load",
        "file",
        {
            "sr": _p([22050, None, 8000], [0, -1, NAN, "x"]),
            "mono": _p([True, False], []),
            "offset": _p([0.0, 0.01], [-1.0, NAN]),
            "duration": _p([None, 0.05], [-1.0, NAN]),
        },
        1e-6,
    ),
}

#: Functions whose librosa run is slow: fewer CI examples.
SLOW = {"cqt", "tonnetz", "tempo", "beat_track", "hpss"}

REQUIRED = {"resample": {"orig_sr": 22050, "target_sr": 8000}}


@st.composite
def cases(draw: Any, name: str) -> Case:
    """One drawn call of ``SPECS[name]``."""
    spec = SPECS[name]
    if spec.data == "file":
        data, notes = draw(audio_files())
    elif spec.data in ("S", "data"):
        data, notes = draw(spectrograms())
    elif spec.data == "C":
        data, notes = draw(spectrograms(complex_=True))
    else:
        data, notes = draw(signals())
    kwargs: dict[str, Any] = dict(REQUIRED.get(name, {}))
    valid_only = draw(st.booleans())
    chosen = draw(st.lists(st.sampled_from(sorted(spec.params)), max_size=3, unique=True))
    invalid: list[str] = []
    for key in chosen:
        valid, bad = spec.params[key]
        if valid_only or not bad or draw(st.booleans()):
            kwargs[key] = draw(st.sampled_from(valid))
        else:
            kwargs[key] = draw(st.sampled_from(bad))
            invalid.append(key)
    notes["invalid"] = invalid
    if spec.data in ("y=",):
        return Case(name, (), {"y": data, **kwargs}, notes)
    if spec.data == "file":
        return Case(name, (data,), kwargs, notes)
    return Case(name, (data,), kwargs, notes)


# -- running and classifying --------------------------------------------------------------------


@dataclass
class Outcome:
    value: Any = None
    error: BaseException | None = None


def _fresh(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, io.BytesIO):
        return io.BytesIO(value.getvalue())
    return value


def _call(function: Callable[..., Any], case: Case) -> Outcome:
    args = tuple(_fresh(a) for a in case.args)
    kwargs = {k: _fresh(v) for k, v in case.kwargs.items()}
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        try:
            return Outcome(value=function(*args, **kwargs))
        except Exception as exc:  # noqa: BLE001 - every exception is classified
            return Outcome(error=exc)
        finally:
            if case.name == "load":
                import gc

                gc.collect()  # audioread leaves a file it failed on open: warn in here


def _renderings(value: Any) -> list[str]:
    """Ways a message may spell ``value``."""
    if isinstance(value, np.ndarray):
        out = [str(value.shape), str(value.dtype), "nan", "inf", "finite", "empty", "length"]
        out += [str(n) for n in value.shape]
        return out
    if isinstance(value, io.BytesIO):
        return ["BytesIO", "file-like", "<_io"]
    out = [repr(value), str(value)]
    if isinstance(value, float):
        if math.isfinite(value):
            out += [f"{value:g}"]
            if value == int(value):
                out.append(str(int(value)))
        else:
            out += ["nan", "inf", "finite"]
    if isinstance(value, (tuple, list)):
        out += [repr(v) for v in value]
    return out


def names_a_value(message: str, case: Case, function: Callable[..., Any]) -> bool:
    """True when ``message`` names an argument (passed or defaulted) and its value."""
    import inspect

    named: dict[str, Any] = {}
    try:
        signature = inspect.signature(function)
        for key, param in signature.parameters.items():
            if param.default is not inspect.Parameter.empty:
                named[key] = param.default
        bound = signature.bind_partial(*case.args, **case.kwargs)
        named.update(bound.arguments)
        named.update(bound.arguments.get("kwargs", {}) or {})
    except (TypeError, ValueError):
        named.update(case.kwargs)
    named.update({"path": case.args[0]} if case.name == "load" and case.args else {})
    lowered = message.lower()
    if re.search(r"(?<![A-Za-z_])[A-Za-z_][A-Za-z_0-9.\[\]]*\s*=\s*[^\s,;)]", message):
        return True  # a name=value pair, such as "n_fft=2048" or "y.shape=(0,)"
    for key, value in named.items():
        if not re.search(rf"(?<![A-Za-z_]){re.escape(key)}(?![A-Za-z_])", message):
            continue
        if any(r and r.lower() in lowered for r in _renderings(value)):
            return True
    return False


def _as_arrays(value: Any) -> list[np.ndarray]:
    if isinstance(value, tuple):
        return [a for v in value for a in _as_arrays(v)]
    return [np.asarray(value)]


def same_numbers(ours: Any, theirs: Any, tol: float, atol: float = 0.0) -> bool:
    """Element-wise agreement at the parity tolerance, non-finite entries in the same places."""
    a_list, e_list = _as_arrays(ours), _as_arrays(theirs)
    if len(a_list) != len(e_list):
        return False
    for a, e in zip(a_list, e_list, strict=True):
        if a.shape != e.shape:
            return False
        if a.dtype.kind in "iub" and e.dtype.kind in "iub":
            if not np.array_equal(a, e):
                return False
            continue
        # one step of the result's own subnormal floor is below any tolerance one can promise
        floor = float(np.finfo(e.dtype).smallest_subnormal) if e.dtype.kind in "fc" else 0.0
        a = a.astype(np.complex128 if np.iscomplexobj(a) else np.float64)
        e = e.astype(np.complex128 if np.iscomplexobj(e) else np.float64)
        fa, fe = np.isfinite(a), np.isfinite(e)
        if not np.array_equal(fa, fe):
            return False
        if not np.array_equal(a[~fa], e[~fe], equal_nan=True):
            return False
        if fe.any():
            scale = float(np.max(np.abs(e[fe])))
            if not np.allclose(a[fa], e[fe], rtol=tol, atol=max(tol * scale, floor, atol)):
                return False
    return True


@dataclass
class Verdict:
    kind: str
    detail: str = ""


def _is_contract_error(exc: BaseException, case: Case) -> bool:
    if case.name == "load" and isinstance(exc, (AudioFileError, FileNotFoundError)):
        return True
    return isinstance(exc, ParameterError)


def _message_ok(exc: BaseException, case: Case, function: Callable[..., Any]) -> bool:
    if isinstance(exc, AudioFileError):
        return bool(exc.filename) and str(exc.filename) in str(exc)
    return names_a_value(str(exc), case, function)


def classify(case: Case) -> Verdict:
    """Run ``case`` on both sides and sort the pair of outcomes."""
    spec = SPECS[case.name]
    function = spec.ours()
    ours = _call(function, case)
    theirs = _call(spec.theirs(), case) if spec.theirs is not None else None

    def refusal_verdict(ok_kind: str) -> Verdict:
        exc = ours.error
        assert exc is not None
        if not _is_contract_error(exc, case):
            return Verdict(WRONG_TYPE, f"{type(exc).__module__}.{type(exc).__name__}: {exc}")
        if not _message_ok(exc, case, function):
            return Verdict(UNNAMED, f"{type(exc).__name__}: {exc}")
        return Verdict(ok_kind)

    if theirs is None:
        if ours.error is None:
            return Verdict(OURS_ONLY_OK)
        return refusal_verdict(OURS_ONLY_REFUSE)
    if ours.error is None and theirs.error is None:
        if same_numbers(ours.value, theirs.value, spec.tol, spec.atol):
            return Verdict(AGREE)
        if _agrees_in_float64(spec, case, ours.value):
            return Verdict(AGREE_F64)
        if _deliberate(DELIBERATE_DIFFERENCES, case):
            return Verdict(DELIBERATE_NUMBERS)
        return Verdict(MISMATCH, _diff(ours.value, theirs.value))
    if ours.error is not None and theirs.error is not None:
        return refusal_verdict(BOTH_REFUSE)
    if ours.error is not None:
        if _deliberate(DELIBERATE_REFUSALS, case):
            return refusal_verdict(DELIBERATE_REFUSAL)
        return Verdict(GAP, f"{type(ours.error).__name__}: {ours.error}")
    if _deliberate(DELIBERATE_ACCEPTANCES, case):
        return Verdict(DELIBERATE_ACCEPT)
    if _agrees_in_float64(spec, case, ours.value):
        return Verdict(AGREE_F64)
    assert theirs.error is not None
    return Verdict(LAX, f"librosa: {type(theirs.error).__name__}: {theirs.error}")


_AUDIO_KEYS = ("y", "S", "data")


def _agrees_in_float64(spec: Spec, case: Case, ours: Any) -> bool:
    """Whether ``ours`` equals librosa's answer for the same float32 audio given as float64.

    librosa squares float32 magnitudes in float32: past about 1e19 (or below 1e-19) its own
    result overflows or underflows (NaN, inf, "Input must be finite") where the float64 answer,
    rounded to float32, is what ml_utilities returns (issue 17: compute in float64 where
    float32 overflows). Only for finite float32 input at those scales.
    """
    if spec.theirs is None or case.notes.get("dtype") != "float32" or case.notes.get("special"):
        return False
    if case.notes.get("scale") not in (1e-40, 1e-20, 1e17, 1e30):
        return False
    args = tuple(
        a.astype(np.float64) if isinstance(a, np.ndarray) and a.dtype == np.float32 else a
        for a in case.args
    )
    kwargs = {
        k: v.astype(np.float64)
        if k in _AUDIO_KEYS and isinstance(v, np.ndarray) and v.dtype == np.float32
        else v
        for k, v in case.kwargs.items()
    }
    wide = _call(spec.theirs(), Case(case.name, args, kwargs, case.notes))
    if wide.error is not None:
        return False
    # round each float64 array to the dtype ours returned (integer results, beat frames, as
    # they are); a float64 answer past float32's range rounds to inf
    with np.errstate(all="ignore"):
        narrowed = [
            e.astype(a.dtype) if a.dtype.kind in "fc" and e.dtype.kind in "fc" else e
            for a, e in zip(_as_arrays(ours), _as_arrays(wide.value), strict=False)
        ]
    return same_numbers(ours, narrowed if len(narrowed) != 1 else narrowed[0], spec.tol, spec.atol)


def _diff(ours: Any, theirs: Any) -> str:
    a_list, e_list = _as_arrays(ours), _as_arrays(theirs)
    parts = []
    for a, e in zip(a_list, e_list, strict=False):
        if a.shape != e.shape:
            parts.append(f"shape {a.shape} vs {e.shape}")
        else:
            with np.errstate(all="ignore"):
                diff = np.abs(a.astype(complex) - e.astype(complex))
            finite = diff[np.isfinite(diff)]
            parts.append(
                f"max|diff|={finite.max() if finite.size else 0:.3g}, "
                f"non-finite ours {int(np.sum(~np.isfinite(a)))} vs {int(np.sum(~np.isfinite(e)))}"
            )
    return "; ".join(parts)


# -- documented differences and known problems --------------------------------------------------


def _deliberate(rules: list[tuple[str, str, Callable[[Case], bool]]], case: Case) -> bool:
    return any(name in (case.name, "*") and predicate(case) for name, _, predicate in rules)


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _nonfinite(case: Case) -> bool:
    return case.notes.get("special") is not None


def _signal_shorter_than_n_fft(c: Case) -> bool:
    y = c.args[0] if c.args else c.kwargs.get("y")
    return isinstance(y, np.ndarray) and y.ndim >= 1 and y.shape[-1] < c.kwargs.get("n_fft", 2048)


def _contrast_band_empty(c: Case) -> bool:
    from ml_utilities.audio.spectral import contrast_bands

    n_fft = c.kwargs.get("n_fft", 2048)
    sr = c.kwargs.get("sr", 22050)
    try:
        freq = np.fft.rfftfreq(int(n_fft), 1.0 / float(sr))
        contrast_bands(
            freq,
            sr,
            c.kwargs.get("fmin", 200.0),
            c.kwargs.get("n_bands", 6),
            c.kwargs.get("quantile", 0.02),
        )
    except Exception as exc:  # noqa: BLE001 - the refusal under test
        return "holds no frequency bin" in str(exc)
    return False


#: We refuse where librosa computes: each documented in docs/features.md or docs/reliability.md.
DELIBERATE_REFUSALS: list[tuple[str, str, Callable[[Case], bool]]] = [
    (
        "*",
        "sr <= 0: not a sampling rate (docs/reliability.md)",
        lambda c: isinstance(c.kwargs.get("sr"), (int, float)) and c.kwargs["sr"] <= 0,
    ),
    (
        "rms",
        "frame_length=0: frames of no samples (librosa returns NaN) (docs/reliability.md)",
        lambda c: c.kwargs.get("frame_length") == 0 and c.kwargs["frame_length"] is not False,
    ),
    (
        "*",
        "an infinite fmin or fmax: a filter bank of no frequencies (docs/reliability.md)",
        lambda c: any(
            isinstance(c.kwargs.get(k), float) and math.isinf(c.kwargs[k]) for k in ("fmin", "fmax")
        ),
    ),
    (
        "spectral_flatness",
        "power <= 0 or infinite: not a flatness (docs/reliability.md)",
        lambda c: (
            isinstance(c.kwargs.get("power"), (int, float)) and not 0 < c.kwargs["power"] < math.inf
        ),
    ),
    (
        "spectral_bandwidth",
        "p <= 0: not a bandwidth (docs/reliability.md)",
        lambda c: isinstance(c.kwargs.get("p"), (int, float)) and c.kwargs["p"] <= 0,
    ),
    (
        "*",
        "a center that is not True or False (librosa centres on any truthy value, 'no' "
        "included) (docs/reliability.md)",
        lambda c: "center" in c.kwargs and not isinstance(c.kwargs["center"], bool),
    ),
    (
        "spectral_contrast",
        "an octave band holding no frequency bin: librosa returns a NaN row (docs/reliability.md)",
        _contrast_band_empty,
    ),
    ("rms", "non-finite audio (docs/features.md, Deliberate differences)", _nonfinite),
    (
        "rms",
        "integer or complex y: audio must be real floating point (docs/reliability.md)",
        lambda c: c.notes.get("dtype", "").startswith(("complex", "int")),
    ),
    ("decompose.hpss", "non-finite S (docs/reliability.md)", _nonfinite),
    (
        "hpss",
        "effects.hpss(mask=True): librosa would inverse-transform the masks (docs/reliability.md)",
        lambda c: c.kwargs.get("mask") is True,
    ),
    (
        "*",
        "a NaN parameter that librosa turns into NaN output (docs/reliability.md)",
        lambda c: any(_is_nan(c.kwargs[k]) for k in c.notes.get("invalid", [])),
    ),
    (
        "*",
        "True/False where an integer is expected (docs/reliability.md)",
        lambda c: any(c.kwargs[k] is True for k in c.notes.get("invalid", [])),
    ),
]


#: We compute where librosa raises: each documented in docs/features.md.
def _window_reflects_twice(c: Case) -> bool:
    S = np.asarray(c.args[0] if c.args else c.kwargs.get("S"))
    kernel = np.broadcast_to(np.asarray(c.kwargs.get("kernel_size", 31)), (2,))
    # harmonic kernel across time (last axis), percussive across frequency
    return bool(S.shape[-1] <= kernel[0] // 2 or S.shape[-2] <= kernel[1] // 2)


#: both succeed with different numbers, and ours are the right ones
DELIBERATE_DIFFERENCES: list[tuple[str, str, Callable[[Case], bool]]] = [
    (
        "delta",
        "an infinity inside the data: the same entries are non-finite, but which of NaN and "
        "+-inf each holds, and the last bits of the finite entries beside them, follow the "
        "order of the filter's sums (docs/reliability.md)",
        lambda c: any(
            isinstance(a, np.ndarray) and np.isinf(a).any() for a in (*c.args, *c.kwargs.values())
        ),
    ),
    (
        "decompose.hpss",
        "a median window reflecting more than once at the edges: scipy's median_filter, which "
        "librosa calls, returns values that depend on the array's memory address there; ours "
        "is the median over the repeated reflection (docs/reliability.md)",
        _window_reflects_twice,
    ),
    (
        "hpss",
        "effects.hpss of a signal shorter than n_fft: librosa's inverse STFT divides by a "
        "vanishing window sum (NaN or huge values); ours keeps harmonic + percussive = y "
        "(docs/reliability.md)",
        _signal_shorter_than_n_fft,
    ),
]

DELIBERATE_ACCEPTANCES: list[tuple[str, str, Callable[[Case], bool]]] = [
    (
        "delta",
        "an empty data axis gives an empty result; librosa fails in LAPACK (docs/reliability.md)",
        lambda c: 0 in c.args[0].shape,
    ),
    (
        "stft",
        "n_fft=1 with hop_length >= 2 (docs/features.md, Deliberate differences)",
        lambda c: c.kwargs.get("n_fft") == 1,
    ),
]


def run_case(case: Case) -> tuple[str, str]:
    """(outcome class, detail) for one case.

    Warnings are silenced around the comparison too (pytest turns them into errors): a cast or
    a difference of huge values warns, and whether it does must not decide the outcome."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        verdict = classify(case)
    return verdict.kind, verdict.detail
