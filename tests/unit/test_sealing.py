"""Personal data sealed on its way into the log and opened on its way out (`kernel.sealing`,
`cem.sealing`): what the log holds, what the readers get back, and which key seals what."""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from cem.adapters.memory_log import MemoryLog, MemoryPublisher
from cem.adapters.memory_vault import MemoryKeyVault
from cem.adapters.sqlite_log import SqliteLog, SqlitePublisher
from cem.adapters.sqlite_vault import VAULT_FILE
from cem.dead_letter_replay import mode_publisher
from cem.direct_ingest import RecordDecoder
from cem.record_seal import SEAL_HEADER
from cem.record_seal import sealed as sealed_record
from cem.sealing import SealingPublisher, subject_function
from kernel.decoding import SharedDecoder
from kernel.ports import (
    TOUCHPOINTS_TOPIC,
    Consumed,
    LogUnavailable,
    Outgoing,
    PublishStatus,
    Record,
    StorageFull,
)
from kernel.processing import decode_batch
from kernel.sealing import EventOpener, EventSealer, KeyCache, decode_opened, maybe_sealed
from kernel.settings import IngestSettings
from kernel.shredding import (
    ERASED,
    UNATTRIBUTED,
    ShreddingError,
    sealed_fingerprint,
    sealed_key_id,
)
from schemas.envelope import Event
from schemas.validate import InvalidEvent, decode
from services.identity.rules import IdentityRules, TenantRules
from services.ingest.batch import prepare
from tests.events import event

PLATFORM_KEY = b"p" * 32
TENANT = "acme"
AT = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
RULES = IdentityRules(default=TenantRules(phone_region="ES"))
SEAL_KEY = b"the platform's seal key"
EMAIL, PHONE, WORDS = "ana.ruiz@gmail.com", "617 345 678", "mi pedido 4471 no ha llegado"


def stored(body: dict[str, Any]) -> bytes:
    """The bytes the ingest would publish for `body`."""
    prepared = prepare([body], TENANT, AT, 64 * 1024, bucket_key=b"b" * 32)
    assert not prepared.rejected, prepared.rejected
    return prepared.outgoing[0].record.value


def outgoing(body: dict[str, Any]) -> list[Outgoing]:
    """What the ingest hands its publisher for `body` (prepared afresh, as for a retry)."""
    return prepare([body], TENANT, AT, 64 * 1024, bucket_key=b"b" * 32).outgoing


def consumed(record: Record) -> Consumed:
    return Consumed(TOUCHPOINTS_TOPIC, 0, 7, record.key, record.value, record.headers)


def message(customer: dict[str, Any], text: str = WORDS) -> dict[str, Any]:
    return event("message.received", "chat", customer, AT, {"text": text}, touchpoint="chat_web")


def sealer_and_opener() -> tuple[EventSealer, EventOpener, MemoryKeyVault]:
    vault = MemoryKeyVault(PLATFORM_KEY)
    sealer = EventSealer(vault, PLATFORM_KEY, subject_function(lambda: RULES), KeyCache())
    return sealer, EventOpener(vault, KeyCache()), vault


def test_the_log_holds_no_identifier_or_text_and_the_reader_gets_the_same_event() -> None:
    sealer, opener, _ = sealer_and_opener()
    clear = stored(message({"email": EMAIL, "phone": PHONE, "anonymous_id": "dev-77"}))
    sealed = sealer.seal_value(clear)
    # Each in forms no ciphertext or id holds by chance: three digits (`617`) turn up in
    # base64 and in uuids once in a few hundred records, which failed a CI run.
    secrets = (EMAIL, PHONE, "617345678", "+34617345678", "dev-77", "pedido", "4471 no ha")
    for secret in secrets:
        assert secret.encode() not in sealed, secret
    as_stored = orjson.loads(sealed)
    assert (as_stored["type"], as_stored["channel"], as_stored["customer"]) == (
        "message.received",
        "chat",
        {},
    )
    assert decode_opened(sealed, opener) == decode(clear)


