"""The embedded filing stage in a process of its own, so `cem up` uses a second core.

Identity's filing is half of the pipeline's CPU per event; in one process the GIL kept it and the
projections, the ingest and the query API on one core. The filing stage reads and writes only
SQLite (the log's `touchpoints` and `filings`, the identity store), which several processes share
(WAL; writes take the lock in turn), so it runs here, apart from chdb, which stays with the
process that projects and answers queries.

- The parent (`FilingProcess`) starts `python -m cem.filing_process` with the data directory and
  settings in CEM_* and keeps the child's stdin open: when the parent dies, however it dies, the
  child reads end-of-file, finishes its batch and exits (no orphan). SIGTERM stops it the same
  way; SIGINT (Ctrl-C reaches the whole terminal's process group) is left to the parent, which
  stops the child itself. One filing process per data directory: a new one waits on
  `filing.lock` until an earlier one, still finishing its batch, has exited.
- A child that exits on its own is logged in one line and started again after a pause (1 s,
  doubling to 30 s while it keeps failing); meanwhile `/ready` names it unavailable and events
  wait on the log (nothing is lost: the stage commits only what it filed).
- Its dead letters go on the log only; the parent copies them into the table
  (`cem.runner.sink_dead_letters`); its erasures leave the warehouse rows to the parent too
  (`cem.erasure.delete_erased_rows`).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path

import cem
from kernel.settings import IngestSettings

log = logging.getLogger(__name__)
LOCK_FILE = "filing.lock"
# While the child's batch keeps failing (a store locked or down): since when, attempts, error.
STATE_FILE = "filing-failing.json"
FIRST_PAUSE_S, LONGEST_PAUSE_S = 1.0, 30.0
# A child that ran this long before exiting is not in a crash loop: the next pause is the first.
HEALTHY_RUN_S = 60.0


class FilingProcess:
    """The parent's handle on the filing process: start, watch and restart, stop."""

    def __init__(self, settings: IngestSettings, first_pause_s: float = FIRST_PAUSE_S) -> None:
        self.env = child_environment(settings, os.environ)
        self.data_dir = Path(settings.data_dir)
        self.first_pause_s = first_pause_s
        self.restarts = 0
        self.last_exit: int | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._watcher = threading.Thread(target=self._watch, name="filing-process", daemon=True)

    def start(self) -> None:
        self._spawn()
        self._watcher.start()

    def _spawn(self) -> None:
        with self._lock:
            if self._stopping.is_set():
                return
            # stdin stays open for the child's life: its end-of-file is the parent's death.
            self._process = subprocess.Popen(
                [sys.executable, "-m", "cem.filing_process"], stdin=subprocess.PIPE, env=self.env
            )

    def _watch(self) -> None:
        pause = 0.0
        while not self._stopping.is_set():
            process, started = self._process, time.monotonic()
            assert process is not None, "started before the watcher"
            code = process.wait()
            if self._stopping.is_set():
                return
            pause = next_pause(pause, time.monotonic() - started, self.first_pause_s)
            self.last_exit = code
            log.error(
                "the filing stage's process exited (code %s); starting it again in %.0f s",
                code,
                pause,
            )
            if self._stopping.wait(pause):
                return
            self.restarts += 1
            self._spawn()

    @property
    def pid(self) -> int | None:
        process = self._process
        return process.pid if process is not None else None

    def running(self) -> bool:
        process = self._process
        return process is not None and process.poll() is None

    def failing(self) -> dict[str, object] | None:
        """What the running child said of a batch that keeps failing (`tell_parent`); None while
        it goes on, or when what is written is another (earlier) child's."""
        try:
            told = json.loads((self.data_dir / STATE_FILE).read_text())
        except (OSError, ValueError):
            return None
        if not isinstance(told, dict) or told.pop("pid", None) != self.pid or not self.running():
            return None
        return told

    def check(self) -> None:
        """The readiness probe: raises while the process is not running."""
        if not self.running():
            raise RuntimeError(
                f"the filing stage's process is not running (last exit code {self.last_exit}); "
                "it is being started again"
            )

    def state(self) -> dict[str, object]:
        """What /health says of it."""
        return {"process": self.pid, "running": self.running(), "restarts": self.restarts}

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop the child (it finishes its batch) and wait; killed if it does not exit in time."""
        with self._lock:
            self._stopping.set()
            process = self._process
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                log.error("the filing stage's process did not stop in %.0f s; killed", timeout_s)
                process.kill()
                process.wait(timeout_s)
        if process.stdin is not None:
            process.stdin.close()


def next_pause(previous: float, ran_s: float, first: float = FIRST_PAUSE_S) -> float:
    """The pause before starting the process again: `first` after its first exit or after a run
    long enough not to be a crash loop, else twice the previous one, at most `LONGEST_PAUSE_S`."""
    if previous <= 0 or ran_s > HEALTHY_RUN_S:
        return first
    return min(previous * 2, LONGEST_PAUSE_S)


def child_environment(settings: IngestSettings, parent: Mapping[str, str]) -> dict[str, str]:
    """The parent's environment with the settings the child needs spelled out: the parent may
    have been given them other than through CEM_* (`cem up --data-dir`)."""
    env = dict(parent)
    env["CEM_DATA_DIR"] = str(Path(settings.data_dir).resolve())
    env["CEM_PARTITIONS"] = str(settings.partitions)
    env["CEM_IDENTITY"] = settings.identity
    if settings.seal_personal_data is None:  # the default: the child decides as the parent did
        env.pop("CEM_SEAL_PERSONAL_DATA", None)
    else:
        env["CEM_SEAL_PERSONAL_DATA"] = "true" if settings.seal_personal_data else "false"
    if settings.secret_key is not None:
        env["CEM_SECRET_KEY"] = settings.secret_key.get_secret_value()
    # `cem` importable wherever the parent found it (a checkout run with PYTHONPATH, say).
    root = str(Path(cem.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, parent.get("PYTHONPATH", "")) if p)
    return env


# --- the child ---------------------------------------------------------------------------------
def run_child(settings: IngestSettings, stop: threading.Event) -> None:
    """The filing stage until `stop` is set; the composition root of the child."""
    from cem.adapters.sqlite_log import SqliteLog
    from cem.erasure import eraser_for
    from cem.identity import build_identity
    from cem.runner import Runner, file_once
    from cem.sealing import opener_for
    from kernel.collector import settle_collector
    from kernel.filings import FILING_STAGE
    from kernel.sealing import opening_decode
    from services.identity.filing import IdentityFiler
    from services.identity.settings import IdentitySettings

    data_dir = Path(settings.data_dir)
    event_log = SqliteLog(data_dir / "log.sqlite", partitions=settings.partitions)
    event_log.watch_other_processes()  # the touchpoints the main process appends
    identity = None
    if settings.identity == "eventsourced":  # the store `cem.bootstrap.embedded_identity` opens
        # Kept in clear or sealed as the parent opened it, which said so already: not again.
        identity = build_identity(IdentitySettings(mode="embedded", data_dir=data_dir), warn=False)
    filer = IdentityFiler(identity) if identity is not None else None
    # Sealed records (docs/erasure.md) are opened before they are filed.
    opener = opener_for(settings)
    decode = opening_decode(opener)
    # Erasures: keys and identity here; the warehouse is the parent's (chdb: one process), which
    # deletes the rows when it reads the erasure's filing (`cem.erasure.delete_erased_rows`).
    eraser = eraser_for(identity, opener, settings, None)
    state = data_dir / STATE_FILE
    state.unlink(missing_ok=True)  # an earlier child's, gone with it
    runner = Runner(
        FILING_STAGE,
        lambda: file_once(event_log, None, filer, decode_record=decode, eraser=eraser),
        on_failing=lambda failing: tell_parent(state, failing),
    )
    settle_collector()
    runner.start()
    try:
        stop.wait()
    finally:
        runner.stop(timeout_s=60.0)
        opener.close()
        event_log.close()
        if identity is not None:
            identity.close()


def tell_parent(state: Path, failing: dict[str, object] | None) -> None:
    """The stage's failing state where the parent's /health reads it (`FilingProcess.failing`):
    written whole (a rename), with this process's id; removed once it goes on again."""
    if failing is None:
        state.unlink(missing_ok=True)
        return
    written = state.with_suffix(".tmp")
    written.write_text(json.dumps({"pid": os.getpid(), **failing}))
    os.replace(written, state)


