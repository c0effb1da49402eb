"""JSON Pointers (RFC 6901): ``/result/rows``, ``/per_series/0/anomalies``, ``/a~1b`` (the key ``a/b``).

Rules read values out of a job with them (``{"$from": "/result/rows"}``) and match on a result's
fields (``"/per_series/0/flagged": true``).
"""

from __future__ import annotations

import re
from typing import Any

#: an array index: 0, or digits without a leading zero
_INDEX = re.compile(r"^(0|[1-9][0-9]*)$")
#: ``~`` escapes only ``~0`` (``~``) and ``~1`` (``/``)
_BAD_ESCAPE = re.compile(r"~(?![01])")


class BadPointer(ValueError):
    pass


class Missing(LookupError):
    """The pointer names nothing in the document."""


def parse(pointer: str) -> list[str]:
    """The reference tokens of ``pointer``; ``BadPointer`` says why it is not one."""
    if not isinstance(pointer, str):
        raise BadPointer("a JSON Pointer is a string")
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise BadPointer(f"{pointer!r} is not a JSON Pointer: it starts with '/' (RFC 6901)")
    tokens = pointer[1:].split("/")
    for token in tokens:
        if _BAD_ESCAPE.search(token):
            raise BadPointer(f"{pointer!r} is not a JSON Pointer: '~' is escaped as ~0 and '/' as ~1")
    return [t.replace("~1", "/").replace("~0", "~") for t in tokens]


def resolve(document: Any, tokens: list[str]) -> Any:
    """The value ``tokens`` name in ``document``; ``Missing`` names the first step that finds nothing."""
    value = document
    for depth, token in enumerate(tokens):
        if isinstance(value, dict) and token in value:
            value = value[token]
        elif isinstance(value, list) and _INDEX.match(token) and int(token) < len(value):
            value = value[int(token)]
        else:
            raise Missing("/" + "/".join(escape(t) for t in tokens[: depth + 1]))
    return value


def escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")
