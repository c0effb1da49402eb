"""How deep a JSON document nests, checked before it is decoded.

Decoders recurse: a body of 100,000 ``[`` makes them raise RecursionError (or worse), and a
deeply nested value that decodes still breaks what stores it (Postgres' jsonb has a stack
limit). Nothing we accept nests deeper than ``MAX_DEPTH``, so deeper input is refused up front.
"""

from __future__ import annotations

import re

MAX_DEPTH = 64
_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


class TooDeep(ValueError):
    def __init__(self, limit: int) -> None:
        super().__init__(f"JSON nested deeper than {limit} levels")
        self.path = "$"
        self.message = str(self)


def deeper_than(raw: bytes | str, limit: int = MAX_DEPTH) -> bool:
    """True when ``raw`` nests arrays and objects more than ``limit`` deep (outside strings)."""
    data = raw.encode() if isinstance(raw, str) else bytes(raw)
    if data.count(b"[") + data.count(b"{") <= limit:
        return False  # too few brackets to nest that deep: the common case, at C speed
    level = 0
    for byte in _STRINGS.sub(b"", data).translate(None, _NOT_BRACKETS):
        if byte in b"[{":
            level += 1
            if level > limit:
                return True
        else:
            level -= 1
    return False


def check_depth(raw: bytes | str, limit: int = MAX_DEPTH) -> None:
    if deeper_than(raw, limit):
        raise TooDeep(limit)
