"""The ChannelStore contract, on the in-memory twin, SQLite (embedded) and PostgreSQL (distributed).

What every adapter must show: channels per tenant, secrets sealed at rest and only opened for
their own channel, removal, and webhook dead letters that keep their bytes and filter as asked.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cem.adapters.memory_channels import MemoryChannelStore
from cem.adapters.sqlite_channels import SqliteChannelStore
from kernel.channels import CHANNEL_ID, ChannelStore, NewDeadLetter
from kernel.secrets import SecretBox, SecretKeyError, new_key_text, platform_key

SECRET = "whsec-" + "s3cr3t" * 4


def box() -> SecretBox:
    return SecretBox(platform_key(Path("/nonexistent"), env_value=new_key_text()))


def letter(
    tenant: str, provider: str = "shopify", at: datetime | None = None, delivery: int = 1
) -> NewDeadLetter:
    """A dead letter of `delivery` (each its own body, as each delivery a provider sends)."""
    return NewDeadLetter(
        tenant_id=tenant,
        provider=provider,
        channel_id="ch_" + "x" * 16,
        received_at=at or datetime(2026, 11, 2, 10, 0, tzinfo=UTC),
        url="http://cem.example/v1/webhooks/shopify/ch_xxxxxxxxxxxxxxxx",
        headers={"Content-Type": "application/json", "Authorization": "Basic c2VjcmV0"},
        body=b'{"id": %d, "\xc3\xb1": "\x00"}' % delivery,
        reason="unmappable",
        violations=[{"code": "missing", "message": "no customer", "path": "customer"}],
    )


class ChannelStoreContract:
    def make_store(self, tmp_path: Path) -> ChannelStore:
        raise NotImplementedError

    def stored_bytes(self, store: ChannelStore) -> bytes:
        """Everything the store persists, for the 'never in clear' check (b'' for the twin)."""
        return b""

    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[ChannelStore]:
        made = self.make_store(tmp_path)
        yield made
        made.close()

    @pytest.fixture
    def tenant(self) -> str:
        return f"acme-{uuid.uuid4().hex[:8]}"

    def test_add_get_and_list_without_the_secret(self, store: ChannelStore, tenant: str) -> None:
        added = store.add(tenant, "typeform", SECRET, name="nps", settings={"fields": {"a": 1}})
        assert CHANNEL_ID.match(added.channel_id)
        assert store.get(added.channel_id) == added
        assert [c.channel_id for c in store.list(tenant)] == [added.channel_id]
        assert SECRET not in str(added.public())
        assert added.public()["settings"] == {"fields": {"a": 1}}

    def test_secret_opens_only_for_its_channel_and_is_sealed_at_rest(
        self, store: ChannelStore, tenant: str
    ) -> None:
        added = store.add(tenant, "shopify", SECRET)
        assert store.secret(added.channel_id) == SECRET
        assert store.secret("ch_" + "n" * 16) is None
        assert SECRET.encode() not in self.stored_bytes(store)

    def test_list_is_per_tenant_in_creation_order(self, store: ChannelStore, tenant: str) -> None:
        first = store.add(tenant, "shopify", SECRET)
        second = store.add(tenant, "typeform", SECRET)
        store.add(tenant + "-other", "shopify", SECRET)
        assert [c.channel_id for c in store.list(tenant)] == [first.channel_id, second.channel_id]

    def test_remove_only_the_tenants_own_channel(self, store: ChannelStore, tenant: str) -> None:
        added = store.add(tenant, "shopify", SECRET)
        assert not store.remove(tenant + "-other", added.channel_id)
        assert store.remove(tenant, added.channel_id)
        assert store.get(added.channel_id) is None and store.secret(added.channel_id) is None
        assert not store.remove(tenant, added.channel_id)

    def test_update_settings_of_the_tenants_own_channel(
        self, store: ChannelStore, tenant: str
    ) -> None:
        added = store.add(tenant, "typeform", SECRET, settings={"questions": {}})
        fixed = {"questions": {"nps_ref": "nps"}}
        assert store.update_settings(tenant + "-other", added.channel_id, fixed) is None
        updated = store.update_settings(tenant, added.channel_id, fixed)
        assert updated is not None and updated.settings == fixed
        assert store.get(added.channel_id) == updated
        assert store.secret(added.channel_id) == SECRET

    def test_refuses_a_channel_without_secret(self, store: ChannelStore, tenant: str) -> None:
        with pytest.raises(ValueError, match="secret"):
            store.add(tenant, "shopify", "")

    def test_dead_letters_keep_bytes_and_drop_private_headers(
        self, store: ChannelStore, tenant: str
    ) -> None:
        letter_id = store.keep_dead_letter(letter(tenant))
        [kept] = store.dead_letters(tenant_id=tenant)
        assert kept.dead_letter_id == letter_id and kept.status == "pending"
        assert kept.body == letter(tenant).body
        assert kept.violations == letter(tenant).violations
        assert kept.headers == {"content-type": "application/json"}
        assert kept.received_at == letter(tenant).received_at

    def test_a_dead_letters_body_is_never_stored_in_clear(
        self, store: ChannelStore, tenant: str
    ) -> None:
        # A delivery holds what the customer sent (a phone, a message); found by a review in
        # channels.sqlite as sent, with sealing on.
        body = b"From=%2B34617345912&Body=quokkaberry+" + tenant.encode()
        kept = replace(letter(tenant), body=body)
        store.keep_dead_letter(kept)
        [read] = store.dead_letters(tenant_id=tenant)
        assert read.body == body  # opened for a replay
        stored = self.stored_bytes(store)
        assert b"quokkaberry" not in stored and b"617345912" not in stored

    def test_a_delivery_redelivered_is_one_dead_letter(
        self, store: ChannelStore, tenant: str
    ) -> None:
        # A provider redelivering the same delivery added a letter each time (found by a
        # review); another delivery is another letter.
        first = store.keep_dead_letter(letter(tenant))
        later = datetime(2026, 11, 2, 10, 5, tzinfo=UTC)
        assert store.keep_dead_letter(letter(tenant, at=later)) == first
        other = store.keep_dead_letter(letter(tenant, delivery=2))
        kept = [d.dead_letter_id for d in store.dead_letters(tenant_id=tenant)]
        assert sorted(kept) == sorted([first, other]) and first != other

    def test_retention_counts_then_ends_a_tenants_dead_letters_received_before_its_cutoff(
        self, store: ChannelStore, tenant: str
    ) -> None:
        # A letter keeps a delivery's raw body (a phone, a message): retention ended every raw
        # event but these (found by a review).
        early = datetime(2026, 11, 1, tzinfo=UTC)
        old = store.keep_dead_letter(letter(tenant, at=early))
        recent = store.keep_dead_letter(letter(tenant, at=early + timedelta(days=40), delivery=2))
        other = f"{tenant}-other"
        store.keep_dead_letter(letter(other, at=early))
        cutoff = early + timedelta(days=30)
        assert store.tenant_dead_letters(tenant, cutoff, delete=False) == 1
        assert len(store.dead_letters(tenant_id=tenant, status=None)) == 2  # counted, kept
        assert store.tenant_dead_letters(tenant, cutoff, delete=True) == 1
        kept = [d.dead_letter_id for d in store.dead_letters(tenant_id=tenant, status=None)]
        assert kept == [recent] and old not in kept
        assert len(store.dead_letters(tenant_id=other, status=None)) == 1  # another tenant's

    def test_dead_letter_filters(self, store: ChannelStore, tenant: str) -> None:
        early = datetime(2026, 11, 1, tzinfo=UTC)
        store.keep_dead_letter(letter(tenant, "shopify", early))
        store.keep_dead_letter(letter(tenant, "typeform", early + timedelta(days=2), delivery=2))
        assert [d.provider for d in store.dead_letters(tenant_id=tenant)] == [
            "shopify",
            "typeform",
        ]
        assert [d.provider for d in store.dead_letters(tenant_id=tenant, provider="typeform")] == [
            "typeform"
        ]
        since = early + timedelta(days=1)
        assert len(store.dead_letters(tenant_id=tenant, since=since)) == 1
        # The oldest first, as many as asked (an HTTP page reads no more bodies than it shows).
        assert [d.provider for d in store.dead_letters(tenant_id=tenant, limit=1)] == ["shopify"]
        assert len(store.dead_letters(tenant_id=tenant, limit=5)) == 2

    def test_settling_a_dead_letter(self, store: ChannelStore, tenant: str) -> None:
        failing = store.keep_dead_letter(letter(tenant, delivery=1))
        done = store.keep_dead_letter(letter(tenant, delivery=2))
        new = [{"code": "c", "message": "m", "path": "p"}]
        store.settle_dead_letter(failing, replayed=False, reason="still", violations=new)
        store.settle_dead_letter(done, replayed=True, reason="", violations=[])
        [pending] = store.dead_letters(tenant_id=tenant)
        assert (pending.dead_letter_id, pending.reason, pending.violations) == (
            failing,
            "still",
            new,
        )
        assert pending.attempts == 1
        [replayed] = store.dead_letters(tenant_id=tenant, status="replayed")
        assert replayed.dead_letter_id == done

    def test_an_erased_dead_letter_keeps_no_body_and_is_never_pending_again(
        self, store: ChannelStore, tenant: str
    ) -> None:
        # A letter that arrived before its subject's erasure (the replay's check): settled for
        # good, the erased person's delivery cleared, the row kept (what it was, and a
        # redelivery of the same body known).
        kept = letter(tenant, delivery=1)
        erased = store.keep_dead_letter(kept)
        other = store.keep_dead_letter(letter(tenant, delivery=2))
        store.erase_dead_letter(erased)
        assert [d.dead_letter_id for d in store.dead_letters(tenant_id=tenant)] == [other]
        [gone] = store.dead_letters(tenant_id=tenant, status="erased")
        assert (gone.dead_letter_id, gone.status, gone.reason) == (erased, "erased", "erased")
        assert (gone.body, gone.violations, gone.attempts) == (b"", [], 1)
        assert (gone.received_at, gone.channel_id, gone.provider) == (
            kept.received_at, kept.channel_id, kept.provider,
        )  # fmt: skip
        assert store.keep_dead_letter(kept) == erased  # redelivered: not pending again
        assert [d.dead_letter_id for d in store.dead_letters(tenant_id=tenant)] == [other]
        assert len(store.dead_letters(tenant_id=tenant, status=None)) == 2
        [still] = store.dead_letters(tenant_id=tenant)
        assert still.body == letter(tenant, delivery=2).body  # the others keep theirs

    @pytest.mark.parametrize("replayed", [True, False])
    def test_a_letter_erased_meanwhile_is_not_settled_again(
        self, store: ChannelStore, tenant: str, replayed: bool
    ) -> None:
        # Two replays: one read the letter, the other erased it, then the first settles what it
        # found (a review): the erased letter takes back no violations and is never "replayed".
        erased = store.keep_dead_letter(letter(tenant, delivery=1))
        store.erase_dead_letter(erased)
        found = [{"code": "c", "message": "quotes the body", "path": "p"}]
        store.settle_dead_letter(erased, replayed=replayed, reason="still", violations=found)
        [gone] = store.dead_letters(tenant_id=tenant, status=None)
        assert (gone.status, gone.reason, gone.violations, gone.body) == (
            "erased",
            "erased",
            [],
            b"",
        )


class TestMemoryChannelStore(ChannelStoreContract):
    def make_store(self, tmp_path: Path) -> ChannelStore:
        return MemoryChannelStore(box())


class TestSqliteChannelStore(ChannelStoreContract):
    def make_store(self, tmp_path: Path) -> ChannelStore:
        self.path = tmp_path / "channels.sqlite"
        return SqliteChannelStore(self.path, SecretBox(platform_key(tmp_path, env_value="")))

    def stored_bytes(self, store: ChannelStore) -> bytes:
        return b"".join(p.read_bytes() for p in self.path.parent.glob("channels.sqlite*"))

    def test_a_letter_that_does_not_open_leaves_the_others_readable(self, tmp_path: Path) -> None:
        # One letter sealed under another platform key (a key changed) blocked every listing and
        # replay of every tenant (found by a review): it is left as stored, the others open.
        store = self.make_store(tmp_path)
        store.keep_dead_letter(letter("acme"))
        store.close()
        other = SqliteChannelStore(self.path, box())
        other.keep_dead_letter(letter("acme", delivery=2))
        bodies = {d.body for d in other.dead_letters(tenant_id="acme")}
        assert letter("acme", delivery=2).body in bodies and len(bodies) == 2
        assert letter("acme").body not in bodies  # still sealed: nothing opened it wrongly
        other.close()

    def test_another_platform_key_cannot_open_a_secret(self, tmp_path: Path) -> None:
        store = self.make_store(tmp_path)
        added = store.add("acme", "shopify", SECRET)
        store.close()
        other = SqliteChannelStore(self.path, box())
        with pytest.raises(SecretKeyError, match="platform key"):
            other.secret(added.channel_id)
        other.close()

    def test_the_key_file_is_owner_only(self, tmp_path: Path) -> None:
        platform_key(tmp_path, env_value="")
        assert (tmp_path / "secret.key").stat().st_mode & 0o777 == 0o600