def test_two_spellings_of_one_phone_are_one_subject_and_one_key() -> None:
    sealer, _, vault = sealer_and_opener()
    national = orjson.loads(sealer.seal_value(stored(message({"phone": PHONE}))))
    international = orjson.loads(sealer.seal_value(stored(message({"phone": "+34617345678"}))))
    assert sealed_key_id(national) == sealed_key_id(international)
    subject = subject_function(lambda: RULES)
    assert subject(TENANT, {"phone": PHONE}) == "phone:+34617345678"
    # The strongest identifier is the subject (an email over a phone and a device), as identity
    # normalises it (Gmail ignores dots).
    assert subject(TENANT, {"anonymous_id": "d", "phone": PHONE, "email": EMAIL}) == (
        "email:anaruiz@gmail.com"
    )


def test_an_event_whose_only_identifier_is_a_placeholder_is_sealed_unattributed() -> None:
    subject = subject_function(lambda: RULES)
    assert subject(TENANT, {"email": "sin@email.com"}) == UNATTRIBUTED


def test_a_destroyed_key_opens_to_the_anonymous_rest_and_never_to_another_event() -> None:
    sealer, opener, vault = sealer_and_opener()
    sealed = orjson.loads(sealer.seal_value(stored(message({"email": EMAIL}))))
    key_id = sealed_key_id(sealed)
    assert key_id is not None
    # A blob copied onto another event does not open.
    other = orjson.loads(sealer.seal_value(stored(message({"email": EMAIL}))))
    with pytest.raises(ShreddingError):
        opener.open_event({**other, "sealed": sealed["sealed"]})
    # The cache of a process that erases must be dropped with the key (step 4 does both).
    opener.cache.drop(TENANT, [key_id])
    assert vault.destroy(TENANT, [key_id]) == 1
    erased = opener.open_event(sealed)
    assert erased[ERASED] is True
    assert erased["customer"] == {} and "text" not in erased["payload"]


def test_the_publisher_seals_and_a_retry_is_still_a_duplicate() -> None:
    sealer, opener, vault = sealer_and_opener()
    log = MemoryLog(partitions=2)
    publisher = SealingPublisher(MemoryPublisher(log), sealer, vault)
    body = message({"email": EMAIL})
    outgoing = prepare([body], TENANT, AT, 64 * 1024, bucket_key=b"b" * 32).outgoing
    assert publisher.publish(outgoing) == [PublishStatus.accepted]
    # A client's retry of the same body: sealed again (another nonce), still the same event.
    again = prepare([body], TENANT, AT, 64 * 1024, bucket_key=b"b" * 32).outgoing
    assert publisher.publish(again) == [PublishStatus.duplicate]
    records = log.poll(TOUCHPOINTS_TOPIC, "reader", 10, 0.1)
    assert len(records) == 1
    assert EMAIL.encode() not in records[0].value and WORDS.encode() not in records[0].value
    # The shared decoder of the embedded readers opens it.
    event_read = SharedDecoder(opener=opener)(records[0])
    assert (event_read.customer.email, event_read.payload["text"]) == (EMAIL, WORDS)


def test_a_clear_event_with_a_member_named_sealed_is_read_as_it_is() -> None:
    _, opener, _ = sealer_and_opener()
    body = message({"email": EMAIL})
    body["payload"]["attributes"] = {"sealed": "yes"}  # a text's quotes are escaped; a key's not
    clear = stored(body)
    assert maybe_sealed(clear)
    assert decode_opened(clear, opener) == decode(clear)


def test_the_key_cache_keeps_the_most_recently_used() -> None:
    cache = KeyCache(size=2)
    cache.put(TENANT, "a", b"1")
    cache.put(TENANT, "b", b"2")
    assert cache.get(TENANT, "a") == b"1"  # a is now the most recent
    cache.put(TENANT, "c", b"3")
    assert (cache.get(TENANT, "a"), cache.get(TENANT, "b"), cache.get(TENANT, "c")) == (
        b"1",
        None,
        b"3",
    )


def test_the_key_cache_asks_the_vault_again_after_its_time_to_live() -> None:
    # Another process may have erased the subject: a key is used for `ttl_s` at most.
    now = [100.0]
    cache = KeyCache(ttl_s=300.0, clock=lambda: now[0])
    cache.put(TENANT, "a", b"1")
    now[0] = 399.0
    assert cache.get(TENANT, "a") == b"1"
    now[0] = 400.0
    assert cache.get(TENANT, "a") is None


