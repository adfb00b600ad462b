"""`cem up`: the whole platform in one process, optionally with a demo population and live traffic."""

from __future__ import annotations

import json
import random
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import uvicorn

from cem.adapters.chdb_warehouse import ChdbWarehouse
from cem.bootstrap import Platform, build
from cem.channels import ChannelStore
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


def seed_and_simulate(
    url: str,
    ingest_key: str,
    opts: UpOptions,
    stop: threading.Event,
    channels: ChannelStore | None = None,
) -> None:
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
    if channels is not None:  # a fifth of the live traffic as the providers send it, signed
        from cem.demo.provider_feed import start_provider_feed

        start_provider_feed(url, channels, opts.data_dir, population, opts.demo_rate / 5, stop)
    simulate.live_traffic(url, ingest_key, population, rng, opts.demo_rate, stop)


def print_banner(url: str, keys: dict[str, str] | None, sample_customer: str | None) -> None:
    lines = [
        "cem is running (embedded mode)",
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
    stop = threading.Event()
    if keys:
        seeder = threading.Thread(
            target=seed_and_simulate,
            args=(url, keys["ingest"], opts, stop, platform.channels),
            daemon=True,
        )
        seeder.start()
    print_banner(url, keys, None)
    try:
        uvicorn.run(platform.app, host=opts.host, port=opts.port, log_level="warning")
    finally:
        stop.set()
        platform.stop()
