"""The GoodData page: the workspace tree as the gooddata pool read it, refreshed from the browser.

A real gooddata worker runs against the replay server of the recorded GoodData API; the page never
calls GoodData itself, it submits a view command and follows the job.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import psycopg
import pytest

from contracts import convert
from tests.browser import REQUIRES_BROWSER, TIMEOUT_MS, expect, log_in, shot
from tests.gooddata_replay import ReplayServer
from tests.gooddata_support import gooddata_env, start_gooddata_worker
from tests.support import Proc, wait_for, wait_status
from tests.test_ui import csrf_of, submit_links

VIEW_JOBS = "SELECT id FROM jobs WHERE type = 'gooddata.workspace.view' ORDER BY created_at DESC LIMIT 1"


@pytest.fixture(scope="module")
def worker(stack: dict[str, str], replay: ReplayServer) -> Iterator[Proc]:
    proc = start_gooddata_worker(gooddata_env(stack, replay), name="worker-gooddata-ui")
    yield proc
    proc.stop()


def newest_view(database_url: str) -> str | None:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(VIEW_JOBS).fetchone()
    return row[0] if row else None


def refresh(ui: httpx.Client, database_url: str) -> str:
    """Press Refresh on the page; the id of the view job it submitted."""
    before = newest_view(database_url)
    answer = ui.post("/ui/gooddata/refresh", data={"csrf": csrf_of(ui.get("/ui/gooddata").text)})
    assert answer.status_code == 303 and answer.headers["location"] == "/ui/gooddata"
    job_id = newest_view(database_url)
    assert job_id is not None and job_id != before
    return job_id


def test_refresh_reads_the_tree_through_the_pool(
    ui: httpx.Client, stack: dict[str, str], worker: Proc, replay: ReplayServer
) -> None:
    replay.load("workspaces/demo_workspace_list.yaml")
    job_id = refresh(ui, stack["DATABASE_URL"])
    assert wait_status(stack["DATABASE_URL"], job_id, {"succeeded", "dead"})["status"] == "succeeded"
    html = ui.get("/ui/gooddata").text
    assert f'href="/ui/jobs/{job_id}"' in html  # the snapshot shown is this job's
    # nested as GoodData has them: demo > demo_west > demo_west_california
    nesting = re.findall(r'data-workspace="([^"]+)"|(</li>)', html)
    order = [ws or "/" for ws, _ in nesting]
    assert order == ["demo", "demo_west", "demo_west_california", "/", "/", "/"]
    # each workspace links to the Submit form filled in for it
    links = [urlparse(h.replace("&amp;", "&")) for h in re.findall(r'href="(/ui/submit\?[^"]+)"', html)]
    rename = next(parse_qs(u.query) for u in links if "gooddata.workspace.rename" in u.query and "demo_west" in u.query)
    assert json.loads(rename["command"][0])["workspace_id"] in {"demo_west", "demo_west_california"}
    form = ui.get(links[0].path + "?" + links[0].query)
    assert form.status_code == 200
    commands = submit_links(html)
    assert {"type": "gooddata.workspace.delete", "workspace_id": "demo_west_california"} in commands
    for command in commands:
        convert(command)  # each is a valid command as it stands (InvalidCommand otherwise)


def test_a_refresh_needs_the_csrf_token_and_a_failed_one_is_shown(
    ui: httpx.Client, stack: dict[str, str], worker: Proc, replay: ReplayServer
) -> None:
    before = newest_view(stack["DATABASE_URL"])
    assert ui.post("/ui/gooddata/refresh", data={"csrf": "forged"}).status_code == 403
    assert newest_view(stack["DATABASE_URL"]) == before  # nothing submitted
    replay.load()  # GoodData answers nothing this time
    job_id = refresh(ui, stack["DATABASE_URL"])
    assert wait_status(stack["DATABASE_URL"], job_id, {"succeeded", "dead"}, timeout=60)["status"] == "dead"
    html = ui.get("/ui/gooddata").text
    assert 'id="view-failed"' in html and f'href="/ui/jobs/{job_id}"' in html
    # the older snapshot is still shown beside the failure
    assert 'id="snapshot"' in html and "demo_west_california" in html


@pytest.mark.usefixtures("worker")
@REQUIRES_BROWSER[0]
@REQUIRES_BROWSER[1]
def test_the_tree_in_a_browser(page: Any, stack: dict[str, str], replay: ReplayServer) -> None:
    replay.load("workspaces/demo_workspace_list.yaml")
    before = newest_view(stack["DATABASE_URL"])
    log_in(page)
    page.click("nav >> text=GoodData")
    page.click("#refresh-tree")
    wait_for(lambda: newest_view(stack["DATABASE_URL"]) != before, what="a view job")
    job_id = newest_view(stack["DATABASE_URL"])
    # the page follows the job by itself and shows the tree it read
    expect(page.locator(f"#snapshot a[href='/ui/jobs/{job_id}']")).to_have_count(1, timeout=TIMEOUT_MS)
    expect(page.locator("[data-workspace=demo_west_california]")).to_be_visible()
    shot(page, "gooddata")
    page.locator("[data-workspace=demo_west_california] >> text=rename").click()
    page.wait_for_url("**/ui/submit?*")
    assert page.locator("#type").input_value() == "gooddata.workspace.rename"
