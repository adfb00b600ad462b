"""ClickHouse server (Debian's clickhouse-server 18.16, or a newer `clickhouse` binary) with a
generated minimal config: free ports on 127.0.0.1, data in the state directory, bounded memory."""

from __future__ import annotations

import os
import shutil
import time
import urllib.request
from pathlib import Path

from processes import EngineError, State, listening, spawn, terminate, wait_until

CLICKHOUSE_MEMORY = int(os.environ.get("CEM_CLICKHOUSE_MEMORY", str(1 << 30)))


def clickhouse_command(config: Path) -> list[str]:
    """clickhouse-server (Debian's 18.16), or `clickhouse server` (the single binary of newer
    releases); CEM_CLICKHOUSE_BIN chooses another."""
    candidates = [os.environ.get("CEM_CLICKHOUSE_BIN") or shutil.which("clickhouse-server")]
    candidates += ["/usr/sbin/clickhouse-server", "/usr/bin/clickhouse"]
    binary = next((c for c in candidates if c and os.access(c, os.X_OK)), None)
    if binary is None or (os.environ.get("CEM_CLICKHOUSE_BIN") not in (None, "", binary)):
        raise EngineError(
            "no clickhouse-server binary (CEM_CLICKHOUSE_BIN or run .ci/provision.sh)"
        )
    server = ["server"] if Path(binary).name == "clickhouse" else []
    return [binary, *server, f"--config-file={config}"]


def write_clickhouse_config(state: State, tcp: int, http: int) -> Path:
    d = state.dir
    for sub in ("data", "tmp", "logs", "data/user_files", "data/format_schemas"):
        state.path(sub).mkdir(parents=True, exist_ok=True)
    # <yandex> is the root element 18.16 reads; current servers still accept it.
    state.path("config.xml").write_text(f"""<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>{d}/logs/server.log</log>
    <errorlog>{d}/logs/server.err.log</errorlog><size>20M</size><count>2</count></logger>
  <listen_host>127.0.0.1</listen_host>
  <tcp_port>{tcp}</tcp_port>
  <http_port>{http}</http_port>
  <path>{d}/data/</path>
  <tmp_path>{d}/tmp/</tmp_path>
  <user_files_path>{d}/data/user_files/</user_files_path>
  <format_schema_path>{d}/data/format_schemas/</format_schema_path>
  <users_config>{d}/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>UTC</timezone>
  <mlock_executable>false</mlock_executable>
  <max_concurrent_queries>50</max_concurrent_queries>
  <mark_cache_size>268435456</mark_cache_size>
  <uncompressed_cache_size>268435456</uncompressed_cache_size>
  <max_server_memory_usage>{CLICKHOUSE_MEMORY}</max_server_memory_usage>
</yandex>
""")
    state.path("users.xml").write_text(f"""<?xml version="1.0"?>
<yandex>
  <profiles><default>
    <max_memory_usage>{CLICKHOUSE_MEMORY // 2}</max_memory_usage>
    <max_memory_usage_for_all_queries>{CLICKHOUSE_MEMORY}</max_memory_usage_for_all_queries>
    <background_pool_size>4</background_pool_size>
  </default></profiles>
  <users><default>
    <password></password>
    <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
    <profile>default</profile><quota>default</quota>
  </default></users>
  <quotas><default></default></quotas>
</yandex>
""")
    return state.path("config.xml")


def clickhouse_answers(http: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{http}/ping", timeout=2) as response:
            return bool(response.read().strip() == b"Ok.")
    except OSError:
        return False


def start_clickhouse(state: State, attempts: int = 3) -> dict[str, str]:
    # A restart (after a stop or a kill) keeps its ports: its clients hold the URL.
    restarting = state.path("ports.json").exists()
    for attempt in range(attempts):
        try:
            return _start_once(state)
        except EngineError:
            if attempt == attempts - 1 or state.running_pid() is not None:
                raise
            # A server of this attempt still running (seen once: a start retried while the
            # first server ran, which then held the data directory's lock) goes first.
            for pid in state.strays(str(state.path("config.xml"))):
                terminate(pid)
            if restarting:
                # The killed server's socket or lock may outlive it for a moment: same ports again.
                time.sleep(2.0)
                continue
            # A port picked as free can be taken by another process before the server binds it
            # (several test sessions share this machine): pick new ports and try again.
            state.path("ports.json").unlink(missing_ok=True)
    raise AssertionError("unreachable")


def _start_once(state: State) -> dict[str, str]:
    ports = state.ports("tcp", "http")
    if state.running_pid() is None:
        config = write_clickhouse_config(state, ports["tcp"], ports["http"])
        # 18.16 runs as root; current servers refuse only when the data belongs to another user,
        # and the state directory is always the caller's own.
        spawn(clickhouse_command(config), state, "stdout.log")
        # Ready when both ports answer: the clients speak the native protocol (tcp), and a
        # server that pings on http may not accept there yet, or ever (a CI session once got
        # "connection refused" on tcp for every test while /ping said Ok.).
        wait_until(
            lambda: clickhouse_answers(ports["http"]) and listening(f"127.0.0.1:{ports['tcp']}"),
            state,
            "logs/server.err.log",
            "ClickHouse",
        )
    return {
        "CLICKHOUSE_URL": f"clickhouse://127.0.0.1:{ports['tcp']}/default",
        "CLICKHOUSE_HTTP": f"http://127.0.0.1:{ports['http']}",
    }
