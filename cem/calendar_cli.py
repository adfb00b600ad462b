"""`cem calendar show|set`: a tenant's time zone, opening hours and holidays.

`show` prints the calendar as JSON that `set --file` takes back once edited.

The same calendar `GET|PUT /v1/settings/calendar` reads and writes: embedded in `calendars.sqlite`
in the data directory, distributed (CEM_MODE=distributed) in PostgreSQL. `set` takes the JSON the
API takes, from a file or standard input, or just `--time-zone`. Mistakes are one line on stderr
and a non-zero exit (`CliError`, or the value errors and outages `cli_errors` reports)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cem import data_dir
from cem.cli_errors import USAGE_ERROR, CliError
from kernel.tenants import check_tenant_id
from services.service_metrics.calendar import (
    UTC_ALWAYS_OPEN,
    Calendar,
    CalendarStore,
    StoredCalendar,
)

ACTOR = "cli"


@contextmanager
def _store(args: argparse.Namespace, *, create: bool) -> Iterator[CalendarStore]:
    # A store that does not answer, or a bad value, is reported in one line by `run_reporting`.
    # `show` on a data directory that does not exist (a mistyped --data-dir) is refused, not
    # answered with a new, empty one's "never set".
    from cem.distributed import calendar_store_from_settings

    settings = data_dir.store_settings(args.data_dir, "tenant calendars", create=create)
    store = calendar_store_from_settings(settings)
    try:
        yield store
    finally:
        store.close()


def _read(source: str) -> Any:
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except OSError as exc:
        raise CliError(f"cannot read {source}: {exc.strerror}", USAGE_ERROR) from None
    except UnicodeDecodeError:
        raise CliError(f"{source} is not UTF-8 text", USAGE_ERROR) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise CliError(
            f"{source}: not JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})", USAGE_ERROR
        ) from None


def _set(args: argparse.Namespace) -> int:
    tenant = check_tenant_id(args.tenant)
    if args.file is None and args.time_zone is None:
        raise CliError("give --file (the calendar's JSON, - for stdin) or --time-zone", USAGE_ERROR)
    if args.file is not None and args.time_zone is not None:
        raise CliError(
            "give --file or --time-zone, not both (the file's time_zone says the zone)",
            USAGE_ERROR,
        )
    value = _read(args.file) if args.file is not None else {"time_zone": args.time_zone}
    if isinstance(value, dict):  # what `show` printed, edited: its record fields are not set
        named = value.pop("tenant_id", tenant)
        if named != tenant:
            raise CliError(
                f"the file is the calendar of tenant {named!r}, not {tenant!r}", USAGE_ERROR
            )
        value.pop("set_at", None)
        value.pop("set_by", None)
    calendar = Calendar.from_json(value)  # CalendarError names the field: one line, status 2
    with _store(args, create=True) as store:
        if args.file is None:  # only the zone changes: the opening hours and holidays stay
            old = store.get(tenant)
            kept = old.calendar if old is not None else UTC_ALWAYS_OPEN
            calendar = Calendar(calendar.time_zone, kept.hours, kept.holidays)
        store.set(StoredCalendar(tenant, calendar, datetime.now(UTC), ACTOR))
    print(f"tenant {tenant}: {_summary(calendar)}", file=sys.stderr)
    return 0


def _summary(calendar: Calendar) -> str:
    if calendar.always_open:
        return f"time zone {calendar.time_zone}, always open"
    open_days = sum(1 for day in calendar.hours if day)
    return (
        f"time zone {calendar.time_zone}, open {open_days} days a week, "
        f"{len(calendar.holidays)} holidays"
    )


def _show(args: argparse.Namespace) -> int:
    tenant = check_tenant_id(args.tenant)
    with _store(args, create=False) as store:
        stored = store.get(tenant)
    calendar = stored.calendar if stored is not None else UTC_ALWAYS_OPEN
    shown: dict[str, Any] = {"tenant_id": tenant, **calendar.to_json()}
    shown["set_at"] = stored.set_at.isoformat() if stored is not None else None
    shown["set_by"] = stored.set_by if stored is not None else None
    print(_json(shown))
    return 0


def _json(shown: dict[str, Any]) -> str:
    """JSON `set --file` reads back, a weekday's intervals on its own line."""
    hours = shown.pop("hours")
    lines = [f"  {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}," for k, v in shown.items()]
    days = [f"    {json.dumps(day)}: {json.dumps(spans)}" for day, spans in hours.items()]
    lines.insert(2, '  "hours": {\n' + ",\n".join(days) + "\n  },")
    lines[-1] = lines[-1].rstrip(",")
    return "{\n" + "\n".join(lines) + "\n}"


def add_commands(sub: Any, command: Any) -> None:
    """`cem calendar show|set`; `command(sub, name, help)` makes a subcommand's parser."""
    calendar = command(sub, "calendar", "a tenant's time zone, opening hours and holidays")
    kinds = calendar.add_subparsers(dest="calendar", required=True)
    where = {"default": None, "help": "default: $CEM_DATA_DIR, else ./.cem (embedded)"}
    show = command(kinds, "show", "a tenant's calendar as JSON (UTC, always open, if never set)")
    show.add_argument("--data-dir", **where)
    show.add_argument("--tenant", required=True, help="tenant whose calendar to show")
    show.set_defaults(func=_show)
    set_ = command(kinds, "set", "set a tenant's calendar")
    set_.add_argument("--data-dir", **where)
    set_.add_argument("--tenant", required=True, help="tenant whose calendar to set")
    set_.add_argument(
        "--file",
        default=None,
        help='the calendar as JSON, - for stdin: {"time_zone": "Europe/Madrid", "hours": '
        '{"mon": [["09:00", "14:00"], ["15:00", "18:00"]], …}, "holidays": ["2026-12-08"]}',
    )
    set_.add_argument(
        "--time-zone", default=None, help="only the time zone (the hours and holidays stay)"
    )
    set_.set_defaults(func=_set)
