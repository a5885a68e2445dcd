"""Bad input to filters.mel, get_window, dct and delta: a ParameterError (a ValueError) naming
the bad value wherever librosa or scipy raise, and never a crash in the core."""

from __future__ import annotations

import warnings

import librosa
import numpy as np
import pytest

from ml_utilities import ParameterError, _core
from ml_utilities.audio import delta, filters

LibrosaError = librosa.util.exceptions.ParameterError


# ------------------------------------------------------------------------------ mel


@pytest.mark.parametrize(
    "norm, match, ref_error",
    [
        ("foo", "Unsupported norm=foo", LibrosaError),
        ("Slaney", "Unsupported norm=Slaney", LibrosaError),
        (-1, "Unsupported norm: -1", LibrosaError),
        (-0.5, "Unsupported norm: -0.5", LibrosaError),
        (True, "Unsupported norm: True", LibrosaError),
        (np.nan, "Unsupported norm: nan", LibrosaError),
    ],
)
def test_mel_bad_norm(norm, match, ref_error):
    with pytest.raises(ParameterError, match=match):
        filters.mel(sr=22050, n_fft=512, norm=norm)
    with pytest.raises(ref_error):
        librosa.filters.mel(sr=22050, n_fft=512, norm=norm)


@pytest.mark.parametrize("norm", [None, 1, 2.0, np.inf])
def test_mel_non_finite_weights(norm):
    # fmin == fmax on an FFT bin (500 Hz = 16 * 16000/512): zero-width bands, 0/0 there.
    with pytest.raises(ParameterError, match="Input must be finite"):
        filters.mel(sr=16000, n_fft=512, n_mels=8, fmin=500.0, fmax=500.0, norm=norm)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # numpy's divide-by-zero
        with pytest.raises(LibrosaError, match="Input must be finite"):
            librosa.filters.mel(sr=16000, n_fft=512, n_mels=8, fmin=500.0, fmax=500.0, norm=norm)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(n_fft=0), "n_fft=0"),
        (dict(n_fft=-4), "n_fft=-4"),
        (dict(n_fft=512.0), "n_fft=512.0"),
        (dict(n_fft=512, sr=0), "sr=0"),
        (dict(n_fft=512, sr=-8000), "sr=-8000"),
        (dict(n_fft=512, n_mels=-1), "n_mels=-1"),
        (dict(n_fft=512, dtype=np.int32), "int32"),
        (dict(n_fft=512, dtype=np.complex64), "complex64"),
    ],
)
def test_mel_bad_sizes(kwargs, match):
    kwargs = {"sr": 22050, **kwargs}
    with pytest.raises(ParameterError, match=match):
        filters.mel(**kwargs)


def test_mel_core_rejects_bad_arguments():
    with pytest.raises(ParameterError, match="norm_kind"):
        _core.filters.mel(22050.0, 512, 10, 0.0, 8000.0, False, "l2", 2.0, "float32")
    with pytest.raises(ParameterError, match="dtype"):
        _core.filters.mel(22050.0, 512, 10, 0.0, 8000.0, False, "slaney", 0.0, "float16")
    with pytest.raises(ParameterError, match="n_mels"):
        _core.filters.mel(22050.0, 512, -3, 0.0, 8000.0, False, "slaney", 0.0, "float32")
    with pytest.raises(ParameterError, match="n_fft"):
        _core.filters.mel(22050.0, 0, 10, 0.0, 8000.0, False, "slaney", 0.0, "float32")
    with pytest.raises(ParameterError, match="Unsupported norm"):
        _core.filters.mel(22050.0, 512, 10, 0.0, 8000.0, False, "lp", -2.0, "float32")


# -------------------------------------------------------------------------- windows


