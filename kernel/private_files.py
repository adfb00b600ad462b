"""Files of the data directory are the owner's alone (0700 directories, 0600 files).

They hold personal data (events, identities) and credentials (key hashes), so no other account on
the machine may read them. SQLite creates its -wal and -shm files with the database file's mode,
and nothing below a 0700 directory can be reached by others, whatever chdb's own files say.
"""

from __future__ import annotations

import os
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path) -> Path:
    """Create the directory and its missing parents, each created one for the owner only.
    An existing directory is left as it is: its owner chose its mode."""
    missing = [p for p in (path, *path.parents) if not p.exists()]
    for directory in reversed(missing):
        directory.mkdir(mode=DIR_MODE, exist_ok=True)
        os.chmod(directory, DIR_MODE)  # mkdir's mode is filtered by the umask
    return path


def private_file(path: Path) -> Path:
    """Create the file (and its directory) for the owner only, before an engine opens it."""
    private_dir(path.parent)
    fd = os.open(path, os.O_CREAT | os.O_WRONLY, FILE_MODE)
    os.close(fd)
    return path
