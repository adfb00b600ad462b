"""The ports every adapter implements. The pure core depends on these, never on an engine."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final, Protocol

TOUCHPOINTS_TOPIC = "touchpoints"
# The filing stage's decisions: each admitted touchpoint's bytes under the customer it was filed
# under (`kernel.filings`), keyed by customer. Projections read this topic, never `touchpoints`.
FILINGS_TOPIC = "filings"
DEAD_LETTER_TOPIC = "touchpoints.dead_letters"
# When a key id was destroyed, as `KeyVault.last_destroyed_at` answers for a tombstone kept before
# destruction times were: unknown, so read as after every time (no arrival is after it).
DESTROYED_AT_UNKNOWN: Final = datetime.max.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Record:
    """A record to append to a topic."""

    key: bytes
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()


@dataclass(frozen=True)
class Consumed:
    """A record read from a topic, with its position."""

    topic: str
    partition: int
    offset: int
    key: bytes
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()


class EventLog(Protocol):
    """A partitioned, durable, append-only log with consumer groups (Kafka semantics)."""

    def append(self, topic: str, records: Sequence[Record]) -> list[tuple[int, int]]:
        """Durably append; returns (partition, offset) per record once acknowledged."""
        ...

    def poll(self, topic: str, group: str, max_records: int, timeout_s: float) -> list[Consumed]:
        """Records after the group's position, waiting up to timeout_s for the first."""
        ...

    def commit(self, topic: str, group: str, offsets: Mapping[int, int]) -> None:
        """Store, per partition, the offset of the next record the group will read."""
        ...

    def committed(self, topic: str, group: str) -> dict[int, int]:
        """The group's committed next-offsets per partition."""
        ...

    def end_offsets(self, topic: str) -> dict[int, int]:
        """The next offset to be written per partition (for lag)."""
        ...

    def close(self) -> None: ...


class PublishStatus(StrEnum):
    accepted = "accepted"
    duplicate = "duplicate"
    conflict = "conflict"


@dataclass(frozen=True)
class Outgoing:
    """A validated event ready to publish, with its idempotency identity."""

    tenant_id: str
    event_id: str
    fingerprint: str
    record: Record


class Publisher(Protocol):
    """Publishes validated events idempotently by (tenant_id, event_id)."""

    def publish(self, events: Sequence[Outgoing]) -> list[PublishStatus]:
        """Returns a status per event, only after the log acknowledged the accepted ones.

        Raises LogUnavailable when the log cannot acknowledge in bounded time.
        """
        ...


