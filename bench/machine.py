"""What the figures were measured on: hardware, OS, servers and the libraries that matter."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import platform
import re
import shutil
import subprocess
from pathlib import Path

LIBRARIES = ("dramatiq", "redis", "psycopg", "starlette", "uvicorn", "msgspec")


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def cpu_model() -> str:
    match = re.search(r"^model name\s*:\s*(.+)$", _read("/proc/cpuinfo"), re.MULTILINE)
    return match[1].strip() if match else platform.processor() or "unknown CPU"


def cores() -> int:
    """What ``nproc`` prints: the cores this process may run on."""
    return len(os.sched_getaffinity(0))


def ram_gib() -> float:
    match = re.search(r"^MemTotal:\s*(\d+) kB", _read("/proc/meminfo"), re.MULTILINE)
    return int(match[1]) / 1024**2 if match else 0.0


def os_name() -> str:
    match = re.search(r'^PRETTY_NAME="?([^"\n]+)"?$', _read("/etc/os-release"), re.MULTILINE)
    return f"{match[1] if match else platform.system()}, kernel {platform.release()}"


def wrk_version() -> str:
    if shutil.which("wrk") is None:
        return "not installed"
    # `wrk -v` prints its version line and exits 1
    done = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
    first = (done.stdout or done.stderr).splitlines()[:1]
    return first[0].split(" [")[0].removeprefix("wrk ") if first else "unknown"


def uvicorn_stack() -> str:
    """uvicorn's ``auto`` picks uvloop and httptools only when they are installed."""
    loop = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    http = "httptools" if importlib.util.find_spec("httptools") else "h11"
    return f"{loop} + {http}"


def machine_line(servers: dict[str, str]) -> str:
    parts = [
        cpu_model(),
        f"{cores()} cores (nproc)",
        f"{ram_gib():.1f} GiB RAM",
        os_name(),
        f"Python {platform.python_version()}",
        *(f"{name} {version}" for name, version in sorted(servers.items())),
    ]
    return "; ".join(parts)


def software_line() -> str:
    versions = [f"{name} {importlib.metadata.version(name)}" for name in LIBRARIES]
    return "; ".join([*versions, f"uvicorn event loop + HTTP parser: {uvicorn_stack()}", f"wrk {wrk_version()}"])


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f}"
