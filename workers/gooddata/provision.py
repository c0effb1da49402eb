"""Provisioning: copy a source workspace's declarative layout into a target.

The source is only ever read. The original service passed the two workspaces to
``put_declarative_workspace`` the wrong way round and overwrote its source; here the
only write of the layout names the target, the contract refuses ``target == source``,
and a test checks against the recorded API that nothing was written to the source.
Running it again is harmless: the target exists, and the same layout is put again.
"""

from __future__ import annotations

from typing import Any

from gooddata_sdk import GoodDataSdk

from bus.errors import PermanentError
from workers.gooddata import layouts, workspaces


def provision(
    sdk: GoodDataSdk, source_id: str, target_id: str, *, target_name: str | None, target_parent_id: str | None
) -> dict[str, Any]:
    if source_id == target_id:
        raise PermanentError("target_id: must differ from source_id (the source is never written)")
    # read first: a missing source must not leave an empty target behind
    layout = layouts.read(sdk, source_id)
    target = workspaces.get(sdk, target_id)
    created = target is None
    if target is None:
        workspaces.create(sdk, target_id, target_name, target_parent_id)
    elif target_parent_id is not None and target.parent_id != target_parent_id:
        raise PermanentError(
            f"workspace {target_id!r} exists under {target.parent_id!r}, not {target_parent_id!r}: "
            "GoodData cannot move a workspace to another parent"
        )
    layouts.write(sdk, target_id, layout)
    return {
        "source_id": source_id,
        "target_id": target_id,
        "target_created": created,
        "objects": layouts.counts(layout),
    }
