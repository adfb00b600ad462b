"""`cem audit access` over the data directory's audit file, as an operator reads it."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from cem.adapters.sqlite_access_audit import AUDIT_FILE, SqliteAccessAudit
from cem.cli import main
from tests.contract.test_access_audit import T0, entry


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("CEM_MODE", raising=False)
    store = SqliteAccessAudit(tmp_path / AUDIT_FILE)
    store.record(entry("acme", "cust-ana", actor_id="u-1", email="ana@agents.io"))
    store.record(entry("acme", "cust-bob", at=T0 + timedelta(hours=1), actor_id="k-9"))
    store.record(entry("other", "cust-zoe", actor_id="k-7"))
    store.close()
    return tmp_path


def test_lists_a_tenants_reads_newest_first_as_a_table(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "audit", "access", "--tenant", "acme", "--data-dir", str(data_dir))
    header, bob, ana = out.splitlines()
    assert code == 0
    assert header.split() == [
        "at", "actor", "role", "customer_id", "requested_id", "resource", "request_id",
    ]  # fmt: skip
    assert bob.split()[:4] == ["2026-11-02T10:00:00Z", "key:k-9", "agent", "cust-bob"]
    assert ana.split()[:3] == ["2026-11-02T09:00:00Z", "user:ana@agents.io", "(u-1)"]
    assert "cust-zoe" not in out


def test_filters_and_mistakes(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    where = ("--tenant", "acme", "--data-dir", str(data_dir))
    code, out, _ = run(capsys, "audit", "access", *where, "--customer-id", "cust-ana")
    assert code == 0 and len(out.splitlines()) == 2 and "cust-ana" in out
    code, out, _ = run(capsys, "audit", "access", *where, "--since", "2026-11-02T09:30:00Z")
    assert code == 0 and "cust-bob" in out and "cust-ana" not in out
    code, out, err = run(capsys, "audit", "access", *where, "--actor", "nobody")
    assert (code, out, err) == (0, "", "no reads recorded for tenant 'acme' with these filters\n")
    code, _, err = run(capsys, "audit", "access", *where, "--until", "2026-11-02T09:00:00")
    assert (code, err) == (2, "cem audit: --until needs a UTC offset, e.g. 2026-11-10T00:00:00Z\n")
    code, _, err = run(capsys, "audit", "access", *where, "--since", "2026-13-01")
    assert (code, err) == (2, "cem audit: --since '2026-13-01' is not a date or RFC 3339 time\n")
    code, _, err = run(capsys, "audit", "access", *where, "--since", "2026-11-02", "--until",
                       "2026-11-02T00:00:00Z")  # fmt: skip
    assert (code, err) == (2, "cem audit: --since must be before --until\n")
    code, out, _ = run(capsys, "audit", "access", *where, "--until", "2026-11-02")
    assert (code, out) == (0, "")  # a date alone is midnight UTC, before every entry
    code, _, err = run(capsys, "audit", "access", *where, "--since", "0001-01-01T00:00:00+01:00")
    assert code == 2 and "outside the years 1–9999" in err and len(err.splitlines()) == 1
    missing = str(data_dir / "nowhere")
    code, _, err = run(capsys, "audit", "access", "--tenant", "acme", "--data-dir", missing)
    assert (
        code == 1 and err == f"cem audit: no access audit in {missing} (has `cem up` run there?)\n"
    )
