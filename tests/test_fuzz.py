"""The error-contract fuzzer (issue 17): every public audio function, through
``ml_utilities.compat.librosa``, against librosa 0.11 on hypothesis-drawn arrays and arguments.

Each drawn call must end in a class outside ``fuzz_support.FAILURES``: the same numbers as
librosa, or a ``ParameterError`` (``AudioFileError`` for files) naming the value where librosa
raises too, or a documented deliberate difference. The CI run draws a few dozen derandomized
calls per function; ``python3 benchmarks/fuzz_contract.py --cases 10008`` is the long run, with
counts per outcome class and per function.
"""

from __future__ import annotations

import gc
import io
import pickle
import warnings

import fuzz_support as fz
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ml_utilities
import ml_utilities.compat.librosa as L
from ml_utilities import AudioFileError, ParameterError

CI = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)


def _check(case: fz.Case) -> None:
    kind, detail = fz.run_case(case)
    assert kind not in fz.FAILURES, f"{kind}: {case.describe()} :: {detail}"


@pytest.mark.parametrize("name", sorted(fz.SPECS))
@CI
@given(data=st.data())
def test_fuzz_contract(name, data):
    if name in fz.SLOW and data.draw(st.integers(0, 1), label="thin out slow functions"):
        _check(data.draw(fz.cases(name).filter(lambda c: not c.notes.get("layout") == "long")))
        return
    _check(data.draw(fz.cases(name)))


# -- the contract's pieces, one by one ----------------------------------------------------------


def test_names_a_value_rejects_messages_without_a_value():
    case = fz.Case("rms", (), {"y": np.zeros(3, np.float32), "frame_length": -1})
    function = fz.SPECS["rms"].ours()
    assert not fz.names_a_value("must be a positive integer", case, function)
    assert fz.names_a_value("frame_length=-1 must be a positive integer", case, function)
    assert fz.names_a_value("frame_length must be positive, got -1", case, function)


def test_same_numbers_compares_nonfinite_positions():
    a = np.array([1.0, np.nan, np.inf])
    assert fz.same_numbers(a, a.copy(), 1e-6)
    assert not fz.same_numbers(a, np.array([1.0, np.nan, -np.inf]), 1e-6)
    assert not fz.same_numbers(a, np.array([1.0, 0.0, np.inf]), 1e-6)
    assert not fz.same_numbers(np.array([1.0, 2.0]), np.array([1.0, 2.1]), 1e-4)


def test_forwarded_librosa_error_is_ours_and_librosas():
    librosa = pytest.importorskip("librosa")
    with pytest.raises(ParameterError, match=r"transition\.shape=\(2, 2\)") as info:
        L.sequence.viterbi(np.zeros((3, 3)), np.zeros((2, 2)))
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, librosa.util.exceptions.ParameterError)
    assert isinstance(info.value.__cause__, librosa.util.exceptions.ParameterError)
    again = pickle.loads(pickle.dumps(info.value))
    assert type(again) is type(info.value) and again.args == info.value.args


def test_forwarded_value_and_arithmetic_errors_become_parameter_errors():
    pytest.importorskip("librosa")
    with pytest.raises(ParameterError, match=r"istft\(array\(shape=\(2, 0\)") as info:
        L.istft(np.zeros((2, 0), dtype=np.complex64))
    assert isinstance(info.value.__cause__, ZeroDivisionError)
    with pytest.raises(TypeError, match="unexpected keyword"):
        L.istft(np.zeros((3, 3), dtype=np.complex64), no_such_argument=1)


@pytest.mark.parametrize(
    "raw", [b"", b"RIFF\x10\x00\x00\x00WAVEjunk" * 8, bytes(range(256)) * 4], ids=len
)
@pytest.mark.parametrize("as_path", [True, False])
def test_corrupt_audio_raises_audio_file_error(tmp_path, raw, as_path):
    source = tmp_path / "corrupt.wav" if as_path else io.BytesIO(raw)
    if as_path:
        source.write_bytes(raw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # librosa's audioread fallback warns
        with pytest.raises(AudioFileError) as info:
            L.load(source)
        gc.collect()  # audioread leaves the file open on failure: let it warn in here
    error = info.value
    assert isinstance(error, OSError) and isinstance(error, ml_utilities.MLUtilitiesError)
    assert error.__cause__ is not None
    name = str(source) if as_path else repr(source)
    assert error.filename == name and repr(name) in str(error)
    reason = str(error).split(": ", 1)[1]
    assert reason.strip() and not reason.endswith(": ")
