"""The Submit page over HTTP: the schema the form is generated from, prefilled links, bad links."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from contracts import BY_TYPE
from ingress.ui.submit import PREFILL_LIMIT
from tests.test_ui import csrf_of

BODY = re.compile(r'<textarea id="body"[^>]*>(.*?)</textarea>', re.DOTALL)
SELECTED = re.compile(r'<option value="([^"]+)" selected>')
NOTICE = re.compile(r'<p class="prefill-notice" id="notice">(.*?)</p>', re.DOTALL)


def opened(ui: httpx.Client, **query: str) -> tuple[str, dict[str, Any], str | None]:
    """(chosen type, the textarea's JSON, the notice) of the Submit page opened with ``query``."""
    page = ui.get("/ui/submit?" + urlencode(query))
    assert page.status_code == 200, page.text
    body = BODY.search(page.text)
    chosen = SELECTED.search(page.text)
    assert body and chosen
    notice = NOTICE.search(page.text)
    return chosen.group(1), json.loads(html.unescape(body.group(1))), notice and html.unescape(notice.group(1))


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if "$ref" in node:
            yield node["$ref"]
        for value in node.values():
            yield from refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs(value)


def test_the_schema_names_every_command_type_and_defines_its_fields(ui: httpx.Client) -> None:
    answer = ui.get("/ui/submit/schema")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    assert "script-src 'self'" in answer.headers["content-security-policy"]
    schema = answer.json()
    assert set(schema["types"]) == set(BY_TYPE)
    defs = schema["$defs"]
    for tag, name in schema["types"].items():
        definition = defs[name]
        assert definition["type"] == "object", tag
        assert definition["properties"]["type"] == {"enum": [tag]}, tag
        assert "type" in definition["required"], tag
        # every field the contract declares is in the form's schema
        assert set(definition["properties"]) == {"type", *BY_TYPE[tag].__struct_fields__}, tag
    # a nested object or a union the form renders is always one of the definitions
    for ref in refs(schema):
        assert ref.startswith("#/$defs/") and ref.removeprefix("#/$defs/") in defs, ref
    sleep = defs[schema["types"]["system.sleep"]]["properties"]
    assert sleep["seconds"] == {"type": "number", "minimum": 0, "maximum": 3600}


def test_the_schema_needs_a_session(stack: dict[str, str]) -> None:
    with httpx.Client(base_url=stack["url"], timeout=10) as anonymous:
        answer = anonymous.get("/ui/submit/schema")
        assert answer.status_code == 303
        assert answer.headers["location"].startswith("/ui/login?next=")


def test_the_page_loads_the_form_script_and_runs_no_inline_code(ui: httpx.Client) -> None:
    page = ui.get("/ui/submit").text
    assert '<script src="/ui/static/schemaform.js" defer></script>' in page
    assert 'data-schema="/ui/submit/schema"' in page
    assert re.findall(r"<script(?![^>]*\bsrc=)", page) == []
    assert not re.search(r"<[^>]+\s(on[a-z]+|style)=", page)
    script = ui.get("/ui/static/schemaform.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]


def test_a_link_opens_the_form_with_its_fields(ui: httpx.Client) -> None:
    run = {"pipeline_id": "daily_sales", "nodes": ["stage_orders", "orders_by_day"], "mode": "rerun"}
    chosen, body, notice = opened(ui, type="pipelines.run", command=json.dumps(run))
    assert (chosen, body, notice) == ("pipelines.run", run, None)
    # the type may come with the command instead
    create = {"type": "gooddata.workspace.create", "workspace_id": "child", "parent_id": "parent"}
    chosen, body, notice = opened(ui, command=json.dumps(create))
    assert (chosen, body, notice) == (
        "gooddata.workspace.create",
        {"workspace_id": "child", "parent_id": "parent"},
        None,
    )
    # a type alone, as before
    assert opened(ui, type="system.sleep") == ("system.sleep", {}, None)


def test_a_prefilled_command_is_submitted_as_the_api_would_take_it(ui: httpx.Client, client: httpx.Client) -> None:
    chosen, body, _ = opened(ui, type="system.noop", command=json.dumps({"echo": "from a link"}))
    token = csrf_of(ui.get("/ui/submit").text)
    sent = ui.post("/ui/submit", data={"csrf": token, "type": chosen, "body": json.dumps(body)})
    assert sent.status_code == 303
    job_id = sent.headers["location"].rsplit("/", 1)[1]
    assert client.get(f"/v1/jobs/{job_id}").json()["command"]["echo"] == "from a link"


@pytest.mark.parametrize(
    ("query", "chosen", "body", "said"),
    [
        ({"type": "system.sleep", "command": "{not json"}, "system.sleep", {}, "is not JSON"),
        ({"type": "system.sleep", "command": "[1, 2]"}, "system.sleep", {}, "not a JSON object"),
        ({"type": "system.sleep", "command": '"seconds"'}, "system.sleep", {}, "not a JSON object"),
        ({"type": "system.sleep", "command": "x" * (PREFILL_LIMIT + 1)}, "system.sleep", {}, "longer than"),
        ({"type": "no.such", "command": '{"seconds": 1}'}, "system.noop", {}, "'no.such' is not a command type"),
        ({"command": '{"type": "no.such"}'}, "system.noop", {}, "'no.such' is not a command type"),
        (
            {"type": "system.sleep", "command": '{"type": "system.fail", "seconds": 2}'},
            "system.sleep",
            {"seconds": 2},
            "names another type (system.fail)",
        ),
        ({"command": '{"type": 7}'}, "system.noop", {}, "names another type (7)"),
    ],
)
def test_a_bad_link_is_ignored_with_a_notice(
    ui: httpx.Client, query: dict[str, str], chosen: str, body: dict[str, Any], said: str
) -> None:
    shown_type, shown_body, notice = opened(ui, **query)
    assert (shown_type, shown_body) == (chosen, body)
    assert notice is not None and said in notice
