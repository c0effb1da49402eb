"""The ``Command`` union, the routing table and decoding with field paths."""

from __future__ import annotations

import re
from typing import Any, NamedTuple, Union

import msgspec

from contracts import forecast, gooddata, metrics, nesting, pipelines, rules, schedules, storable, system, whole
from contracts.base import CommandBase


class Route(NamedTuple):
    queue: str


_POOLS: dict[str, tuple[type[CommandBase], ...]] = {
    # schedule and rule commands are control-plane work: the system pool serves them
    "system": system.COMMANDS + schedules.COMMANDS + rules.COMMANDS,
    "gooddata": gooddata.COMMANDS,
    "pipelines": pipelines.COMMANDS,
    "forecast": forecast.COMMANDS,
    "metrics": metrics.COMMANDS,
}

#: command class -> its queue
ROUTES: dict[type[CommandBase], Route] = {cls: Route(queue) for queue, classes in _POOLS.items() for cls in classes}
#: type tag ("gooddata.workspace.create") -> command class
BY_TYPE: dict[str, type[CommandBase]] = {cls.__struct_config__.tag: cls for cls in ROUTES}  # type: ignore[misc]
QUEUES: tuple[str, ...] = tuple(_POOLS)

Command = Union[tuple(ROUTES)]  # type: ignore[valid-type]  # noqa: UP007

_decoder = msgspec.json.Decoder(Command)
_PATH = re.compile(r" - at `(?P<path>[^`]*)`$")
#: a __post_init__ check names its field as "field: reason"
_FIELD = re.compile(r"^(?P<field>[a-z_][a-z0-9_]*): (?P<reason>.+)$", re.DOTALL)


class InvalidCommand(ValueError):
    """A command that does not match the contract. ``path`` names the offending field."""

    def __init__(self, message: str, path: str = "$") -> None:
        super().__init__(message)
        self.message = message
        self.path = path


def type_of(command: CommandBase) -> str:
    return command.__struct_config__.tag  # type: ignore[return-value]


def route(command: CommandBase | type[CommandBase]) -> Route:
    return ROUTES[command if isinstance(command, type) else type(command)]


def from_validation_error(err: msgspec.ValidationError, prefix: str = "$") -> InvalidCommand:
    """msgspec's error as ours: the message, and the JSON path of the offending field."""
    text = str(err)
    match = _PATH.search(text)
    path = match["path"] if match else "$"
    message = text[: match.start()] if match else text
    field = _FIELD.match(message)
    if field:
        path, message = f"{path}.{field['field']}", field["reason"]
    return InvalidCommand(message, prefix + path[1:])


def decode(raw: bytes | str) -> CommandBase:
    """Decode JSON into a command. Raises ``InvalidCommand`` (with the field path) or
    ``msgspec.DecodeError`` for text that is not JSON."""
    if nesting.deeper_than(raw):
        raise InvalidCommand(f"JSON nested deeper than {nesting.MAX_DEPTH} levels", "$")
    try:
        return storable_command(_decoder.decode(raw))
    except msgspec.ValidationError as err:
        if whole.float_for_int(err):  # 2.0 for an integer: read as JSON Schema reads it
            return convert(whole.as_integers(msgspec.json.decode(raw)))
        raise from_validation_error(err) from None


def convert(obj: Any, path: str = "$") -> CommandBase:
    """Validate an already-parsed JSON value (e.g. a message's argument) as a command."""
    try:
        return storable_command(msgspec.convert(obj, Command), path)
    except msgspec.ValidationError as err:
        if whole.float_for_int(err):
            try:
                return storable_command(msgspec.convert(whole.as_integers(obj), Command), path)
            except msgspec.ValidationError as again:
                raise from_validation_error(again, path) from None
        raise from_validation_error(err, path) from None
    except RecursionError:
        raise InvalidCommand(f"nested deeper than {nesting.MAX_DEPTH} levels", path) from None


def storable_command(command: CommandBase, path: str = "$") -> CommandBase:
    """``command`` if the job store can keep every value of it (contracts/storable.py), else
    ``InvalidCommand`` naming the field: checked here, where every way a command enters passes."""
    try:
        storable.check(command, path)
    except storable.Unstorable as err:
        raise InvalidCommand(err.message, err.path) from None
    return command


def to_builtins(command: CommandBase) -> dict[str, Any]:
    return msgspec.to_builtins(command)
