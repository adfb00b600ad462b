"""A webhook dead letter replayed after an erasure (services/ingest/channels/replay.py).

A letter kept before a customer's erasure holds the erased person's delivery (name, phone,
message). Replayed once its mapping is fixed, it was published as new events, sealed under the
key a returning subject got since and filed under a new customer: readable. Now, with a sealing
publisher, a letter is published only when no key of a subject it names was destroyed at or
after it arrived; otherwise it is settled `erased` with its body cleared. On the memory and
SQLite vaults (the PostgreSQL ones share the contract: tests/contract/test_key_vault*.py).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from cem.adapters.memory_channels import MemoryChannelStore
from cem.adapters.memory_keys import MemoryKeyStore
from cem.adapters.memory_log import MemoryLog, MemoryPublisher
from cem.adapters.memory_vault import MemoryKeyVault
from cem.adapters.sqlite_vault import SqliteKeyVault
from cem.sealing import SealingPublisher, subject_function
from kernel.channels import ChannelStore, NewDeadLetter
from kernel.clock import FixedClock
from kernel.ports import TOUCHPOINTS_TOPIC, KeyVault, Outgoing, Publisher, PublishStatus
from kernel.sealing import EventOpener, EventSealer, KeyCache, maybe_sealed
from kernel.secrets import SecretBox, new_key_text, platform_key
from kernel.settings import IngestSettings
from kernel.shredding import subject_key_id, tenant_keys
from services.identity.rules import IdentityRules, TenantRules
from services.ingest.app import create_app
from services.ingest.channels.replay import ReplayReport, replay_webhooks
from tests.events import BUCKET_KEY

PLATFORM_KEY = b"p" * 32
RULES = IdentityRules(default=TenantRules(phone_region="ES"))
TENANT = "acme"
FIXTURE = json.loads(
    (
        Path(__file__).parents[1] / "fixtures" / "channels" / "shopify" / "order_online.json"
    ).read_text()
)
RECEIVED = datetime.fromisoformat(FIXTURE["received_at"])
# The order's buyer: the shop's customer id is the subject its events are sealed under; the
# phone is another identifier of the same person (the email is example.com's: a placeholder).
SHOP_CUSTOMER = "external:shopify:115310627314723954"
PHONE = "phone:+34600333444"


def key_id(subject: str) -> str:
    return subject_key_id(tenant_keys(PLATFORM_KEY, TENANT), subject)


class Deployment:
    """A channel store with one Shopify channel, a vault, and the log a publisher writes."""

    def __init__(self, vault: KeyVault, clock: FixedClock, sealing: bool = True) -> None:
        self.vault, self.clock = vault, clock
        self.store: ChannelStore = MemoryChannelStore(
            SecretBox(platform_key(Path("/nonexistent"), new_key_text()))
        )
        self.channel = self.store.add(TENANT, "shopify", FIXTURE["secret"], settings={})
        self.log = MemoryLog(partitions=2)
        inner = MemoryPublisher(self.log)
        self.sealer = EventSealer(vault, PLATFORM_KEY, subject_function(lambda: RULES), KeyCache())
        self.publisher: Publisher = (
            SealingPublisher(inner, self.sealer, vault) if sealing else inner
        )

    def keep(self, received_at: datetime, order: int = 0) -> str:
        """The order kept as a dead letter when it arrived (its mapping since fixed); `order`:
        another order of the same buyer, the fixture's id plus it (a body of its own)."""
        body = json.loads(FIXTURE["body"])
        body["id"] += order
        return self.store.keep_dead_letter(
            NewDeadLetter(TENANT, "shopify", self.channel.channel_id, received_at,
                          FIXTURE["url"], FIXTURE["headers"], json.dumps(body).encode(),
                          "unmappable", [{"path": "customer", "code": "c", "message": "m"}])
        )  # fmt: skip

    def erase(self, at: datetime, *subjects: str) -> None:
        """An erasure's destruction of the subjects' keys at `at` (`cem.erasure`)."""
        self.vault.get_or_create_many(TENANT, [key_id(s) for s in subjects])
        self.clock.at = at
        self.vault.destroy(TENANT, [key_id(s) for s in subjects])

    def replay(self) -> ReplayReport:
        return replay_webhooks(self.store, self.publisher, bucket_key=BUCKET_KEY)

    def published(self) -> list[bytes]:
        return [r.value for r in self.log.poll(TOUCHPOINTS_TOPIC, f"g{id(self)}", 1000, 0)]

    def letter(self, dead_letter_id: str) -> Any:
        [found] = [
            d for d in self.store.dead_letters(status=None) if d.dead_letter_id == dead_letter_id
        ]
        return found


VaultMaker = Callable[[Path, FixedClock], KeyVault]


def _sqlite(tmp_path: Path, clock: FixedClock) -> KeyVault:
    return SqliteKeyVault(tmp_path / "key_vault.sqlite", PLATFORM_KEY, clock)


