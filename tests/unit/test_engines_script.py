"""`deploy/engines.py start` prints its endpoint for `eval` (exported) or for parsers (plain)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def engines_module() -> Any:
    sys.path.insert(0, str(DEPLOY))  # the script imports its sibling modules by name
    try:
        spec = importlib.util.spec_from_file_location("engines_script", DEPLOY / "engines.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(DEPLOY))


class State:
    def __init__(self, where: Path) -> None:
        self.dir = where

    def path(self, name: str) -> Path:
        return self.dir / name

    def pid(self) -> int:
        return 1


@pytest.mark.parametrize(
    ("prefix", "printed"),
    [
        ("CEM_", "export CEM_POSTGRES_DSN=postgresql://cem@127.0.0.1:5/cem\n"),
        ("", "POSTGRES_DSN=postgresql://cem@127.0.0.1:5/cem\n"),
    ],
)
def test_the_endpoint_is_exported_for_eval_and_plain_for_parsers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], prefix: str, printed: str
) -> None:
    # Printed as plain assignments, `eval "$(deploy/postgres/start.sh)"` left CEM_POSTGRES_DSN
    # unseen by the `cem serve` started after it (found by a review).
    engines = engines_module()
    engines.STARTERS["postgres"] = lambda state: {
        "POSTGRES_DSN": "postgresql://cem@127.0.0.1:5/cem"
    }
    engines.start("postgres", State(tmp_path), prefix)
    assert capsys.readouterr().out == printed
