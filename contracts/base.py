"""Shared building blocks of every command message.

Commands are msgspec Structs tagged by their ``type`` field. Unknown fields are
refused so a typo in a producer fails loudly instead of being silently dropped.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

#: Version of the wire format. Bumped on any incompatible change to a command;
#: carried in every message's ``options.schema_version``.
SCHEMA_VERSION = 1


class CommandBase(msgspec.Struct, forbid_unknown_fields=True, tag_field="type", kw_only=True, frozen=True):
    """Base of every command. Subclasses set ``tag="<pool>.<operation>"``."""


class Model(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """Base of nested value objects inside commands (no tag)."""


#: Identifier as used by GoodData workspaces, schedules and catalog names.
Identifier = Annotated[str, msgspec.Meta(min_length=1, max_length=255, pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")]
#: A free text name shown to people.
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=255)]
#: Postgres identifier (schema, table or column name) as written in a catalog.
SqlName = Annotated[str, msgspec.Meta(min_length=1, max_length=63, pattern=r"^[a-z_][a-z0-9_]*$")]
#: ``schema.table`` as written in a catalog.
QualifiedTable = Annotated[str, msgspec.Meta(max_length=127, pattern=r"^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$")]
#: no space and no control character: spelled out, as Python's ``\s`` and JSON Schema's (ECMA's) differ on
#: \x1c-\x1f, \x85 and \ufeff, and /openapi.json must refuse what the contract refuses
INVISIBLE = r"\s\x00-\x1f\x7f-\x9f\ufeff"
#: where a notification is posted (a schedule's alert, a rule's Slack message)
WebhookUrl = Annotated[str, msgspec.Meta(max_length=2048, pattern=rf"^https?://[^{INVISIBLE}]+$")]
