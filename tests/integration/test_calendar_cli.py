"""`cem calendar show|set` as an operator runs it: what `show` prints, `set --file` takes back;
`--time-zone` alone keeps the hours; the API sees what the command set, embedded and distributed;
every mistake is one line on stderr with a non-zero exit."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from cem.adapters.postgres_calendars import PostgresCalendarStore
from cem.adapters.sqlite_calendars import CALENDARS_FILE, SqliteCalendarStore
from tests.integration.test_cli_mistakes import assert_one_line_mistake, cem

CALENDAR = {
    "time_zone": "Europe/Madrid",
    "hours": {d: [["09:00", "14:00"], ["15:00", "18:00"]] for d in ("mon", "tue", "wed", "thu")}
    | {"fri": [["08:00", "15:00"]]},
    "holidays": ["2026-12-25", "2026-12-08"],
}


@pytest.fixture(autouse=True)
def _embedded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CEM_MODE", raising=False)


def test_show_prints_what_set_takes_back(tmp_path: Path) -> None:
    where = ("--data-dir", str(tmp_path / "data"))
    (tmp_path / "calendar.json").write_text(json.dumps(CALENDAR))
    done = cem(
        "calendar", "set", *where, "--tenant", "acme", "--file", "calendar.json", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert "tenant acme: time zone Europe/Madrid, open 5 days a week, 2 holidays" in done.stderr
    shown = cem("calendar", "show", *where, "--tenant", "acme", cwd=tmp_path)
    printed = json.loads(shown.stdout)
    assert printed["hours"]["fri"] == [["08:00", "15:00"]] and printed["hours"]["sat"] == []
    assert printed["holidays"] == ["2026-12-08", "2026-12-25"] and printed["set_by"] == "cli"
    (tmp_path / "shown.json").write_text(shown.stdout.replace("08:00", "07:30"))
    again = cem("calendar", "set", *where, "--tenant", "acme", "--file", "shown.json", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    # Only the zone: the opening hours and holidays stay.
    zone = cem("calendar", "set", *where, "--tenant", "acme", "--time-zone", "Atlantic/Canary", cwd=tmp_path)  # fmt: skip
    assert zone.returncode == 0, zone.stderr
    store = SqliteCalendarStore(tmp_path / "data" / CALENDARS_FILE)
    stored = store.get("acme")
    store.close()
    assert stored is not None and stored.calendar.time_zone == "Atlantic/Canary"
    assert stored.calendar.hours[4] == ((450, 900),) and len(stored.calendar.holidays) == 2
    other = json.loads(cem("calendar", "show", *where, "--tenant", "globex", cwd=tmp_path).stdout)
    assert other["time_zone"] == "UTC" and other["set_at"] is None


@pytest.mark.parametrize(
    ("args", "stdin_json", "words"),
    [
        (("--time-zone", "Europe/Madird"), None, ("unknown IANA time zone 'Europe/Madird'",)),
        (("--file", "missing.json"), None, ("cannot read missing.json",)),
        (("--file", "bad.json"), "{", ("bad.json: not JSON",)),
        (("--file", "bad.json"), {"hours": {"mon": [["9", "17"]]}}, ("hours.mon[0]", "HH:MM")),
        (("--file", "bad.json"), {"tenant_id": "globex"}, ("calendar of tenant 'globex'",)),
        ((), None, ("give --file", "--time-zone")),
        (("--file", "bad.json", "--time-zone", "UTC"), CALENDAR, ("not both",)),
    ],
)
def test_a_mistake_is_one_line(
    tmp_path: Path, args: tuple[str, ...], stdin_json: object, words: tuple[str, ...]
) -> None:
    if stdin_json is not None:
        text = stdin_json if isinstance(stdin_json, str) else json.dumps(stdin_json)
        (tmp_path / "bad.json").write_text(text)
    where = ("--data-dir", str(tmp_path / "data"))
    done = cem("calendar", "set", *where, "--tenant", "acme", *args, cwd=tmp_path)
    assert_one_line_mistake(done, *words)
    assert not (tmp_path / "data" / CALENDARS_FILE).exists() or "--time-zone" in args
    assert not (tmp_path / "data").exists() or args == ("--time-zone", "Europe/Madird")


def test_show_on_a_data_directory_that_does_not_exist_is_refused(tmp_path: Path) -> None:
    """A mistyped --data-dir was made anew and answered with its "never set" calendar."""
    mistyped = tmp_path / "nodir"
    done = cem("calendar", "show", "--data-dir", str(mistyped), "--tenant", "acme", cwd=tmp_path)
    assert_one_line_mistake(done, str(mistyped))
    assert not mistyped.exists()


def test_a_bad_tenant_is_one_line(tmp_path: Path) -> None:
    done = cem(
        "calendar", "show", "--data-dir", str(tmp_path), "--tenant", "Acme Corp", cwd=tmp_path
    )
    assert_one_line_mistake(done, "invalid tenant id 'Acme Corp'")


@pytest.mark.postgres
def test_distributed_the_command_writes_what_every_replica_reads(
    tmp_path: Path, postgres_dsn: str
) -> None:
    tenant = f"t{uuid.uuid4().hex[:8]}"
    env = {"CEM_MODE": "distributed", "CEM_POSTGRES_DSN": postgres_dsn}
    done = cem("calendar", "set", "--tenant", tenant, "--time-zone", "America/Lima", cwd=tmp_path, env=env)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "PostgreSQL" in done.stderr
    store = PostgresCalendarStore(postgres_dsn)
    try:
        stored = store.get(tenant)
    finally:
        store.close()
    assert stored is not None and stored.calendar.time_zone == "America/Lima"
    shown = cem("calendar", "show", "--tenant", tenant, cwd=tmp_path, env=env)
    assert json.loads(shown.stdout)["time_zone"] == "America/Lima"
