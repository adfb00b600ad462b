"""Keys every replica must share, kept in PostgreSQL's `platform_secrets` (distributed mode).

Two stores keep one here, the channel store (`channel_secrets`) and the idempotency index
(`log_seal`), and the first process to ask sets each. Processes start together (the ingest, the
workers, a `cem channels add`), so the table and its rows must be made once whoever comes first:

- The table is created by whoever asks, under one advisory lock every asker takes: two concurrent
  `CREATE TABLE IF NOT EXISTS` can both pass the check, and the second then fails on the
  catalog's unique index (a UniqueViolation). Each store's own schema lock would not do: the two
  stores take different ones.
- A key is inserted with ON CONFLICT DO NOTHING and read back in the same transaction, still
  under the lock: every asker reads the first one's key.
"""

from __future__ import annotations

from cem.adapters.postgres import PostgresPool

TABLE_DDL = (
    "CREATE TABLE IF NOT EXISTS platform_secrets (name TEXT PRIMARY KEY, secret BYTEA NOT NULL)"
)
LOCK = "SELECT pg_advisory_xact_lock(hashtext(%s))"
LOCK_NAME = "cem.platform_secrets"
INSERT_SECRET = "INSERT INTO platform_secrets VALUES (%s, %s) ON CONFLICT DO NOTHING"
SELECT_SECRET = "SELECT secret FROM platform_secrets WHERE name = %s"


def shared_secret(db: PostgresPool, name: str, candidate: bytes) -> bytes:
    """The secret called `name`: `candidate` if no process has set it yet, else the one set."""
    with db.transaction() as cursor:
        cursor.execute(LOCK, (LOCK_NAME,))
        cursor.execute(TABLE_DDL)
        cursor.execute(INSERT_SECRET, (name, candidate))
        row = cursor.execute(SELECT_SECRET, (name,)).fetchone()
    assert row is not None  # inserted just above, or earlier by another process
    return bytes(row[0])