def stop_on_end_of_input(stop: threading.Event) -> None:
    """Set `stop` when stdin (the parent's pipe) reaches end-of-file: the parent is gone."""

    def watch() -> None:
        # os.read, not sys.stdin: a daemon thread blocked in the buffered reader holds its lock,
        # and the interpreter aborts when it finds it held at exit.
        while os.read(sys.stdin.fileno(), 4096):
            pass
        stop.set()

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def hold_filing_lock(data_dir: Path, stop: threading.Event) -> bool:
    """Wait until no other filing process of this data directory runs, then hold the lock for
    this process's life (the kernel releases it when the process ends); False if `stop` came
    first."""
    fd = os.open(data_dir / LOCK_FILE, os.O_CREAT | os.O_RDWR, 0o600)
    while not stop.is_set():
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            stop.wait(0.1)
    return False


def main() -> int:
    stop = threading.Event()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops it (see the module's doc)
    signal.signal(signal.SIGTERM, lambda _signum, _frame: stop.set())
    stop_on_end_of_input(stop)
    try:
        settings = IngestSettings()
        if hold_filing_lock(Path(settings.data_dir), stop):
            run_child(settings, stop)
    except Exception as exc:  # one line for the operator; CEM_DEBUG=1 shows the traceback
        if os.environ.get("CEM_DEBUG"):
            raise
        print(f"cem filing process: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
