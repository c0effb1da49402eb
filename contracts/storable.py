"""Values a command may not carry because the job store cannot keep them.

A command is stored as the job's ``jsonb`` (and its strings reach ``text`` columns), so a value
Postgres or the JSON round trip refuses would fail the insert of a whole batch of requests, or
be silently changed on the way. ``contracts.decode`` and ``contracts.convert`` (every way a
command enters: HTTP, CLI, dashboard, ``publish`` and the workers' actors) refuse them with the
path of the field:

- the NUL character (``\\u0000``) in a string or an object key: Postgres text and jsonb refuse it;
- a string that is not valid Unicode (a lone surrogate, possible from Python only);
- a float that is NaN or infinite: jsonb has neither (msgspec would write ``null``);
- an integer of more than ``MAX_INT_DIGITS`` digits: msgspec cannot write or read it back;
- arrays and objects nested deeper than ``contracts.nesting.MAX_DEPTH`` (jsonb has a stack limit);
- a date or date-time outside ``EARLIEST``..``LATEST``: far inside what Python's dates (years
  1 to 9999) and Postgres handle, so a window, lookback or time-zone shift counted from it
  never overflows (``OverflowError: date value out of range``).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Any

import msgspec

from contracts.nesting import MAX_DEPTH

EARLIEST = dt.date(1000, 1, 1)
LATEST = dt.date(8999, 12, 31)
MAX_INT_DIGITS = 1000
_MAX_INT = 10**MAX_INT_DIGITS
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

NUL = "contains the NUL character (\\u0000), which cannot be stored"


class Unstorable(ValueError):
    """The value at ``path`` cannot be stored; ``message`` says why."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{message} - at `{path}`")
        self.path = path
        self.message = message


def check(value: Any, path: str = "$") -> None:
    """Raise ``Unstorable`` naming the first value under ``value`` the job store cannot keep."""
    found = problem(value, path)
    if found is not None:
        raise Unstorable(*found)


def problem(value: Any, path: str = "$") -> tuple[str, str] | None:
    """(path, reason) of the first unstorable value, or None."""
    found = _find(value)
    if found is None:
        return None
    steps, reason = found
    for step in reversed(steps):  # the path is built only for what is found, never on the way
        path = f"{path}[{step}]" if isinstance(step, int) else member(path, step)
    return path, reason


def member(path: str, key: str) -> str:
    """The path of an object's member: ``$.a.b``, or ``$.a["b c"]`` when the key is no plain name."""
    return f"{path}.{key}" if _NAME.match(key) else f"{path}[{msgspec.json.encode(key).decode()}]"


#: (the steps from the value to the bad one, innermost first; the reason)
_Found = tuple[list[str | int], str]


def _find(value: Any, depth: int = 0) -> _Found | None:
    if depth > MAX_DEPTH:
        return [], f"nested deeper than {MAX_DEPTH} levels"
    kind = type(value)
    if kind is str:
        reason = _text(value)
        return None if reason is None else ([], reason)
    if value is None or kind is bool:
        return None
    if kind is float:
        return None if math.isfinite(value) else ([], f"{value} is not a number JSON can store")
    if kind is int:
        return None if -_MAX_INT < value < _MAX_INT else ([], f"an integer of more than {MAX_INT_DIGITS} digits")
    if isinstance(value, msgspec.Struct):
        for field, name in zip(value.__struct_fields__, value.__struct_encode_fields__, strict=True):
            found = _find(getattr(value, field), depth + 1)
            if found is not None:
                found[0].append(name)
                return found
        return None
    if isinstance(value, (list, tuple)):
        if _finite_numbers(value):
            return None
        for index, item in enumerate(value):
            found = _find(item, depth + 1)
            if found is not None:
                found[0].append(index)
                return found
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            if type(key) is str and (reason := _text(key)) is not None:
                return [], f"an object key {reason}"
            if type(item) is str and "\x00" not in item and item.isascii():
                continue  # the common cell, spared a call
            found = _find(item, depth + 1)
            if found is not None:
                found[0].append(str(key))
                return found
        return None
    if isinstance(value, dt.date):
        return _moment(value)
    if isinstance(value, str):  # subclasses (enums): as their base type
        return _find(str.__str__(value))
    if isinstance(value, float):
        return _find(float(value))
    if isinstance(value, int):
        return _find(int(value))
    return None  # UUIDs, decimals: msgspec writes them as text it reads back


def _text(value: str) -> str | None:
    if "\x00" in value:
        return NUL
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "is not valid Unicode (a lone surrogate), which cannot be stored"
    return None


def _moment(value: dt.date) -> _Found | None:
    day = value.date() if isinstance(value, dt.datetime) else value
    if EARLIEST <= day <= LATEST:
        return None
    return [], f"{value.isoformat()} is out of range: dates from {EARLIEST} to {LATEST}"


def _finite_numbers(items: list[Any] | tuple[Any, ...]) -> bool:
    """True when every item is a finite int or float (the long value lists of series), found
    in one pass in C: NaN and infinities make the sum non-finite, anything else raises."""
    if not items or type(items[0]) not in (float, int):
        return False
    try:
        return math.isfinite(sum(items))
    except (TypeError, OverflowError):
        return False
