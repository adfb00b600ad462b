"""The `cem` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from cem.auth import ROLES
from cem.ports import KeyStore

if TYPE_CHECKING:  # argon2 loads only for the commands that use accounts
    from cem.accounts import Accounts


def _up(args: argparse.Namespace) -> int:
    from cem.up import UpOptions, run

    run(
        UpOptions(
            data_dir=Path(args.data_dir),
            host=args.host,
            port=args.port,
            demo=args.demo,
            demo_customers=args.demo_customers,
            demo_days=args.demo_days,
            demo_rate=args.demo_rate,
            database=args.database,
            read_only=args.read_only,
        )
    )
    return 0


def _keystore(args: argparse.Namespace) -> KeyStore:
    """SQLite in the data directory (embedded), PostgreSQL when CEM_MODE=distributed."""
    from cem.distributed import keystore_from_settings
    from cem.settings import CoreSettings

    Path(args.data_dir).mkdir(parents=True, exist_ok=True)
    return keystore_from_settings(CoreSettings(data_dir=Path(args.data_dir)))


def _keys_create(args: argparse.Namespace) -> int:
    store = _keystore(args)
    key_id, secret = store.create(args.tenant, args.role, name=args.name)
    print(secret)
    print(f"key id {key_id} · tenant {args.tenant} · role {args.role}", file=sys.stderr)
    return 0


def _keys_list(args: argparse.Namespace) -> int:
    for row in _keystore(args).list(args.tenant):
        print("\t".join(str(v) for v in row.values()))
    return 0


def _keys_revoke(args: argparse.Namespace) -> int:
    try:
        _keystore(args).revoke(args.key_id)
    except KeyError:
        print(f"no key with id {args.key_id!r}", file=sys.stderr)
        return 1
    return 0


def _accounts(args: argparse.Namespace) -> Accounts:
    """People's accounts beside the keys: SQLite in the data directory, or PostgreSQL."""
    from cem.accounts import Accounts
    from cem.clock import SystemClock
    from cem.distributed import users_from_settings
    from cem.settings import CoreSettings

    Path(args.data_dir).mkdir(parents=True, exist_ok=True)
    return Accounts(users_from_settings(CoreSettings(data_dir=Path(args.data_dir))), SystemClock())


def _new_password(given: str | None) -> tuple[str, bool]:
    """The password to set and whether to print it: given, typed at a terminal, or generated."""
    from cem.accounts import generate_password

    if given is not None:
        return given, False
    if sys.stdin.isatty():
        import getpass

        typed = getpass.getpass("password (empty: generate one): ")
        if typed and typed != getpass.getpass("again: "):
            raise SystemExit("the passwords differ")
        if typed:
            return typed, False
    return generate_password(), True


def _users_create(args: argparse.Namespace) -> int:
    from cem.accounts import AccountError

    password, show = _new_password(args.password)
    try:
        user = _accounts(args).create(args.tenant, args.role, args.email, password)
    except (AccountError, ValueError) as exc:
        print(f"cem users create: {exc}", file=sys.stderr)
        return 2
    if show:
        print(password)
    print(f"user {user.email} · tenant {user.tenant_id} · role {user.role}", file=sys.stderr)
    return 0


def _users_list(args: argparse.Namespace) -> int:
    for user in _accounts(args).store.users(args.tenant):
        print("\t".join((user.email, user.tenant_id, user.role, user.created_at.isoformat())))
    return 0


def _simulate(args: argparse.Namespace) -> int:
    from cem.simulate import simulate

    report = simulate(
        args.url.rstrip("/"),
        args.key,
        rate=args.rate,
        customers=args.customers,
        duration_s=args.duration,
        batch_size=args.batch_size,
        seed=args.seed,
    )
    print(report)
    return 0


def _replay(args: argparse.Namespace) -> int:
    from cem.adapters.chdb_warehouse import ChdbWarehouse
    from cem.adapters.sqlite_log import SqliteLog
    from cem.bootstrap import default_projections, embedded_identity
    from cem.replay import replay
    from cem.settings import CoreSettings
    from services.identity.filing import IdentityFiler

    data_dir = Path(args.data_dir)
    log = SqliteLog(data_dir / "log.sqlite")
    warehouse = ChdbWarehouse(data_dir / "warehouse", database=args.into)
    if args.into == "cem":
        raise SystemExit("replay into a fresh database, not the live one: pass --into NAME")
    warehouse.drop_database()
    warehouse = ChdbWarehouse(data_dir / "warehouse", database=args.into)
    # The live identity store's filings put every event under the customer it was filed under.
    uses_identity = CoreSettings(data_dir=data_dir).identity == "eventsourced"
    filer = IdentityFiler(embedded_identity(data_dir)) if uses_identity else None
    count = replay(log, warehouse, default_projections(), filer=filer)
    print(f"replayed {count} records into database {args.into!r}")
    return 0


def _bench(args: argparse.Namespace) -> int:
    if args.distributed:
        from bench.distributed import main as distributed_main

        args.out = args.out or "bench-results/distributed.json"
        return distributed_main(args)
    from bench.embedded import main as bench_main

    args.out = args.out or "bench-results/embedded.json"
    return bench_main(args)


