#!/usr/bin/env python3
"""Private Kafka, ClickHouse and PostgreSQL instances as local processes (no Docker engine needed).

    python3 deploy/engines.py start kafka|clickhouse|postgres [--state-dir DIR] [--prefix CEM_]
    python3 deploy/engines.py stop  kafka|clickhouse|postgres [--state-dir DIR] [--purge]
    python3 deploy/engines.py kill  ...   (SIGKILL, for fault tests; `start` again restarts it)
    python3 deploy/engines.py status ...

`start` picks free ports on 127.0.0.1, keeps data, logs and a pid file in the state directory
(default $CEM_ENGINES_DIR/<engine>, else /tmp/cem-engines/<engine>), waits until the engine answers,
and prints its endpoint as `export PREFIX<NAME>=value` lines for `eval` (plain `NAME=value` with
`--prefix ''`, for parsers). Starting a stopped or killed
instance again reuses its ports and data. Needs what .ci/provision.sh installs.
"""

import argparse
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from clickhouse_engine import start_clickhouse
from kafka_engine import start_kafka
from postgres_engine import start_postgres
from processes import EngineError, State, alive, terminate

STARTERS: dict[str, Callable[[State], dict[str, str]]] = {
    "kafka": start_kafka,
    "clickhouse": start_clickhouse,
    "postgres": start_postgres,
}


def state_for(engine: str, directory: str | None) -> State:
    root = Path(os.environ.get("CEM_ENGINES_DIR") or Path(tempfile.gettempdir()) / "cem-engines")
    return State(Path(directory).resolve() if directory else root / engine)


def start(engine: str, state: State, prefix: str) -> None:
    began = time.monotonic()
    state.dir.mkdir(parents=True, exist_ok=True)
    endpoint = STARTERS[engine](state)
    # With a prefix, lines for `eval "$(…)"`: exported, so the `cem serve` started after sees
    # them (plain assignments stayed in the shell, found by a review); without one, for parsers.
    export = "export " if prefix else ""
    lines = "".join(f"{export}{prefix}{name}={value}\n" for name, value in endpoint.items())
    state.path("endpoint.env").write_text(lines)
    sys.stdout.write(lines)
    print(
        f"{engine} up in {time.monotonic() - began:.1f}s (pid {state.pid()}, state {state.dir})",
        file=sys.stderr,
    )


def stop(engine: str, state: State, purge: bool) -> None:
    pid = state.running_pid()
    if pid is not None:
        # SIGTERM is a "smart" shutdown for PostgreSQL, waiting for every client; SIGINT is "fast".
        terminate(pid, signal.SIGINT if engine == "postgres" else signal.SIGTERM)
    state.path("pid").unlink(missing_ok=True)
    if purge:
        shutil.rmtree(state.dir, ignore_errors=True)


def kill(state: State) -> None:
    pid = state.running_pid()
    if pid is not None:
        os.kill(pid, signal.SIGKILL)
        while alive(pid):
            time.sleep(0.05)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["start", "stop", "kill", "status"])
    parser.add_argument("engine", choices=sorted(STARTERS))
    parser.add_argument("--state-dir", help="default: $CEM_ENGINES_DIR/<engine>")
    parser.add_argument("--prefix", default="CEM_", help="prefix of the printed variable names")
    parser.add_argument("--purge", action="store_true", help="stop: also delete data and logs")
    args = parser.parse_args(argv)
    state = state_for(args.engine, args.state_dir)
    try:
        if args.action == "start":
            start(args.engine, state, args.prefix)
        elif args.action == "stop":
            stop(args.engine, state, args.purge)
        elif args.action == "kill":
            kill(state)
        elif state.running_pid() is None:
            return 1
        else:
            sys.stdout.write(state.path("endpoint.env").read_text())
    except EngineError as error:
        print(f"engines: {args.engine}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
