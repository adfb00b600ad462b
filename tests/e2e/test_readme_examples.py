"""The README's examples are copy-paste correct: each block marked `<!-- readme-example -->` runs,
as a user would paste it, against `cem up --demo` with the variables its banner exports."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.first_run import Banner, read_banner, seconds_until_data, start, stop
from cem.serving import free_port

REPO = Path(__file__).resolve().parents[2]
MARKED_BLOCK = re.compile(r"<!-- readme-example -->\n```bash\n(.*?)```", re.DOTALL)

pytestmark = pytest.mark.slow


def readme_examples() -> list[str]:
    return MARKED_BLOCK.findall((REPO / "README.md").read_text())


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Banner]:
    """A small demo instance, once its sample customer's timeline answers."""
    data_dir = tmp_path_factory.mktemp("readme") / "data"
    command = [sys.executable, "-m", "cem.cli", "up", "--demo", "--demo-customers", "300",
               "--demo-days", "14", "--port", str(free_port()), "--data-dir", str(data_dir)]  # fmt: skip
    process = start(command, env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        assert process.stdout is not None
        banner = read_banner(iter(process.stdout.readline, ""), time.monotonic() + 180)
        assert banner.complete, "\n".join(banner.lines)
        found = seconds_until_data(banner, time.monotonic(), time.monotonic() + 120)
        assert "timeline" in found, "the sample customer's timeline stayed empty"
        yield banner
    finally:
        stop(process)


def test_the_readme_has_examples_for_each_user() -> None:
    assert len(readme_examples()) >= 3


@pytest.mark.parametrize("example", readme_examples(), ids=lambda e: e.splitlines()[0][:40])
def test_each_readme_example_runs_as_written(demo: Banner, example: str) -> None:
    env = {
        **os.environ,
        "CEM": demo.url,
        "INGEST_URL": demo.ingest_url,
        "INGEST_KEY": demo.keys["ingest"],
        "AGENT_KEY": demo.keys["agent"],
        "MANAGER_KEY": demo.keys["manager"],
        "CUSTOMER": demo.sample_key,
    }
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", example],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, f"{example}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
    assert done.stdout.strip(), "every example answers something"
