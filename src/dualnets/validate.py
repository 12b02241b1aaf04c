"""Typed validation of input values, in one place.

Every check returns the typed value or raises a one-line ``ValueError`` that names what was
expected, what arrived and, through ``where``, where it came from::

    m1 must be an integer >= 1, got 2.5 (key 'm1' of bc.npz)

Real values must be finite and at most ``MAX_ABS`` in magnitude, so that their squares (the
loss, the Gram matrices) cannot overflow float64.  This module imports nothing from dualnets:
:class:`dualnets.problem.Problem`, :mod:`dualnets.io`, the sweep config and the solver options
(:mod:`dualnets.options`) all use it.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

MAX_ABS = 1e150   # squares stay below 1e300: no overflow in float64


def describe(value) -> str:
    """How a received value is shown in a message: ``'abc'``, ``2.5``, or an array's dtype and
    shape."""
    if isinstance(value, np.ndarray):
        return f"an array of dtype {value.dtype} and shape {value.shape}"
    if isinstance(value, (str, bytes)):
        return repr(value)
    return str(value)


def _at(where: str) -> str:
    return f" ({where})" if where else ""


def is_number(value) -> bool:
    """A real number, and not a bool (True is no beta)."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def real(name: str, value, where: str = "", *, above: float | None = None,
         at_least: float | None = None) -> float:
    """A finite real number of magnitude <= MAX_ABS, ``> above`` and ``>= at_least``."""
    if not is_number(value):
        raise ValueError(f"{name} must be a real number, got {describe(value)}{_at(where)}")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{name} must be finite, got {number}{_at(where)}")
    if abs(number) > MAX_ABS:
        raise ValueError(f"{name} must be at most {MAX_ABS:g} in magnitude (its square would "
                         f"overflow), got {number:g}{_at(where)}")
    if above is not None and not number > above:
        raise ValueError(f"{name} must be > {above:g}, got {describe(value)}{_at(where)}")
    if at_least is not None and not number >= at_least:
        raise ValueError(f"{name} must be >= {at_least:g}, got {describe(value)}{_at(where)}")
    return number


def integer(name: str, value, where: str = "", *, minimum: int | None = None,
            choices: tuple[int, ...] | None = None) -> int:
    """An integer (an integral float such as 2.0 counts), ``>= minimum`` or one of ``choices``."""
    if choices is not None:
        expected = " or ".join(str(c) for c in choices)
    else:
        expected = "an integer" + (f" >= {minimum}" if minimum is not None else "")
    integral = is_number(value) and math.isfinite(float(value)) and float(value).is_integer()
    number = int(value) if integral else None
    if number is None or (minimum is not None and number < minimum) or \
            (choices is not None and number not in choices):
        raise ValueError(f"{name} must be {expected}, got {describe(value)}{_at(where)}")
    return number


def choice(name: str, value, where: str = "", *, choices: tuple[str, ...]) -> str:
    """A string, one of ``choices``."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, got {describe(value)}"
                         f"{_at(where)}")
    return value


def scalar(name: str, value, where: str = ""):
    """The element of a 0-d array (a file's scalar key) as a Python value."""
    array = np.asarray(value)
    if array.ndim != 0:
        raise ValueError(f"{name} must be a scalar, got an array of shape {array.shape}"
                         f"{_at(where)}")
    return array.item()


def real_array(name: str, value, ndim: int, where: str = "") -> np.ndarray:
    """A read-only float64 array of ``ndim`` dimensions from an integer or float array, with
    finite entries of magnitude <= MAX_ABS."""
    array = value if isinstance(value, np.ndarray) else _as_array(name, value, where)
    if array.dtype.kind not in "iuf":
        raise ValueError(f"{name} must be a numeric (integer or float) array, got dtype "
                         f"{array.dtype}{_at(where)}")
    if array.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-dimensional, got shape {array.shape}"
                         f"{_at(where)}")
    array = np.ascontiguousarray(array, dtype=np.float64)
    bad = ~np.isfinite(array)
    if bad.any():
        raise ValueError(f"{name} must contain only finite values, got NaN or inf at index "
                         f"{tuple(int(i) for i in np.argwhere(bad)[0])}{_at(where)}")
    if array.size and np.abs(array).max() > MAX_ABS:
        raise ValueError(f"{name} must have entries of magnitude <= {MAX_ABS:g} (their squares "
                         f"would overflow), got {np.abs(array).max():g}{_at(where)}")
    array.setflags(write=False)
    return array


def _as_array(name: str, value, where: str) -> np.ndarray:
    try:
        return np.asarray(value)
    except (TypeError, ValueError) as exc:   # ragged lists
        raise ValueError(f"{name} must be a numeric array, got {type(value).__name__} "
                         f"({exc}){_at(where)}") from None


def shaped(name: str, value, kinds: str, kind_text: str, shape: tuple, shape_text: str,
           where: str = "") -> np.ndarray:
    """An array of a dtype kind in ``kinds`` whose shape matches ``shape`` (None: any size)."""
    ok = isinstance(value, np.ndarray) and value.dtype.kind in kinds and \
        value.ndim == len(shape) and all(s is None or s == v for s, v in zip(shape, value.shape))
    if not ok:
        raise ValueError(f"{name} must be {kind_text} array of shape {shape_text}, got "
                         f"{_got_array(value)}{_at(where)}")
    return value


def _got_array(value) -> str:
    if isinstance(value, np.ndarray):
        return f"dtype {value.dtype} shape {value.shape}"
    return type(value).__name__
