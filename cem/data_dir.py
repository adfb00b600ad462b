"""Where the embedded state lives: `--data-dir`, else `CEM_DATA_DIR`, else `./.cem`, said aloud.

Every command that touches the directory names the one it used and why, so that a key created from
another directory is never silently useless. `cem up` and `cem replay` hold an exclusive lock on it
while they run (chdb allows one process per data directory): a second one fails in one line.
`cem up` also says there the address it serves at (`serving.json`), for `cem channels add`.
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cem.cli_errors import CliError

if TYPE_CHECKING:
    from kernel.settings import CoreSettings

DEFAULT = Path(".cem")
LOCK_FILE = "cem.lock"
# Where `cem up` says the address it serves this directory at, while it runs: what `cem
# channels add` prints a webhook URL with when given no --url.
SERVING_FILE = "serving.json"


@dataclass(frozen=True)
class DataDir:
    path: Path
    source: str  # "--data-dir", "CEM_DATA_DIR" or "default"

    def announce(self) -> None:
        print(f"cem: data directory {self.path.resolve()} (from {self.source})", file=sys.stderr)


def resolve(flag: str | None) -> DataDir:
    if flag:
        return DataDir(Path(flag), "--data-dir")
    if env := os.environ.get("CEM_DATA_DIR"):
        return DataDir(Path(env), "CEM_DATA_DIR")
    return DataDir(DEFAULT, "default")


def prepare(flag: str | None) -> DataDir:
    """Resolve and create the data directory (a file in its place is a mistake). The caller
    announces it once its own checks passed, so that a mistake stays a one-line report."""
    data_dir = resolve(flag)
    if data_dir.path.exists() and not data_dir.path.is_dir():
        raise CliError(f"data directory {data_dir.path} is not a directory")
    try:
        data_dir.path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CliError(f"cannot create data directory {data_dir.path}: {exc.strerror}") from None
    return data_dir


def store_settings(flag: str | None, what: str, create: bool = True) -> CoreSettings:
    """The settings of a command that opens the store of `what` (keys, accounts…), saying where it
    is: PostgreSQL when CEM_MODE=distributed, else the prepared and announced data directory.
    Without `create` (a command that reads or changes what is stored), a data directory that does
    not exist is a mistake said in one line (run from another directory than `cem up`'s), not a
    new empty one."""
    from kernel.settings import CoreSettings

    settings = CoreSettings()
    if settings.mode == "distributed":
        print(f"cem: {what} are stored in PostgreSQL (CEM_MODE=distributed)", file=sys.stderr)
        return settings
    found = resolve(flag)
    if not create and not found.path.exists():
        raise CliError(
            f"no data directory {found.path.resolve()} (from {found.source}): no {what} are "
            "stored there; pass --data-dir or set CEM_DATA_DIR to the one `cem up` uses"
        )
    state = prepare(flag)
    state.announce()
    return CoreSettings(data_dir=state.path)


@contextmanager
def exclusive(path: Path) -> Iterator[None]:
    """Hold the data directory for this process; fail at once when another process holds it.

    An advisory lock (flock) is released by the kernel when the holder dies, so a killed process
    never leaves the directory locked."""
    lock_path = path / LOCK_FILE
    with open(lock_path, "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip() or "?"
            raise CliError(
                f"data directory {path} is in use by another cem process (pid {holder}); "
                "stop it or pass another --data-dir"
            ) from None
        lock.seek(0)
        lock.truncate()
        lock.write(str(os.getpid()))
        lock.flush()
        yield


@contextmanager
def serving(path: Path, url: str) -> Iterator[None]:
    """Say, for as long as this process serves the directory, the address it serves at ("":
    none to say, a read-only server taking no webhook)."""
    found = path / SERVING_FILE
    if not url:
        found.unlink(missing_ok=True)
        yield
        return
    found.write_text(json.dumps({"pid": os.getpid(), "url": url}))
    try:
        yield
    finally:
        found.unlink(missing_ok=True)


def served_url(path: Path) -> str | None:
    """The address a running `cem up` serves this directory at; None when none runs. A file left
    by a process that was killed is known by the lock: the kernel released it with the process
    (a pid alone may be another process's by now: a review), and the pid it names is the lock
    holder's."""
    try:
        said = json.loads((path / SERVING_FILE).read_text())
        holder = (path / LOCK_FILE).read_text().strip()
    except (OSError, ValueError):
        return None
    if not isinstance(said, dict):
        return None
    pid, url = said.get("pid"), said.get("url")
    if not isinstance(pid, int) or not isinstance(url, str) or str(pid) != holder:
        return None
    return url if _locked(path / LOCK_FILE) else None


def _locked(lock_path: Path) -> bool:
    """Whether a process holds the directory's lock now (`exclusive`), asked without waiting."""
    try:
        with open(lock_path) as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(lock, fcntl.LOCK_UN)
            return False
    except OSError:
        return False