def _bench_identity(args: argparse.Namespace) -> int:
    from services.identity.accuracy import BENCH_RULES, format_table, run_accuracy
    from services.identity.rules import IdentityRules

    rules = IdentityRules.from_file(Path(args.rules)) if args.rules else BENCH_RULES
    result = run_accuracy(args.customers, args.seed, rules=rules)
    print(format_table(result))
    return 0 if result["meets_targets"] else 1


def _bench_identity_throughput(args: argparse.Namespace) -> int:
    from services.identity.throughput import main as throughput_main

    return throughput_main(["--customers", str(args.customers)])


def _add_data_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data-dir", default=".cem", help="where the embedded state lives (default ./.cem)"
    )


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="cem", description="customer-experience platform")
    sub = root.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="run the whole platform in one process (embedded mode)")
    _add_data_dir(up)
    up.add_argument("--host", default="127.0.0.1")
    up.add_argument("--port", type=int, default=8000)
    up.add_argument("--demo", action="store_true", help="seed a demo population and live traffic")
    up.add_argument("--demo-customers", type=int, default=2000)
    up.add_argument("--demo-days", type=int, default=180)
    up.add_argument("--demo-rate", type=float, default=5.0, help="live demo events per second")
    up.add_argument("--database", default="cem", help="warehouse database to serve (default cem)")
    up.add_argument(
        "--read-only", action="store_true", help="serve the tables without processing the log"
    )
    up.set_defaults(func=_up)

    keys = sub.add_parser("keys", help="manage API keys").add_subparsers(dest="keys", required=True)
    create = keys.add_parser("create", help="create a key and print it (shown once)")
    _add_data_dir(create)
    create.add_argument("--tenant", required=True)
    create.add_argument("--role", required=True, choices=ROLES)
    create.add_argument("--name", default="")
    create.set_defaults(func=_keys_create)
    lst = keys.add_parser("list", help="list a tenant's keys (without secrets)")
    _add_data_dir(lst)
    lst.add_argument("--tenant", required=True)
    lst.set_defaults(func=_keys_list)
    revoke = keys.add_parser("revoke", help="revoke a key by id")
    _add_data_dir(revoke)
    revoke.add_argument("key_id")
    revoke.set_defaults(func=_keys_revoke)

    users = sub.add_parser("users", help="manage people's accounts (console and dashboard)")
    user_commands = users.add_subparsers(dest="users", required=True)
    ucreate = user_commands.add_parser(
        "create", help="create an account (password prompted, or generated and printed once)"
    )
    _add_data_dir(ucreate)
    ucreate.add_argument("--tenant", required=True)
    ucreate.add_argument("--role", required=True, choices=("agent", "manager", "admin"))
    ucreate.add_argument("--email", required=True)
    ucreate.add_argument("--password", default=None, help="default: prompt, else generate")
    ucreate.set_defaults(func=_users_create)
    ulist = user_commands.add_parser("list", help="list accounts (without passwords)")
    _add_data_dir(ulist)
    ulist.add_argument("--tenant", default=None)
    ulist.set_defaults(func=_users_list)

    sim = sub.add_parser("simulate", help="drive a running instance with generated traffic")
    sim.add_argument("--url", required=True)
    sim.add_argument("--key", required=True)
    sim.add_argument("--rate", type=float, default=100.0, help="events per second")
    sim.add_argument("--customers", type=int, default=1000)
    sim.add_argument("--duration", type=float, default=60.0, help="seconds (bounded run)")
    sim.add_argument("--batch-size", type=int, default=100)
    sim.add_argument("--seed", type=int, default=0)
    sim.set_defaults(func=_simulate)

    from cem.serve import add_arguments as add_serve_arguments

    add_serve_arguments(sub.add_parser("serve", help="run one service of the distributed mode"))

    rep = sub.add_parser("replay", help="rebuild the warehouse tables from the event log")
    _add_data_dir(rep)
    rep.add_argument("--into", default="cem_replay", help="database to rebuild into")
    rep.set_defaults(func=_replay)

    bench = sub.add_parser("bench", help="measure throughput, freshness and latency")
    _add_data_dir(bench)
    bench.add_argument("--events", type=int, default=1_000_000, help="background events (≥1M)")
    bench.add_argument("--ten-million", action="store_true", help="use 10M background events")
    bench.add_argument(
        "--distributed", action="store_true", help="on Kafka, ClickHouse server and PostgreSQL"
    )
    bench.add_argument(
        "--out", default=None, help="JSON results (default bench-results/<mode>.json)"
    )
    bench.set_defaults(func=_bench)
    kinds = bench.add_subparsers(dest="bench_kind", metavar="{identity,identity-throughput}")
    identity = kinds.add_parser("identity", help="identity resolution accuracy on known truth")
    identity.add_argument("--customers", type=int, default=2000, help="people in the population")
    identity.add_argument("--seed", type=int, default=7)
    identity.add_argument("--rules", help="identity rules JSON (default: product rules, ES phones)")
    identity.set_defaults(func=_bench_identity)
    speed = kinds.add_parser("identity-throughput", help="identity resolve_batch per store")
    speed.add_argument("--customers", type=int, default=2000, help="people in the population")
    speed.set_defaults(func=_bench_identity_throughput)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    return func(args)


if __name__ == "__main__":
    raise SystemExit(main())
