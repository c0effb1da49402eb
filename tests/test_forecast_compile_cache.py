"""numba's compile cache for the forecast pool's fitting processes (workers/forecast/compile_cache.py):
the spawned fitting processes get it, statsforecast really writes its compiled models there, and a
directory that cannot be written leaves the cache off instead of failing the forecasts."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bus import settings
from workers.forecast import compile_cache, local

NAMES = ("NUMBA_CACHE_DIR", "NIXTLA_NUMBA_CACHE", "FORECAST_COMPILE_CACHE", "FORECAST_N_JOBS", "XDG_CACHE_HOME")


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """None of the variables set; whatever the test or ``enable`` sets is undone afterwards."""
    for name in NAMES:
        monkeypatch.setenv(name, "")  # records the value before, so the teardown restores it
        monkeypatch.delenv(name)
    settings.get.cache_clear()
    yield monkeypatch
    local._reset()
    settings.get.cache_clear()


def test_the_fitting_processes_start_with_the_cache_of_the_setting(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    where = tmp_path / "compiled"
    clean_env.setenv("FORECAST_COMPILE_CACHE", str(where))
    clean_env.setenv("FORECAST_N_JOBS", "1")
    settings.get.cache_clear()
    local._reset()
    # what a fitting process of the real pool sees
    assert local.pool().submit(os.getenv, "NUMBA_CACHE_DIR").result(timeout=60) == str(where)
    assert local.pool().submit(os.getenv, "NIXTLA_NUMBA_CACHE").result(timeout=60) == "1"
    assert where.is_dir()


def test_statsforecast_keeps_what_it_compiles_in_that_directory(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The variables are statsforecast's and numba's: a process started with them leaves a compiled
    model behind (this fails if a new release of either reads another name)."""
    where = compile_cache.enable(str(tmp_path / "compiled"))
    assert where is not None
    fit = "import numpy as np; from statsforecast.models import _ses_forecast; _ses_forecast(np.arange(10.0), 0.5)"
    subprocess.run([sys.executable, "-c", fit], check=True, env=dict(os.environ), timeout=120)
    assert sorted(p.name for p in where.rglob("*_ses_forecast*.nbi")), list(where.rglob("*"))


def test_the_default_is_numbas_own_variable_then_the_users_cache_directory(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clean_env.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert compile_cache.enable("") == tmp_path / "xdg" / "switchyard" / "numba"
    clean_env.setenv("NUMBA_CACHE_DIR", str(tmp_path / "operator's"))
    assert compile_cache.enable("") == tmp_path / "operator's"
    assert os.environ["NUMBA_CACHE_DIR"] == str(tmp_path / "operator's")


def test_off_and_an_unwritable_directory_leave_the_cache_off(
    clean_env: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert compile_cache.enable("OFF") is None
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with caplog.at_level(logging.WARNING, logger="workers.forecast.compile_cache"):
        assert compile_cache.enable(str(blocker / "cache")) is None
    assert "compile cache off" in caplog.text and str(blocker / "cache") in caplog.text
    assert "NIXTLA_NUMBA_CACHE" not in os.environ and "NUMBA_CACHE_DIR" not in os.environ
