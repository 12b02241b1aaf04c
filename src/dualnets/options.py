"""Typed hyperparameters: solver options and ``[search]`` fields checked against the class.

The type of each option comes from the class itself: the annotation of its ``__init__``
parameter (``float | None``, ``int``, ``str``, ``bool``) or, without one, the type of its
default.  Text from the command line (``--solver-option tol=1e-9``) is parsed into that type;
typed values (a TOML config) are checked against it and kept as they are, so that run ids do
not change.  Ranges stay the class's own business: its ``__init__`` raises for ``tol=-1``.
"""

from __future__ import annotations

import inspect
import math
import re

from .validate import describe, is_number

KINDS = ("bool", "int", "float", "str")
_NAMES = {"bool": "true or false", "int": "an integer", "float": "a number", "str": "a string",
          "None": "none"}


def parameters(cls: type) -> tuple[dict[str, inspect.Parameter], bool]:
    """The keyword parameters of ``cls.__init__``, following ``**kwargs`` up the bases, and
    whether the class takes further keywords (a ``**options`` passed on, e.g. to a backend)."""
    found: dict[str, inspect.Parameter] = {}
    for klass in cls.__mro__[:-1]:
        params = list(inspect.signature(klass.__init__).parameters.values())[1:]
        for p in params:
            if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
                found.setdefault(p.name, p)
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            return found, False
    return found, True


def kinds(param: inspect.Parameter) -> set[str]:
    """The accepted kinds ("bool", "int", "float", "str", "None"); empty when unknown."""
    ann = param.annotation
    text = "" if ann is param.empty else ann if isinstance(ann, str) else \
        getattr(ann, "__name__", str(ann))
    names = set(re.findall(r"[A-Za-z_]\w*", text))
    found = names & set(KINDS)
    if not found and not names and type(param.default).__name__ in KINDS:
        found = {type(param.default).__name__}
    if found and ("None" in names or "Optional" in names or param.default is None):
        found.add("None")
    return found


def from_text(text: str, accepted: set[str]):
    """A command-line value in the first accepted kind it parses as (untyped: int, float,
    true/false, else the text)."""
    order = [k for k in ("None", "bool", "int", "float", "str") if k in accepted] or \
        ["int", "float", "bool", "str"]
    word = text.strip().lower()
    for kind in order:
        if kind == "None" and word == "none":
            return None
        if kind == "bool" and word in ("true", "false"):
            return word == "true"
        if kind in ("int", "float"):
            try:
                return int(text) if kind == "int" else float(text)
            except ValueError:
                continue
        if kind == "str":
            return text
    return text


def check(label: str, value, accepted: set[str], default=None):
    """``value`` if it is of an accepted kind (an int passes for a float), else a ValueError;
    NaN never passes, and inf only where the default is infinite (``max_seconds``)."""
    if is_number(value) and not math.isfinite(value) and not (
            math.isinf(value) and is_number(default) and math.isinf(default)):
        raise ValueError(f"{label} must be a finite number, got {value}")
    if not accepted:
        return value
    ok = {"None": value is None, "bool": isinstance(value, bool),
          "int": isinstance(value, int) and not isinstance(value, bool),
          "float": is_number(value), "str": isinstance(value, str)}
    if not any(ok[k] for k in accepted):
        wanted = " or ".join(_NAMES[k] for k in ("int", "float", "bool", "str", "None")
                             if k in accepted and not (k == "int" and "float" in accepted))
        raise ValueError(f"{label} must be {wanted}, got {describe(value)}")
    return value


def typed_options(cls: type, options: dict, owner: str, text: bool = False) -> dict:
    """``options`` checked (and, with ``text``, parsed) against ``cls.__init__``; ``owner``
    names the class in messages, e.g. "solver 'clarabel'"."""
    params, open_ended = parameters(cls)
    out = {}
    for key, value in options.items():
        param = params.get(key)
        if param is None and not open_ended:
            raise ValueError(f"unknown option {key!r} for {owner}; it takes "
                             f"{', '.join(sorted(params))}")
        accepted = kinds(param) if param is not None else set()
        default = None if param is None or param.default is param.empty else param.default
        value = from_text(value, accepted) if text else value
        out[key] = check(f"option {key!r} of {owner}", value, accepted, default)
    return out


def parse_pairs(pairs: list[str], flag: str = "--solver-option") -> dict[str, str]:
    """``["tol=1e-9", "inner=newton"]`` -> ``{"tol": "1e-9", "inner": "newton"}``."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{flag} needs KEY=VALUE, got {pair!r}")
        out[key.strip()] = value
    return out