def test_the_sqlite_publisher_judges_sealed_bytes_by_the_clear_bodys_fingerprint(
    tmp_path: Path,
) -> None:
    # Each sealing draws a fresh nonce, so the stored bytes of a retry always differ: only the
    # clear body's fingerprint can tell a retry (a duplicate) from another body (a conflict).
    sealer, opener, vault = sealer_and_opener()
    log = SqliteLog(tmp_path / "log.sqlite", partitions=2)
    try:
        inner = SqlitePublisher(log)
        publisher = SealingPublisher(inner, sealer, vault)
        body = message({"email": EMAIL})
        assert publisher.publish(outgoing(body)) == [PublishStatus.accepted]
        assert publisher.publish(outgoing(body)) == [PublishStatus.duplicate]
        changed = {**body, "payload": {"text": "otra cosa"}}
        assert publisher.publish(outgoing(changed)) == [PublishStatus.conflict]
        [record] = log.poll(TOUCHPOINTS_TOPIC, "reader", 10, 0.1)
        assert EMAIL.encode() not in record.value
        assert decode_opened(record.value, opener).payload["text"] == WORDS
        [conflict] = inner.conflicts(TENANT)
        assert b"otra cosa" not in conflict["value"]  # the refused body is kept sealed too
    finally:
        log.close()


def test_the_workers_open_a_record_only_once_its_platform_seal_verifies() -> None:
    sealer, opener, _ = sealer_and_opener()
    clear = outgoing(message({"email": EMAIL}))[0].record
    record = sealed_record(replace(clear, value=sealer.seal_value(clear.value)), SEAL_KEY)
    decode_record = RecordDecoder(SEAL_KEY, opener)
    opened = decode_record(consumed(record))
    assert isinstance(opened, Event) and opened.customer.email == EMAIL
    # The same bytes without the platform's seal (a producer writing straight to Kafka, or a
    # forged seal) are not the ingest's: validated as a direct event, which has no `sealed`.
    for headers in ((("tenant_id", b"acme"),), (("tenant_id", b"acme"), (SEAL_HEADER, b"0"))):
        forged = consumed(Record(record.key, record.value, headers))
        with pytest.raises(InvalidEvent):
            decode_record(forged)


def test_dead_letter_replay_reports_a_key_vault_that_does_not_open_and_closes_the_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    closed: list[Path] = []
    close = SqliteLog.close

    def closing_log(log: SqliteLog) -> None:
        closed.append(log.path)
        close(log)

    monkeypatch.setattr(SqliteLog, "close", closing_log)
    (tmp_path / VAULT_FILE).mkdir()  # no SQLite file can open there
    settings = IngestSettings(data_dir=tmp_path, seal_personal_data=True)
    with pytest.raises(StorageFull, match=VAULT_FILE), mode_publisher(settings):
        pass
    assert closed == [tmp_path / "log.sqlite"]


class VaultDown(MemoryKeyVault):
    """A vault that stops answering, as PostgreSQL restarting does (PostgresUnavailable)."""

    down = False

    def find(self, tenant_id: str, key_id: str) -> bytes | None:
        if self.down:
            raise LogUnavailable("the key vault did not answer")
        return super().find(tenant_id, key_id)


def test_a_vault_that_does_not_answer_makes_the_batch_retried_never_a_dead_letter() -> None:
    vault = VaultDown(PLATFORM_KEY)
    sealer = EventSealer(vault, PLATFORM_KEY, subject_function(lambda: RULES), KeyCache())
    log = MemoryLog(partitions=1)
    SealingPublisher(MemoryPublisher(log), sealer, vault).publish(
        outgoing(message({"email": EMAIL}))
    )
    records = log.poll(TOUCHPOINTS_TOPIC, "reader", 10, 0.1)
    decode_record = SharedDecoder(opener=EventOpener(vault, KeyCache()))
    vault.down = True
    with pytest.raises(LogUnavailable):  # the runners retry the batch; its offsets do not move
        decode_batch("filing", records, decode_record)
    vault.down = False
    decoded = decode_batch("filing", records, decode_record)
    assert not decoded.result.dead_letters
    [(_, opened)] = decoded.events
    assert isinstance(opened, Event) and opened.customer.email == EMAIL


