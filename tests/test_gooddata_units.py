"""The gooddata pool's pure parts: the tree, the sync plan, error classification, rate limit."""

from __future__ import annotations

import json
from types import SimpleNamespace

import dramatiq
import pytest
from gooddata_api_client.exceptions import ApiException, NotFoundException, ServiceException

from bus.errors import PermanentError
from contracts import InvalidCommand, convert
from contracts.gooddata import WorkspaceSpec
from workers.gooddata import tree
from workers.gooddata.errors import GoodDataUnavailable, remote, retry_after_ms
from workers.gooddata.ratelimit import RateLimiter
from workers.gooddata.sync import plan


def ws(workspace_id: str, parent_id: str | None = None, name: str | None = None) -> SimpleNamespace:
    return SimpleNamespace(id=workspace_id, name=name or workspace_id.title(), parent_id=parent_id)


ORG = [ws("demo"), ws("demo_west", "demo"), ws("demo_west_california", "demo_west"), ws("other")]


def test_forest_subtree_and_delete_order() -> None:
    roots = tree.forest(ORG)
    assert [r["id"] for r in roots] == ["demo", "other"]
    assert roots[0]["children"][0]["children"][0]["id"] == "demo_west_california"
    assert tree.subtree(ORG, "demo_west")["children"][0]["parent_id"] == "demo_west"  # type: ignore[index]
    assert tree.subtree(ORG, "missing") is None
    assert tree.leaves_first(ORG, "demo") == ["demo_west_california", "demo_west", "demo"]


def test_parents_first_and_cycles() -> None:
    assert tree.parents_first([("c", "b"), ("b", "a"), ("a", None)]) == ["a", "b", "c"]
    with pytest.raises(ValueError, match="cycle"):
        tree.parents_first([("a", "b"), ("b", "a")])


def spec(workspace_id: str, parent_id: str | None = None, name: str | None = None) -> WorkspaceSpec:
    return WorkspaceSpec(workspace_id=workspace_id, name=name or workspace_id.title(), parent_id=parent_id)


def test_sync_plan_creates_parents_first_and_deletes_children_first() -> None:
    desired = [spec("other"), spec("new_child", "new_parent"), spec("new_parent"), spec("demo", name="Renamed")]
    changes = plan(ORG, desired, delete_missing=True)
    assert [c["workspace_id"] for c in changes["create"]] == ["new_parent", "new_child"]
    assert changes["update"] == [{"workspace_id": "demo", "name": "Renamed", "previous_name": "Demo"}]
    assert changes["delete"] == ["demo_west_california", "demo_west"]
    assert changes["unchanged"] == 1 and changes["problems"] == []


def test_sync_plan_problems() -> None:
    desired = [spec("demo"), spec("demo_west", None), spec("orphan", "nowhere"), spec("kid", "other")]
    problems = plan(ORG, desired, delete_missing=True)["problems"]
    assert any("demo_west: exists under 'demo'" in p for p in problems)
    assert any("orphan: parent 'nowhere' neither exists" in p for p in problems)
    assert any("kid: parent 'other' is not listed" in p for p in problems)


def test_contract_refuses_duplicates_and_provisioning_into_the_source() -> None:
    with pytest.raises(InvalidCommand) as err:
        convert({"type": "gooddata.workspace.sync", "workspaces": [{"workspace_id": "a", "name": "A"}] * 2})
    assert err.value.path == "$.workspaces" and "listed twice" in err.value.message
    with pytest.raises(InvalidCommand) as err:
        convert({"type": "gooddata.workspace.provision", "source_id": "a", "target_id": "a"})
    assert err.value.path == "$.target_id"


def api_error(
    cls: type[ApiException], status: int, body: dict | None = None, headers: dict | None = None
) -> ApiException:
    response = SimpleNamespace(
        status=status,
        reason="Reason",
        data=json.dumps(body).encode() if body else b"",
        getheaders=lambda: headers or {},
    )
    return cls(http_resp=response)


def test_a_4xx_is_permanent_with_gooddatas_message() -> None:
    exc = api_error(NotFoundException, 404, {"title": "Not Found", "detail": "No such workspace", "status": 404})
    with (
        pytest.raises(PermanentError, match="reading x: GoodData 404 Not Found: No such workspace"),
        remote("reading x"),
    ):
        raise exc


def test_5xx_and_connection_failures_are_transient() -> None:
    with pytest.raises(GoodDataUnavailable, match="GoodData 503"), remote("listing"):
        raise api_error(ServiceException, 503, {"title": "Service Unavailable"})
    with pytest.raises(GoodDataUnavailable, match="unreachable"), remote("listing"):
        raise ConnectionRefusedError("refused")
    with pytest.raises(GoodDataUnavailable, match="did not finish"), remote("exporting"):
        raise ValueError("Server was not able to return response. The last response status is '202'.")


def test_a_429_becomes_a_retry_after_retry_after() -> None:
    with pytest.raises(dramatiq.Retry) as err, remote("listing"):
        raise api_error(ApiException, 429, {"title": "Too Many Requests"}, {"Retry-After": "7"})
    assert err.value.delay == 7000
    assert retry_after_ms({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 1  # in the past: at once
    assert retry_after_ms({}) is None
    assert retry_after_ms({"Retry-After": "999999"}) == 20 * 60 * 1000


def test_sdk_refusals_are_permanent() -> None:
    with pytest.raises(PermanentError, match="parent can not be updated"), remote("creating"):
        raise ValueError("Workspace parent can not be updated.")


def test_rate_limiter_reserves_consecutive_slots() -> None:
    limiter = RateLimiter(1000.0)
    limiter.acquire()
    first = limiter._next
    limiter.acquire()
    limiter.acquire()
    # each call takes the slot after the previous one, however many threads ask at once (the slots are
    # sums of floats: 0.001 + 0.001 may come out a hair under 0.002)
    assert limiter._next - first >= 2 * limiter.interval - 1e-9
    assert RateLimiter(0).acquire() == 0.0