@pytest.mark.parametrize(
    "window, n, fftbins, match",
    [
        ("foo", 16, True, "Invalid window name 'foo'"),
        ("hanning", 16, True, "Invalid window name 'hanning'"),
        ("hann_periodic_symmetric", 16, True, "Invalid window name 'hann_periodic'"),
        (("hann", 1.0), 16, True, "'hann' does not allow parameters"),
        (("kaiser",), 16, True, "'kaiser' must have parameters"),
        (("gaussian", 1.0, 2.0), 16, True, "gaussian"),
        (("general_gaussian", 1.0), 16, True, "general_gaussian"),
        (("tukey", 0.5, 0.2), 16, True, "tukey"),
        (("tukey", np.nan), 16, True, "NaN"),
        (("kaiser", "a"), 16, True, "kaiser"),
        (("kbd", 4.0), 16, True, "only defined for symmetric shapes"),
        (("kbd", 4.0), 15, False, "even number of points"),
        (("exponential", 2.0, 1.0), 16, False, "center must be None"),
        ((3, "a"), 16, True, "First tuple entry"),
        ((), 16, True, "First tuple entry"),
        (b"hann", 16, True, "must be a tuple, a string or a float"),
        (1j, 16, True, "must be a tuple, a string or a float"),
        ("hann", 0, True, "Nx=0 is not a positive integer"),
        ("hann", -3, True, "Nx=-3 is not a positive integer"),
        ("hann", 4.0, True, "Nx=4.0 is not a positive integer"),
        ("hann", 16, 1, "fftbins=1 is not of type bool"),
        ("hann", 16, np.True_, "is not of type bool"),
    ],
    ids=repr,
)
def test_get_window_bad_spec(window, n, fftbins, match):
    with pytest.raises(ParameterError, match=match):
        filters.get_window(window, n, fftbins=fftbins)
    # scipy refuses each of these too (ValueError, or IndexError/TypeError for malformed tuples)
    with pytest.raises((ValueError, IndexError, TypeError)):
        librosa.filters.get_window(window, n, fftbins=fftbins)


def test_get_window_size_mismatch_and_bad_types():
    with pytest.raises(ParameterError, match="Window size mismatch: 3 != 4"):
        filters.get_window([1.0, 2.0, 3.0], 4)
    with pytest.raises(LibrosaError, match="Window size mismatch: 3 != 4"):
        librosa.filters.get_window([1.0, 2.0, 3.0], 4)
    for spec in ({"hann": 1}, {1, 2}, None):
        with pytest.raises(ParameterError, match="Invalid window specification"):
            filters.get_window(spec, 4)
        with pytest.raises(LibrosaError, match="Invalid window specification"):
            librosa.filters.get_window(spec, 4)


def test_parameter_error_is_a_value_error():
    with pytest.raises(ValueError):
        filters.get_window("nope", 8)


def test_core_get_window_rejects_bad_size():
    with pytest.raises(ParameterError, match="n must be non-negative"):
        _core.filters.get_window("hann", [], -1, True)
    assert _core.filters.get_window("hann", [], 0, True).shape == (0,)


# ------------------------------------------------------------------------------ DCT


@pytest.mark.parametrize(
    "args, match",
    [
        ((4, 8, 8, True), "DCT type 4"),
        ((0, 8, 8, True), "DCT type 0"),
        ((2, 0, 0, True), r"invalid number of data points \(0\)"),
        ((1, 1, 1, False), "DCT type 1 needs at least 2"),
        ((2, 9, 8, True), "n_out=9 cannot exceed n_in=8"),
        ((2, -1, 8, True), "n_out must be non-negative"),
    ],
)
def test_dct_matrix_bad_arguments(args, match):
    with pytest.raises(ParameterError, match=match):
        _core.filters.dct_matrix(*args)


@pytest.mark.parametrize(
    "args, match",
    [
        ((0, 8), "must be positive"),
        ((4, 0), "must be positive"),
        ((9, 8), "cannot exceed"),
        ((2.5, 8), "n_filters=2.5 must be an integer"),
    ],
)
def test_dct_bad_arguments(args, match):
    with pytest.raises(ParameterError, match=match):
        filters.dct(*args)


# ---------------------------------------------------------------------------- delta


