"""The Submit page's generated form in a real browser: fill it, submit it, see a bad field marked."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote

from tests.browser import REQUIRES_BROWSER, TIMEOUT_MS, expect, log_in, shot, watch
from tests.support import wait_status

pytestmark = REQUIRES_BROWSER


def watch_submit(page: Any) -> list[str]:
    # a refused submit is the server's answer, not a failure of the page
    return watch(page, expected=lambda r: r.request.method == "POST" and r.url.endswith("/ui/submit"))


def field(page: Any, path: str) -> Any:
    return page.locator(f"[data-path='{path}']")


def leaves(value: Any) -> list[Any]:
    return [leaf for v in value.values() for leaf in leaves(v)] if isinstance(value, dict) else [value]


def open_submit(page: Any, query: str = "") -> None:
    log_in(page)
    page.wait_for_selector("#queues")
    page.goto("/ui/submit" + query)
    page.wait_for_selector("#submit-form[data-ready]")


def test_fill_the_generated_form_and_watch_the_job_succeed(page: Any, stack: dict[str, str]) -> None:
    problems = watch_submit(page)
    open_submit(page)
    page.select_option("#type", "system.sleep")
    seconds, steps = field(page, "$.seconds"), field(page, "$.steps")
    expect(seconds).to_be_visible()
    # the schema's bounds and default are the input's
    assert (seconds.get_attribute("min"), seconds.get_attribute("max"), seconds.get_attribute("required")) == (
        "0",
        "3600",
        "",
    )
    assert (steps.get_attribute("step"), steps.get_attribute("placeholder")) == ("1", "10")
    assert "progress" in page.locator("#type-help").inner_text()
    # the JSON follows the form, and the form follows the JSON
    seconds.fill("1")
    steps.fill("2")
    assert json.loads(page.locator("#body").input_value()) == {"seconds": 1, "steps": 2}
    page.fill("#body", '{"seconds": 1.5, "steps": 3}')
    expect(steps).to_have_value("3")
    steps.fill("4")
    assert json.loads(page.locator("#body").input_value()) == {"seconds": 1.5, "steps": 4}
    # JSON only: the form steps aside, and comes back with what the JSON says
    page.check("#json-mode")
    expect(page.locator("#fields")).to_be_hidden()
    page.fill("#body", '{"seconds": 1.5, "steps": 5}')
    page.uncheck("#json-mode")
    expect(steps).to_have_value("5")
    steps.fill("4")
    shot(page, "submit-form")

    page.click("#submit")
    page.wait_for_url("**/ui/jobs/*")
    expect(page.locator("#status")).to_have_text("succeeded", timeout=TIMEOUT_MS)
    job_id = page.url.rsplit("/", 1)[1]
    assert wait_status(stack["DATABASE_URL"], job_id, {"succeeded"})["command"]["steps"] == 4
    command = json.loads(page.locator("#command").inner_text())
    assert (command["type"], command["seconds"], command["steps"]) == ("system.sleep", 1.5, 4)
    assert problems == [], "\n".join(problems)


def test_a_command_with_nested_objects_and_arrays(page: Any) -> None:
    # only the system pool runs in the test stack: the forecast is accepted, shown queued, then cancelled
    problems = watch_submit(page)
    open_submit(page)
    page.select_option("#type", "forecast.forecast")
    field(page, "$.prediction_length").fill("3")
    # a union of objects tagged by `kind`: choosing one renders its fields
    field(page, "$.source.kind").select_option("inline")
    # an array of objects starts with the one row it needs; another can be added
    field(page, "$.source.series[0].start").fill("2024-01-01")
    field(page, "$.source.series[0].freq").select_option(label="D")
    # newlines and commas both separate the values
    field(page, "$.source.series[0].values").fill("1\n2.5\n" + ", ".join(str(v) for v in range(3, 13)))
    field(page, "$.source.series[0].series_id").fill("sales")
    page.click("text=Add series")
    field(page, "$.source.series[1].start").fill("2024-02-01T00:00:00Z")
    field(page, "$.source.series[1].freq").select_option(label="D")
    field(page, "$.source.series[1].values").fill("5\nnull\n" + "\n".join(str(v) for v in range(7, 19)))
    page.click("text=Add series")
    expect(field(page, "$.source.series[2]")).to_be_visible()
    page.click("text=Remove series[2]")
    expect(field(page, "$.source.series[2]")).to_have_count(0)
    # an array of numbers, one per line; a nested object's field
    field(page, "$.quantiles").fill("0.1\n0.9")
    field(page, "$.deepar.epochs").fill("5")
    expect(field(page, "$.deepar.learning_rate")).to_have_attribute("placeholder", "0.001")
    first, second = [1, 2.5, *range(3, 13)], [5, None, *range(7, 19)]
    expected = {
        "source": {
            "kind": "inline",
            "series": [
                {"start": "2024-01-01", "freq": "D", "values": first, "series_id": "sales"},
                {"start": "2024-02-01T00:00:00Z", "freq": "D", "values": second},
            ],
        },
        "prediction_length": 3,
        "quantiles": [0.1, 0.9],
        "deepar": {"epochs": 5},
    }
    assert json.loads(page.locator("#body").input_value()) == expected
    shot(page, "submit-nested")

    page.click("#submit")
    page.wait_for_url("**/ui/jobs/*")
    expect(page.locator("#status")).to_have_text("queued")
    command = json.loads(page.locator("#command").inner_text())
    assert command["source"] == {
        "kind": "inline",
        "series": [
            {"start": "2024-01-01", "freq": "D", "values": first, "series_id": "sales"},
            {"start": "2024-02-01T00:00:00Z", "freq": "D", "values": second, "series_id": "series"},
        ],
    }
    assert (command["prediction_length"], command["quantiles"], command["deepar"]["epochs"]) == (3, [0.1, 0.9], 5)
    page.click("#cancel")
    expect(page.locator("#status")).to_have_text("cancelled")
    assert problems == [], "\n".join(problems)


def test_an_out_of_range_value_marks_its_input(page: Any) -> None:
    problems = watch_submit(page)
    open_submit(page)
    page.select_option("#type", "system.sleep")
    seconds = field(page, "$.seconds")
    seconds.fill("-1")
    field(page, "$.steps").fill("3")
    # the browser holds it back first: the input's min is the schema's minimum
    page.click("#submit")
    assert page.url.endswith("/ui/submit") and page.locator("#error-path").count() == 0
    assert seconds.evaluate("el => el.validity.rangeUnderflow") is True
    # past the browser, the server's own check names the field, and the page marks that input
    seconds.evaluate("el => el.removeAttribute('min')")
    page.click("#submit")
    expect(page.locator("#error-path")).to_have_text("$.seconds")
    expect(seconds).to_have_class(re.compile(r"\binvalid\b"))
    expect(seconds).to_have_attribute("aria-invalid", "true")
    # what was typed is still there
    expect(seconds).to_have_value("-1")
    expect(field(page, "$.steps")).to_have_value("3")
    assert json.loads(page.locator("#body").input_value()) == {"seconds": -1, "steps": 3}
    shot(page, "submit-form-invalid")
    # editing the field clears its mark
    seconds.fill("0")
    expect(seconds).not_to_have_class(re.compile(r"\binvalid\b"))

    # deep in a nested array: a prefilled link, one value that is not a number
    command = {
        "source": {"kind": "inline", "series": [{"start": "2024-01-01", "freq": "D", "values": [1, 2]}]},
        "prediction_length": 2,
    }
    page.goto("/ui/submit?type=forecast.forecast&command=" + quote(json.dumps(command)))
    page.wait_for_selector("#submit-form[data-ready]")
    values = field(page, "$.source.series[0].values")
    expect(values).to_have_value("1\n2")
    values.fill("1\nabc")
    page.click("#submit")
    expect(page.locator("#error-path")).to_have_text("$.source.series[0].values[1]")
    expect(values).to_have_class(re.compile(r"\binvalid\b"))
    expect(values).to_have_value("1\nabc")
    # a missing required field is named by the message: its input is the one marked
    start = field(page, "$.source.series[0].start")
    start.fill("")
    start.evaluate("el => el.removeAttribute('required')")
    values.fill("1\n2")
    page.click("#submit")
    expect(page.locator("#error-path")).to_have_text("$.source.series[0]")
    expect(start).to_have_attribute("aria-invalid", "true")
    shot(page, "submit-nested-invalid")
    assert problems == [], "\n".join(problems)


def test_every_command_type_has_a_form(page: Any) -> None:
    problems = watch_submit(page)
    open_submit(page)
    types = page.locator("#type option").evaluate_all("options => options.map(o => o.value)")
    assert len(types) > 20
    for type_ in types:
        page.select_option("#type", type_)
        # nothing is filled in for the operator (a required object is there, empty, for its fields' errors)
        assert leaves(json.loads(page.locator("#body").input_value())) == [], type_
        # a field of every command is an input (or the command has none)
        inputs = page.locator("#fields [data-path]").count()
        assert inputs > 0 or "no fields" in page.locator("#fields").inner_text(), type_
    # what the generator cannot render is a JSON field: Ingest's rows are free-form objects
    page.select_option("#type", "pipelines.ingest")
    expect(field(page, "$.rows")).to_have_class(re.compile(r"\bjson-field\b"))
    field(page, "$.rows").fill('[{"id": 1}]')
    field(page, "$.table").fill("sales.orders")
    assert json.loads(page.locator("#body").input_value()) == {"rows": [{"id": 1}], "table": "sales.orders"}
    # an enum array is a set of checkboxes
    page.select_option("#type", "metrics.compute")
    page.check("#fields label.check:has-text('rmse') input")
    assert json.loads(page.locator("#body").input_value()) == {"metrics": ["rmse"]}
    # a schedule holds a command: the union of every command type, tagged by `type`
    page.select_option("#type", "schedule.set")
    field(page, "$.schedule.name").fill("ui-form")
    field(page, "$.schedule.command.type").select_option("system.sleep")
    field(page, "$.schedule.command.seconds").fill("1")
    field(page, "$.schedule.cron").fill("0 3 * * *")
    field(page, "$.schedule.misfire.policy").select_option(label="fire_once")
    body = json.loads(page.locator("#body").input_value())
    assert body == {
        "schedule": {
            "name": "ui-form",
            "command": {"type": "system.sleep", "seconds": 1},
            "cron": "0 3 * * *",
            "misfire": {"policy": "fire_once"},
        }
    }
    shot(page, "submit-schedule")
    assert problems == [], "\n".join(problems)
