"""`python -m bench.served --raw-port P up ...`: `cem up` exactly, plus a bench-only side port on
127.0.0.1 where the bench sends the timeline's SQL to the server's own chdb engine.

chdb lets one process own a data path, so the only place the same SQL can run against the same
tables, in the same phase as the API measurement, is the server process itself. The side port
answers `POST /` with `{"sql": ..., "params": {...}}` by running it through the warehouse the
server built (the pool of sessions the query API uses: the raw query runs beside the API's
calls, on a session of its own, as an API call does) and returning the seconds it took, timed there.
It is started from `cem.up`'s own call to `build`; if that call moves, the server still runs and
the port never opens: the bench then reports the raw query as not measured.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson


def serve_raw(warehouse: Any, port: int) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (the http.server name)
            body = orjson.loads(self.rfile.read(int(self.headers["content-length"])))
            started = time.perf_counter()
            rows = warehouse.select(body["sql"], body.get("params") or {})
            seconds = time.perf_counter() - started
            answer = orjson.dumps({"seconds": seconds, "rows": len(rows)})
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
    from cem.cli import main as cem_main

    build = cem.up.build

    def build_and_serve_raw(*args: Any, **kwargs: Any) -> Any:
        platform = build(*args, **kwargs)
        serve_raw(platform.warehouse, port)
        return platform

    cem.up.build = build_and_serve_raw  # type: ignore[assignment]
    return cem_main(rest)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
