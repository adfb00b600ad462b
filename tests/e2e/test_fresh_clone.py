"""A newcomer's first hour (issue 13): a fresh clone, the README's commands, a Python without pip.

The Python on the PATH is a venv created `--without-pip` (it refuses any `pip install`, like
Debian's own python3), and the project venv is created the way it is on a Python lacking ensurepip
(VENV_WITHOUT_PIP=1): `make up` must bootstrap pip, install, start, print its banner, and the sample
customer's timeline must answer; then `make test`'s install step must install the test tools.
Slow (minutes: a whole install from PyPI, through the pip cache when warm).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.first_run import read_banner, seconds_until_data, start, stop
from cem.serving import free_port
from tests.conftest import missing_service

REPO = Path(__file__).resolve().parents[2]
INSTALL_AND_START_S = 1500.0

pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]


def newcomer_env(python_bin: Path, home_cache: Path) -> dict[str, str]:
    """The environment of a shell on a fresh machine whose python3 has no pip."""
    drop = {"VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "CEM_DATA_DIR", "VENV", "MAKEFLAGS"}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["PATH"] = f"{python_bin}{os.pathsep}{env.get('PATH', '')}"
    env["VENV_WITHOUT_PIP"] = "1"
    env.setdefault("PIP_CACHE_DIR", str(home_cache))
    return env


def test_fresh_clone_runs_the_readme_commands(tmp_path: Path) -> None:
    if not (shutil.which("make") and shutil.which("git")):
        missing_service("make and git are needed to run the README's commands")
    clone = tmp_path / "cem"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    python_dir = tmp_path / "python"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(python_dir)], check=True)
    env = newcomer_env(python_dir / "bin", Path.home() / ".cache" / "pip")
    refused = subprocess.run(["python3", "-m", "pip", "--version"], env=env, capture_output=True)
    assert refused.returncode != 0, "the python3 on the PATH must have no pip"

    process = start(["make", "up", f"PORT={free_port()}"], env=env, cwd=clone)
    started = time.monotonic()
    try:
        assert process.stdout is not None
        banner = read_banner(iter(process.stdout.readline, ""), started + INSTALL_AND_START_S)
        assert banner.complete, "\n".join(banner.lines[-40:])
        said = "\n".join(banner.lines)
        assert "cem setup: creating the virtual environment" in said
        assert "bootstrap" in said  # pip came from its wheel
        found = seconds_until_data(banner, time.monotonic(), time.monotonic() + 120)
        assert "timeline" in found, "the sample customer's timeline stayed empty"
    finally:
        stop(process)

    install = subprocess.run(
        ["make", "install-test"], env=env, cwd=clone, capture_output=True, text=True, timeout=1200
    )
    assert install.returncode == 0, install.stdout[-3000:] + install.stderr[-3000:]
    pytest_version = subprocess.run(
        [str(clone / ".venv" / "bin" / "python"), "-m", "pytest", "--version"],
        capture_output=True,
        text=True,
    )
    assert pytest_version.returncode == 0, pytest_version.stderr
    # `make test` runs on two workers (Makefile: PYTEST_ARGS): their plugin was installed too.
    workers = subprocess.run(
        [str(clone / ".venv" / "bin" / "python"), "-c", "import xdist"],
        capture_output=True,
        text=True,
    )
    assert workers.returncode == 0, workers.stderr