def _memory(tmp_path: Path, clock: FixedClock) -> KeyVault:
    return MemoryKeyVault(PLATFORM_KEY, clock)


@pytest.fixture(params=[_memory, _sqlite], ids=["memory", "sqlite"])
def deployment(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Deployment]:
    clock = FixedClock(RECEIVED)
    vault = request.param(tmp_path, clock)
    yield Deployment(vault, clock)
    vault.close()


def forget_time(vault: KeyVault, subject: str) -> None:
    """The tombstone as a vault of an earlier release kept it: without a time."""
    if isinstance(vault, MemoryKeyVault):
        del vault.destroyed_at[(TENANT, key_id(subject))]
        return
    assert isinstance(vault, SqliteKeyVault)
    with sqlite3.connect(vault.path) as conn:
        conn.execute("DELETE FROM destroyed_times WHERE key_id = ?", (key_id(subject),))
    conn.close()


def test_a_letter_received_before_the_erasure_is_not_published_and_its_body_is_cleared(
    deployment: Deployment,
) -> None:
    kept = deployment.keep(RECEIVED)
    deployment.erase(RECEIVED + timedelta(days=1), SHOP_CUSTOMER, PHONE)
    deployment.vault.get_or_create(TENANT, key_id(SHOP_CUSTOMER))  # the buyer came back since
    report = deployment.replay()
    assert (report.restored, report.duplicates, report.still_failing, report.erased) == (
        0, 0, 0, 1,
    )  # fmt: skip
    assert deployment.published() == []
    letter = deployment.letter(kept)
    assert (letter.status, letter.reason, letter.body, letter.violations) == (
        "erased", "erased", b"", [],
    )  # fmt: skip
    assert deployment.store.dead_letters() == []  # settled: never replayed again
    again = deployment.replay()
    assert (again.restored, again.erased) == (0, 0)
    assert report.line("webhook dead letters").endswith(", 0 still failing, 1 erased")


def test_the_erasure_of_an_identifier_other_than_the_sealing_subject_refuses_the_letter_too(
    deployment: Deployment,
) -> None:
    # The shop's customer id was never seen by identity (the order never made it in), so its
    # key was never destroyed; the phone the erased person was known by was.
    kept = deployment.keep(RECEIVED)
    deployment.erase(RECEIVED + timedelta(hours=1), PHONE)
    assert deployment.replay().erased == 1
    assert deployment.published() == [] and deployment.letter(kept).body == b""


def test_an_erasure_at_the_very_time_the_letter_arrived_refuses_it(
    deployment: Deployment,
) -> None:
    deployment.keep(RECEIVED)
    deployment.erase(RECEIVED, SHOP_CUSTOMER)
    assert deployment.replay().erased == 1


def test_a_letter_received_after_the_erasure_replays_under_the_returning_subjects_key(
    deployment: Deployment,
) -> None:
    deployment.erase(RECEIVED - timedelta(days=1), SHOP_CUSTOMER, PHONE)
    kept = deployment.keep(RECEIVED)  # the buyer came back after the erasure
    report = deployment.replay()
    assert (report.restored, report.erased) == (1, 0)
    [value] = deployment.published()
    assert maybe_sealed(value)
    opened = EventOpener(deployment.vault, KeyCache()).open_event(orjson.loads(value))
    assert opened["customer"]["phone"] == "+34600333444" and "erased" not in opened
    letter = deployment.letter(kept)
    assert letter.status == "replayed" and letter.body == FIXTURE["body"].encode()


@pytest.mark.parametrize(
    ("after", "erased"), [(timedelta(seconds=50), 1), (timedelta(minutes=2), 0)]
)
def test_a_letter_received_within_a_minute_after_the_erasure_is_refused_too(
    deployment: Deployment, after: timedelta, erased: int
) -> None:
    # The letter's time is the ingest host's clock, the destruction's the vault's (PostgreSQL's
    # when distributed): a host ahead of it by seconds stamped the erased person's letter
    # "after" (a review). Within CLOCK_MARGIN the letter is read as hers.
    deployment.erase(RECEIVED - after, SHOP_CUSTOMER, PHONE)
    kept = deployment.keep(RECEIVED)
    assert deployment.replay().erased == erased
    assert deployment.letter(kept).status == ("erased" if erased else "replayed")


def test_a_tombstone_kept_before_times_were_refuses_the_letter(deployment: Deployment) -> None:
    # When the key was destroyed is unknown: read as after every arrival (the letter may well
    # be the erased person's).
    deployment.erase(RECEIVED - timedelta(days=30), SHOP_CUSTOMER)
    forget_time(deployment.vault, SHOP_CUSTOMER)
    kept = deployment.keep(RECEIVED)
    assert deployment.replay().erased == 1
    assert deployment.published() == [] and deployment.letter(kept).status == "erased"


