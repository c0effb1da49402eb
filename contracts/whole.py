"""Whole floats (``2.0``) read as integers, as JSON Schema reads them.

The API's JSON Schemas (/openapi.json) say ``"type": "integer"``, and JSON Schema counts ``2.0`` an
integer; msgspec's strict decoding refuses a float for an ``int``. A body refused for exactly that
is read again with its whole floats as integers (a float field takes an integer as well), so the
contract means what its schema says. Only up to 2**53: past it a float no longer spells one integer.
"""

from __future__ import annotations

import re
from typing import Any

#: msgspec's message for a float where an int belongs (an optional int says `int | null`)
_FLOAT_FOR_INT = re.compile(r"Expected `int( \| null)?`, got `float`")
_EXACT = 2**53


def float_for_int(err: Exception) -> bool:
    """Whether msgspec refused a float where an integer belongs (read again with ``as_integers``)."""
    return _FLOAT_FOR_INT.search(str(err)) is not None


def as_integers(value: Any) -> Any:
    """``value`` (parsed JSON) with every whole float within 2**53 an int."""
    kind = type(value)
    if kind is float:
        return int(value) if value.is_integer() and -_EXACT <= value <= _EXACT else value
    if kind is list:
        return [as_integers(v) for v in value]
    if kind is dict:
        return {k: as_integers(v) for k, v in value.items()}
    return value