def test_a_subject_that_returns_after_its_erasure_leaves_its_old_events_erased() -> None:
    """A key id is a fixed function of the subject: the customer's next event with the same
    email makes a new key under the erased id. The events sealed before open erased, never as
    a ShreddingError (a replay would dead-letter them), and the new ones open in full."""
    sealer, opener, vault = sealer_and_opener()
    before = orjson.loads(sealer.seal_value(stored(message({"email": EMAIL}))))
    key_id = sealed_key_id(before)
    assert key_id is not None
    sealer.cache.drop(TENANT, [key_id])
    opener.cache.drop(TENANT, [key_id])
    assert vault.destroy(TENANT, [key_id]) == 1
    after = orjson.loads(sealer.seal_value(stored(message({"email": EMAIL}, "otra vez"))))
    assert sealed_key_id(after) == key_id  # the same id, a new key
    assert opener.open_event(after)["payload"]["text"] == "otra vez"
    erased = opener.open_event(before)
    assert erased[ERASED] is True and erased["customer"] == {} and "text" not in erased["payload"]
    # A blob of the returning subject's, tampered, is not passed off as erased: its fingerprint
    # names the present key, not a destroyed one.
    blob = bytearray(base64.b64decode(after["sealed"]["blob"]))
    blob[-1] ^= 1
    tampered = {**after, "sealed": {**after["sealed"], "blob": base64.b64encode(blob).decode()}}
    with pytest.raises(ShreddingError):
        opener.open_event(tampered)
    # Nor is a blob naming a key no erasure destroyed.
    unknown = {**before, "sealed": {**before["sealed"], "kf": "0" * 16}}
    with pytest.raises(ShreddingError):
        opener.open_event(unknown)
    # An id never destroyed still refuses a blob its key does not open (copied or tampered).
    other = orjson.loads(sealer.seal_value(stored(message({"email": "luis@x.io"}))))
    with pytest.raises(ShreddingError):
        opener.open_event({**other, "sealed": {**other["sealed"], "blob": after["sealed"]["blob"]}})


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def another_process(vault: MemoryKeyVault, clock: Clock) -> EventOpener:
    """A reader in another process: a cache of its own on the same vault."""
    return EventOpener(vault, KeyCache(clock=clock, follow_s=1.0))


def test_a_key_another_process_destroyed_is_dropped_from_the_destruction_feed() -> None:
    """Before, a process kept using a key another process had destroyed for up to five minutes
    (its cache's time to live); now it reads the vault's destruction feed at most a second
    apart, and at once where a stage asks (before each batch a projection opens)."""
    sealer, _, vault = sealer_and_opener()
    clock = Clock()
    reader = another_process(vault, clock)
    sealed = orjson.loads(sealer.seal_value(stored(message({"email": EMAIL}))))
    key_id = sealed_key_id(sealed)
    assert key_id is not None
    assert reader.open_event(sealed)["payload"]["text"] == WORDS  # its key is cached now
    vault.destroy(TENANT, [key_id])  # the erasing process (its own cache is not this one)
    reader.follow()  # a projection stage, before its next batch
    assert reader.cache.get(TENANT, key_id) is None
    assert reader.open_event(sealed)[ERASED] is True
    # Without being asked, within `follow_s` of the destruction.
    other = another_process(vault, clock)
    luis = orjson.loads(sealer.seal_value(stored(message({"email": "luis@x.io"}))))
    assert other.open_event(luis)["payload"]["text"] == WORDS
    luis_key = sealed_key_id(luis)
    assert luis_key is not None
    vault.destroy(TENANT, [luis_key])
    clock.now += 1.0
    assert other.open_event(luis)[ERASED] is True


def test_the_events_a_process_opened_under_a_key_destroyed_elsewhere_are_forgotten() -> None:
    # The embedded main process shares opened events between its groups (SharedDecoder): they
    # go with the key, so a second group reading the record opens it again, erased.
    sealer, _, vault = sealer_and_opener()
    decoder = SharedDecoder(opener=another_process(vault, Clock()))
    assert decoder.opener is not None
    decoder.opener.cache.on_destroyed(decoder.forget)
    clear = outgoing(message({"email": EMAIL}))[0].record
    record = consumed(replace(clear, value=sealer.seal_value(clear.value)))
    assert decoder(record).customer.email == EMAIL
    key_id = sealed_key_id(orjson.loads(record.value))
    assert key_id is not None
    vault.destroy(TENANT, [key_id])
    decoder.opener.follow()
    assert decoder(record).customer.email is None


