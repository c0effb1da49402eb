"""The lock files: every install path takes them, they agree with each other and with pyproject's
ranges, and this environment holds exactly the locked versions."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.support import ROOT

PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)\s*(?:;\s*([^\\]+?))?\s*\\?$", re.M)


def pins(name: str) -> dict[str, str]:
    """package -> version pinned for this interpreter (a universal lock may pin several by marker)."""
    found: dict[str, str] = {}
    text = (ROOT / name).read_text()
    for package, version, marker in PIN.findall(text):
        if not marker or Marker(marker).evaluate():
            found[canonicalize_name(package)] = version
    return found


def test_every_pin_carries_hashes() -> None:
    for name in ("requirements-runtime.txt", "requirements.txt"):
        blocks = re.split(r"\n(?=\S)", (ROOT / name).read_text())
        pinned = [b for b in blocks if "==" in b.split("\n", 1)[0]]
        assert pinned, name
        unhashed = [b.split()[0] for b in pinned if "--hash=sha256:" not in b]
        assert not unhashed, f"{name}: pins without hashes: {unhashed}"


def test_the_runtime_lock_is_the_dev_lock_less_the_extras() -> None:
    runtime, dev = pins("requirements-runtime.txt"), pins("requirements.txt")
    differ = {p: (v, dev.get(p)) for p, v in runtime.items() if dev.get(p) != v}
    assert not differ, f"the two locks pin different versions: {differ}"


def test_the_locks_satisfy_pyproject() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime, dev = pins("requirements-runtime.txt"), pins("requirements.txt")
    wanted = [(spec, runtime) for spec in project["dependencies"]]
    wanted += [(spec, dev) for extra in ("local", "dev") for spec in project["optional-dependencies"][extra]]
    for spec, lock in wanted:
        requirement = Requirement(spec)
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        name = canonicalize_name(requirement.name)
        assert name in lock, f"{requirement.name} is in pyproject.toml but not locked: run `make lock`"
        assert requirement.specifier.contains(lock[name], prereleases=True), (
            f"{requirement.name}=={lock[name]} is locked, pyproject.toml asks {requirement.specifier}: run `make lock`"
        )


def test_this_environment_holds_the_locked_versions() -> None:
    """`make test` installed from the lock (a stale or hand-made virtualenv fails here)."""
    installed = {canonicalize_name(d.metadata["Name"]): d.version for d in metadata.distributions()}
    wrong = {p: (v, installed.get(p)) for p, v in pins("requirements.txt").items() if installed.get(p) != v}
    assert not wrong, f"locked -> installed: {wrong}"


def test_every_install_path_takes_the_lock() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"pip install .*--require-hashes -r \$\(LOCK\)", makefile)
    assert "LOCK := requirements.txt" in makefile
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "pip install --require-hashes -r requirements-runtime.txt" in dockerfile
    assert re.search(r"pip install --no-deps .*\.", dockerfile), "the project itself must not resolve dependencies"


def test_the_standard_lock_holds_the_same_pins_with_hashes() -> None:
    """pylock.toml (PEP 751) is the same resolution as requirements.txt, every file hashed."""
    lock = tomllib.loads((ROOT / "pylock.toml").read_text())
    standard = {}
    for package in lock["packages"]:
        if "marker" in package and not Marker(package["marker"]).evaluate():
            continue
        files = [package.get("sdist"), *package.get("wheels", [])]
        assert all(f and f["hashes"].get("sha256") for f in files if f is not None), package["name"]
        standard[canonicalize_name(package["name"])] = package["version"]
    assert standard == pins("requirements.txt")


def test_uv_lock_holds_the_same_resolution() -> None:
    """uv.lock (what `uv sync` and uv-aware tools read) pins what requirements.txt pins, on every
    marker: the same versions, whichever lock a tool takes. setuptools is locked for our build only
    (requirements.txt), and the project itself is in uv.lock alone."""
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    in_uv = {(canonicalize_name(p["name"]), p["version"]) for p in lock["package"] if p["name"] != "switchyard"}
    text = (ROOT / "requirements.txt").read_text()
    in_requirements = {(canonicalize_name(name), version) for name, version, _ in PIN.findall(text)}
    assert in_uv == {pin for pin in in_requirements if pin[0] != "setuptools"}
