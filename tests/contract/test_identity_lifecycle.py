"""Identifiers over time, on every identity store: recycled mobile numbers and shared devices.

SQLite runs here; PostgreSQL runs the same class in tests/integration/test_identity_postgres.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cem.adapters.sqlite_identity_store import SqliteIdentityStore
from schemas.envelope import CustomerRef
from services.identity import IdentityResolver, ResolvedCustomer
from services.identity.ports import IdentityStore
from tests.contract.test_identity_store import SEALING_KEY, IdentityStoreFixtures

OLD_MOBILE, NEW_MOBILE = "+34 617 34 56 78", "+34 698 76 54 32"
T0 = datetime(2026, 1, 5, 10, tzinfo=UTC)


def day(n: float) -> datetime:
    return T0 + timedelta(days=n)


class IdentityLifecycleContract(IdentityStoreFixtures):
    @pytest.fixture
    def at(self, identity: IdentityResolver, tenant: str) -> Callable[..., ResolvedCustomer]:
        """Resolve a touchpoint that happened on day `when` after T0."""

        def resolve(when: float, **ref: Any) -> ResolvedCustomer:
            event_id = str(uuid.uuid4())
            return identity.resolve(tenant, CustomerRef(**ref), event_id, "http", at=day(when))

        return resolve

    def test_a_number_its_holder_replaced_passes_to_its_next_owner_with_the_reason_recorded(
        self, identity: IdentityResolver, tenant: str, at: Any
    ) -> None:
        ana = at(0, email="ana@x.io", phone=OLD_MOBILE).customer_id
        assert at(10, phone=OLD_MOBILE).customer_id == ana  # a call: still hers
        assert at(20, email="ana@x.io", phone=NEW_MOBILE).customer_id == ana  # her new number
        call = at(200, phone=OLD_MOBILE)  # months later: someone else has the number now
        assert call.created and call.customer_id != ana
        held = {(i.kind, i.value) for i in identity.identities(tenant, ana).identities}
        assert ("phone", "+34698765432") in held and ("phone", "+34617345678") not in held
        unlinked = [e for e in identity.history(tenant, ana) if e.action == "identifier_unlinked"]
        assert [(e.details["value"], e.details["actor"]) for e in unlinked] == [
            ("+34617345678", "system:identity-resolver")
        ]
        assert unlinked[0].details["reason"].startswith("reassigned")
        assert at(201, phone=OLD_MOBILE).customer_id == call.customer_id  # the new owner's now
        assert at(202, email="bob@x.io", phone=OLD_MOBILE).customer_id == call.customer_id

    def test_a_second_email_next_to_a_number_in_use_joins_its_holder(self, at: Any) -> None:
        ana = at(0, email="ana@x.io", phone=OLD_MOBILE).customer_id
        assert at(20, email="ana.work@corp.es", phone=OLD_MOBILE).customer_id == ana
        assert at(21, email="ana.work@corp.es").customer_id == ana

    def test_a_number_unused_for_months_does_not_join_two_emails(self, at: Any) -> None:
        ana = at(0, email="ana@x.io", phone=OLD_MOBILE).customer_id
        other = at(150, email="bob@x.io", phone=OLD_MOBILE)
        assert other.customer_id != ana and other.proposed  # a reviewer decides

    def test_a_device_profile_joins_its_user_and_leaves_when_another_person_uses_it(
        self, identity: IdentityResolver, tenant: str, at: Any
    ) -> None:
        ana = at(0, email="ana@x.io", anonymous_id="tablet-1").customer_id
        visit = at(1, anonymous_id="tablet-1")
        profile = visit.home_id
        assert visit.created and profile != ana and visit.customer_id == ana
        assert identity.members(tenant, ana) == [ana, profile]
        assert at(2, anonymous_id="tablet-1").home_id == profile
        bob = at(3, email="bob@x.io").customer_id
        shared = at(4, email="bob@x.io", anonymous_id="tablet-1")
        assert shared.customer_id == bob and not shared.merged
        assert identity.members(tenant, ana) == [ana]  # the tablet's visits are nobody's now
        assert identity.canonical_id(tenant, profile) == profile
        split = [e for e in identity.history(tenant, profile) if e.action == "restored_by_split"]
        assert "anonymous_id=tablet-1 is used by several customers" in split[0].details["reason"]
        later = at(5, anonymous_id="tablet-1")
        assert later.customer_id not in (ana, bob) and later.linked == ()


class TestSqliteIdentityLifecycle(IdentityLifecycleContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> IdentityStore:
        return SqliteIdentityStore(tmp_path / "identity.sqlite")


class TestSealedSqliteIdentityLifecycle(IdentityLifecycleContract):
    """The same lifecycle with every stored event sealed (CEM_SEAL_PERSONAL_DATA)."""

    @pytest.fixture
    def store(self, tmp_path: Path) -> IdentityStore:
        return SqliteIdentityStore(tmp_path / "identity.sqlite", cipher_key=SEALING_KEY)
