"""Which paths belong to the dashboard (kept import-free: the API-key middleware asks it)."""

from __future__ import annotations

PREFIX = "/ui"


def is_ui_path(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")