class Warehouse(Protocol):
    """A ClickHouse-compatible SQL store. Queries use `{name:Type}` parameters."""

    version: tuple[int, ...]

    def command(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        """Run DDL or a statement that returns nothing."""
        ...

    def insert(self, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
        """Insert rows (dicts keyed by column) in one batch; retries are the caller's."""
        ...

    def select(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Run a query and return rows as dicts."""
        ...

    def select_columns(
        self, sql: str, params: Mapping[str, Any] | None = None
    ) -> dict[str, list[Any]]:
        """Run a query and return its rows as one list of values per column, by name: for reads of
        100 000s of rows, which a dict per row makes slow."""
        ...

    def close(self) -> None: ...


# What a credential may do (a Principal's role); kernel/auth.py says which routes each may use.
ROLES = ("ingest", "agent", "manager", "admin")


@dataclass(frozen=True)
class Principal:
    """Who a credential belongs to."""

    key_id: str
    tenant_id: str
    role: str
    scopes: frozenset[str] = field(default_factory=frozenset)
    user_id: str | None = None  # a person signed in: the account's id (its key_id names the email)

    @property
    def record_id(self) -> str:
        """Who, as kept for ever in the log (an erasure's actor): a key's id, or a person's
        account id, never their email."""
        return f"user:{self.user_id}" if self.user_id is not None else self.key_id


class KeyStore(Protocol):
    """API keys, stored hashed."""

    def create(self, tenant_id: str, role: str, name: str = "") -> tuple[str, str]:
        """Make a key; returns (key_id, secret) — the secret is shown once."""
        ...

    def authenticate(self, secret: str) -> Principal | None:
        """The principal of a valid, unrevoked key, else None (constant-time compare)."""
        ...

    def revoke(self, key_id: str) -> None: ...

    def list(self, tenant_id: str) -> list[dict[str, Any]]: ...


class Clock(Protocol):
    """Wall-clock time; injected so tests control it."""

    def now(self) -> Any: ...


class LogUnavailable(RuntimeError):
    """The event log cannot acknowledge right now; callers answer 503 with Retry-After, under
    `code` (a subclass for another store names its own: kernel/api_errors.py)."""

    code = "log_unavailable"


class WarehouseUnavailable(RuntimeError):
    """The warehouse cannot take or answer a query right now; runners retry the same batch."""


class StorageFull(LogUnavailable):
    """The data directory is full or not writable."""


@dataclass(frozen=True)
class UserRecord:
    """A person's account as stored: the password only as its KDF hash."""

    user_id: str
    tenant_id: str
    role: str
    email: str
    password_hash: str
    created_at: Any  # aware datetime


@dataclass(frozen=True)
class SessionRecord:
    """A signed-in session as stored: the cookie's secret only as its SHA-256 digest."""

    session_digest: str
    user_id: str
    csrf_token: str
    expires_at: Any  # aware datetime


class UserStore(Protocol):
    """People's accounts, their sessions and the sign-in audit (lock-out counts failures in it).

    Storage only: hashing, lock-out and session rules live in `kernel.accounts`, shared by every store.
    """

    def add_user(self, user: UserRecord) -> None:
        """Store a new account; ValueError when the email is taken."""
        ...

    def user_by_email(self, email: str) -> UserRecord | None: ...

    def user_by_id(self, user_id: str) -> UserRecord | None: ...

    def users(self, tenant_id: str | None = None) -> list[UserRecord]:
        """Accounts, oldest first; of one tenant when given."""
        ...

    def record_sign_in(self, email: str, outcome: str, at: Any) -> None:
        """Append to the audit: outcome is `signed_in`, `failed`, `locked` or `unlocked`."""
        ...

    def failures_since(self, email: str, since: Any) -> int:
        """Failed sign-ins of the email after `since` and after its last success or unlock."""
        ...

    def add_session(self, session: SessionRecord) -> None: ...

    def session(self, session_digest: str) -> SessionRecord | None: ...

    def delete_session(self, session_digest: str) -> None: ...


@dataclass(frozen=True)
class AccessEntry:
    """One read of one customer's data by a key or a person, as the access audit keeps it."""

    entry_id: str  # a UUID: the tiebreak of the newest-first order
    tenant_id: str
    at: Any  # aware datetime
    actor_kind: str  # `key` or `user`
    actor_id: str  # the key's id or the person's user id
    actor_email: str  # the person's email; "" for a key
    role: str
    customer_id: str  # the customer the read resolved to, not only what was typed
    requested_id: str  # what the caller typed
    resource: str  # timeline, stream, profile, identities, identity_history, alerts, export, ...
    request_id: str  # the caller's X-Request-ID, "" when none


# The access audit's columns, in this order in every store (each adapter reads rows back by it).
ACCESS_ENTRY_FIELDS = tuple(f.name for f in fields(AccessEntry))


@dataclass(frozen=True)
class AccessQuery:
    """Which entries of one tenant to list, newest first; `before` is a page's last (at, entry_id)."""

    tenant_id: str
    customer_id: str | None = None
    actor: str | None = None  # an actor id or email
    since: Any = None  # inclusive, aware datetime
    until: Any = None  # exclusive
    before: tuple[Any, str] | None = None
    limit: int = 100


class AccessAudit(Protocol):
    """Who read which customer's data, when: appended on every such read, listed by admins."""

    def record(self, entry: AccessEntry) -> None:
        """Append durably before the read answers; raises when the store cannot take it."""
        ...

    def entries(self, query: AccessQuery) -> list[AccessEntry]:
        """The tenant's matching entries, newest first (at, then entry_id), at most `limit`."""
        ...

    def check_writable(self) -> None:
        """Raise unless an entry could be recorded now (the readiness probe), writing nothing."""
        ...


class KeyVault(Protocol):
    """Subjects' data keys for crypto-shredding (`kernel.shredding`), each stored wrapped by its
    tenant's key and named by its key id (`subject_key_id`), never by the subject."""

    def get_or_create(self, tenant_id: str, key_id: str) -> bytes:
        """The data key, made now if nobody made it first: every process gets the same one."""
        ...

    def get_or_create_many(self, tenant_id: str, key_ids: Sequence[str]) -> dict[str, bytes]:
        """`get_or_create` for many subjects at once (one transaction): the ingest meets a
        batch's new subjects together."""
        ...

    def find(self, tenant_id: str, key_id: str) -> bytes | None:
        """The data key if the vault holds it (opening an event never creates one)."""
        ...

    def destroy(self, tenant_id: str, key_ids: Sequence[str]) -> int:
        """Delete keys for good and keep a tombstone of each id, with the fingerprint of each key
        destroyed (`shredding.key_fingerprint`); returns how many were held. Their events open
        as erased, even once a returning subject has a new key under the id."""
        ...

    def destroyed(self, tenant_id: str, key_id: str, fingerprint: str | None = None) -> bool:
        """Whether a key under this id was destroyed (its tombstone): a blob that does not open
        under the id's present key was sealed under a destroyed one. With `fingerprint` (the
        blob's), whether the key destroyed was that one; a tombstone kept before fingerprints
        were (none recorded for the id) answers as without."""
        ...

    def last_destroyed_at(self, tenant_id: str, key_id: str) -> datetime | None:
        """When a key under this id was last destroyed (the tombstone's time, set again by each
        destruction): None when none ever was; `DESTROYED_AT_UNKNOWN` for a tombstone kept
        before times were, which reads as after every time. What arrived before it is the erased
        subject's (a webhook dead letter replayed later), what arrived after it a returning
        subject's."""
        ...

    def destructions_after(self, position: int | None) -> tuple[int, list[tuple[str, str]]]:
        """The keys destroyed (tenant id, key id) after `position` of the vault's destruction
        feed, in order, and the feed's position after them; `None`: its present end, nothing
        listed. Every process's `destroy` is on it, in commit order, so a process that read
        position p learns of every destruction committed since (`kernel.sealing.KeyCache`)."""
        ...

    def close(self) -> None: ...