def test_a_cached_key_the_subject_no_longer_has_is_read_again_from_the_vault() -> None:
    """A subject erased and back (a new key under the same id) while a reader still caches its
    old key: the reader's next event of it opens under the new key, not a dead letter."""
    sealer, _, vault = sealer_and_opener()
    reader = another_process(vault, Clock())
    before = orjson.loads(sealer.seal_value(stored(message({"email": EMAIL}))))
    key_id = sealed_key_id(before)
    assert key_id is not None
    reader.open_event(before)  # caches the first key
    vault.destroy(TENANT, [key_id])
    sealer.cache.drop(TENANT, [key_id])
    after = orjson.loads(sealer.seal_value(stored(message({"email": EMAIL}, "otra vez"))))
    assert reader.cache.get(TENANT, key_id) is not None  # not followed yet: the old key
    assert reader.open_event(after)["payload"]["text"] == "otra vez"


class FeedDown(MemoryKeyVault):
    down = False

    def destructions_after(self, position: int | None) -> tuple[int, list[tuple[str, str]]]:
        if self.down:
            raise LogUnavailable("the key vault did not answer")
        return super().destructions_after(position)


def test_a_feed_that_cannot_be_read_retries_a_stage_batch_and_lets_reads_go_on() -> None:
    vault, clock = FeedDown(PLATFORM_KEY), Clock()
    sealer = EventSealer(vault, PLATFORM_KEY, subject_function(lambda: RULES), KeyCache())
    reader = another_process(vault, clock)
    sealed = orjson.loads(sealer.seal_value(stored(message({"email": EMAIL}))))
    reader.open_event(sealed)
    vault.down = True
    with pytest.raises(LogUnavailable):  # a projection's batch: retried, nothing opened stale
        reader.follow()
    clock.now += 5.0  # a read on its own goes on with the cached key, bounded by its ttl
    assert reader.open_event(sealed)["payload"]["text"] == WORDS
    vault.down = False
    key_id = sealed_key_id(sealed)
    assert key_id is not None
    vault.destroy(TENANT, [key_id])
    reader.follow()
    assert reader.open_event(sealed)[ERASED] is True


def test_a_cache_never_used_reads_no_feed() -> None:
    # Sealing off and never on: no vault is opened for the feed either.
    vault = FeedDown(PLATFORM_KEY)
    vault.down = True
    EventOpener(vault, KeyCache()).follow()  # no key held: nothing to drop, nothing asked


class DestroyedWhileRead(MemoryKeyVault):
    """A vault whose key is destroyed, and the destruction followed by another thread of the
    reader's process, just after the reader found it and before it caches it."""

    then: Callable[[], None] = staticmethod(lambda: None)

    def find(self, tenant_id: str, key_id: str) -> bytes | None:
        found = super().find(tenant_id, key_id)
        self.destroy(tenant_id, [key_id])
        self.then()
        return found


def test_a_key_read_before_its_destruction_is_not_kept_once_the_feed_listed_it() -> None:
    # Kept, it would be used until its time to live: the feed's position is past its
    # destruction already, so no later read of the feed lists it again.
    vault = DestroyedWhileRead(PLATFORM_KEY)
    sealer = EventSealer(vault, PLATFORM_KEY, subject_function(lambda: RULES), KeyCache())
    reader = another_process(vault, Clock())
    luis = orjson.loads(sealer.seal_value(stored(message({"email": "luis@x.io"}))))
    vault.then = reader.follow  # another projection batch of the same process, meanwhile
    reader.open_event(luis)  # opened with the key it found; not kept
    key_id = sealed_key_id(luis)
    assert key_id is not None and reader.cache.get(TENANT, key_id) is None
    vault.then = lambda: None
    assert reader.open_event(luis)[ERASED] is True


