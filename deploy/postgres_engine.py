"""PostgreSQL from Debian's packages (initdb and postgres from /usr/lib/postgresql/N/bin, not the
pg_ctlcluster wrappers), with a `cem` role and database, trust authentication on 127.0.0.1."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from processes import EngineError, State, run, spawn, wait_until


def pg_bin() -> Path:
    configured = os.environ.get("CEM_PG_BIN")
    candidates = (
        [Path(configured)]
        if configured
        else sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name))[
            ::-1
        ]
    )
    for candidate in candidates:
        if (candidate / "initdb").exists():
            return candidate
    raise EngineError("no PostgreSQL initdb under /usr/lib/postgresql: run .ci/provision.sh")


def pg_user() -> dict[str, str]:
    # initdb and postgres refuse to run as root: as root, the cluster belongs to `postgres`.
    return {"user": "postgres", "group": "postgres"} if os.geteuid() == 0 else {}


def postgres_answers(bin_dir: Path, port: int) -> bool:
    ready = [str(bin_dir / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(port), "-t", "2"]
    return subprocess.run(ready).returncode == 0


def prepare_pg_dirs(state: State) -> None:
    state.dir.chmod(0o755)
    for sub, mode in (("data", 0o700), ("run", 0o755)):
        state.path(sub).mkdir(exist_ok=True)
        state.path(sub).chmod(mode)
        if os.geteuid() == 0:
            shutil.chown(state.path(sub), "postgres", "postgres")
    if (
        os.geteuid() == 0
        and subprocess.run(
            ["runuser", "-u", "postgres", "--", "test", "-w", str(state.path("data"))]
        ).returncode
        != 0
    ):
        raise EngineError(
            f"user postgres cannot reach {state.dir}: use a state directory whose "
            "parents are world-traversable (e.g. under /tmp)"
        )


def start_postgres(state: State) -> dict[str, str]:
    ports = state.ports("port")
    port, data, bin_dir = ports["port"], state.path("data"), pg_bin()
    if state.running_pid() is None:
        prepare_pg_dirs(state)
        if not (data / "PG_VERSION").exists():
            run(
                [
                    str(bin_dir / "initdb"),
                    "-D",
                    str(data),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--no-locale",
                    "-E",
                    "UTF8",
                ],
                "initdb",
                cwd=state.dir,
                **pg_user(),
            )
        # Throwaway instance: no fsync (a killed postgres loses nothing; only a host crash would).
        options = {
            "port": port,
            "listen_addresses": "127.0.0.1",
            "fsync": "off",
            "unix_socket_directories": state.path("run"),
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "shared_buffers": "64MB",
        }
        settings = [arg for k, v in options.items() for arg in ("-c", f"{k}={v}")]
        spawn(
            [str(bin_dir / "postgres"), "-D", str(data), *settings],
            state,
            "postgres.log",
            user=pg_user().get("user"),
        )
        wait_until(lambda: postgres_answers(bin_dir, port), state, "postgres.log", "PostgreSQL")
        if not state.path("cem-created").exists():
            psql = [
                str(bin_dir / "psql"),
                "-q",
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-v",
                "ON_ERROR_STOP=1",
            ]
            run([*psql, "-c", "CREATE ROLE cem LOGIN CREATEDB"], "create role cem")
            run([*psql, "-c", "CREATE DATABASE cem OWNER cem"], "create database cem")
            state.path("cem-created").touch()
    return {"POSTGRES_DSN": f"postgresql://cem@127.0.0.1:{port}/cem"}
