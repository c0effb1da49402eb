"""numba's compile cache for the fitting processes: statsforecast's models compiled once per machine.

statsforecast compiles its models with numba in every process that fits them, and caches nothing
unless ``NIXTLA_NUMBA_CACHE`` is set when it is imported. Without the cache each fitting process
spends most of a minute compiling before its first fit, at every start of a forecast worker and
whenever a broken fitting pool is replaced, with every core busy while it does. Measured on a
2-core machine, the two fitting processes of a forecast worker warmed up (``local.warm_up``) in
47 s without the cache, 55 s filling it and 13 s with it.

The fitting processes are spawned, so they read the environment the worker process has when it
starts them: ``enable`` sets it there, once, before the first of them. A cache directory that
cannot be written leaves the cache off (numba would otherwise refuse to compile at all), and the
forecasts are the same, only slower to start.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

#: FORECAST_COMPILE_CACHE's value that turns the cache off
OFF = "off"


def default_dir() -> Path:
    """The user's cache directory (XDG_CACHE_HOME, else ~/.cache), in a folder of ours."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "switchyard" / "numba"


def enable(setting: str) -> Path | None:
    """Turn the cache on for processes started from now on; the directory, or None when it is off.

    ``setting``: FORECAST_COMPILE_CACHE, a directory, ``off``, or empty for the default (numba's own
    ``NUMBA_CACHE_DIR`` when the environment sets it, else ``default_dir()``)."""
    if setting.strip().lower() == OFF:
        return None
    if setting:
        where = Path(setting).expanduser()
    elif os.environ.get("NUMBA_CACHE_DIR"):
        where = Path(os.environ["NUMBA_CACHE_DIR"])
    else:
        where = default_dir()
    try:
        where.mkdir(parents=True, exist_ok=True)
        if not os.access(where, os.W_OK | os.X_OK):
            raise PermissionError(f"not writable: {where}")
    except OSError as err:
        log.warning("forecast: compile cache off, %s cannot be used (%s): every fitting process compiles", where, err)
        return None
    os.environ["NUMBA_CACHE_DIR"] = str(where)
    os.environ["NIXTLA_NUMBA_CACHE"] = "1"
    return where
