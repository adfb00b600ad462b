"""`cem up`: the whole platform, optionally with a demo population and live traffic: one process
serves HTTP, projects into chdb and answers queries; the filing stage (identity) runs in a second
process it starts, watches and stops (`cem.filing_process`; CEM_FILING_PROCESS=false keeps it a
thread of the one process)."""

from __future__ import annotations

import json
import os
import random
import signal
import sys
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import uvicorn

from cem import retention_schedule
from cem.adapters.chdb_warehouse import ChdbWarehouse
from cem.bootstrap import Platform, build
from cem.demo_seed import DAY, SampleCustomer, sample_customer, weeks_newest_first
from cem.demo_seed import WEEK as RECENT
from cem.progress import progress_bar
from cem.read_only import refuse_writes
from cem.runner import ensure_tables
from cem.serving import wait_until_serving
from kernel.accounts import USER_ROLES, Accounts, generate_password
from kernel.channels import ChannelStore
from kernel.collector import settle_collector
from kernel.ports import KeyStore
from kernel.settings import IngestSettings
from services.satisfaction.sentiment import warm_up as warm_up_sentiment
from services.service_metrics.calendar import Calendar, CalendarStore, StoredCalendar

DEMO_TENANT = "demo"
DEMO_ROLES = ("ingest", "agent", "manager", "admin")
STARTUP_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class UpOptions:
    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 8000
    demo: bool = False
    demo_customers: int = 2000
    demo_days: int = 180
    demo_rate: float = 5.0
    database: str = "cem"
    read_only: bool = False


def demo_keys(keys: KeyStore, data_dir: Path) -> dict[str, str]:
    """One key per role for the demo tenant, kept in the data directory so reruns print the same."""
    path = data_dir / "demo-keys.json"
    if path.exists():
        stored: dict[str, str] = json.loads(path.read_text())
        if all(keys.authenticate(secret) for secret in stored.values()):
            return stored
    created = {role: keys.create(DEMO_TENANT, role, name=f"demo {role}")[1] for role in DEMO_ROLES}
    path.write_text(json.dumps(created, indent=2))
    path.chmod(0o600)
    return created


def demo_users(accounts: Accounts, data_dir: Path) -> dict[str, tuple[str, str]]:
    """One person per role (agent, manager, admin) for the demo tenant, as role → (email,
    password); kept in the data directory (owner only) so reruns print the same people. A person
    already created whose password was not kept (the file removed) is left as is: it is not
    printed, and `cem users create` can add another."""
    path = data_dir / "demo-users.json"
    stored: dict[str, tuple[str, str]] = {}
    if path.exists():
        stored = {role: (pair[0], pair[1]) for role, pair in json.loads(path.read_text()).items()}
    known: dict[str, tuple[str, str]] = {}
    for role in USER_ROLES:
        email = f"{role}@demo.example"
        if accounts.store.user_by_email(email) is None:
            password = generate_password()
            accounts.create(DEMO_TENANT, role, email, password)
            known[role] = (email, password)
        elif role in stored and stored[role][0] == email:
            known[role] = stored[role]
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(json.dumps(known, indent=2))
    return known


