"""A damaged SQLite file, told apart from a busy one, and named, for the CLI's one-line report."""

from __future__ import annotations

import sqlite3


def damaged_file_report(exc: BaseException) -> str | None:
    """The report of `exc` when it says a SQLite file is damaged ("file is not a database",
    "database disk image is malformed"), naming the file if the failing call's connection still
    answers; None for anything else (a locked or unwritable file is an OperationalError, which
    commands report themselves)."""
    if not isinstance(exc, sqlite3.DatabaseError) or isinstance(exc, sqlite3.OperationalError):
        return None
    # Only a damaged file: a UNIQUE violation or a closed connection is a bug to show as one, not
    # a file to restore from a backup (found by a review).
    if getattr(exc, "sqlite_errorcode", 0) & 0xFF not in (_SQLITE_CORRUPT, _SQLITE_NOTADB):
        return None
    where = _sqlite_file(exc)
    named = f"{where} is damaged" if where else "a SQLite file of the data directory is damaged"
    return f"{named} ({exc}): restore it from a backup"


_SQLITE_CORRUPT, _SQLITE_NOTADB = 11, 26  # the primary result codes, as sqlite3.h has them


def _sqlite_file(exc: BaseException) -> str | None:
    """The file of the SQLite connection the failing call used, found in the traceback's frames
    (the exception does not name it); None when no frame holds one that still answers."""
    tb = exc.__traceback__
    while tb is not None:
        for value in tb.tb_frame.f_locals.values():
            if isinstance(value, sqlite3.Connection):
                try:
                    rows = value.execute("PRAGMA database_list").fetchall()
                except sqlite3.Error:
                    continue
                files = [row[2] for row in rows if row[1] == "main" and row[2]]
                if files:
                    return str(files[0])
        tb = tb.tb_next
    return None
