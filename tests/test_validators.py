"""The shared configuration checks (ml_utilities._validators)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ml_utilities._validators import flag, integer, keyed, number
from ml_utilities.exceptions import ParameterError


class OwnError(ParameterError):
    pass


@pytest.mark.parametrize("value", [1, 7, np.int64(3), np.uint8(200)])
def test_integer_accepts_python_and_numpy_integers(value):
    out = integer("n", value, minimum=1)
    assert out == int(value) and type(out) is int


@pytest.mark.parametrize(
    ("value", "kw", "message"),
    [
        (True, {}, r"n=True: expected an integer"),
        (1.0, {}, r"n=1.0: expected an integer"),
        ("3", {}, r"n='3': expected an integer"),
        (0, {"minimum": 1}, r"n=0: expected an integer >= 1"),
        (11, {"minimum": 1, "maximum": 10}, r"n=11: expected an integer >= 1 and <= 10"),
        (np.int32(-2), {"minimum": 0}, r"n=np.int32\(-2\)|n=-2"),
    ],
)
def test_integer_refusals_name_the_value(value, kw, message):
    with pytest.raises(ParameterError, match=message):
        integer("n", value, **kw)


@pytest.mark.parametrize(
    ("value", "kw"),
    [
        (math.nan, {}),
        (math.inf, {}),
        (-math.inf, {}),
        (np.float32("nan"), {}),
        (False, {}),
        ("1.5", {}),
        (None, {}),
        (0.0, {"above": 0.0}),
        (-1e-9, {"minimum": 0.0}),
        (2.5, {"maximum": 2.0}),
        (math.nan, {"finite": False}),
    ],
)
def test_number_refuses_what_is_not_a_real_number_in_range(value, kw):
    with pytest.raises(ParameterError, match=r"^x=.*: expected a"):
        number("x", value, **kw)


def test_number_accepts_and_converts():
    assert number("x", np.float32(0.5), above=0.0) == 0.5
    assert number("x", 3, minimum=3.0, maximum=3.0) == 3.0
    assert number("x", math.inf, above=0.0, finite=False) == math.inf


def test_flag_and_keyed():
    assert flag("f", True) is True
    for bad in (1, 0, "true", None):
        with pytest.raises(ParameterError, match=r"f=.*: expected True or False"):
            flag("f", bad)
    assert keyed("opts", None, ("a",)) == {}
    given = {"a": 1}
    out = keyed("opts", given, ("a", "b"))
    assert out == given and out is not given
    with pytest.raises(ParameterError, match=r"unknown opts key\(s\) \['c'\]; accepted"):
        keyed("opts", {"a": 1, "c": 2}, ("a", "b"))
    with pytest.raises(ParameterError, match=r"opts=\[1\]: expected a dict"):
        keyed("opts", [1], ("a",))


def test_components_raise_their_own_error_class():
    with pytest.raises(OwnError):
        integer("n", -1, minimum=0, error=OwnError)
    with pytest.raises(OwnError):
        number("x", math.nan, error=OwnError)
    with pytest.raises(OwnError):
        flag("f", 1, error=OwnError)
