"""`cem demo`: the demo of `cem up --demo` for a platform that is already running, such as the
distributed deployment (`docker compose up`): the same demo keys and people (in the stores of
the mode, PostgreSQL with CEM_MODE=distributed), the same population's history through the
ingest API, then live traffic."""

from __future__ import annotations

import argparse
import threading
from collections.abc import Callable
from typing import Any

from cem import data_dir
from cem.cli_errors import positive_number
from cem.cli_output import reachable


def _demo(args: argparse.Namespace) -> int:
    from cem.distributed import (
        calendar_store_from_settings,
        keystore_from_settings,
        users_from_settings,
    )
    from cem.up import UpOptions, demo_calendar, demo_keys, demo_users, seed_and_simulate
    from kernel.accounts import Accounts
    from kernel.clock import SystemClock

    url = args.url.rstrip("/")
    ingest_url = (args.ingest_url or args.url).rstrip("/")
    for serving in dict.fromkeys((url, ingest_url)):
        reachable(serving)
    state = data_dir.prepare(args.data_dir)
    settings = data_dir.store_settings(args.data_dir, "keys and people")
    keys = demo_keys(keystore_from_settings(settings), state.path)
    users = demo_users(Accounts(users_from_settings(settings), SystemClock()), state.path)
    calendars = calendar_store_from_settings(settings)
    try:
        demo_calendar(calendars)
    finally:
        calendars.close()
    options = UpOptions(
        data_dir=state.path,
        demo=True,
        demo_customers=args.customers,
        demo_days=args.days,
        demo_rate=args.rate,
    )
    stop = threading.Event()
    if args.duration is not None and args.duration <= 0:
        stop.set()  # seed only
    elif args.duration is not None:
        timer = threading.Timer(args.duration, stop.set)
        timer.daemon = True
        timer.start()
    mode = f"{settings.mode} mode"
    try:
        seed_and_simulate(url, keys, options, stop, users=users, ingest_url=ingest_url, mode=mode)
    except KeyboardInterrupt:
        stop.set()
    return 0


def add_commands(sub: Any, command: Callable[[Any, str, str], argparse.ArgumentParser]) -> None:
    demo = command(sub, "demo", "seed the demo people, keys and traffic into a running platform")
    demo.add_argument(
        "--data-dir",
        default=None,
        help="where the demo's keys and passwords are kept (and, embedded, the stores); "
        "default: $CEM_DATA_DIR, else ./.cem",
    )
    demo.add_argument("--url", required=True, help="the query API's base URL (console, sign-in)")
    demo.add_argument(
        "--ingest-url", default=None, help="the ingest API's base URL (default: --url)"
    )
    demo.add_argument("--customers", type=int, default=2000, help="people in the demo")
    demo.add_argument("--days", type=int, default=180, help="days of history to seed")
    demo.add_argument("--rate", type=positive_number, default=5.0, help="live events per second")
    demo.add_argument(
        "--duration",
        type=float,
        default=None,
        help="seconds of live traffic (0: seed only; default: until Ctrl-C)",
    )
    demo.set_defaults(func=_demo)
