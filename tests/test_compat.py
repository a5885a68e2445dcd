"""ml_utilities.compat.librosa: librosa's module paths, our functions, librosa for the rest."""

from __future__ import annotations

import importlib
import subprocess
import sys

import numpy as np
import pytest

import ml_utilities.audio as audio
import ml_utilities.compat.librosa as L
from ml_utilities.bench import relative_error, synthetic_clip
from ml_utilities.exceptions import MLUtilitiesError, ParameterError


def chirp(seconds: float) -> np.ndarray:
    return synthetic_clip(seconds)


# compat module path -> names ml_utilities implements there
IMPLEMENTED = {
    "": [
        "stft",
        "power_to_db",
        "amplitude_to_db",
        "db_to_power",
        "db_to_amplitude",
        "load",
        "resample",
        "get_duration",
        "get_samplerate",
        "frames_to_time",
        "time_to_frames",
        "frames_to_samples",
        "samples_to_frames",
        "time_to_samples",
        "samples_to_time",
        "fft_frequencies",
        "mel_frequencies",
        "hz_to_mel",
        "mel_to_hz",
    ],
    "core": [
        "stft",
        "power_to_db",
        "load",
        "resample",
        "get_duration",
        "frames_to_time",
        "fft_frequencies",
        "mel_frequencies",
    ],
    "core.spectrum": ["stft", "power_to_db", "amplitude_to_db", "db_to_power", "db_to_amplitude"],
    "core.audio": ["load", "resample", "get_duration", "get_samplerate"],
    "core.convert": ["frames_to_time", "time_to_frames", "fft_frequencies", "hz_to_mel"],
    "feature": ["melspectrogram", "mfcc", "delta"],
    "feature.spectral": ["melspectrogram", "mfcc"],
    "feature.utils": ["delta"],
    "filters": ["mel", "get_window", "dct"],
}


def compat_module(path: str):
    return importlib.import_module("ml_utilities.compat.librosa" + (f".{path}" if path else ""))


@pytest.fixture
def no_librosa(monkeypatch):
    """Make `import librosa` fail as if it were not installed."""
    monkeypatch.setitem(sys.modules, "librosa", None)
    for name in [n for n in sys.modules if n.startswith("librosa.")]:
        monkeypatch.delitem(sys.modules, name)
    return monkeypatch


@pytest.mark.parametrize("path", list(IMPLEMENTED))
def test_implemented_names_are_ml_utilities(path):
    module = compat_module(path)
    for name in IMPLEMENTED[path]:
        assert getattr(module, name) is getattr(audio, name), f"{path}.{name}"


def test_exceptions_are_ml_utilities():
    assert L.ParameterError is ParameterError
    assert L.util.exceptions.ParameterError is ParameterError
    assert L.LibrosaError is MLUtilitiesError
    assert L.util.exceptions.LibrosaError is MLUtilitiesError
    from ml_utilities.compat.librosa.util.exceptions import ParameterError as imported

    assert imported is ParameterError
    assert issubclass(L.ParameterError, ValueError)


def test_import_statements_work():
    import ml_utilities.compat.librosa.core.spectrum
    import ml_utilities.compat.librosa.feature.spectral
    from ml_utilities.compat.librosa import feature, filters
    from ml_utilities.compat.librosa.feature import mfcc

    assert mfcc is audio.mfcc
    assert feature.delta is audio.delta and filters.mel is audio.mel
    assert ml_utilities.compat.librosa.core.spectrum.stft is audio.stft
    assert ml_utilities.compat.librosa.feature.spectral.mfcc is audio.mfcc
    namespace: dict = {}
    exec("from ml_utilities.compat.librosa import *", namespace)
    assert namespace["stft"] is audio.stft and namespace["feature"] is L.feature


def test_submodules_and_dir():
    for name in ("core", "feature", "filters", "util", "effects", "onset", "beat", "decompose"):
        assert getattr(L, name).__name__ == f"ml_utilities.compat.librosa.{name}"
    assert {"stft", "load", "feature", "filters", "ParameterError"} <= set(dir(L))
    assert {"mfcc", "melspectrogram", "delta", "spectral"} <= set(dir(L.feature))


