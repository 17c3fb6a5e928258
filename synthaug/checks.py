"""Argument checks shared across the library.

Each helper returns the checked value (converted to a plain Python type) or raises with the library's message
style, ``"<name>: expected ..., found ..."``: ``TypeError`` when the value has the wrong type, ``ValueError``
when it is out of range or not among the choices.
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Collection
from pathlib import Path

__all__ = [
    "check_int",
    "check_number",
    "check_probability",
    "check_choice",
    "check_bool",
    "check_options",
    "check_path",
    "check_config_fields",
]


def check_int(name: str, value, minimum: int = 1) -> int:
    """``value`` as an ``int`` if it is an integer (numpy integers too, not bool) ``>= minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected an int >= {minimum}, found {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name}: expected an int >= {minimum}, found {value}")
    return int(value)


def _interval(low, high, low_open: bool, high_open: bool) -> str:
    if high is None:
        return f"{'>' if low_open else '>='} {low:g}"
    if low is None:
        return f"{'<' if high_open else '<='} {high:g}"
    return f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"


def check_number(name: str, value, low: float | None = None, high: float | None = None, *, low_open: bool = False,
                 high_open: bool = False, what: str = "a float", optional: bool = False) -> float | None:
    """``value`` as a ``float`` if it is a real number (not bool) in the interval ``low .. high`` (a bound that
    is None is unchecked; ``low_open`` / ``high_open`` exclude the bound). With ``optional`` None passes
    through. ``what`` names the kind of value in the message ("a float", "a probability", "a weight")."""
    if optional and value is None:
        return None
    expected = f"{'None or ' if optional else ''}{what} {_interval(low, high, low_open, high_open)}"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected {expected}, found {type(value).__name__} {value!r}")
    v = float(value)
    if (low is not None and not (v > low if low_open else v >= low)) or \
            (high is not None and not (v < high if high_open else v <= high)):
        raise ValueError(f"{name}: expected {expected}, found {value!r}")
    return v


def check_probability(name: str, value, *, zero: bool = True, optional: bool = False) -> float | None:
    """A probability in [0, 1] (``zero=False``: in (0, 1], e.g. a threshold); see :func:`check_number`."""
    return check_number(name, value, 0.0, 1.0, low_open=not zero, what="a probability", optional=optional)


def check_choice(name: str, value, choices: Collection):
    """``value`` if it is one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{name}: expected one of {list(choices)}, found {value!r}")
    return value


def check_bool(name: str, value) -> bool:
    """``value`` if it is a bool (not merely truthy)."""
    if not isinstance(value, bool):
        raise TypeError(f"{name}: expected a bool, found {type(value).__name__} {value!r}")
    return value


def check_options(name: str, options, defaults: dict) -> dict | None:
    """An optional dict of settings overriding some of ``defaults`` (e.g. a helper classifier's): None, or a dict
    whose keys are among ``defaults``' and whose ``val_fraction``, if given, is in [0, 1)."""
    if options is None:
        return None
    if not isinstance(options, dict):
        raise TypeError(f"{name}: expected None or a dict of classifier settings, found {type(options).__name__}")
    unknown = sorted(set(options) - set(defaults))
    if unknown:
        raise ValueError(f"{name}: expected keys among {sorted(defaults)}, found unknown {unknown}")
    vf = options.get("val_fraction", 0.0)
    if isinstance(vf, bool) or not isinstance(vf, numbers.Real) or not 0 <= vf < 1:
        raise ValueError(f"{name}: expected val_fraction in [0, 1), found {vf!r}")
    return options


def check_path(name: str, path, kind: str = "file", what: str | None = None) -> Path:
    """``path`` (a str or path-like, ``~`` expanded) as a ``Path`` if it names an existing ``kind``, ``"file"`` or
    ``"folder"``: ``FileNotFoundError`` when nothing is there, ``ValueError`` for the other kind. ``what`` names
    what is expected (default: ``kind``, e.g. ``".npz file"``)."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{name}: expected a str or path, found {type(path).__name__}")
    p = Path(path).expanduser()
    if not p.exists():
        raise FileNotFoundError(f"{name}: expected an existing {what or kind}, found nothing at {str(p)!r}")
    if p.is_dir() != (kind == "folder"):
        raise ValueError(f"{name}: expected a {kind}, found a {'folder' if p.is_dir() else 'file'} at {str(p)!r}")
    return p


def check_config_fields(cfg: dict, path, ints: tuple[str, ...] = (), names: str | None = None) -> dict:
    """Type-check a model directory's ``config.json`` fields, so a bad file fails at load naming the field and
    the file: each of ``ints`` is a positive int; ``names`` (e.g. ``"class_names"``), if given, is a list of
    ``num_classes`` strings. Returns ``cfg``."""
    where = str(Path(path) / "config.json")
    for key in ints:
        v = cfg.get(key)
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"model: {where!r}: {key}: expected a positive int, found {v!r}")
    if names is not None:
        v = cfg.get(names)
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise ValueError(f"model: {where!r}: {names}: expected a list of strings, found {v!r}")
        if len(v) != cfg["num_classes"]:
            raise ValueError(f"model: {where!r}: {names}: expected {cfg['num_classes']} names (num_classes), "
                             f"found {len(v)}")
    return cfg
