"""The `cem` command."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from cem import data_dir
from cem.cli_errors import USAGE_ERROR, CliError, positive_number, run_reporting
from cem.cli_format import Formatter
from cem.cli_output import check_port_free, format_table, reachable
from kernel.ports import ROLES, KeyStore


class Parser(argparse.ArgumentParser):
    """argparse, but a bad argument is one line (the usage is one `--help` away)."""

    def error(self, message: str) -> NoReturn:
        for action in self._actions:  # `cem keys` alone: argparse names the subcommands' dest
            if isinstance(action, argparse._SubParsersAction) and message.endswith(
                f"required: {action.dest}"
            ):
                message = f"name a command: {', '.join(action.choices)}"
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


if TYPE_CHECKING:  # argon2 loads only for the commands that use accounts
    from kernel.accounts import Accounts


def _up(args: argparse.Namespace) -> int:
    from cem.up import UpOptions, run

    check_port_free(args.host, args.port)
    state = data_dir.prepare(args.data_dir)
    options = UpOptions(
        data_dir=state.path,
        host=args.host,
        port=args.port,
        demo=args.demo,
        demo_customers=args.demo_customers,
        demo_days=args.demo_days,
        demo_rate=args.demo_rate,
        database=args.database,
        read_only=args.read_only,
    )
    # Where providers' webhooks reach it on this host (`cem channels add` prints it): a server
    # bound to every interface is reached at the loopback's; a read-only one takes no webhook.
    local = "127.0.0.1" if args.host in ("0.0.0.0", "::", "") else args.host
    url = "" if args.read_only else f"http://{local}:{args.port}"
    with data_dir.exclusive(state.path), data_dir.serving(state.path, url):
        state.announce()
        run(options)
    return 0


def _keystore(args: argparse.Namespace, create: bool = False) -> KeyStore:
    """SQLite in the data directory (embedded), PostgreSQL when CEM_MODE=distributed; only a
    command creating a key makes a data directory that does not exist yet."""
    from cem.distributed import keystore_from_settings

    return keystore_from_settings(data_dir.store_settings(args.data_dir, "keys", create))


def _keys_create(args: argparse.Namespace) -> int:
    from cem.adapters.memory_keys import check_new_key

    check_new_key(args.tenant, args.role, args.name)  # before touching any store
    store = _keystore(args, create=True)
    key_id, secret = store.create(args.tenant, args.role, name=args.name)
    print(secret)
    print(f"key id {key_id} · tenant {args.tenant} · role {args.role}", file=sys.stderr)
    return 0


def _keys_list(args: argparse.Namespace) -> int:
    rows = _keystore(args).list(args.tenant)
    if not rows:
        print(f"no keys for tenant {args.tenant!r}", file=sys.stderr)
        return 0
    print(format_table(rows))
    return 0


def _keys_revoke(args: argparse.Namespace) -> int:
    try:
        _keystore(args).revoke(args.key_id)
    except KeyError:
        raise CliError(f"no key with id {args.key_id!r}") from None
    return 0


def _accounts(args: argparse.Namespace, create: bool = False) -> Accounts:
    """People's accounts beside the keys: SQLite in the data directory, or PostgreSQL; only a
    command creating an account makes a data directory that does not exist yet."""
    from cem.distributed import users_from_settings
    from kernel.accounts import Accounts
    from kernel.clock import SystemClock

    settings = data_dir.store_settings(args.data_dir, "accounts", create)
    return Accounts(users_from_settings(settings), SystemClock())


def _new_password(given: str | None) -> tuple[str, bool]:
    """The password to set and whether to print it: given, typed at a terminal, or generated."""
    from kernel.accounts import generate_password

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
    from kernel.accounts import AccountError

    password, show = _new_password(args.password)
    try:
        user = _accounts(args, create=True).create(args.tenant, args.role, args.email, password)
    except (AccountError, ValueError) as exc:
        print(f"cem users create: {exc}", file=sys.stderr)
        return 2
    if show:
        print(password)
    print(f"user {user.email} · tenant {user.tenant_id} · role {user.role}", file=sys.stderr)
    return 0


def _users_list(args: argparse.Namespace) -> int:
    users = _accounts(args).store.users(args.tenant)
    if not users:
        whose = f" for tenant {args.tenant!r}" if args.tenant else ""
        print(f"no accounts{whose}", file=sys.stderr)
    for user in users:
        print("\t".join((user.email, user.tenant_id, user.role, user.created_at.isoformat())))
    return 0


def _users_unlock(args: argparse.Namespace) -> int:
    from kernel.accounts import AccountError, normal_email

    try:
        was_locked = _accounts(args).unlock(args.email)
    except AccountError as exc:
        raise CliError(str(exc)) from None
    state = "unlocked" if was_locked else "was not locked; its failed sign-ins are forgiven"
    print(f"user {normal_email(args.email)} {state}", file=sys.stderr)
    return 0


def _simulate(args: argparse.Namespace) -> int:
    from cem.simulate import simulate

    url = args.url.rstrip("/")
    reachable(url)
    report = simulate(
        url,
        args.key,
        rate=args.rate,
        customers=args.customers,
        duration_s=args.duration,
        batch_size=args.batch_size,
        seed=args.seed,
    )
    print(report)
    if report.errors:
        raise CliError(f"{report.errors} events got no answer from {url} (see the report above)")
    return 0


def _replay(args: argparse.Namespace) -> int:
    from cem.adapters.chdb_warehouse import ChdbWarehouse
    from cem.adapters.sqlite_log import SqliteLog
    from cem.progress import progress_bar
    from cem.projection_set import default_projections
    from cem.replay import replay
    from cem.runner import group_lag
    from cem.sealing import default_rules, opener_for
    from kernel.filings import FILING_STAGE
    from kernel.ports import FILINGS_TOPIC, TOUCHPOINTS_TOPIC
    from kernel.sealing import opening_decode
    from kernel.settings import CoreSettings

    if args.into == "cem":
        raise CliError("replay into a fresh database, not the live one: pass --into NAME")
    if CoreSettings().mode == "distributed":
        return _replay_distributed(args.into)
    state = data_dir.prepare(args.data_dir)
    if not (state.path / "log.sqlite").exists():
        raise CliError(f"no event log in {state.path} (nothing was ever ingested there)")
    with data_dir.exclusive(state.path):
        state.announce()
        log = SqliteLog(state.path / "log.sqlite")
        warehouse = ChdbWarehouse(state.path / "warehouse", database=args.into)
        warehouse.drop_database()
        warehouse = ChdbWarehouse(state.path / "warehouse", database=args.into)
        # The filings carry each event's customer: the log alone rebuilds the tables.
        projections = default_projections(default_rules())
        total = sum(log.end_offsets(FILINGS_TOPIC).values()) * len(projections)
        with progress_bar(f"replaying into {args.into!r}", total, unit="records") as advance:
            opener = opener_for(CoreSettings(data_dir=state.path))
            try:
                count = replay(
                    log,
                    warehouse,
                    projections,
                    decode_record=opening_decode(opener),
                    on_progress=advance,
                )
            finally:
                opener.close()
    print(f"replayed {count} records into database {args.into!r}")
    # A replay reads only filings; touchpoints the filing stage has not filed yet are left out.
    if unfiled := group_lag(log, TOUCHPOINTS_TOPIC, FILING_STAGE):
        print(f"{unfiled} touchpoints are not filed yet: `cem up` files them, then replay again")
    return 0


def _replay_distributed(into: str) -> int:
    """The Kafka filings topic into database `into` of the ClickHouse server (CEM_* settings)."""
    from cem.faust_worker import WorkerSettings, database_of
    from cem.progress import progress_bar_sized_later
    from cem.projection_set import default_projections
    from cem.replay import replay_distributed
    from cem.sealing import default_rules

    settings = WorkerSettings()
    if into == database_of(settings.clickhouse_url):
        raise CliError("replay into a fresh database, not the live one: pass --into NAME")
    with progress_bar_sized_later(f"replaying into {into!r}", unit="records") as (sized, done):
        count = replay_distributed(
            settings, into, default_projections(default_rules()), on_progress=done, on_total=sized
        )
        sized(count)  # what was read: the offsets' total counts records retention deleted too
    print(f"replayed {count} records into database {into!r}")
    return 0


def _bench(args: argparse.Namespace) -> int:
    # The run's scratch directory goes under the data directory as every command finds it
    # (--data-dir, else CEM_DATA_DIR, else ./.cem); never the live state itself.
    args.data_dir = str(data_dir.prepare(args.data_dir).path)
    if args.distributed:
        from bench.distributed import main as distributed_main

        args.out = args.out or "bench-results/distributed.json"
        return distributed_main(args)
    from bench.embedded import main as bench_main

    args.out = args.out or "bench-results/embedded.json"
    return bench_main(args)


DEFAULT_IDENTITY_SEED = 7  # `cem bench identity`'s population when no seed is given


def _bench_identity(args: argparse.Namespace) -> int:
    from bench.identity.accuracy import run_accuracy
    from bench.identity.report import default_out, format_table, write_json
    from services.identity.rules import IdentityRules

    if args.seeds is not None and args.seed is not None:
        raise CliError("give --seed or --seeds, not both", USAGE_ERROR)
    seeds = _seed_list(args.seeds) if args.seeds is not None else None
    rules = IdentityRules.from_file(Path(args.rules)) if args.rules else None
    if seeds is not None:
        return _bench_identity_seeds(args, seeds, rules)
    seed = DEFAULT_IDENTITY_SEED if args.seed is None else args.seed
    result = run_accuracy(args.people, seed, rules=rules, arrival=args.arrival)
    print(f"touchpoints arriving in {args.arrival} order")
    print(format_table(result))
    print(f"\nresults: {write_json(result, Path(args.out) if args.out else default_out(result))}")
    return 0 if result["meets_targets"] else 1


def _bench_identity_seeds(args: argparse.Namespace, seeds: list[int], rules: Any) -> int:
    """`cem bench identity --seeds 5,7,11`: each population in turn, a line each as it ends (and
    the JSON written again), then how many met every target (one seed meeting them says little
    about the next)."""
    from bench.identity.accuracy import run_accuracy
    from bench.identity.report import (
        SEEDS_HEADER,
        load_average,
        seed_row,
        seeds_out,
        seeds_summary,
        write_seeds_json,
    )

    out = Path(args.out) if args.out else seeds_out(seeds, args.people, args.arrival)
    print(
        f"populations of {args.people:,} people, seeds {args.seeds}, one after the other, "
        f"arriving in {args.arrival} order"
    )
    print(SEEDS_HEADER, flush=True)
    results = []
    for seed in seeds:
        result = run_accuracy(args.people, seed, rules=rules, arrival=args.arrival) | {
            "load_average": load_average()
        }
        results.append(result)
        write_seeds_json(results, out)  # what was measured is kept if a later seed fails
        print(seed_row(result), flush=True)
    print(seeds_summary(results))
    print(f"\nresults: {out}")
    return 0 if all(r["meets_targets"] for r in results) else 1


def _seed_list(text: str) -> list[int]:
    """`5,7,11` as seeds; a one-line usage error naming what is wrong otherwise."""
    seeds = []
    for part in text.split(","):
        try:
            seeds.append(int(part.strip()))
        except ValueError:
            message = f"--seeds takes numbers, like 5,7,11: {part.strip()!r} is not one"
            raise CliError(message, USAGE_ERROR) from None
    if len(set(seeds)) != len(seeds):
        raise CliError(f"--seeds names a seed twice: {text}", USAGE_ERROR)
    return seeds


def _bench_identity_throughput(args: argparse.Namespace) -> int:
    from bench.identity.throughput import main as throughput_main

    return throughput_main(["--customers", str(args.customers)])


def _bench_sentiment(args: argparse.Namespace) -> int:
    data = Path(args.data) if args.data else None
    out = Path(args.out) if args.out else None
    if args.candidate:
        from bench.sentiment_candidate import main as candidate_main

        return candidate_main(args.candidate, args.language, data, out)
    from bench.sentiment import main as sentiment_main

    return sentiment_main(data, out)


def _add_data_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data-dir",
        default=None,
        help="where the embedded state lives (default: $CEM_DATA_DIR, else ./.cem)",
    )


def _command(sub: Any, name: str, help: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(
        name, help=help, description=help, formatter_class=Formatter
    )
    return parser


def _add_up(sub: Any) -> None:
    up = _command(
        sub,
        "up",
        "run the whole platform on this machine, no servers (embedded mode; two processes)",
    )
    _add_data_dir(up)
    up.add_argument("--host", default="127.0.0.1", help="address to listen on")
    up.add_argument("--port", type=int, default=8000, help="port to listen on")
    up.add_argument("--demo", action="store_true", help="seed a demo population and live traffic")
    up.add_argument("--demo-customers", type=int, default=2000, help="people in the demo")
    up.add_argument("--demo-days", type=int, default=180, help="days of demo history to seed")
    up.add_argument(
        "--demo-rate", type=positive_number, default=5.0, help="live demo events per second"
    )
    up.add_argument("--database", default="cem", help="warehouse database to serve")
    up.add_argument(
        "--read-only",
        action="store_true",
        help="serve the tables without processing the log; writes get 503",
    )
    up.set_defaults(func=_up)


def _add_keys(sub: Any) -> None:
    keys = _command(sub, "keys", "manage API keys").add_subparsers(dest="keys", required=True)
    create = _command(keys, "create", "create a key and print it (shown once)")
    _add_data_dir(create)
    create.add_argument("--tenant", required=True, help="tenant the key acts for")
    create.add_argument("--role", required=True, choices=ROLES, help="what the key may do")
    create.add_argument("--name", default="", help="a label to recognise the key by")
    create.set_defaults(func=_keys_create)
    lst = _command(keys, "list", "list a tenant's keys (without secrets)")
    _add_data_dir(lst)
    lst.add_argument("--tenant", required=True, help="tenant whose keys to list")
    lst.set_defaults(func=_keys_list)
    revoke = _command(keys, "revoke", "revoke a key by id")
    _add_data_dir(revoke)
    revoke.add_argument("key_id", help="the key id shown by `cem keys list`")
    revoke.set_defaults(func=_keys_revoke)

    users = _command(sub, "users", "manage people's accounts (console and dashboard)")
    user_commands = users.add_subparsers(dest="users", required=True)
    ucreate = _command(
        user_commands,
        "create",
        "create an account (password prompted, or generated and printed once)",
    )
    _add_data_dir(ucreate)
    ucreate.add_argument("--tenant", required=True, help="tenant the person works for")
    ucreate.add_argument(
        "--role", required=True, choices=("agent", "manager", "admin"), help="what they may do"
    )
    ucreate.add_argument("--email", required=True, help="the sign-in email")
    ucreate.add_argument(
        "--password", default=None, help="the password (default: prompted, else generated)"
    )
    ucreate.set_defaults(func=_users_create)
    ulist = _command(user_commands, "list", "list accounts (without passwords)")
    _add_data_dir(ulist)
    ulist.add_argument("--tenant", default=None, help="only this tenant's accounts")
    ulist.set_defaults(func=_users_list)
    unlock = _command(user_commands, "unlock", "let a locked-out account sign in again now")
    _add_data_dir(unlock)
    unlock.add_argument("email", help="the sign-in email of the account")
    unlock.set_defaults(func=_users_unlock)


def _add_simulate(sub: Any) -> None:
    sim = _command(sub, "simulate", "drive a running instance with generated traffic")
    sim.add_argument("--url", required=True, help="base URL, e.g. http://127.0.0.1:8000")
    sim.add_argument("--key", required=True, help="an ingest key of the instance")
    sim.add_argument("--rate", type=float, default=100.0, help="events per second")
    sim.add_argument("--customers", type=int, default=1000, help="people in the population")
    sim.add_argument("--duration", type=float, default=60.0, help="seconds (bounded run)")
    sim.add_argument("--batch-size", type=int, default=100, help="most events per request")
    sim.add_argument("--seed", type=int, default=0, help="population seed")
    sim.set_defaults(func=_simulate)


def _add_replay(sub: Any) -> None:
    rep = _command(
        sub,
        "replay",
        "rebuild the warehouse tables from the event log: embedded, the data directory's log "
        "into a chdb database; with CEM_MODE=distributed, the filings topic into a database on "
        "the ClickHouse server of CEM_CLICKHOUSE_URL",
    )
    _add_data_dir(rep)
    rep.add_argument("--into", default="cem_replay", help="database to rebuild into (a new one)")
    rep.set_defaults(func=_replay)


def _add_bench(sub: Any) -> None:
    bench = _command(sub, "bench", "measure throughput, freshness and latency")
    _add_data_dir(bench)
    bench.add_argument("--events", type=int, default=1_000_000, help="background events (≥1M)")
    bench.add_argument("--ten-million", action="store_true", help="use 10M background events")
    bench.add_argument(
        "--quick",
        action="store_true",
        help="a smaller run (100,000 background events, 45 s phases)",
    )
    bench.add_argument(
        "--distributed", action="store_true", help="on Kafka, ClickHouse server and PostgreSQL"
    )
    bench.add_argument(
        "--out", default=None, help="JSON results (default: bench-results/<mode>.json)"
    )
    bench.set_defaults(func=_bench)
    kinds = bench.add_subparsers(
        dest="bench_kind", metavar="{identity,identity-throughput,sentiment}"
    )
    identity = _command(kinds, "identity", "identity resolution accuracy on known truth")
    identity.add_argument(
        "--people", "--customers", type=int, default=2000, help="people in the population"
    )
    identity.add_argument(
        "--seed", type=int, default=None, help=f"population seed (default: {DEFAULT_IDENTITY_SEED})"
    )
    identity.add_argument(
        "--seeds",
        default=None,
        help="several population seeds, one after the other (5,7,11): a line each, and on how "
        "many every target was met",
    )
    identity.add_argument(
        "--rules", default=None, help="identity rules JSON (default: the product's rules)"
    )
    identity.add_argument(
        "--arrival",
        choices=("time", "live", "backlog"),
        default="time",
        help="the order the filing stage sees the touchpoints in: time (as one partition gives "
        "them), live (each request polled from the topic's partitions as it arrives), backlog "
        "(the whole population queued, then polled: an imported history)",
    )
    identity.add_argument("--out", help="JSON results (default bench-results/identity-*.json)")
    identity.set_defaults(func=_bench_identity)
    speed = _command(kinds, "identity-throughput", "identity resolve_batch per store")
    speed.add_argument("--customers", type=int, default=2000, help="people in the population")
    speed.set_defaults(func=_bench_identity_throughput)
    feeling = _command(kinds, "sentiment", "sentiment accuracy on the labelled texts")
    feeling.add_argument("--data", help="labelled CSV (default tests/data/sentiment/labelled.csv)")
    feeling.add_argument("--out", help="JSON results (default bench-results/sentiment*.json)")
    feeling.add_argument(
        "--candidate",
        metavar="MODULE:FUNCTION",
        help="measure a model not wired in: a function taking a text, returning its label",
    )
    feeling.add_argument("--language", default="es", help="the candidate's language (default es)")
    feeling.set_defaults(func=_bench_sentiment)


def _add_demo(sub: Any) -> None:
    from cem.demo_cli import add_commands

    add_commands(sub, _command)


def _add_serve(sub: Any) -> None:
    from cem.serve import add_arguments

    add_arguments(_command(sub, "serve", LAZY_HELP["serve"]))


def _add_channels(sub: Any) -> None:
    from cem.channels_cli import add_commands

    add_commands(sub)


def _add_audit(sub: Any) -> None:
    from cem.audit_cli import add_commands

    add_commands(sub, _command)


def _add_retention(sub: Any) -> None:
    from cem.retention_cli import add_commands

    add_commands(sub, _command)


def _add_calendar(sub: Any) -> None:
    from cem.calendar_cli import add_commands

    add_commands(sub, _command)


def _add_migrate_ids(sub: Any) -> None:
    from cem.migrate_ids import add_commands

    add_commands(sub, _command)


# Commands whose module is imported only when the command is run or its help is asked for, so
# that a start of `cem` pays for one of them at most (their imports took about a second). Each
# module's own parser says the same help (a test checks).
LAZY_HELP = {
    "demo": "seed the demo people, keys and traffic into a running platform",
    "serve": "run one service of the distributed mode",
    "channels": "configure provider webhooks (Twilio, Shopify, …)",
    "dead-letters": "list or replay dead letters",
    "audit": "who read which customer's data",
    "retention": "how long each tenant's data is kept",
    "calendar": "a tenant's time zone, opening hours and holidays",
    "migrate-ids": "re-file an embedded data directory with opaque ids",
}
# Each adder and the commands it adds, in `cem --help`'s order.
_COMMANDS: tuple[tuple[tuple[str, ...], Callable[[Any], None]], ...] = (
    (("up",), _add_up),
    (("keys", "users"), _add_keys),
    (("simulate",), _add_simulate),
    (("demo",), _add_demo),
    (("serve",), _add_serve),
    (("channels", "dead-letters"), _add_channels),
    (("audit",), _add_audit),
    (("retention",), _add_retention),
    (("calendar",), _add_calendar),
    (("replay",), _add_replay),
    (("migrate-ids",), _add_migrate_ids),
    (("bench",), _add_bench),
)


def parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """`cem`'s parser. With `argv`, only the command it names is built whole: the others are
    their name and help (`LAZY_HELP`), enough for `cem --help` and for a mistyped name."""
    chosen = next((a for a in argv if not a.startswith("-")), None) if argv is not None else None
    root = Parser(prog="cem", description="customer-experience platform", formatter_class=Formatter)
    sub = root.add_subparsers(dest="command", required=True)
    for names, add in _COMMANDS:
        if argv is None or chosen in names or not set(names) <= LAZY_HELP.keys():
            add(sub)
        else:
            for name in names:
                _command(sub, name, LAZY_HELP[name])
    return root


# Commands that run until stopped log what their connection pools retry; the others answer
# once, so a server that does not answer is their one line on stderr (`cli_errors.describe`),
# not a warning per attempt before it.
LONG_RUNNING = frozenset({"up", "serve", "demo", "simulate", "bench"})


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parser(argv).parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    if args.command not in LONG_RUNNING:
        logging.getLogger("psycopg.pool").setLevel(logging.ERROR)
    return run_reporting(args.command, lambda: func(args))


if __name__ == "__main__":
    raise SystemExit(main())
