"""``{"$from": "<JSON Pointer into the job>"}`` inside a rule's follow-up command.

When the rule fires, each placeholder is replaced by the value its pointer names in the triggering
job (``/result/rows``, ``/command/pipeline_id``). When the rule is written, the command is checked
against its contract with each placeholder standing for a value its field accepts: every other
field must be valid as it is, so a rule that can only ever make invalid follow-ups is refused.

How "a value its field accepts" is found: the field's type is looked up along the placeholder's
path in the command's contract (msgspec's type information: struct fields, tagged unions by the
command's own tags, lists, dicts), and example values of that type are tried first (a Literal's
values, an integer inside its bounds, a string of its length, a date ...); then a fixed list of
plain JSON values. The contract itself (``contracts.convert``, cross-field checks included) is the
judge: a placeholder is accepted once the error no longer names its path.
"""

from __future__ import annotations

import itertools
import re
import uuid
from typing import Any, NamedTuple

import msgspec
import msgspec.inspect as mi

from bus import pointer
from contracts import BY_TYPE, InvalidCommand, Job, convert
from contracts.rules import FROM

#: the Job fields a pointer may start with (followed_by is not known when a rule fires)
JOB_FIELDS = tuple(name for name in Job.__struct_fields__ if name != "followed_by")
#: tried for every placeholder after its type's own examples
_PLAIN: tuple[Any, ...] = (
    0,
    1,
    "x",
    1.5,
    True,
    False,
    [],
    {},
    None,
    "2024-01-01",
    "2024-01-01T00:00:00Z",
    "00000000-0000-4000-8000-000000000000",
)
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_STEP = re.compile(r"\.([^.\[]+)|\[(\d+)\]|\[\.\.\.\]")
#: combinations of example values tried for a check between fields
MAX_TRIALS = 2000
#: msgspec's own errors about an object's shape: no placeholder's value causes one on the object around it
_STRUCTURAL = ("Object contains unknown field", "Object missing required field", "Expected ")
#: any key: msgspec names a dict's value ``[...]``
ANY_KEY = object()

Step = str | int


class Placeholder(NamedTuple):
    steps: tuple[Step, ...]
    pointer: str
    tokens: list[str]