@pytest.mark.parametrize(
    "shape, kwargs, match",
    [
        ((3, 5), dict(width=9), r"when mode='interp', width=9 cannot exceed data.shape\[axis\]=5"),
        ((9, 3), dict(width=5, axis=-1), r"width=5 cannot exceed data.shape\[axis\]=3"),
        ((3, 50), dict(width=4), "width must be an odd integer >= 3"),
        ((3, 50), dict(width=1), "width must be an odd integer >= 3"),
        ((3, 50), dict(width=-3), "width must be an odd integer >= 3"),
        ((3, 50), dict(order=0), "order must be a positive integer"),
        ((3, 50), dict(order=-1), "order must be a positive integer"),
        ((3, 50), dict(order=1.0), "order must be a positive integer"),
    ],
)
def test_delta_bad_parameters_like_librosa(shape, kwargs, match):
    data = np.ones(shape)
    with pytest.raises(ParameterError, match=match):
        delta(data, **kwargs)
    with pytest.raises(LibrosaError, match=match):
        librosa.feature.delta(data, **kwargs)


@pytest.mark.parametrize("width, order", [(3, 3), (5, 7), (3, 2**40)])
def test_delta_order_not_below_width(width, order):
    data = np.ones((2, 20))
    with pytest.raises(ParameterError, match="polyorder must be less than window_length"):
        delta(data, width=width, order=order)
    with pytest.raises(ValueError, match="polyorder must be less than window_length"):
        librosa.feature.delta(data, width=width, order=order)


def test_delta_bad_axis_and_mode():
    data = np.ones((2, 20))
    with pytest.raises(IndexError, match=r"axis=2 is not an axis") as info:
        delta(data, axis=2)
    assert isinstance(info.value, ParameterError)
    with pytest.raises(IndexError):
        librosa.feature.delta(data, axis=2)
    with pytest.raises(ValueError, match="mode must be"):
        delta(data, mode="edge")
    with pytest.raises(ValueError, match="mode must be"):
        librosa.feature.delta(data, mode="edge")


def test_delta_scalar_input_is_too_short():
    with pytest.raises(ParameterError, match=r"data.shape\[axis\]=1"):
        delta(np.float32(3.0))


# The native kernel trusts nothing it did not check: every misuse is a ParameterError.
def _core_delta_cases():
    x32 = np.zeros((4, 20), dtype=np.float32)
    x64 = np.zeros((4, 20))
    read_only = np.zeros((4, 20), dtype=np.float32)
    read_only.setflags(write=False)
    return [
        (x32, np.zeros((4, 20)), "out has dtype float64, expected float32"),
        (x32, np.zeros((4, 21), dtype=np.float32), r"out has shape \(4, 21\)"),
        (x32, np.zeros((20, 4), dtype=np.float32).T, "must be C-contiguous"),
        (
            np.zeros((20, 4), dtype=np.float32).T,
            np.zeros((4, 20), dtype=np.float32),
            "x must be C-contiguous",
        ),
        (x32, read_only, "read-only"),
        (x32, x32, "must not overlap"),
        (x64, x64[:, :], "must not overlap"),
        (np.zeros(20, dtype=np.float32), np.zeros(20, dtype=np.float32), "2-D"),
        (
            np.zeros((4, 20), dtype=np.int32),
            np.zeros((4, 20), dtype=np.int32),
            "float32 or float64",
        ),
        ([[0.0] * 20], np.zeros((1, 20)), "numpy arrays"),
    ]


@pytest.mark.parametrize("x, out, match", _core_delta_cases())
def test_core_delta_checks_its_arrays(x, out, match):
    with pytest.raises(ParameterError, match=match):
        _core.filters.delta(x, out, 9, 1)


@pytest.mark.parametrize(
    "width, order, match",
    [
        (8, 1, "odd integer"),
        (9, 0, "positive integer"),
        (21, 1, "cannot exceed"),
        (9, 9, "polyorder must be less"),
        (-9, 1, "odd integer"),
    ],
)
def test_core_delta_checks_its_parameters(width, order, match):
    x = np.zeros((2, 20))
    with pytest.raises(ParameterError, match=match):
        _core.filters.delta(x, np.empty_like(x), width, order)
