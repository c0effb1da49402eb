"""The gooddata pool end to end: HTTP -> bus -> gooddata worker -> the real gooddata-sdk ->
a replay server answering with the recorded GoodData API interactions."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
import yaml

from tests.gooddata_replay import ReplayServer, interaction, not_found, pdf_export, recording
from tests.gooddata_support import (
    TOKEN,
    body,
    gooddata_env,
    run,
    start_gooddata_worker,
    succeeded,
    writes_to_workspace,
)
from tests.support import Proc

WS = "/api/v1/entities/workspaces"
LAYOUT = "/api/v1/layout/workspaces"


@pytest.fixture(scope="module")
def artifacts_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("artifacts")


@pytest.fixture(scope="module")
def worker(stack: dict[str, str], replay: ReplayServer, artifacts_dir: Path) -> Iterator[Proc]:
    proc = start_gooddata_worker(gooddata_env(stack, replay, ARTIFACTS_URL=str(artifacts_dir)))
    yield proc
    proc.stop()


@pytest.fixture()
def gd(client: httpx.Client, stack: dict[str, str], worker: Proc, replay: ReplayServer):  # type: ignore[no-untyped-def]
    """run(command) -> job row, against whatever the test loaded into the replay server."""

    def submit(command: dict, timeout: float = 60) -> dict:
        return run(client, stack["DATABASE_URL"], command, timeout)

    return submit


def recorded_body(name: str, index: int) -> object:
    return recording(name)[index]["response"]["body"]["string"]


# -- view (list), get, create, update


def test_view_the_whole_organisation_as_a_tree(gd, replay: ReplayServer) -> None:
    replay.load("workspaces/demo_workspace_list.yaml")
    result = succeeded(gd({"type": "gooddata.workspace.view"}))
    assert result["count"] == 3
    (demo,) = result["workspaces"]
    assert (demo["id"], demo["name"], demo["parent_id"]) == ("demo", "Demo", None)
    (west,) = demo["children"]
    assert (west["id"], west["parent_id"]) == ("demo_west", "demo")
    assert [c["id"] for c in west["children"]] == ["demo_west_california"]
    assert west["children"][0]["children"] == []


def test_view_rooted_at_a_workspace_and_at_a_missing_one(gd, replay: ReplayServer) -> None:
    replay.load("workspaces/demo_workspace_list.yaml")
    result = succeeded(gd({"type": "gooddata.workspace.view", "workspace_id": "demo_west"}))
    assert [w["id"] for w in result["workspaces"]] == ["demo_west"]
    assert result["workspaces"][0]["children"][0]["id"] == "demo_west_california"
    missing = gd({"type": "gooddata.workspace.view", "workspace_id": "nowhere"})
    assert missing["status"] == "dead" and "'nowhere' does not exist" in missing["error"]["message"]


def test_create_a_workspace_under_a_parent(gd, replay: ReplayServer) -> None:
    replay.load("workspaces/demo_create_workspace.yaml")
    result = succeeded(gd({"type": "gooddata.workspace.create", "workspace_id": "test", "parent_id": "demo"}))
    assert result == {"workspace_id": "test", "name": "test", "parent_id": "demo", "outcome": "created"}
    (post,) = replay.seen("POST", WS)
    sent = body(post)["data"]
    assert sent["id"] == "test" and sent["attributes"]["name"] == "test"
    assert sent["relationships"]["parent"]["data"]["id"] == "demo"
    assert post.authorization == f"Bearer {TOKEN}"


def test_rename_reads_the_workspace_and_updates_only_its_name(gd, replay: ReplayServer) -> None:
    replay.load("workspaces/demo_update_workspace_valid.yaml")
    row = gd({"type": "gooddata.workspace.rename", "workspace_id": "demo_west", "name": "Demo West Coast"})
    assert succeeded(row) == {"workspace_id": "demo_west", "name": "Demo West Coast", "previous_name": "Demo West"}
    (put,) = replay.seen("PUT", f"{WS}/demo_west")
    sent = body(put)["data"]
    assert sent["attributes"]["name"] == "Demo West Coast"
    assert sent["relationships"]["parent"]["data"]["id"] == "demo"  # the parent is kept


def test_an_invalid_update_moving_a_workspace_is_refused_without_retry(gd, replay: ReplayServer) -> None:
    replay.load("workspaces/demo_update_workspace_invalid.yaml")
    row = gd({"type": "gooddata.workspace.create", "workspace_id": "demo_west", "parent_id": "demo_west_california"})
    assert row["status"] == "dead" and row["attempts"] == 1
    assert "parent can not be updated" in row["error"]["message"]
    assert [r for r in replay.requests if r.writes] == []


# -- delete


def test_delete_a_leaf_workspace(gd, replay: ReplayServer) -> None:
    replay.load("workspaces/demo_delete_workspace.yaml")
    row = gd({"type": "gooddata.workspace.delete", "workspace_id": "demo_west_california"})
    assert succeeded(row) == {"deleted": ["demo_west_california"], "absent": []}
    assert len(replay.seen("DELETE", f"{WS}/demo_west_california")) == 1


def test_delete_of_a_parent_is_refused_without_cascade(gd, replay: ReplayServer) -> None:
    replay.load("workspaces/demo_delete_parent_workspace.yaml")
    row = gd({"type": "gooddata.workspace.delete", "workspace_id": "demo_west"})
    assert row["status"] == "dead" and row["attempts"] == 1
    assert "has children (demo_west_california)" in row["error"]["message"]
    assert "cascade" in row["error"]["message"]
    assert [r for r in replay.requests if r.writes] == []


def test_cascade_deletes_leaves_first(gd, replay: ReplayServer) -> None:
    # the recordings delete only the leaf; GoodData answers the parent's DELETE the same way
    replay.load("workspaces/demo_delete_workspace.yaml", [interaction("DELETE", f"{WS}/demo_west", 204)])
    row = gd({"type": "gooddata.workspace.delete", "workspace_id": "demo_west", "cascade": True})
    assert succeeded(row)["deleted"] == ["demo_west_california", "demo_west"]
    assert [r.path for r in replay.requests if r.method == "DELETE"] == [
        f"{WS}/demo_west_california",
        f"{WS}/demo_west",
    ]


def test_delete_of_a_missing_workspace_fails_clearly(gd, replay: ReplayServer) -> None:
    replay.load("workspaces/demo_delete_non_existing_workspace.yaml")
    row = gd({"type": "gooddata.workspace.delete", "workspace_id": "non_existing_workspace"})
    assert row["status"] == "dead" and row["attempts"] == 1
    assert row["error"]["message"] == "workspace 'non_existing_workspace' does not exist"


# -- declarative layouts: export (get), provision (get + put), backup and restore


def test_export_the_layout_as_yaml_and_json_artifacts(gd, replay: ReplayServer, client: httpx.Client) -> None:
    recorded = recorded_body("workspaces/demo_get_declarative_workspace.yaml", 0)
    for fmt, parse, content_type in (
        ("yaml", yaml.safe_load, "application/yaml"),
        ("json", json.loads, "application/json"),
    ):
        replay.load("workspaces/demo_get_declarative_workspace.yaml")
        result = succeeded(gd({"type": "gooddata.workspace.export", "workspace_id": "demo", "format": fmt}))
        assert result["artifact"]["file_name"] == f"demo.{fmt}"
        download = client.get(result["artifact"]["href"])
        assert download.status_code == 200 and download.headers["content-type"].startswith(content_type)
        document = parse(download.content)
        assert {d["id"] for d in document["ldm"]["datasets"]} == {d["id"] for d in recorded["ldm"]["datasets"]}
        assert len(document["analytics"]["metrics"]) == len(recorded["analytics"]["metrics"])
        assert replay.unmatched == []


def test_provision_copies_the_layout_into_a_new_target_and_never_writes_the_source(gd, replay: ReplayServer) -> None:
    replay.load("workspaces/demo_put_declarative_workspace.yaml")
    row = gd(
        {
            "type": "gooddata.workspace.provision",
            "source_id": "demo",
            "target_id": "demo_testing",
            "target_parent_id": None,
        }
    )
    result = succeeded(row)
    assert result["target_created"] is True and result["objects"]["datasets"] > 0
    (put,) = replay.seen("PUT", f"{LAYOUT}/demo_testing")
    source_layout = recorded_body("workspaces/demo_put_declarative_workspace.yaml", 2)
    assert {d["id"] for d in body(put)["ldm"]["datasets"]} == {d["id"] for d in source_layout["ldm"]["datasets"]}
    assert writes_to_workspace(replay, "demo") == []
    assert [r.path for r in replay.requests if r.writes] == [WS, f"{LAYOUT}/demo_testing"]


def test_provision_again_is_idempotent_and_still_only_reads_the_source(gd, replay: ReplayServer) -> None:
    existing = {"data": {"id": "demo_testing", "type": "workspace", "attributes": {"name": "demo_testing"}}}
    replay.load("workspaces/demo_put_declarative_workspace.yaml")
    replay.add([interaction("GET", f"{WS}/demo_testing?include=workspaces", 200, existing)], first=True)
    row = gd({"type": "gooddata.workspace.provision", "source_id": "demo", "target_id": "demo_testing"})
    assert succeeded(row)["target_created"] is False
    assert replay.seen("POST", WS) == []
    assert writes_to_workspace(replay, "demo") == []
    assert len(replay.seen("PUT", f"{LAYOUT}/demo_testing")) == 1


def test_provision_names_and_places_a_new_target(gd, replay: ReplayServer) -> None:
    # (demo_clone_workspace.yaml is the SDK's clone_workspace, which also rewrites the organisation's
    # workspace data filters and reads the layout with its activity info: provision does neither)
    replay.load("workspaces/demo_put_declarative_workspace.yaml")
    command = {"type": "gooddata.workspace.provision", "source_id": "demo", "target_id": "demo_testing"}
    row = gd({**command, "target_name": "Demo Testing", "target_parent_id": "demo"})
    assert succeeded(row)["target_created"] is True
    (post,) = replay.seen("POST", WS)
    sent = body(post)["data"]
    assert sent["attributes"]["name"] == "Demo Testing"
    assert sent["relationships"]["parent"]["data"]["id"] == "demo"
    assert writes_to_workspace(replay, "demo") == []


def test_provision_refuses_a_target_equal_to_the_source(client: httpx.Client, worker: Proc) -> None:
    response = client.post(
        "/v1/commands", json={"type": "gooddata.workspace.provision", "source_id": "demo", "target_id": "demo"}
    )
    assert response.status_code == 422
    assert response.json()["detail"]["path"] == "$.target_id"


def test_backup_then_restore_puts_the_layout_back(gd, replay: ReplayServer, client: httpx.Client) -> None:
    replay.load("workspaces/demo_workspace_list.yaml", "workspaces/demo_get_declarative_workspace.yaml")
    backup = gd({"type": "gooddata.workspace.backup", "workspace_ids": ["demo"]})
    result = succeeded(backup)
    assert result["workspaces"] == ["demo"] and result["artifact"]["content_type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(client.get(result["artifact"]["href"]).content))
    manifest = json.loads(archive.read("manifest.json"))
    assert manifest["workspaces"] == [{"id": "demo", "name": "Demo", "parent_id": None}]
    assert any(n.startswith("workspaces/demo/ldm/datasets/") for n in archive.namelist())

    # the recordings put layouts into other workspaces only; GoodData answers a PUT with 204
    replay.load("workspaces/demo_workspace_list.yaml", [interaction("PUT", f"{LAYOUT}/demo", 204)])
    restored = succeeded(gd({"type": "gooddata.workspace.restore", "backup_job_id": backup["id"]}))
    assert restored["restored"] == ["demo"] and restored["created"] == []
    (put,) = replay.seen("PUT", f"{LAYOUT}/demo")
    recorded = recorded_body("workspaces/demo_get_declarative_workspace.yaml", 0)
    assert {d["id"] for d in body(put)["ldm"]["datasets"]} == {d["id"] for d in recorded["ldm"]["datasets"]}


def test_restore_of_a_job_without_a_backup_is_refused(gd, replay: ReplayServer) -> None:
    replay.load("workspaces/demo_workspace_list.yaml")
    row = gd({"type": "gooddata.workspace.restore", "backup_job_id": "no-such-job"})
    assert row["status"] == "dead" and "has no backup artifact" in row["error"]["message"]


# -- sync (full load)


def test_sync_dry_run_lists_the_changes_and_writes_nothing(gd, replay: ReplayServer) -> None:
    replay.load("workspaces/demo_workspace_list.yaml")
    desired = [
        {"workspace_id": "demo", "name": "Demo"},
        {"workspace_id": "demo_west", "name": "Demo West Coast", "parent_id": "demo"},
        {"workspace_id": "test", "name": "Test", "parent_id": "demo"},
    ]
    command = {"type": "gooddata.workspace.sync", "workspaces": desired, "dry_run": True}
    result = succeeded(gd({**command, "delete_missing": True}))
    assert result["create"] == [{"workspace_id": "test", "name": "Test", "parent_id": "demo"}]
    assert result["update"] == [{"workspace_id": "demo_west", "name": "Demo West Coast", "previous_name": "Demo West"}]
    assert result["delete"] == ["demo_west_california"] and result["unchanged"] == 1 and result["problems"] == []
    assert succeeded(gd(command))["delete"] == []  # nothing is deleted without delete_missing
    assert [r for r in replay.requests if r.writes] == []


def test_sync_creates_renames_and_deletes(gd, replay: ReplayServer) -> None:
    replay.load(
        "workspaces/demo_workspace_list.yaml",
        "workspaces/demo_create_workspace.yaml",
        "workspaces/demo_update_workspace_valid.yaml",
        "workspaces/demo_delete_workspace.yaml",
    )
    desired = [
        {"workspace_id": "demo", "name": "Demo"},
        {"workspace_id": "demo_west", "name": "Demo West Coast", "parent_id": "demo"},
        {"workspace_id": "test", "name": "Test", "parent_id": "demo"},
    ]
    succeeded(gd({"type": "gooddata.workspace.sync", "workspaces": desired, "delete_missing": True}))
    writes = [(r.method, r.path) for r in replay.requests if r.writes]
    assert writes == [("POST", WS), ("PUT", f"{WS}/demo_west"), ("DELETE", f"{WS}/demo_west_california")]


def test_sync_refuses_to_move_a_workspace_and_changes_nothing(gd, replay: ReplayServer) -> None:
    replay.load("workspaces/demo_workspace_list.yaml")
    desired = [{"workspace_id": "demo"}, {"workspace_id": "demo_west", "parent_id": None}]
    desired = [{"name": w["workspace_id"], **w} for w in desired]
    row = gd({"type": "gooddata.workspace.sync", "workspaces": desired})
    assert row["status"] == "dead" and "cannot move a workspace" in row["error"]["message"]
    assert [r for r in replay.requests if r.writes] == []


# -- exports


@pytest.mark.parametrize(
    ("fmt", "scenario", "content_type"),
    [
        ("csv", "export/test_export_csv_by_visualization_id.yaml", "text/csv"),
        ("xlsx", "export/test_export_excel_by_visualization_id.yaml", "application/vnd.openxmlformats"),
    ],
)
def test_export_a_visualization(
    gd, replay: ReplayServer, client: httpx.Client, fmt: str, scenario: str, content_type: str
) -> None:
    replay.load(scenario)
    command = {"type": "gooddata.export.visualization", "workspace_id": "demo", "visualization_id": "customers_trend"}
    result = succeeded(gd({**command, "format": fmt}))
    assert result["artifact"]["file_name"] == f"Customers Trend.{fmt}"  # the visualization's title
    download = client.get(result["artifact"]["href"])
    assert download.status_code == 200 and download.headers["content-type"].startswith(content_type)
    recorded = recording(scenario)[-1]["response"]["body"]["string"]
    expected = recorded if isinstance(recorded, bytes) else recorded.encode()
    assert download.content == expected
    assert download.headers["content-disposition"] == f'attachment; filename="Customers Trend.{fmt}"'
    (post,) = replay.seen("POST", "/api/v1/actions/workspaces/demo/export/tabular")
    assert body(post)["format"] == fmt.upper() and body(post)["visualizationObject"] == "customers_trend"


def test_export_a_dashboard_as_pdf(gd, replay: ReplayServer, client: httpx.Client) -> None:
    replay.load(pdf_export("demo", "campaign"))
    row = gd({"type": "gooddata.export.dashboard", "workspace_id": "demo", "dashboard_id": "campaign"})
    result = succeeded(row)
    download = client.get(result["artifact"]["href"])
    assert download.headers["content-type"] == "application/pdf" and download.content.startswith(b"%PDF-")
    assert len(replay.seen("GET", "/api/v1/actions/workspaces/demo/export/visual/EXPORT_NORMALIZED_PDF")) == 2
    assert replay.unmatched == []


def test_artifact_route_answers_404_for_a_job_without_one_and_needs_the_key(
    gd, replay: ReplayServer, client: httpx.Client, stack: dict[str, str]
) -> None:
    replay.load("workspaces/demo_workspace_list.yaml")
    row = gd({"type": "gooddata.workspace.view"})
    response = client.get(f"/v1/jobs/{row['id']}/artifact")
    assert response.status_code == 404 and response.json()["detail"]["message"].startswith("this job has no artifact")
    assert client.get("/v1/jobs/nope/artifact").json()["detail"]["message"] == "no such job"
    assert httpx.get(f"{stack['url']}/v1/jobs/{row['id']}/artifact").status_code == 401


# -- remote errors


def test_a_gooddata_4xx_fails_at_once_with_gooddatas_message(gd, replay: ReplayServer) -> None:
    replay.load([interaction("GET", f"{LAYOUT}/gone?exclude=ACTIVITY_INFO", 404, not_found())])
    row = gd({"type": "gooddata.workspace.export", "workspace_id": "gone"})
    assert row["status"] == "dead" and row["attempts"] == 1
    assert "GoodData 404 Not Found: The requested endpoint does not exist" in row["error"]["message"]
    assert len(replay.requests) == 1


def test_a_gooddata_5xx_is_retried(gd, replay: ReplayServer) -> None:
    replay.load("workspaces/demo_workspace_list.yaml")
    unavailable = interaction("GET", f"{WS}?include=workspaces&page=0&size=500", 503, {"title": "Service Unavailable"})
    replay.add([unavailable], first=True)
    row = gd({"type": "gooddata.workspace.view"})
    assert succeeded(row)["count"] == 3 and row["attempts"] == 2
    assert len(replay.requests) == 2


def test_a_429_is_retried_after_retry_after(gd, replay: ReplayServer) -> None:
    replay.load("workspaces/demo_workspace_list.yaml")
    limited = interaction(
        "GET", f"{WS}?include=workspaces&page=0&size=500", 429, {"title": "Too Many Requests"}, {"Retry-After": "2"}
    )
    replay.add([limited], first=True)
    row = gd({"type": "gooddata.workspace.view"})
    assert succeeded(row)["count"] == 3 and row["attempts"] == 2
    first, second = replay.requests
    # a correctness bound, not a speed one: the pool's own backoff here is 0.2 s
    assert second.at - first.at >= 1.9


# -- the original service's shapes


def test_legacy_ws_view_create_manage_delete_export(client: httpx.Client, worker: Proc, replay: ReplayServer) -> None:
    replay.load("workspaces/demo_workspace_list.yaml")
    tree = client.get("/ws", params={"action": "view"})
    assert tree.status_code == 200 and tree.json()[0]["id"] == "demo"
    node = client.get("/ws", params={"action": "view", "id": "demo_west"}).json()
    assert node["id"] == "demo_west" and node["children"][0]["id"] == "demo_west_california"

    replay.load("workspaces/demo_create_workspace.yaml")
    created = client.get("/ws", params={"action": "create", "id": "test", "parent": "demo", "name": "Test"})
    assert created.status_code == 200 and created.json()["outcome"] == "created"

    replay.load("workspaces/demo_update_workspace_valid.yaml")
    renamed = client.get("/ws", params={"action": "manage", "id": "demo_west", "name": "Demo West Coast"})
    assert renamed.status_code == 200 and renamed.json()["previous_name"] == "Demo West"

    replay.load("workspaces/demo_delete_parent_workspace.yaml")
    refused = client.get("/ws", params={"action": "delete", "id": "demo_west"})
    assert refused.status_code == 422 and "has children" in refused.json()["detail"]["message"]

    replay.load("workspaces/demo_get_declarative_workspace.yaml")
    exported = client.get("/ws", params={"action": "export", "id": "demo", "name": "yaml"})
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("application/yaml")
    assert "datasets" in yaml.safe_load(exported.content)["ldm"]


def test_legacy_shapes_validate_and_can_answer_202(client: httpx.Client, stack: dict[str, str], worker: Proc) -> None:
    assert client.get("/ws", params={"action": "explode"}).json()["detail"]["path"] == "action"
    assert client.get("/ws", params={"action": "create"}).json()["detail"]["path"] == "id"
    assert client.get("/ws", params={"action": "create", "id": "bad id!"}).json()["detail"]["path"] == "id"
    assert client.get("/ws", params={"id": "x", "colour": "red"}).json()["detail"]["path"] == "colour"
    assert client.get("/provision", params={"source": "demo"}).json()["detail"]["path"] == "target"
    same = client.get("/provision", params={"source": "demo", "target": "demo"})
    assert same.status_code == 422 and same.json()["detail"]["path"] == "target"
    assert httpx.get(f"{stack['url']}/ws", params={"action": "view"}).status_code == 401
    later = client.get("/ws", params={"action": "view", "wait": "0"})
    assert later.status_code == 202 and later.json()["links"]["self"].startswith("/v1/jobs/")


def test_legacy_provision(client: httpx.Client, worker: Proc, replay: ReplayServer) -> None:
    replay.load("workspaces/demo_put_declarative_workspace.yaml")
    response = client.get("/provision", params={"source": "demo", "target": "demo_testing"})
    assert response.status_code == 200, response.text
    assert response.json()["target_created"] is True
    assert writes_to_workspace(replay, "demo") == []


# -- the token


def test_the_token_never_reaches_logs_job_records_or_responses(
    client: httpx.Client, stack: dict[str, str], worker: Proc, replay: ReplayServer
) -> None:
    # a failing call too: error paths are where libraries like to print requests
    replay.load([interaction("GET", f"{LAYOUT}/gone?exclude=ACTIVITY_INFO", 401, {"title": "Unauthorized"})])
    row = run(client, stack["DATABASE_URL"], {"type": "gooddata.workspace.export", "workspace_id": "gone"})
    assert row["status"] == "dead" and "401" in row["error"]["message"]
    assert replay.requests[0].authorization == f"Bearer {TOKEN}"  # it was used
    with psycopg.connect(stack["DATABASE_URL"]) as conn:
        jobs = conn.execute("SELECT j::text FROM jobs j").fetchall()
        stored = conn.execute("SELECT a::text FROM artifacts a").fetchall()
    assert jobs and not [r for r in jobs if TOKEN in r[0]]
    assert not [r for r in stored if TOKEN in r[0]]
    listing = client.get("/v1/jobs", params={"limit": 500})
    assert TOKEN not in listing.text
    assert TOKEN not in worker.output()