class BadPlaceholder(ValueError):
    """A placeholder that is not one, or a command no placeholder value makes valid (``path`` names it)."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{message} (at {path})")
        self.path = path
        self.message = message


def path_of(steps: tuple[Step, ...], prefix: str = "$") -> str:
    """``$.source.series[0]`` as the contracts name a field (keys that are not names quoted)."""
    out = prefix
    for step in steps:
        if isinstance(step, int):
            out += f"[{step}]"
        elif _IDENTIFIER.match(step):
            out += f".{step}"
        else:
            out += "[" + msgspec.json.encode(step).decode() + "]"
    return out


def find(value: Any, prefix: str = "$") -> list[Placeholder]:
    """Every placeholder in ``value``, checked: one key, a JSON Pointer starting with a Job field."""
    found: list[Placeholder] = []

    def walk(node: Any, steps: tuple[Step, ...]) -> None:
        if isinstance(node, dict):
            if FROM in node:
                found.append(_checked(node, steps, prefix))
                return
            for key, item in node.items():
                walk(item, (*steps, key))
        elif isinstance(node, list):
            for i, item in enumerate(node):
                walk(item, (*steps, i))

    walk(value, ())
    return found


def _checked(node: dict[str, Any], steps: tuple[Step, ...], prefix: str) -> Placeholder:
    where = path_of(steps, prefix)
    if len(node) != 1:
        raise BadPlaceholder(where, f"a placeholder is an object of the one key {FROM!r}")
    try:
        tokens = pointer.parse(node[FROM])
    except pointer.BadPointer as err:
        raise BadPlaceholder(path_of((*steps, FROM), prefix), str(err)) from None
    if not tokens or tokens[0] not in JOB_FIELDS:
        raise BadPlaceholder(
            where, f"{node[FROM]!r}: a pointer into the job starts with one of {', '.join(JOB_FIELDS)}"
        )
    return Placeholder(steps, node[FROM], tokens)


def substitute(value: Any, document: Any) -> Any:
    """``value`` with each placeholder replaced by what its pointer names in ``document``; raises
    ``pointer.Missing`` naming a pointer that names nothing."""
    if isinstance(value, dict):
        if FROM in value and len(value) == 1:
            try:
                return pointer.resolve(document, pointer.parse(value[FROM]))
            except pointer.Missing:
                raise pointer.Missing(value[FROM]) from None
        return {k: substitute(v, document) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, document) for v in value]
    return value


def _set(value: Any, steps: tuple[Step, ...], new: Any) -> Any:
    if not steps:
        return new
    head, rest = steps[0], steps[1:]
    if isinstance(value, dict):
        return {**value, head: _set(value[head], rest, new)}
    copy = list(value)
    copy[head] = _set(copy[head], rest, new)  # type: ignore[index]
    return copy


def _steps_of(path: str) -> list[object]:
    return [m[1] if m[1] is not None else (int(m[2]) if m[2] is not None else ANY_KEY) for m in _STEP.finditer(path)]


def _names(error_path: str, steps: tuple[Step, ...]) -> bool:
    """Whether an error at ``error_path`` is about the placeholder at ``steps`` (or inside it)."""
    found = _steps_of(error_path)
    if len(found) < len(steps):
        return False
    return all(f is ANY_KEY or f == s for f, s in zip(found, steps, strict=False))


def _holds(error_path: str, steps: tuple[Step, ...]) -> bool:
    """Whether the object at ``error_path`` holds the placeholder at ``steps``."""
    found = _steps_of(error_path)
    return len(found) < len(steps) and all(f is ANY_KEY or f == s for f, s in zip(found, steps, strict=False))


def check_command(command: dict[str, Any], prefix: str) -> list[Placeholder]:
    """Check ``command`` (with placeholders) against its contract; its placeholders. Raises
    ``BadPlaceholder`` or ``InvalidCommand`` with a path under ``prefix``.

    First each placeholder's own field: an error at or inside a placeholder's path tries its next
    example until none is left (refused: no value fits there). An error elsewhere may come from a
    check between fields that a placeholder's value takes part in (``end`` before a ``start`` taken
    from the job): the combinations of examples are tried, up to ``MAX_TRIALS``. If none passes, an
    error on a field beside the placeholders is refused, and so is one about an object's shape; a
    check between the fields of an object that holds a placeholder (a series too short for its
    horizon, when the series comes from the job) is left to the firing,
    which checks the real command."""
    holders = find(command, prefix)
    choices = [candidates(command, h.steps) for h in holders]
    chosen = [0] * len(holders)
    while (err := _error(_filled(command, holders, choices, chosen))) is not None:
        own = next((i for i, h in enumerate(holders) if _names(err.path, h.steps)), None)
        if own is None:
            break
        chosen[own] += 1
        if chosen[own] == len(choices[own]):
            where = path_of(holders[own].steps, prefix)
            raise BadPlaceholder(where, f"no value the job could hold fits this field (last tried: {err.message})")
    if err is None:
        return holders
    for combination in itertools.islice(itertools.product(*(range(len(c)) for c in choices)), MAX_TRIALS):
        if _error(_filled(command, holders, choices, list(combination))) is None:
            return holders
    if not err.message.startswith(_STRUCTURAL) and any(_holds(err.path, h.steps) for h in holders):
        return holders
    raise InvalidCommand(err.message, prefix + err.path[1:])


def _filled(command: dict[str, Any], holders: list[Placeholder], choices: list[list[Any]], chosen: list[int]) -> Any:
    for holder, options, at in zip(holders, choices, chosen, strict=True):
        command = _set(command, holder.steps, options[at])
    return command


def _error(command: Any) -> InvalidCommand | None:
    try:
        convert(command, "$")
    except InvalidCommand as err:
        return err
    return None


# ---- example values of the field a placeholder stands in ------------------------------------


def candidates(command: dict[str, Any], steps: tuple[Step, ...]) -> list[Any]:
    """Values to try for the placeholder at ``steps``: its field's type's examples, then plain ones."""
    found: list[Any] = []
    cls = BY_TYPE.get(command.get("type")) if isinstance(command.get("type"), str) else None
    if cls is not None and steps:
        for kind in _navigate(mi.type_info(cls), command, steps):
            found += examples(kind)
    out: list[Any] = []
    for value in [*found, *_PLAIN]:
        if not any(type(value) is type(o) and value == o for o in out):
            out.append(value)
    return out


def _unwrap(kind: mi.Type) -> mi.Type:
    while isinstance(kind, mi.Metadata):
        kind = kind.type
    return kind


def _navigate(kind: mi.Type, given: Any, steps: tuple[Step, ...]) -> list[mi.Type]:
    """The types the value at ``steps`` may have, read along the contract (``given``: the command)."""
    kind = _unwrap(kind)
    if isinstance(kind, mi.UnionType):
        members = [_unwrap(t) for t in kind.types]
        tagged = [t for t in members if isinstance(t, mi.StructType) and t.tag_field is not None]
        if tagged and isinstance(given, dict):
            members = [t for t in tagged if given.get(t.tag_field) == t.tag] or members
        return [found for member in members for found in _navigate(member, given, steps)]
    if not steps:
        return [kind]
    head, rest = steps[0], steps[1:]
    below = given[head] if isinstance(given, dict | list) else None  # type: ignore[index]
    if isinstance(kind, mi.StructType) and isinstance(head, str):
        for field in kind.fields:
            if field.encode_name == head:
                return _navigate(field.type, below, rest)
        return []
    if isinstance(kind, mi.DictType) and isinstance(head, str):
        return _navigate(kind.value_type, below, rest)
    if isinstance(kind, mi.ListType | mi.VarTupleType | mi.SetType | mi.FrozenSetType) and isinstance(head, int):
        return _navigate(kind.item_type, below, rest)
    if isinstance(kind, mi.TupleType) and isinstance(head, int) and head < len(kind.item_types):
        return _navigate(kind.item_types[head], below, rest)
    return []


def examples(kind: mi.Type, depth: int = 0) -> list[Any]:
    """A few JSON values of ``kind`` (empty when it cannot tell)."""
    kind = _unwrap(kind)
    if depth > 6:
        return []
    if isinstance(kind, mi.UnionType):
        return [v for t in kind.types for v in examples(t, depth + 1)]
    if isinstance(kind, mi.NoneType):
        return [None]
    if isinstance(kind, mi.BoolType):
        return [True]
    if isinstance(kind, mi.LiteralType):
        return list(kind.values)
    if isinstance(kind, mi.EnumType):
        return [member.value for member in kind.cls]
    if isinstance(kind, mi.IntType | mi.FloatType):
        return [_number(kind)]
    if isinstance(kind, mi.StrType):
        return _strings(kind)
    if isinstance(kind, mi.DateType):
        return ["2024-01-01"]
    if isinstance(kind, mi.DateTimeType):
        return ["2024-01-01T00:00:00Z"]
    if isinstance(kind, mi.UUIDType):
        return [str(uuid.UUID(int=1))]
    if isinstance(kind, mi.ListType | mi.VarTupleType | mi.SetType | mi.FrozenSetType):
        items = examples(kind.item_type, depth + 1)[:1]
        least = getattr(kind, "min_length", None) or 0
        return [items * least] if (items or not least) else []
    if isinstance(kind, mi.DictType):
        return [{}]
    if isinstance(kind, mi.StructType):
        value: dict[str, Any] = {kind.tag_field: kind.tag} if kind.tag_field else {}
        for field in kind.fields:
            if field.required:
                options = examples(field.type, depth + 1)
                if not options:
                    return []
                value[field.encode_name] = options[0]
        return [value]
    return []


def _number(kind: mi.IntType | mi.FloatType) -> float | int:
    whole = isinstance(kind, mi.IntType)
    low = kind.ge if kind.ge is not None else (kind.gt + (1 if whole else 0.5) if kind.gt is not None else None)
    high = kind.le if kind.le is not None else (kind.lt - (1 if whole else 0.5) if kind.lt is not None else None)
    value = low if low is not None else (min(0, high) if high is not None else 0)
    if kind.multiple_of:
        value = kind.multiple_of * -(-value // kind.multiple_of)
    return int(value) if whole else float(value)


def _strings(kind: mi.StrType) -> list[str]:
    least, most = kind.min_length or 0, kind.max_length
    tries = ["x" * max(least, 1), "x.y", "a@b.co", "2024-01-01", "https://example.com/", "x" * least]
    fits = [
        s
        for s in tries
        if len(s) >= least and (most is None or len(s) <= most) and (not kind.pattern or re.search(kind.pattern, s))
    ]
    return fits