# The demo company is Spanish: its contact centre's calendar, set once (an admin may change it on
# the Settings page; a calendar already set is kept). Spain's national holidays of 2026 and 2027.
DEMO_CALENDAR = {
    "time_zone": "Europe/Madrid",
    "hours": {day: [["09:00", "20:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}
    | {"sat": [["10:00", "14:00"]]},
    "holidays": [
        f"{year}-{day}"
        for year in (2026, 2027)
        for day in ("01-01", "01-06", "05-01", "08-15", "10-12", "11-01", "12-06", "12-08", "12-25")
    ]
    + ["2026-04-03", "2027-03-26"],  # Good Friday
}


def demo_calendar(store: CalendarStore | None) -> None:
    """The demo tenant's service calendar, unless one is set already."""
    if store is None or store.get(DEMO_TENANT) is not None:
        return
    calendar = Calendar.from_json(DEMO_CALENDAR)
    store.set(StoredCalendar(DEMO_TENANT, calendar, datetime.now(UTC), "demo"))


def seed_and_simulate(
    url: str,
    keys: dict[str, str],
    opts: UpOptions,
    stop: threading.Event,
    channels: ChannelStore | None = None,
    users: dict[str, tuple[str, str]] | None = None,
    *,
    ingest_url: str | None = None,
    mode: str = "embedded mode",
) -> None:
    """Post months of history through the real ingest API, newest week first, then keep live
    traffic flowing (with `channels`, a fifth of it as the providers send it, signed). The banner
    waits for the server and names a customer of the newest week. `ingest_url` is where events go
    when the ingest is another service than the one at `url` (the distributed mode's).

    The newest week is generated on its own (a fraction of a second), so that it is sent as soon
    as the server listens; the older weeks are generated after it, ending where it begins."""
    from cem import demo, simulate

    ingest = ingest_url or url

    rng = random.Random(42)
    population = demo.Population.generate(rng, opts.demo_customers)
    marker = opts.data_dir / "demo-seeded.json"
    now, resumed = _seeding_anchor(opts)
    recent_days = min(opts.demo_days, RECENT.days)
    recent = list(demo.history(population, rng, now, recent_days))
    days = weeks_newest_first(recent, now, DAY)
    sample = sample_customer(population, days[0] if days else []) or sample_customer(
        population, recent
    )
    for serving in dict.fromkeys((url, ingest)):
        wait_until_serving(serving, timeout_s=STARTUP_TIMEOUT_S)
    print_banner(url, keys, sample, read_only=False, users=users, mode=mode, ingest_url=ingest)
    if marker.exists():
        print("demo: history already seeded in this data directory; live traffic only", flush=True)
    else:
        if resumed:
            print(
                f"demo: resuming the seeding begun at {now:%Y-%m-%d %H:%M} UTC (stopped before "
                "it ended): the same events again, what was stored answers as duplicates",
                flush=True,
            )
        seed_history(
            ingest, keys["ingest"], days, "demo: seeding the newest week, newest day first"
        )
        older_end = now - timedelta(days=recent_days)
        older = demo.history(population, rng, older_end, opts.demo_days - recent_days)
        weeks = weeks_newest_first(older, older_end)
        seed_history(ingest, keys["ingest"], weeks, "demo: seeding older weeks, newest first")
        marker.write_text(json.dumps({"seeded_at": datetime.now(UTC).isoformat()}))
        (opts.data_dir / SEEDING).unlink(missing_ok=True)
    if channels is not None:  # a fifth of the live traffic as the providers send it, signed
        from cem.demo.provider_feed import start_provider_feed

        start_provider_feed(ingest, channels, opts.data_dir, population, opts.demo_rate / 5, stop)
    if not stop.is_set():
        simulate.live_traffic(ingest, keys["ingest"], population, rng, opts.demo_rate, stop)


# The moment a demo seeding is anchored at, kept until it ends: the history is generated from
# it (the same moment, the same events and ids), so a `cem up --demo` stopped mid-seeding sends
# the same events again when restarted — duplicates — instead of a history shifted to a new
# now beside the first (new ids, and a conflict for each event whose id the shift kept).
SEEDING = "demo-seeding.json"


def _seeding_anchor(opts: UpOptions) -> tuple[datetime, bool]:
    """The seeding's moment: a seeding begun before with the same demo options, else now
    (recorded); and whether it resumes one."""
    path = opts.data_dir / SEEDING
    shape = {"customers": opts.demo_customers, "days": opts.demo_days}
    try:
        begun = json.loads(path.read_text())
        if begun.get("demo") == shape:
            return datetime.fromisoformat(begun["now"]), True
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass  # none (or unreadable): a seeding of its own
    now = datetime.now(UTC)
    if not (opts.data_dir / "demo-seeded.json").exists():
        path.write_text(json.dumps({"now": now.isoformat(), "demo": shape}))
    return now, False


def seed_history(
    url: str, ingest_key: str, weeks: list[list[dict[str, Any]]], description: str
) -> None:
    """Send the weeks in the order given with one progress bar (count, rate, ETA) for them all."""
    from cem import simulate

    total, done, stored = sum(len(week) for week in weeks), 0, 0
    with progress_bar(description, total) as advance:
        for week in weeks:

            def show(report: simulate.SimulationReport, before: int = done) -> None:
                advance(before + report.sent)

            report = simulate.post_history(url, ingest_key, week, batch_size=500, on_progress=show)
            done += report.sent
            stored += report.accepted + report.duplicates
    print(f"{description}: {stored:,} of {total:,} events stored", flush=True)


def print_banner(
    url: str,
    keys: dict[str, str] | None,
    sample: SampleCustomer | None,
    *,
    read_only: bool,
    users: dict[str, tuple[str, str]] | None = None,
    mode: str = "embedded mode",
    ingest_url: str | None = None,
) -> None:
    if read_only:
        mode += ", read-only: writes are refused with 503"
    lines = [
        f"cem is running ({mode})",
        f"  agent console   {url}/console   (sign in at {url}/signin)",
        f"  CX dashboard    {url}/dashboard (managers and admins)",
        f"  settings        {url}/settings  (admins: time zone, opening hours, holidays)",
        f"  API docs        {url}/docs",
        f"  health          {url}/health",
        f"  ingest          POST {ingest_url or url}/v1/events",
        f"  satisfaction    {url}/v1/satisfaction/touchpoints",
        f"  alerts          {url}/v1/alerts",
        f"  merge review    {url}/v1/merge-candidates (manager key)",
        f"  metrics         {ingest_url or url}/metrics",
    ]
    if keys:
        lines.append("  demo keys (tenant 'demo'; send as 'Authorization: Bearer <key>'):")
        lines += [f"    {role:<8} {secret}" for role, secret in keys.items()]
    if keys and sample:
        lines += sample_lines(url, keys, sample, ingest_url)
    if users:
        lines.append(f"  demo people (tenant 'demo'; sign in at {url}/signin):")
        lines += [
            f"    {role:<8} {email:<22} {password}" for role, (email, password) in users.items()
        ]
    print("\n".join(lines), flush=True)


def sample_lines(
    url: str, keys: dict[str, str], sample: SampleCustomer, ingest_url: str | None = None
) -> list[str]:
    """Ready-to-paste commands for the sample customer and the manager's default view; the
    export line names where events are posted apart (the distributed mode's ingest service)."""
    agent, manager = (f"-H 'Authorization: Bearer {keys[r]}'" for r in ("agent", "manager"))
    exports = (
        f"export CEM={url} INGEST_URL={ingest_url or url} INGEST_KEY={keys['ingest']} "
        f"AGENT_KEY={keys['agent']} MANAGER_KEY={keys['manager']} CUSTOMER={sample.key}"
    )
    return [
        f"  sample customer {sample.name} (id {sample.key})",
        f"    curl {agent} '{url}/v1/customers/{sample.key}/timeline?limit=5'",
        f"    curl {agent} '{url}/v1/customers/{sample.key}'",
        f"    curl {manager} '{url}/v1/satisfaction/touchpoints?bucket=total'",
        "  for the README's examples, paste into your shell:",
        f"    {exports}",
    ]


def announce_when_listening(url: str, read_only: bool) -> None:
    wait_until_serving(url, timeout_s=STARTUP_TIMEOUT_S)
    print_banner(url, None, None, read_only=read_only)


def exit_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def run(opts: UpOptions, settings: IngestSettings | None = None) -> None:
    settings = settings or IngestSettings(data_dir=opts.data_dir)
    warehouse = ChdbWarehouse(opts.data_dir / "warehouse", database=opts.database)
    platform: Platform = build(settings, warehouse=warehouse)
    if opts.read_only:
        # Read-only serves the tables as they are (e.g. a database rebuilt by `cem replay`),
        # brought up to this release's schema first (a table it reads may be new), as any start.
        ensure_tables(platform.warehouse, platform.projections)
        refuse_writes(platform.app)
    else:
        platform.start(filing_process=settings.filing_process)
        # The sentiment models load while the server starts, not on the first customer text.
        threading.Thread(target=warm_up_sentiment, name="sentiment-warm-up", daemon=True).start()
    url = f"http://{opts.host}:{opts.port}"
    keys = demo_keys(platform.keys, opts.data_dir) if opts.demo and not opts.read_only else None
    accounts = platform.app.state.accounts
    users = demo_users(accounts, opts.data_dir) if keys and accounts else None
    if keys:
        demo_calendar(platform.calendars)
    stop = threading.Event()
    if not opts.read_only:
        retention_schedule.start(
            opts.data_dir, platform.warehouse, platform.log, stop, platform.channels
        )
    if keys:
        task, args = seed_and_simulate, (url, keys, opts, stop, platform.channels, users)
    else:
        task, args = announce_when_listening, (url, opts.read_only)  # type: ignore[assignment]
    threading.Thread(target=task, args=args, daemon=True).start()
    # uvicorn shuts down on SIGTERM, then raises it again under the handler it found: exit through
    # `finally` (runners stopped, chdb and the log closed), not by the default handler's death.
    signal.signal(signal.SIGTERM, exit_on_signal)
    settle_collector()
    try:
        # No `server` banner: it only tells an attacker what to look up.
        uvicorn.run(
            platform.app,
            host=opts.host,
            port=opts.port,
            log_level="warning",
            server_header=False,
        )
    finally:
        # Said at once: a store that is locked or down can hold a batch for seconds (a review
        # waited 15 s after SIGTERM with nothing printed).
        print("cem up: stopping: finishing the batches in progress", file=sys.stderr, flush=True)
        stop.set()
        platform.stop()
