"""The identity store's filings: one row per touchpoint, written with the resolution's changes,
and the filings of stores written before they had a table of their own.

Another store joins by subclassing `FilingsContract` with a `store` fixture on a fresh, empty
store (this contract reads what a store holds before the resolver first opens it). SQLite runs
here; PostgreSQL in tests/integration/test_identity_postgres.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import PersistenceError, StoredEvent
from eventsourcing.utils import Environment, EnvType

from cem.adapters.sqlite_identity_store import SqliteIdentityStore
from schemas.envelope import CustomerRef
from services.identity import IdentityResolver
from services.identity.changes import SYSTEM_ACTOR
from services.identity.domain import LEGACY_FILED_TOPIC, Customer, stable_id
from services.identity.models import IgnoredIdentifier
from services.identity.ports import IdentityStore
from tests.contract.test_identity_store import RULES, IdentityStoreFixtures


class OlderFiling(Aggregate):
    """A filing as stores kept it before the filings table: the one event of an aggregate."""

    class Filed(Aggregate.Created):
        tenant_id: str
        evidence_event_id: str
        home_id: str
        source: str
        ignored: list[str] | None

    @staticmethod
    def create_id(tenant_id: str, evidence_event_id: str) -> UUID:
        return stable_id(tenant_id, "filing", evidence_event_id)

    @event(Filed)
    def __init__(
        self,
        tenant_id: str,
        evidence_event_id: str,
        home_id: str,
        source: str,
        ignored: list[str] | None = None,
    ) -> None:
        self.home_id = home_id


class OlderIdentity(Application[UUID]):
    """The identity application on the library's own recorder, as it was (same tables)."""

    name = "Identity"

    def construct_env(self, name: str, env: EnvType | None = None) -> Environment:
        return Environment(name, dict(env or {}))


def write_older_store(
    store: IdentityStore, customers: list[Customer], filings: list[OlderFiling]
) -> None:
    env = store.persistence_env()
    env.pop("APPLICATION_RECORDER_TOPIC")
    older = OlderIdentity(env=env)
    try:
        older.save(*customers)
        for filing in filings:
            [stored] = [older.mapper.to_stored_event(e) for e in filing.collect_events()]
            # Under the topic the filing class had when it lived in the domain module.
            older.recorder.insert_events(
                [StoredEvent(stored.originator_id, 1, LEGACY_FILED_TOPIC, stored.state)]
            )
    finally:
        older.close()


class FilingsContract(IdentityStoreFixtures):
    def test_an_older_stores_filings_are_copied_once_and_answer_redeliveries(
        self, store: IdentityStore, tenant: str
    ) -> None:
        ana = Customer(tenant, "seed", "first seen", SYSTEM_ACTOR, "http", "e-1", name="ana-lopez")
        write_older_store(
            store,
            [ana],
            [
                OlderFiling(tenant, "e-1", "ana-lopez", "http", ["customer.phone:invalid"]),
                OlderFiling(tenant, "e-2", "ana-lopez", "email", None),  # before ignored notes
            ],
        )
        identity = IdentityResolver(store, RULES)
        try:
            position = identity.recorder.max_notification_id()
            # Redelivered with identifiers nobody holds: the filing answers, nobody is registered.
            again = identity.resolve(tenant, CustomerRef(email="zoe@x.io"), "e-1", "http")
            assert (again.home_id, again.replayed, again.created) == ("ana-lopez", True, False)
            assert identity.recorder.max_notification_id() == position
            first = identity.filing_of(tenant, "e-1")
            assert first is not None
            assert first.ignored == (IgnoredIdentifier("customer.phone", "invalid"),)
            second = identity.filing_of(tenant, "e-2")
            assert second is not None and (second.home_id, second.ignored) == ("ana-lopez", ())
            assert identity.filing_of(f"{tenant}-other", "e-1") is None
        finally:
            identity.close()
        replica = IdentityResolver(store, RULES)  # the table exists: nothing is copied again
        try:
            batch = [(CustomerRef(email="zoe@x.io"), e, "http") for e in ("e-1", "e-2")]
            assert [r.home_id for r in replica.resolve_batch(tenant, batch)] == ["ana-lopez"] * 2
        finally:
            replica.close()

    def test_a_filing_is_kept_only_with_the_changes_of_its_resolution(
        self, store: IdentityStore, tenant: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        identity = IdentityResolver(store, RULES)
        try:
            library_recorder = type(identity.recorder).__bases__[0]

            def fail(*args: Any, **kwargs: Any) -> None:
                raise PersistenceError("the store went away mid-transaction")

            # The filing is inserted first; the events' insert failing must take it back too.
            with monkeypatch.context() as patched:
                patched.setattr(library_recorder, "_insert_events", fail)
                with pytest.raises(PersistenceError):
                    identity.resolve(tenant, CustomerRef(email="ana@x.io"), "e-1", "http")
            assert identity.filing_of(tenant, "e-1") is None
            first = identity.resolve(tenant, CustomerRef(email="ana@x.io"), "e-1", "http")
            assert (first.created, first.replayed) == (True, False)
            filed = identity.filing_of(tenant, "e-1")
            assert filed is not None and filed.home_id == first.home_id
        finally:
            identity.close()

    def test_a_touchpoint_that_changes_nothing_is_filed_without_any_event(
        self, store: IdentityStore, tenant: str
    ) -> None:
        identity = IdentityResolver(store, RULES)
        try:
            ana = identity.resolve(tenant, CustomerRef(email="ana@x.io"), "e-1", "http")
            position = identity.recorder.max_notification_id()
            quiet = identity.resolve(tenant, CustomerRef(email="ana@x.io"), "e-2", "http")
            assert (quiet.home_id, quiet.replayed) == (ana.home_id, False)
            assert identity.recorder.max_notification_id() == position
            filed = identity.filing_of(tenant, "e-2")
            assert filed is not None and filed.home_id == ana.home_id
        finally:
            identity.close()


class TestSqliteFilings(FilingsContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> IdentityStore:
        return SqliteIdentityStore(tmp_path / "identity.sqlite")
