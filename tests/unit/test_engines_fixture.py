"""The engines fixture's fault injection: a test that cannot kill an engine skips locally, but
fails under CI, where a silent skip would hide the fault it exists to test (HOUSE_STYLE)."""

from __future__ import annotations

import pytest

from tests.engines import Engines


@pytest.mark.parametrize(
    ("ci", "outcome"), [("1", pytest.fail.Exception), ("", pytest.skip.Exception)]
)
def test_killing_an_engine_this_session_did_not_start(
    monkeypatch: pytest.MonkeyPatch, ci: str, outcome: type[BaseException]
) -> None:
    monkeypatch.setenv("CEM_TEST_KAFKA_BOOTSTRAP", "127.0.0.1:9")  # found, not started by us
    monkeypatch.setenv("CI", ci)
    engines = Engines()
    with pytest.raises(outcome, match="not started by this session"):
        engines.kill("kafka")
    with pytest.raises(outcome):
        engines.restart("kafka")