def test_import_is_light():
    code = (
        "import sys, ml_utilities.compat.librosa as L; "
        "L.feature; L.filters; L.core.spectrum; L.util.exceptions; L.effects; "
        "bad = [n for n in ('librosa', 'scipy', 'soundfile', 'soxr') if n in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_private_names_do_not_forward(no_librosa):
    with pytest.raises(AttributeError, match="_private") as info:
        L._private  # noqa: B018
    assert "librosa is not installed" not in str(info.value)
    assert not hasattr(L.feature, "__wrapped__")


# -- with librosa: forwarding ---------------------------------------------------------------


@pytest.fixture(scope="module")
def librosa():
    return pytest.importorskip("librosa")


@pytest.mark.parametrize("path", list(IMPLEMENTED))
def test_layout_matches_librosa(librosa, path):
    real = importlib.import_module("librosa" + (f".{path}" if path else ""))
    for name in IMPLEMENTED[path]:
        if (path, name) == ("filters", "dct"):
            continue  # librosa 0.11 dropped filters.dct; ml_utilities keeps one
        assert hasattr(real, name), f"librosa.{path}.{name}"


def test_forwarded_functions(librosa):
    y = chirp(seconds=1.0)
    assert L.note_to_hz("A4") == librosa.note_to_hz("A4")
    assert L.feature.chroma_cens.__wrapped__ is librosa.feature.chroma_cens
    np.testing.assert_array_equal(
        L.feature.zero_crossing_rate(y=y), librosa.feature.zero_crossing_rate(y=y)
    )
    assert L.effects.harmonic.__wrapped__ is librosa.effects.harmonic
    assert L.beat.plp.__wrapped__ is librosa.beat.plp
    assert L.decompose.nn_filter.__wrapped__ is librosa.decompose.nn_filter
    assert L.util.frame.__wrapped__ is librosa.util.frame
    assert L.filters.chroma.__wrapped__ is librosa.filters.chroma
    assert L.feature.chroma_cens is L.feature.chroma_cens  # one wrapper per function
    # What ml_utilities implements natively is ours, not librosa's.
    from ml_utilities import audio

    assert L.feature.chroma_stft is audio.chroma_stft
    assert L.effects.hpss is audio.effects_hpss and L.decompose.hpss is audio.hpss
    assert L.onset.onset_detect is audio.onset_detect and L.beat.beat_track is audio.beat_track
    assert L.feature.rms is audio.rms and L.cqt is audio.cqt
    # Modules are forwarded behind a proxy whose functions translate librosa's errors.
    assert L.display.__name__ == "librosa.display" and L.display is L.display
    assert L.feature.inverse.mel_to_stft.__wrapped__ is librosa.feature.inverse.mel_to_stft
    assert set(dir(L.feature.inverse)) == set(dir(librosa.feature.inverse))


def test_forwarded_errors_are_our_parameter_error(librosa):
    with pytest.raises(L.ParameterError, match="too short") as info:
        L.util.frame(np.zeros(5), frame_length=10, hop_length=1)
    assert isinstance(info.value.__cause__, librosa.ParameterError)
    with pytest.raises(ValueError):
        L.util.frame(np.zeros(5), frame_length=10, hop_length=1)


def test_unknown_name_with_librosa(librosa):
    with pytest.raises(AttributeError, match="'no_such_function'"):
        L.no_such_function  # noqa: B018
    with pytest.raises(AttributeError, match="'no_such_feature'"):
        L.feature.no_such_feature  # noqa: B018
    assert not hasattr(L.effects, "no_such_effect")


def test_drop_in_results_match(librosa):
    y = chirp(seconds=2.0)
    assert relative_error(np.abs(L.stft(y)), np.abs(librosa.stft(y))) <= 1e-5
    assert (
        relative_error(L.feature.melspectrogram(y=y), librosa.feature.melspectrogram(y=y)) <= 1e-4
    )
    mfcc = L.feature.mfcc(y=y, n_mfcc=13)
    expected = librosa.feature.mfcc(y=y, n_mfcc=13)
    assert mfcc.shape == expected.shape and mfcc.dtype == expected.dtype
    assert relative_error(mfcc, expected) <= 1e-4
    assert relative_error(L.feature.delta(mfcc), librosa.feature.delta(expected)) <= 1e-4
    np.testing.assert_array_equal(
        L.frames_to_time(np.arange(5)), librosa.frames_to_time(np.arange(5))
    )


# -- without librosa --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("", "chroma_stft"),
        ("feature", "chroma_cens"),
        ("effects", "harmonic"),
        ("beat", "plp"),
        ("decompose", "nn_filter"),
        ("util", "frame"),
        ("filters", "chroma"),
        ("core", "vqt"),
        ("feature.spectral", "poly_features"),
        ("", "display"),
    ],
)
def test_missing_librosa_names_the_attribute(no_librosa, path, name):
    module = compat_module(path)
    with pytest.raises(AttributeError) as info:
        getattr(module, name)
    message = str(info.value)
    assert repr(name) in message
    assert "ml_utilities does not implement" in message
    assert "librosa is not installed" in message
    assert not hasattr(module, name)


def test_implemented_names_work_without_librosa(no_librosa):
    np.testing.assert_array_equal(L.frames_to_time([0, 2]), [0.0, 1024 / 22050])
    assert L.feature.mfcc is audio.mfcc
    assert L.util.exceptions.ParameterError is ParameterError
    y = chirp(seconds=0.5)
    assert L.feature.mfcc(y=y, n_mfcc=13).shape == (13, 1 + y.size // 512)
    assert "librosa" not in sys.modules or sys.modules["librosa"] is None
