"""`python -m bench.served --raw-port P up ...`: `cem up` exactly, plus a bench-only side port on
127.0.0.1 where the bench sends the timeline's SQL to the server's own chdb engine.

chdb lets one process own a data path, so the only place the same SQL can run against the same
tables, in the same phase as the API measurement, is the server process itself. The side port
answers `POST /` with `{"sql": ..., "params": {...}}` by running it on a chdb session of its own
on the server's engine and database, not through the warehouse adapter (no pool, no decoding of
the rows: the engine's own time, as `bench/stages.py` takes its raw inserts), and returning the
seconds the engine's call took, timed there. (The bench's parameters are plain ids and times, so
the adapter's escaping of string parameters would change nothing.) It is started from `cem.up`'s
own call to `build`; if that call moves, the server still runs and the port never opens: the
bench then reports the raw query as not measured.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
from chdb import session as chdb_session


def serve_raw(path: Path, database: str, port: int) -> ThreadingHTTPServer:
    """The side port, on a session of its own on the chdb engine at `path` (the server's)."""
    engine = chdb_session.Session(str(path.resolve()))
    engine.query(f"USE {database}")
    one_at_a_time = threading.Lock()  # a session runs one query at a time; the bench sends one

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (the http.server name)
            body = orjson.loads(self.rfile.read(int(self.headers["content-length"])))
            with one_at_a_time:
                started = time.perf_counter()
                result = engine.query(body["sql"], "JSONEachRow", params=body.get("params") or None)
                seconds = time.perf_counter() - started
            rows = sum(1 for line in bytes(result.bytes()).splitlines() if line)
            answer = orjson.dumps({"seconds": seconds, "rows": rows})
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True, name="bench-raw").start()
    return server


def main(argv: Sequence[str]) -> int:
    if len(argv) < 2 or argv[0] != "--raw-port":
        print("usage: python -m bench.served --raw-port PORT up [cem up options]", file=sys.stderr)
        return 2
    port, rest = int(argv[1]), list(argv[2:])
    import cem.up
    from cem.adapters.chdb_warehouse import ChdbWarehouse
    from cem.cli import main as cem_main

    build = cem.up.build

    def build_and_serve_raw(*args: Any, **kwargs: Any) -> Any:
        platform = build(*args, **kwargs)
        if isinstance(platform.warehouse, ChdbWarehouse):  # else: the raw query is not measured
            path = platform.settings.data_dir / "warehouse"
            serve_raw(path, platform.warehouse.database, port)
        return platform

    cem.up.build = build_and_serve_raw  # type: ignore[assignment]
    return cem_main(rest)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
