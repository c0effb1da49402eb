"""Static checks of Dockerfile and docker-compose.yml (Docker does not run here or in CI).

They keep the containers in step with the Procfile: a new process type needs a compose
service running the same command, from the same image.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
#: images of services that do not run our code
THIRD_PARTY = ("postgres:", "redis:", "rabbitmq:")
#: the only acceptable value: required from the host's environment, no default
API_KEYS_FROM_HOST = re.compile(r"\$\{API_KEYS:\?[^}]*\}")


def procfile() -> dict[str, str]:
    """``name: command`` lines of the Procfile."""
    entries = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = re.fullmatch(r"([A-Za-z0-9_-]+):\s*(.+)", line.strip())
        assert match, f"Procfile line is not 'name: command': {line!r}"
        entries[match[1]] = match[2].strip()
    return entries


@functools.cache
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def services() -> dict[str, dict[str, Any]]:
    return compose()["services"]


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined and comments dropped."""
    instructions, pending = [], ""
    for raw in (ROOT / "Dockerfile").read_text().splitlines():
        line = raw.strip()
        if line.startswith("#") or (not line and not pending):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, rest = (pending + line).strip().partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
        pending = ""
    return instructions


def shell_command(procfile_command: str) -> list[str]:
    """How a Procfile command is written in the compose file: ``$$`` escapes ``$`` from
    compose's own interpolation, so ``${VAR:-default}`` reaches the container's shell."""
    return ["sh", "-c", "exec " + procfile_command.replace("$", "$$")]


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # the KEY=value list form
        return dict(item.partition("=")[::2] for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def app_services() -> dict[str, dict[str, Any]]:
    return {name: s for name, s in services().items() if not str(s.get("image", "")).startswith(THIRD_PARTY)}


def test_compose_file_parses() -> None:
    data = compose()
    assert isinstance(data, dict)
    assert isinstance(data.get("services"), dict) and data["services"]


def test_procfile_parses() -> None:
    assert {"web", "system", "ticker"} <= set(procfile())


@pytest.mark.parametrize("name", sorted(procfile()))
def test_every_procfile_process_type_has_a_service_with_its_command(name: str) -> None:
    assert name in services(), f"Procfile type {name!r} has no service in docker-compose.yml"
    assert services()[name].get("command") == shell_command(procfile()[name])


def test_services_that_run_our_code_build_from_the_dockerfile() -> None:
    apps = app_services()
    assert set(procfile()) | {"migrate"} <= set(apps)
    assert (ROOT / "Dockerfile").is_file()
    for name, service in apps.items():
        build = service.get("build")
        assert build is not None, f"{name}: runs our code but is not built from the Dockerfile"
        if isinstance(build, dict):
            assert build.get("context", ".") == "." and build.get("dockerfile", "Dockerfile") == "Dockerfile", name
        else:
            assert build == ".", name
    # one image name, so compose builds the image once for all of them
    assert len({s.get("image") for s in apps.values()}) == 1


def test_migrations_run_once_before_the_processes() -> None:
    migrate = services()["migrate"]
    assert migrate["command"] == ["python", "-m", "ingress", "migrate"]
    assert migrate.get("restart") in (None, "no")
    for name in procfile():
        depends = services()[name].get("depends_on")
        assert isinstance(depends, dict), f"{name}: depends_on must name conditions"
        assert depends.get("migrate") == {"condition": "service_completed_successfully"}, name


def test_rabbitmq_only_under_its_profile() -> None:
    assert services()["rabbitmq"].get("profiles") == ["rabbitmq"]


def test_no_hard_coded_api_key() -> None:
    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "API_KEYS":
                    assert API_KEYS_FROM_HOST.fullmatch(str(value)), f"{where}: API_KEYS must be ${{API_KEYS:?...}}"
                walk(value, f"{where}.{key}")
        elif isinstance(node, list):
            for item in node:
                if isinstance(item, str) and item.startswith("API_KEYS="):
                    assert API_KEYS_FROM_HOST.fullmatch(item.partition("=")[2]), where
                walk(item, where)

    walk(compose(), "docker-compose.yml")
    for name in app_services():
        assert API_KEYS_FROM_HOST.fullmatch(environment(services()[name]).get("API_KEYS", "")), name
    assert "API_KEYS" not in (ROOT / "Dockerfile").read_text()


def test_web_listens_on_all_interfaces_with_a_healthcheck_on_healthz() -> None:
    web = services()["web"]
    assert environment(web).get("WEB_HOST") == "0.0.0.0"
    assert any(str(p).split(":")[-1] == "8000" for p in web.get("ports", []))
    check = web["healthcheck"]["test"]
    check = check if isinstance(check, str) else " ".join(check)
    assert "127.0.0.1:8000/healthz" in check or "localhost:8000/healthz" in check


def test_dockerfile_installs_the_project_and_does_not_run_as_root() -> None:
    steps = dockerfile()
    assert steps[0] == ("FROM", "python:3.11-slim")
    runs = " && ".join(args for keyword, args in steps if keyword == "RUN")
    assert re.search(r"pip install (--?\S+ )*\.(\s|$)", runs), "the project is not installed with `pip install .`"
    assert "-e ." not in runs and ".[" not in runs, "install the project itself, without dev/local extras"
    copied = " ".join(args for keyword, args in steps if keyword == "COPY").split()
    for source in (
        "contracts",
        "bus",
        "pipelines_catalog",
        "ingress",
        "workers",
        "sql",
        "devservers",
        "pyproject.toml",
        "requirements-runtime.txt",
        "Procfile",
    ):
        assert source in copied, f"the Dockerfile does not copy {source}"
    keywords = [keyword for keyword, _ in steps]
    users = [args.split(":")[0] for keyword, args in steps if keyword == "USER"]
    assert users and users[-1] not in ("root", "0"), "the image runs as root"
    assert keywords.index("USER") < keywords.index("CMD")


def test_dockerfile_default_command_is_the_web_process() -> None:
    (cmd,) = [json.loads(args) for keyword, args in dockerfile() if keyword == "CMD"]
    assert cmd == ["sh", "-c", "exec " + procfile()["web"]]


def test_web_believes_forwarded_headers_only_from_configured_proxies() -> None:
    # uvicorn's default trusts X-Forwarded-For from 127.0.0.1: a local client could pose as any address
    assert '--forwarded-allow-ips "${FORWARDED_ALLOW_IPS:-}"' in procfile()["web"]
    assert environment(services()["web"]).get("FORWARDED_ALLOW_IPS") == "${FORWARDED_ALLOW_IPS:-}"