def test_other_letters_of_the_run_replay_as_before(deployment: Deployment) -> None:
    before = deployment.keep(RECEIVED)
    deployment.erase(RECEIVED + timedelta(days=1), SHOP_CUSTOMER, PHONE)
    # The same order delivered again after the erasure (the buyer came back): another body.
    after = deployment.keep(RECEIVED + timedelta(days=2), order=1)
    report = deployment.replay()
    assert (report.restored, report.erased) == (1, 1)
    assert deployment.letter(before).status == "erased"
    assert deployment.letter(after).status == "replayed"


def test_an_erasure_filed_while_the_replay_runs_refuses_the_letters_checked_after_it(
    deployment: Deployment,
) -> None:
    # Two orders of the same buyer, both received before the erasure; the erasure is filed
    # after the first was published (a long replay from the shell). The first's events are
    # sealed under the key destroyed since (unreadable); the second must not be published
    # under the new key the sealer makes once it sees the destruction (a review: the check
    # kept each id's time from the first letter, "never destroyed", and let it through).
    first = deployment.keep(RECEIVED)
    second = deployment.keep(RECEIVED + timedelta(seconds=1), order=1)
    assert isinstance(deployment.publisher, SealingPublisher)
    log_publisher = deployment.publisher.inner

    class ErasureFiledAfterThePublication:
        def publish(self, events: Sequence[Outgoing]) -> list[PublishStatus]:
            statuses = log_publisher.publish(events)
            deployment.erase(RECEIVED + timedelta(hours=1), SHOP_CUSTOMER, PHONE)
            return statuses

    deployment.publisher.inner = ErasureFiledAfterThePublication()
    report = deployment.replay()
    assert (report.restored, report.erased) == (1, 1)
    assert deployment.letter(first).status == "replayed"
    assert deployment.letter(second).status == "erased" and deployment.letter(second).body == b""
    assert len(deployment.published()) == 1


def test_a_letter_that_still_maps_to_nothing_keeps_its_body(tmp_path: Path) -> None:
    # It names no subject until it maps: left pending, until retention ends it.
    clock = FixedClock(RECEIVED)
    deployment = Deployment(MemoryKeyVault(PLATFORM_KEY, clock), clock)
    kept = deployment.store.keep_dead_letter(
        NewDeadLetter(TENANT, "shopify", deployment.channel.channel_id, RECEIVED, FIXTURE["url"],
                      FIXTURE["headers"], b"not json", "mapping_failed")
    )  # fmt: skip
    deployment.erase(RECEIVED + timedelta(days=1), SHOP_CUSTOMER, PHONE)
    report = deployment.replay()
    assert (report.still_failing, report.erased) == (1, 0)
    assert deployment.letter(kept).body == b"not json"


def test_without_sealing_the_replay_is_unchanged(tmp_path: Path) -> None:
    # A publisher in clear: the log holds every event in clear, which an erasure cannot make
    # unreadable either; the vault is not asked.
    clock = FixedClock(RECEIVED)
    vault = MemoryKeyVault(PLATFORM_KEY, clock)
    deployment = Deployment(vault, clock, sealing=False)
    kept = deployment.keep(RECEIVED)
    deployment.erase(RECEIVED + timedelta(days=1), SHOP_CUSTOMER, PHONE)
    report = deployment.replay()
    assert (report.restored, report.erased) == (1, 0)
    [value] = deployment.published()
    assert not maybe_sealed(value)
    assert deployment.letter(kept).status == "replayed"


def test_the_http_replay_answers_how_many_were_erased_and_the_list_shows_them() -> None:
    clock = FixedClock(RECEIVED)
    deployment = Deployment(MemoryKeyVault(PLATFORM_KEY, clock), clock)
    keys = MemoryKeyStore()
    app = create_app(deployment.publisher, keys, IngestSettings(), clock,
                     channels=deployment.store, bucket_key=BUCKET_KEY)  # fmt: skip
    client = TestClient(app)
    admin = {"Authorization": f"Bearer {keys.create(TENANT, 'admin')[1]}"}
    kept = deployment.keep(RECEIVED)
    deployment.erase(RECEIVED + timedelta(days=1), SHOP_CUSTOMER)
    answer = client.post("/v1/channels/dead-letters/replay", headers=admin, json={})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"restored": 0, "duplicates": 0, "still_failing": 0, "erased": 1,
                             "unrecorded": 0, "next_since": None}  # fmt: skip
    listed = client.get(
        "/v1/channels/dead-letters", headers=admin, params={"status": "erased"}
    ).json()["dead_letters"]
    assert [(d["dead_letter_id"], d["reason"], d["bytes"]) for d in listed] == [(kept, "erased", 0)]
    schema = client.get("/openapi.json").json()["components"]["schemas"]["ReplayOut"]
    assert set(schema["required"]) == {
        "restored",
        "duplicates",
        "still_failing",
        "erased",
        "unrecorded",
        "next_since",
    }
