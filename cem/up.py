"""`cem up`: the whole platform in one process, optionally with a demo population and live traffic."""

from __future__ import annotations

import json
import random
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import uvicorn

from cem.accounts import USER_ROLES, Accounts, generate_password
from cem.adapters.chdb_warehouse import ChdbWarehouse
from cem.bootstrap import Platform, build
from cem.ports import KeyStore
from cem.serving import wait_until_serving
from cem.settings import IngestSettings

DEMO_TENANT = "demo"
DEMO_ROLES = ("ingest", "agent", "manager", "admin")


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
    password); kept in the data directory (mode 0600) so reruns print the same."""
    path = data_dir / "demo-users.json"
    if path.exists():
        stored = {role: (pair[0], pair[1]) for role, pair in json.loads(path.read_text()).items()}
        if all(accounts.store.user_by_email(email) for email, _ in stored.values()):
            return stored
    created: dict[str, tuple[str, str]] = {}
    for role in USER_ROLES:
        email, password = f"{role}@demo.example", generate_password()
        if accounts.store.user_by_email(email) is None:
            accounts.create(DEMO_TENANT, role, email, password)
            created[role] = (email, password)
    path.write_text(json.dumps(created, indent=2))
    path.chmod(0o600)
    return created


def seed_and_simulate(url: str, ingest_key: str, opts: UpOptions, stop: threading.Event) -> None:
    """Post months of history through the real ingest API, then keep live traffic flowing."""
    from cem import demo, simulate

    wait_until_serving(url)
    rng = random.Random(42)
    population = demo.Population.generate(rng, opts.demo_customers)
    marker = opts.data_dir / "demo-seeded.json"
    if marker.exists():
        print("demo: history already seeded in this data directory; live traffic only", flush=True)
    else:
        events = demo.history(population, rng, datetime.now(UTC), opts.demo_days)
        report = simulate.post_history(url, ingest_key, events, batch_size=1000)
        marker.write_text(json.dumps({"seeded_at": datetime.now(UTC).isoformat()}))
        print(f"demo: seeded history: {report}", flush=True)
    simulate.live_traffic(url, ingest_key, population, rng, opts.demo_rate, stop)


def print_banner(
    url: str,
    keys: dict[str, str] | None,
    sample_customer: str | None,
    users: dict[str, tuple[str, str]] | None = None,
) -> None:
    lines = [
        "cem is running (embedded mode)",
        f"  agent console   {url}/console   (sign in at {url}/signin)",
        f"  CX dashboard    {url}/dashboard (managers and admins)",
        f"  API docs        {url}/docs",
        f"  health          {url}/health",
        f"  ingest          POST {url}/v1/events",
        f"  satisfaction    {url}/v1/satisfaction/touchpoints",
        f"  alerts          {url}/v1/alerts",
        f"  merge review    {url}/v1/merge-candidates (manager key)",
    ]
    if sample_customer:
        lines.append(f"  a customer      {url}/v1/customers/{sample_customer}/timeline")
    if keys:
        lines.append("  demo keys (tenant 'demo'; send as 'Authorization: Bearer <key>'):")
        lines += [f"    {role:<8} {secret}" for role, secret in keys.items()]
    if users:
        lines.append(f"  demo people (tenant 'demo'; sign in at {url}/signin):")
        lines += [
            f"    {role:<8} {email:<22} {password}" for role, (email, password) in users.items()
        ]
    print("\n".join(lines), flush=True)


def run(opts: UpOptions, settings: IngestSettings | None = None) -> None:
    settings = settings or IngestSettings(data_dir=opts.data_dir)
    warehouse = ChdbWarehouse(opts.data_dir / "warehouse", database=opts.database)
    platform: Platform = build(settings, warehouse=warehouse)
    if not opts.read_only:
        # Read-only serves the tables as they are (e.g. a database rebuilt by `cem replay`).
        platform.start()
    url = f"http://{opts.host}:{opts.port}"
    keys = demo_keys(platform.keys, opts.data_dir) if opts.demo else None
    accounts = platform.app.state.accounts
    users = demo_users(accounts, opts.data_dir) if opts.demo and accounts else None
    stop = threading.Event()
    if keys:
        seeder = threading.Thread(
            target=seed_and_simulate, args=(url, keys["ingest"], opts, stop), daemon=True
        )
        seeder.start()
    print_banner(url, keys, None, users)
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
        stop.set()
        platform.stop()
