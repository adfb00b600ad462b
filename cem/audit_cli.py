"""`cem audit access`: the newest reads of customers' data, as a table (an operator's view of
`GET /v1/audit/access`). Mistakes are one line on stderr and a non-zero exit (`CliError`)."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from typing import Any

from pydantic import TypeAdapter, ValidationError

from cem import data_dir
from cem.cli_errors import USAGE_ERROR, CliError
from cem.cli_output import format_table
from kernel.ports import AccessAudit, AccessEntry, AccessQuery, LogUnavailable
from kernel.settings import CoreSettings
from services.query_api.params import Instant

_INSTANT: TypeAdapter[datetime] = TypeAdapter(Instant)
COLUMNS = ("at", "actor", "role", "customer_id", "requested_id", "resource", "request_id")


def instant(option: str, text: str | None) -> datetime | None:
    """An RFC 3339 time with an offset, or a date alone (midnight UTC), as the API reads them
    (`params.Instant`)."""
    if text is None:
        return None
    try:
        value = _INSTANT.validate_python(text)
    except ValidationError as exc:
        naive = any(error["type"] == "timezone_aware" for error in exc.errors())
        message = (
            f"{option} needs a UTC offset, e.g. 2026-11-10T00:00:00Z"
            if naive
            else f"{option} {text!r} is not a date or RFC 3339 time"
        )
        raise CliError(message, USAGE_ERROR) from None
    try:
        return value.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00 is before year 1 in UTC
        raise CliError(
            f"{option} {text!r} is outside the years 1–9999 in UTC", USAGE_ERROR
        ) from None


def row(entry: AccessEntry) -> dict[str, Any]:
    actor = f"{entry.actor_email} ({entry.actor_id})" if entry.actor_email else entry.actor_id
    return {
        "at": entry.at,
        "actor": f"{entry.actor_kind}:{actor}",
        "role": entry.role,
        "customer_id": entry.customer_id,
        "requested_id": entry.requested_id,
        "resource": entry.resource,
        "request_id": entry.request_id,
    }


def _store(args: argparse.Namespace) -> AccessAudit:
    """PostgreSQL when CEM_MODE=distributed, else the data directory's file, which must exist."""
    from cem.adapters.sqlite_access_audit import AUDIT_FILE
    from cem.distributed import access_audit_from_settings

    settings = CoreSettings(data_dir=data_dir.resolve(args.data_dir).path)
    if settings.mode != "distributed" and not (settings.data_dir / AUDIT_FILE).exists():
        raise CliError(f"no access audit in {settings.data_dir} (has `cem up` run there?)")
    return access_audit_from_settings(settings)


def _access(args: argparse.Namespace) -> int:
    if args.limit < 1:
        raise CliError("--limit must be at least 1", USAGE_ERROR)
    since, until = instant("--since", args.since), instant("--until", args.until)
    if since is not None and until is not None and since >= until:
        raise CliError("--since must be before --until", USAGE_ERROR)
    query = AccessQuery(
        tenant_id=args.tenant,
        customer_id=args.customer_id,
        actor=args.actor,
        since=since,
        until=until,
        limit=args.limit,
    )
    store = _store(args)
    try:
        entries = store.entries(query)
    except LogUnavailable as exc:
        raise CliError(f"the access audit does not answer: {exc}") from None
    finally:
        close = getattr(store, "close", None)  # the port has no close; the stores do
        if close is not None:
            close()
    if not entries:
        print(f"no reads recorded for tenant {args.tenant!r} with these filters", file=sys.stderr)
        return 0
    print(format_table([row(e) for e in entries]))
    return 0


def add_commands(sub: Any, command: Any) -> None:
    """`cem audit access`; `command(sub, name, help)` makes a subcommand's parser."""
    audit = command(sub, "audit", "who read which customer's data")
    kinds = audit.add_subparsers(dest="audit", required=True)
    access = command(kinds, "access", "the newest reads of customers' data, newest first")
    access.add_argument("--data-dir", default=None, help="default: $CEM_DATA_DIR, else ./.cem")
    access.add_argument("--tenant", required=True, help="tenant whose reads to list")
    access.add_argument("--customer-id", default=None, help="only reads of this customer")
    access.add_argument("--actor", default=None, help="only this key id, user id or email")
    access.add_argument("--since", default=None, help="from this time or date (inclusive)")
    access.add_argument("--until", default=None, help="before this time or date")
    access.add_argument("--limit", type=int, default=50, help="at most this many entries")
    access.set_defaults(func=_access)