def test_a_reader_following_the_feed_waits_until_another_has_dropped_what_it_read() -> None:
    """Two runners of one process share the cache: the second to follow must not return (and
    open a batch) while the first has read the feed but not yet dropped its keys and the events
    opened under them."""
    sealer, _, vault = sealer_and_opener()
    reader = another_process(vault, Clock())
    sealed = orjson.loads(sealer.seal_value(stored(message({"email": EMAIL}))))
    reader.open_event(sealed)
    key_id = sealed_key_id(sealed)
    assert key_id is not None
    order: list[str] = []
    second_done = threading.Event()

    def first_listener() -> None:  # the first runner, between reading the feed and returning
        second_done.wait(0.3)
        order.append("first dropped")

    reader.cache.on_destroyed(first_listener)
    vault.destroy(TENANT, [key_id])
    first = threading.Thread(target=reader.follow)
    first.start()
    time.sleep(0.05)  # the first holds the feed by now

    def second() -> None:
        reader.follow()
        order.append("second returned")
        second_done.set()

    other = threading.Thread(target=second)
    other.start()
    first.join(5)
    other.join(5)
    assert order == ["first dropped", "second returned"]
    assert reader.cache.get(TENANT, key_id) is None


def test_the_ingest_seals_under_a_new_key_at_once_after_another_process_destroyed_the_old() -> None:
    """The ingest's sealer reads the destruction feed before each batch it seals: a customer's
    event after her erasure is never sealed under the destroyed key (it would open erased)."""
    sealer, _, vault = sealer_and_opener()
    first = orjson.loads(sealer.seal_value(stored(message({"email": EMAIL}))))
    key_id = sealed_key_id(first)
    assert key_id is not None
    vault.destroy(TENANT, [key_id])  # the filing stage's erasure, in another process
    again = orjson.loads(sealer.seal_value(stored(message({"email": EMAIL}, "otra vez"))))
    assert sealed_key_id(again) == key_id
    assert sealed_fingerprint(again) != sealed_fingerprint(first)


def test_a_sealer_whose_feed_cannot_be_read_still_seals() -> None:
    vault = FeedDown(PLATFORM_KEY)
    sealer = EventSealer(vault, PLATFORM_KEY, subject_function(lambda: RULES), KeyCache())
    sealer.seal_value(stored(message({"email": EMAIL})))
    vault.down = True  # logged; the ingest goes on with the keys it holds
    assert maybe_sealed(sealer.seal_value(stored(message({"email": EMAIL}))))


def test_after_a_failed_feed_read_the_sealers_go_on_with_the_cache_instead_of_queueing() -> None:
    """A vault that does not answer costs its whole timeout per read: each sealer (an ingest
    request) asking again would wait that long in turn, where its keys are all cached."""
    asked: list[int | None] = []

    class Slow(FeedDown):
        def destructions_after(self, position: int | None) -> tuple[int, list[tuple[str, str]]]:
            asked.append(position)
            return super().destructions_after(position)

    vault, clock = Slow(PLATFORM_KEY), Clock()
    cache = KeyCache(clock=clock)
    sealer = EventSealer(vault, PLATFORM_KEY, subject_function(lambda: RULES), cache)
    sealer.seal_value(stored(message({"email": EMAIL})))
    vault.down = True
    before = len(asked)
    for _ in range(5):
        sealer.seal_value(stored(message({"email": EMAIL})))
    assert len(asked) == before + 1  # one failed read; the others go on with the cache
    with pytest.raises(LogUnavailable):  # a projection batch still asks, and is retried
        cache.follow(vault, now=True)
    clock.now += 1.0
    vault.down = False
    sealer.seal_value(stored(message({"email": EMAIL})))
    assert len(asked) == before + 3


def test_a_key_read_while_the_feed_was_unreadable_is_not_kept_past_the_feeds_first_read() -> None:
    """The feed's first read failed; a reader finds a key, which is destroyed meanwhile, and
    another reader's first successful read of the feed lands before the first caches it: that
    read lists nothing (it only learns where the feed ends), so it must count as a drop, or the
    key stays until its time to live."""

    class Both(DestroyedWhileRead, FeedDown):
        pass

    vault, clock = Both(PLATFORM_KEY), Clock()
    sealer = EventSealer(vault, PLATFORM_KEY, subject_function(lambda: RULES), KeyCache())
    luis = orjson.loads(sealer.seal_value(stored(message({"email": "luis@x.io"}))))
    key_id = sealed_key_id(luis)
    assert key_id is not None
    reader = another_process(vault, clock)
    vault.down = True

    def another_reader_reads_the_feed_first() -> None:
        vault.down = False
        clock.now += 2.0
        reader.cache.follow(vault)

    vault.then = another_reader_reads_the_feed_first
    reader.open_event(luis)  # its feed read fails, then it finds the key, destroyed meanwhile
    assert reader.cache.get(TENANT, key_id) is None
