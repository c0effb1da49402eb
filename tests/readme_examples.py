"""The README's examples, read from README.md itself, so that a stale example fails a test.

Every ``curl`` / ``api`` command of a ``sh`` block becomes an HTTP request; the lines of the
command-line block become ``python -m ingress`` runs; a ``# {...}`` comment after a command is
the answer it prints, whose keys (and some of whose values) the real answer must have.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)
#: placeholders the README writes for an id it cannot know: `5b0…`, `7c1…`, `<id>`
PLACEHOLDER = re.compile(r"[0-9a-f]{3}…|<id>")
#: printed values compared with the real ones (others are times, ids and figures that vary)
COMPARED = {"status", "accuracy", "n", "series_id"}


@dataclass
class Example:
    section: str
    line: str
    kind: str  # "http" or "cli"
    method: str = "GET"
    url: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    body: str | None = None
    argv: list[str] = field(default_factory=list)
    printed: str | None = None  # the `# {...}` answer shown after it


def sections(readme: str) -> list[tuple[str, str, str]]:
    """(section heading, fence language, block text) of every fenced block."""
    found = []
    for match in FENCE.finditer(readme):
        before = readme[: match.start()]
        headings = re.findall(r"^#{2,3} (.+)$", before, re.M)
        found.append((headings[-1] if headings else "", match.group(1), match.group(2)))
    return found


def commands(block: str) -> list[tuple[str, str | None]]:
    """Each shell command of a block (continuations and multi-line quotes joined), with the
    ``# {...}`` comment lines that follow it."""
    out: list[tuple[str, str | None]] = []
    buffer = ""
    for line in block.splitlines():
        if not buffer and line.lstrip().startswith("#"):
            if out and line.lstrip().startswith("# {"):
                text, printed = out[-1]
                out[-1] = (text, (printed or "") + line.lstrip()[1:].strip())
            continue
        buffer += line + "\n"
        if buffer.rstrip().endswith("\\"):
            buffer = buffer.rstrip()[:-1] + " "
            continue
        try:
            shlex.split(buffer, comments=True)
        except ValueError:  # a quote spans lines: the command goes on
            continue
        if buffer.strip():
            out.append((buffer.strip(), None))
        buffer = ""
    return out


def parse_http(section: str, text: str, printed: str | None) -> Example | None:
    words = shlex.split(text, comments=True)
    if not words or words[0] not in ("curl", "api"):
        return None
    example = Example(section=section, line=text, kind="http", printed=printed)
    if words[0] == "api":  # README: api() { curl -s -H "Authorization: Bearer $KEY" -H "Content-Type: ..." "$@"; }
        example.headers["Authorization"] = "Bearer $KEY"
        example.headers["Content-Type"] = "application/json"
    args = iter(words[1:])
    for word in args:
        if word == "-X":
            example.method = next(args)
        elif word == "-H":
            name, _, value = next(args).partition(":")
            example.headers[name.strip()] = value.strip()
        elif word == "-d":
            example.body = next(args)
            if example.method == "GET":
                example.method = "POST"
        elif word == "-o":
            next(args)
        elif word.startswith("http"):
            example.url = word
    return example


def parse_cli(section: str, text: str) -> Example | None:
    words = shlex.split(text, comments=True)
    if words[:3] != [".venv/bin/python", "-m", "ingress"]:
        return None
    return Example(section=section, line=text, kind="cli", argv=words[3:])


def examples(readme_path: Path) -> list[Example]:
    found: list[Example] = []
    for section, language, block in sections(readme_path.read_text()):
        if language != "sh":
            continue
        for text, printed in commands(block):
            example = parse_http(section, text, printed) or parse_cli(section, text)
            if example is not None:
                found.append(example)
    return found


def python_publishing(readme_path: Path) -> list[str]:
    """The Python blocks that publish with ``contracts.publish`` (the kombu one needs RabbitMQ:
    tests/test_direct_publish.py runs it)."""
    return [block for _, language, block in sections(readme_path.read_text())
            if language == "python" and "from contracts import publish" in block]  # fmt: skip


def table_commands(readme_path: Path) -> dict[str, list[dict[str, Any]]]:
    """The per-pool table's example commands: pool -> the JSON commands of its row."""
    import json

    rows: dict[str, list[dict[str, Any]]] = {}
    for line in readme_path.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[1].startswith("`{"):
            rows[cells[0]] = [json.loads(code) for code in re.findall(r"`(\{.*?\})`", cells[1])]
    return rows


def printed_pairs(printed: str) -> dict[str, Any]:
    """The ``"key": value`` pairs of a printed answer whose value is a plain number or string."""
    pairs: dict[str, Any] = {}
    for key, value in re.findall(r'"(\w+)":\s*("[^"…]*"|-?\d+(?:\.\d+)?)', printed):
        pairs.setdefault(key, value.strip('"') if value.startswith('"') else float(value))
    return pairs


def keys_of(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in keys_of(v)}
    if isinstance(value, list):
        return {k for v in value for k in keys_of(v)}
    return set()


def values_of(value: Any, key: str) -> list[Any]:
    if isinstance(value, dict):
        return ([value[key]] if key in value else []) + [x for v in value.values() for x in values_of(v, key)]
    if isinstance(value, list):
        return [x for v in value for x in values_of(v, key)]
    return []


def shape_problems(printed: str, answer: Any) -> list[str]:
    """What the real answer lacks of the printed one: its keys, and the values of COMPARED keys."""
    problems = []
    shown = set(re.findall(r'"(\w+)":', printed))
    missing = shown - keys_of(answer)
    if missing:
        problems.append(f"keys printed but not answered: {sorted(missing)}")
    for key, value in printed_pairs(printed).items():
        if key not in COMPARED:
            continue
        actual = values_of(answer, key)
        if value not in actual and not any(isinstance(a, int | float) and a == value for a in actual):
            problems.append(f"{key}: printed {value!r}, answered {actual!r}")
    return problems
