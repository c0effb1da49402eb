"""The Overview's Workers table and throughput sparklines in a real browser, under the strict CSP."""

from __future__ import annotations

from typing import Any

import httpx

from tests.browser import REQUIRES_BROWSER, TIMEOUT_MS, expect, log_in, shot, watch
from tests.support import wait_status

pytestmark = REQUIRES_BROWSER


def test_the_workers_table_lists_the_system_worker(page: Any, client: httpx.Client, stack: dict[str, str]) -> None:
    # a content security policy violation ("Refused to ...") is a console error
    problems = watch(page)
    # something for the sparkline to draw, a failure among it, and a job in flight
    done = [client.post("/v1/commands", json={"type": "system.noop"}).json()["id"] for _ in range(3)]
    done.append(client.post("/v1/commands", json={"type": "system.fail", "permanent": True}).json()["id"])
    for job_id in done:
        wait_status(stack["DATABASE_URL"], job_id, {"succeeded", "dead"})
    sleeping = client.post("/v1/commands", json={"type": "system.sleep", "seconds": 8, "steps": 8}).json()["id"]

    log_in(page)
    page.wait_for_selector("#workers")
    worker = page.locator("#workers tr[data-role=worker][data-queues=system]")
    expect(worker.first).to_be_visible(timeout=TIMEOUT_MS)
    assert "worker / system" in worker.first.inner_text()
    expect(page.locator("#workers tr[data-role=ticker]")).to_have_count(1, timeout=TIMEOUT_MS)
    expect(page.locator("[data-dependency=ticker]")).to_have_text("ticker: ok", timeout=TIMEOUT_MS)
    expect(page.locator("tr[data-queue=system] canvas.spark[data-drawn]")).to_be_visible()
    # the page refreshes itself: the sleeping job shows up in flight without a reload
    in_flight = page.locator(f"#workers tr[data-queues=system] a[data-job='{sleeping}'][href='/ui/jobs/{sleeping}']")
    expect(in_flight).to_have_text("system.sleep", timeout=TIMEOUT_MS)
    shot(page, "overview-workers")

    # the page swaps its main element every few seconds: the new sparklines are drawn too
    page.evaluate("() => { document.getElementById('main').dataset.old = '1'; }")
    page.wait_for_function("() => !document.getElementById('main').dataset.old", timeout=TIMEOUT_MS)
    expect(page.locator("canvas.spark:not([data-drawn])")).to_have_count(0)
    expect(page.locator("#workers tr[data-role=worker][data-queues=system]").first).to_be_visible()
    assert problems == []
