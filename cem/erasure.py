"""Erasing one customer (issue 11, step 4 of docs/erasure.md): the filing stage's handler of
`customer.erased`, the same code in both modes.

`POST /v1/customers/{id}/erase` appends a `customer.erased` event naming the customer's opaque id
(`cem:customer:<id>`); the filing stage files it under that customer without identity and, before
appending the filing, hands it here (`kernel.processing.Eraser`). For each erasure:

1. identity forgets who the customer is (`services.identity.erasure`): every identifier of its
   group unlinked and suppressed (a shared one only unlinked), its recorded names dropped from
   its state, the erasure recorded with the key ids to destroy;
2. those data keys are destroyed in the key vault and dropped from this process's `KeyCache`:
   every event sealed under them opens as `erased` from now on, in every replay;
3. the customer's warehouse rows are deleted with the mutations retention uses
   (`ALTER TABLE … DELETE`), and the mutations waited for (bounded): here when the eraser has
   the warehouse (a distributed filing worker deployed without projection groups), else by the
   `erased-rows` group (`delete_erased_rows`, embedded and distributed by default) once the
   projections stored what was filed before the erasure;
4. how many keys and rows went is recorded in the identity store (`ErasureCompleted`; the
   `erased-rows` group adds its rows with `ErasedRowsDeleted`).

Every step is idempotent, so a redelivered batch erases again and changes nothing more. A store
that does not answer makes the stage retry the batch (the exception propagates, `OUTAGES`); any
other error would fail the same way on every retry, so the erasure's record becomes a dead letter
(`erasure_failed`) and the stage goes on; `cem dead-letters` carries it out again once fixed.
A customer identity does not know (a key only the warehouse has, a placeholder's; or
CEM_IDENTITY=rule) is erased by its key: the subject the key names and its rows.

What this does not reach (docs/erasure.md, "What erasure leaves"): other readers' key caches
for up to a second (every process follows the key vault's destruction feed,
`kernel.sealing.KeyCache`; projection stages and sealers before each batch), the identity store's own stored events (`NameRecorded`, the
identifiers' link events: sealed at rest under the store's single key with
`CEM_SEAL_PERSONAL_DATA`, in clear otherwise), dead letters (a webhook letter received before the
erasure is refused by a later replay, by the keys' destruction times: `KeyVault.last_destroyed_at`,
services/ingest/channels/replay.py), and copies the engines keep (WAL, old parts until merged
away, backups).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from cem.retention import Mutations, existing_tables, mutate, wait_for_mutations
from cem.runner import next_offsets, write_dead_letters
from cem.sealing import default_rules, subject_function
from kernel.customer_key import customer_member
from kernel.filings import ERASURE_FAILED, FILING_POSITIONS, filed_home
from kernel.ports import (
    FILINGS_TOPIC,
    EventLog,
    KeyVault,
    LogUnavailable,
    Warehouse,
    WarehouseUnavailable,
)
from kernel.processing import DeadLetter, Decode, NotErased, dead_letter
from kernel.sealing import EventOpener, KeyCache, SubjectOf
from kernel.settings import CoreSettings
from kernel.shredding import UNATTRIBUTED, TenantKeyring, subject_key_id
from schemas.envelope import Event
from schemas.families import ERASURE_TYPE, CustomerErased
from services.identity.erasure import recorded_members, subjects
from services.identity.errors import CustomerNotFound, GroupChanged
from services.identity.filing import TRANSIENT
from services.identity.normalise import readings_carried
from services.identity.resolver import IdentityResolver
from services.projections.arrivals import ARRIVALS
from services.projections.contact_events import CONTACT_EVENTS
from services.projections.sql import IDENTIFIERS, PROFILE_FACTS, TIMELINE, members_filter
from services.satisfaction.attribution_sql import CUSTOMER_TOUCHPOINTS_TABLE, SERVICE_EVENTS_TABLE
from services.satisfaction.lifecycle_sql import ACTIONS_TABLE
from services.satisfaction.sql import ALERTS_TABLE, RESPONSES_TABLE
from services.satisfaction.texts import TEXT_SENTIMENT_TABLE

logger = logging.getLogger(__name__)

# The warehouse tables that name a customer (`customer_id`): all of retention's but the
# interactions (no customer, no personal data), alert actions (deleted by their alerts, below)
# and dead letters (keyed by the record, not the customer: left to retention).
CUSTOMER_TABLES = (
    TIMELINE,
    CONTACT_EVENTS,
    PROFILE_FACTS,
    IDENTIFIERS,
    RESPONSES_TABLE,
    CUSTOMER_TOUCHPOINTS_TABLE,
    SERVICE_EVENTS_TABLE,
    TEXT_SENTIMENT_TABLE,
)
KEYS_DESTROYED = "keys_destroyed"
# What makes an erasure be carried out again later with its whole batch, rather than become a dead
# letter: identity (PostgreSQL, or a conflict), the key vault, or the warehouse not answering.
OUTAGES = (*TRANSIENT, LogUnavailable, WarehouseUnavailable)
MUTATIONS_WAIT_S = 60.0


def delete_customer_rows(
    warehouse: Warehouse,
    tenant_id: str,
    members: Sequence[str],
    keep_event_id: str,
    position: tuple[int, int] | None = None,
) -> dict[str, int]:
    """Delete the members' rows from every table that names a customer (the erasure event's own
    row, `keep_event_id`, stays: it says the customer was erased); returns the rows per table.
    `position`, the erasure filing's arrival position (`FILING_POSITIONS` + partition, offset):
    the rows of events that arrived after it in that partition stay (`filed_after`)."""
    present = existing_tables(warehouse)
    customers, params = members_filter(list(members))
    params |= {"tenant": tenant_id, "keep": keep_event_id}
    where = f"tenant_id = {{tenant:String}} AND {customers} AND event_id != {{keep:String}}"
    if position is not None and ARRIVALS in present:
        later = filed_after(warehouse, where, params, position)
        names = [f"later_{i}" for i in range(len(later))]
        if names:
            params |= dict(zip(names, later, strict=True))
            where += f" AND event_id NOT IN ({', '.join(f'{{{n}:String}}' for n in names)})"
    counts: dict[str, int] = {}
    ours: Mutations = {}
    if ALERTS_TABLE in present:  # the alerts' lifecycle (notes) first, while the alerts name it
        alerts = warehouse.select(
            f"SELECT DISTINCT alert_id FROM {ALERTS_TABLE} WHERE {where}", params
        )
        counts[ACTIONS_TABLE] = _delete_actions(
            warehouse, tenant_id, [str(r["alert_id"]) for r in alerts], present, ours
        )
    for table in (*CUSTOMER_TABLES, ALERTS_TABLE):
        if table not in present:
            continue
        found = warehouse.select(f"SELECT count() AS n FROM {table} WHERE {where}", params)
        counts[table] = int(found[0]["n"])
        if counts[table]:
            ours[table] = mutate(
                warehouse, table, f"ALTER TABLE {table} DELETE WHERE {where}", params
            )
    # Only this erasure's own mutations: retention's, or another tenant's, may run for minutes.
    if ours and not wait_for_mutations(warehouse, MUTATIONS_WAIT_S, only=ours):
        logger.warning("erasure: deletions still running in the warehouse; they will finish")
    return counts


def filed_after(
    warehouse: Warehouse, where: str, params: dict[str, Any], position: tuple[int, int]
) -> list[str]:
    """The members' events that arrived after `position` in its partition: filed after the
    erasure (a customer key used again in rule mode, the canonical customer's filings after a
    merge), so not the erasure's to delete when it is read again (a redelivery, a first run over
    an old log). A member's filings are keyed by its id, so every filing of the erased customer
    since the erasure sits in the erasure's own partition, where offsets compare."""
    rows = warehouse.select(
        f"""SELECT DISTINCT event_id FROM {ARRIVALS} WHERE {where}
            AND log_partition = {{after_partition:UInt32}}
            AND log_offset > {{after_offset:Int64}}""",
        params | {"after_partition": position[0], "after_offset": position[1]},
    )
    return sorted(str(r["event_id"]) for r in rows)


def _delete_actions(
    warehouse: Warehouse, tenant_id: str, alert_ids: list[str], present: set[str], ours: Mutations
) -> int:
    if not alert_ids or ACTIONS_TABLE not in present:
        return 0
    names = [f"alert_{i}" for i in range(len(alert_ids))]
    params: dict[str, Any] = dict(zip(names, alert_ids, strict=True)) | {"tenant": tenant_id}
    inside = ", ".join(f"{{{name}:String}}" for name in names)
    where = f"tenant_id = {{tenant:String}} AND alert_id IN ({inside})"
    found = warehouse.select(f"SELECT count() AS n FROM {ACTIONS_TABLE} WHERE {where}", params)
    count = int(found[0]["n"])
    if count:
        sql = f"ALTER TABLE {ACTIONS_TABLE} DELETE WHERE {where}"
        ours[ACTIONS_TABLE] = mutate(warehouse, ACTIONS_TABLE, sql, params)
    return count


class CustomerEraser:
    """`kernel.processing.Eraser` over identity, the key vault and the warehouse.

    `identity` None (CEM_IDENTITY=rule): events are filed under their customer key, so the key
    destroyed is that key's subject (and the alert actions'); no identity store to change.
    `warehouse` None (the embedded filing stage, a thread or a process of its own that may not
    open chdb; the distributed filing workers): the rows are left to the `erased-rows` group,
    whose `delete_erased_rows` reads the erasure's filing and calls `delete_rows`."""

    def __init__(
        self,
        identity: IdentityResolver | None,
        vault: KeyVault,
        platform_key: bytes,
        cache: KeyCache | None,
        warehouse: Warehouse | None,
        forget_opened: Callable[[], None] = lambda: None,
        subject_of: SubjectOf | None = None,
    ) -> None:
        """`subject_of`: how the sealing publisher names an event's subject (its identity
        rules); the settings' rules when not given."""
        self.identity, self.vault, self.cache, self.warehouse = identity, vault, cache, warehouse
        self.subject_of = subject_of or subject_function(default_rules)
        # Drops what this process opened before (the embedded shared decoder's events), so a
        # projection reading them after the erasure opens them again, without the keys.
        self.forget_opened = forget_opened
        self._keyring = TenantKeyring(platform_key)

    def key_id_of(self, tenant_id: str, subject: str) -> str:
        return subject_key_id(self._keyring.of(tenant_id), subject)

    def erase(self, erasures: Sequence[tuple[Event, str]]) -> list[NotErased | None]:
        """Each erasure carried out (None), or why not (`NotErased`: its record becomes a dead
        letter); an outage propagates, so the whole batch is filed again later."""
        return [self._attempt(event, home) for event, home in erasures]

    def _attempt(self, event: Event, home: str) -> NotErased | None:
        try:
            self.erase_one(event, home)
        except OUTAGES:
            raise
        except GroupChanged as exc:  # a merge or split since the admin confirmed the group
            logger.warning("erasure %s of %s refused: %s", event.event_id, home, exc)
            return NotErased(f"erasure refused: {exc}")
        except Exception as exc:  # the same error on every retry: a dead letter, not a stall
            logger.exception("erasure %s of %s failed; dead-lettered", event.event_id, home)
            return NotErased(f"erasure failed: {type(exc).__name__}: {exc}")
        return None

    def erase_one(self, event: Event, home: str) -> dict[str, int]:
        """Erase the customer `event` (a `customer.erased`) was filed under; what went."""
        tenant_id, event_id = event.tenant_id, str(event.event_id)
        asked = CustomerErased.model_validate(event.payload)
        members, key_ids = [home], self._key_ids_of_key(tenant_id, home)
        recorded, destroyed_before, record_of = False, False, event_id
        if self.identity is not None:
            try:
                done = self.identity.erase_customer(
                    tenant_id,
                    home,
                    asked.erasure_reason,
                    asked.actor,
                    event_id,
                    self.key_id_of,
                    asked.members,
                )
            except CustomerNotFound:  # a key only the warehouse knows (a placeholder's)
                logger.info("erasure %s: identity has no customer %s", event_id, home)
            else:
                members, key_ids, recorded = list(done.members), list(done.key_ids), True
                destroyed_before = done.completed
                # An earlier erasure that recorded it and then failed (a dead letter) is
                # completed by this one, which carried out the same record.
                record_of = done.erasure_event_id or event_id
                if done.already:
                    logger.info("erasure %s: %s was erased already", event_id, home)
        # Destroyed and recorded complete before (a batch filed again, a second erasure): not
        # again, since a subject that came back since has a new key under the same id.
        destroyed = 0 if destroyed_before else self.vault.destroy(tenant_id, key_ids)
        counts = {KEYS_DESTROYED: destroyed}
        if self.cache is not None:
            self.cache.drop(tenant_id, key_ids)
        self.forget_opened()
        if self.warehouse is not None:
            counts |= delete_customer_rows(self.warehouse, tenant_id, members, event_id)
        if recorded and not destroyed_before:
            assert self.identity is not None
            self.identity.erasure_completed(tenant_id, home, record_of, counts)
        logger.info("erasure %s of %s (tenant %s): %s", event_id, home, tenant_id, counts)
        return counts

    def delete_rows(
        self, tenant_id: str, home: str, event_id: str, position: tuple[int, int] | None = None
    ) -> dict[str, int]:
        """The warehouse's part of an erasure the filing stage carried out without the warehouse
        (`erased-rows`): this process's cached keys and opened events dropped, then the group's
        rows deleted, and their count added to the erasure's record. The group and the keys are read from identity (the erasure recorded them, the
        group as it was then), else the customer's key, as `erase_one` finds them. `position`,
        where the erasure's filing arrived: rows of events filed after it stay."""
        assert self.warehouse is not None, "deleting rows needs the warehouse"
        record = self._record(tenant_id, home)
        members = self._forget(tenant_id, home, record)
        counts = delete_customer_rows(self.warehouse, tenant_id, members, event_id, position)
        logger.info("erasure %s of %s (tenant %s): rows %s", event_id, home, tenant_id, counts)
        if record is not None and any(counts.values()):
            self._record_rows(tenant_id, home, str(record["erasure_event_id"]), counts)
        return counts

    def _record_rows(
        self, tenant_id: str, home: str, erasure_event_id: str, counts: dict[str, int]
    ) -> None:
        """The rows deleted, added to the erasure's record (the export's `removed`; the record of
        this erasure, or of the dead-lettered one before it that it completed). Only when some
        went: reading the erasure again after a failure here finds none, and zeros would be a
        wrong record. A failure is logged, not raised: the rows are gone, and a retry or a dead
        letter would say otherwise."""
        assert self.identity is not None
        try:
            self.identity.erasure_rows_deleted(tenant_id, home, erasure_event_id, counts)
        except Exception:
            logger.exception("erasure of %s: rows deleted, their count not recorded", home)

    def forget_keys(self, tenant_id: str, home: str) -> list[str]:
        """Drop this process's cached keys of an erasure another process carried out, and the
        events it opened with them, at once (its ingest must not seal with a destroyed key while
        the rows wait); the group's members, as the erasure recorded them."""
        return self._forget(tenant_id, home, self._record(tenant_id, home))

    def _forget(self, tenant_id: str, home: str, record: dict[str, Any] | None) -> list[str]:
        members, key_ids = [home], self._key_ids_of_key(tenant_id, home)
        if record is not None:  # this erasure's record, or that of the one before it
            assert self.identity is not None
            members = recorded_members(record) or self.identity.members(tenant_id, home)
            key_ids = list(record["key_ids"])
        if self.cache is not None:
            self.cache.drop(tenant_id, key_ids)
        self.forget_opened()
        return members

    def _record(self, tenant_id: str, home: str) -> dict[str, Any] | None:
        """The erasure identity recorded on the customer the erasure was filed under (read on
        that customer itself: a merge since must not change whose rows go or where their count
        is recorded); None without identity, for a customer it does not know or never erased."""
        if self.identity is None:
            return None
        try:
            return self.identity.erasure_recorded_on(tenant_id, home)
        except CustomerNotFound:
            return None

    def _key_ids_of_key(self, tenant_id: str, home: str) -> list[str]:
        """A customer identity does not know (CEM_IDENTITY=rule, or a key only the warehouse
        has): the sealing subject of the identifier its key names (`kernel.customer_key`'s
        spellings, `anon:dev-1`, `ext:shop:1`, `email:ana@x.io`, normalised as the sealing
        publisher normalises an event's), that of the key as an explicit `customer_id` (an id
        spelled like an identifier is one too), and the alert actions'
        (`customer_id:cem:customer:<key>`)."""
        readings = [customer_member(home), {"customer_id": home}]
        named = [self.subject_of(tenant_id, customer) for customer in readings]
        # Nor a national number's readings (`phone:3169513292`): other keys' events (an email
        # typed as "no tiene" beside the same digits) are sealed under them too.
        found = dict.fromkeys(s for s in named if s != UNATTRIBUTED and not readings_carried(s))
        found.update(dict.fromkeys(subjects([], [home])))
        return [self.key_id_of(tenant_id, s) for s in found]


def eraser_for(
    identity: IdentityResolver | None,
    opener: EventOpener,
    settings: CoreSettings,
    warehouse: Warehouse | None,
    forget_opened: Callable[[], None] = lambda: None,
) -> CustomerEraser:
    """The filing stage's eraser, on the vault and key cache its opener reads (the platform key
    of the mode: this directory's, or the one every replica shares)."""
    from cem.sealing import platform_key_for

    key = platform_key_for(settings)
    rules = (lambda: identity.rules) if identity is not None else default_rules
    return CustomerEraser(
        identity,
        opener.vault,
        key,
        opener.cache,
        warehouse,
        forget_opened,
        subject_of=subject_function(rules),
    )


# The consumer group over `filings` deleting the rows of the erasures the filing stage carried out
# without the warehouse (embedded: the main process's; distributed: one filing worker's).
ERASED_ROWS = "erased-rows"
_ERASURE_BYTES = ERASURE_TYPE.encode()


MAX_DELETE_ATTEMPTS = 3


WAIT_WARNING_S = 60.0  # an erasure whose rows wait longer is logged as a warning, each minute


@dataclass
class Pending:
    """What the `erased-rows` group keeps between polls about the erasures it has read but not
    carried out yet (each by its filing's partition and offset): where the touchpoints ended when
    it was first read (`upstream`, with an upstream filing stage), then where the filings ended
    (`marks`), since when it waits (`since`), and how many times deleting its rows failed."""

    upstream: dict[tuple[int, int], dict[int, int]] = field(default_factory=dict)
    marks: dict[tuple[int, int], dict[int, int]] = field(default_factory=dict)
    since: dict[tuple[int, int], float] = field(default_factory=dict)
    failures: Counter[tuple[int, int]] = field(default_factory=Counter)
    pause_s: float = 5.0  # before the second attempt; twice that before the third
    # How a pause is waited: its runner's `stopping.wait`, so a stop does not wait it out.
    sleep: Callable[[float], object] = field(default=time.sleep, compare=False)

    def forget(self, at: tuple[int, int]) -> None:
        for kept in self._kept():
            kept.pop(at, None)

    def reset(self) -> None:
        """Forget every erasure read (another reader carried them out meanwhile, or will)."""
        for kept in self._kept():
            kept.clear()

    def _kept(self) -> tuple[dict[tuple[int, int], Any], ...]:
        return (self.upstream, self.marks, self.since, self.failures)


def delete_erased_rows(
    event_log: EventLog,
    eraser: CustomerEraser,
    decode_record: Decode,
    *,
    max_records: int = 5000,
    timeout_s: float = 0.2,
    row_groups: Sequence[str] = (),
    waiting: Pending | None = None,
    topic: str = FILINGS_TOPIC,
    upstream: tuple[str, str] | None = None,
    deployed_only: bool = False,
) -> int:
    """Delete the warehouse rows of the batch's `customer.erased` filings; returns how many
    records it consumed. Only a filing whose bytes hold the type's name is decoded (through the
    process's shared decoder, so the projections reuse the event); the type is in clear in every
    form the log holds (sealing keeps it; the type is reserved, so no producer writes it). A
    deletion that fails on an outage propagates: the batch is not committed and is read again;
    one that fails otherwise is tried again after a pause (`Pending.pause_s`, longer each time: a
    server over its memory limit may have room later), and on its `MAX_DELETE_ATTEMPTS`th
    failure it is a dead letter (`ERASURE_FAILED`), written before the commit.

    `row_groups`: the consumer groups that write rows from filings (the projections). An
    erasure's rows are deleted only once each of them has committed, in every partition, as far
    as the log's filings reached when the erasure was first read (kept in `waiting`): so the rows
    of the customer's events filed before it are stored by then, and deleted with the rest,
    instead of being inserted after the deletion with their personal fields (a clear log). Until
    then the records before it are committed and it is read again. `topic`: the filings' topic
    (a distributed deployment may name it otherwise). `upstream`: the touchpoints' topic and the
    filing stage's group when several filing workers append (distributed): a replica may have
    resolved the customer's event before the erasure and append its filing after the erasure's,
    so the filings' mark is taken only once the filing group has committed as far as the
    touchpoints reached when the erasure was first read (a filing worker appends, then commits).
    The process's cached keys of the erasure are dropped when it is first read.
    `deployed_only`: of `row_groups`, wait only for those that have committed on `topic` at
    least once (`deployed_groups`; a distributed deployment may run without one of them)."""
    records = event_log.poll(topic, ERASED_ROWS, max_records, timeout_s)
    if not records:
        return 0
    waiting = Pending() if waiting is None else waiting
    letters: list[DeadLetter] = []

    def stop_before(index: int) -> int:
        """Commit the records before `index` (and the dead letters so far); the rest is read
        again by the next poll."""
        done = records[:index]
        write_dead_letters(event_log, eraser.warehouse, letters)
        if done:
            event_log.commit(topic, ERASED_ROWS, next_offsets(done))
        return len(done)

    for index, rec in enumerate(records):
        if _ERASURE_BYTES not in rec.value:
            continue
        home = filed_home(rec)
        try:
            event = decode_record(rec)
        except Exception as exc:  # the projections dead-letter it; nothing to erase here
            logger.warning(
                "erasure filing at %s/%s not decoded: %s", rec.partition, rec.offset, exc
            )
            continue
        if isinstance(event, Event) and event.type == ERASURE_TYPE and isinstance(home, str):
            at = (rec.partition, rec.offset)
            if at not in waiting.since:  # first read: the keys go now, the rows once stored
                try:
                    eraser.forget_keys(event.tenant_id, home)
                except OUTAGES:
                    raise
                except Exception:  # the deletion forgets them again, and dead-letters its errors
                    logger.exception("erasure %s: cached keys not dropped yet", event.event_id)
                if upstream is not None:
                    waiting.upstream[at] = event_log.end_offsets(upstream[0])
                waiting.since[at] = time.monotonic()
            if at in waiting.upstream:
                assert upstream is not None
                up_topic, up_group = upstream
                if not _projected(event_log, up_topic, [up_group], waiting.upstream[at], timeout_s):
                    _warn_if_long(waiting, at, event.event_id)
                    return stop_before(index)
                del waiting.upstream[at]
            if at not in waiting.marks:
                waiting.marks[at] = event_log.end_offsets(topic)
            groups = deployed_groups(event_log, topic, row_groups) if deployed_only else row_groups
            if not _projected(event_log, topic, groups, waiting.marks[at], timeout_s):
                _warn_if_long(waiting, at, event.event_id)
                return stop_before(index)
            try:
                position = (FILING_POSITIONS + rec.partition, rec.offset)
                eraser.delete_rows(event.tenant_id, home, str(event.event_id), position)
            except OUTAGES:
                raise
            except Exception as exc:
                waiting.failures[at] += 1
                if waiting.failures[at] < MAX_DELETE_ATTEMPTS:
                    pause = waiting.pause_s * waiting.failures[at]
                    logger.warning(
                        "erasure %s: rows not deleted (%s); trying again in %.0fs",
                        event.event_id,
                        exc,
                        pause,
                    )
                    waiting.sleep(pause)
                    return stop_before(index)
                logger.exception("erasure %s: rows not deleted; dead-lettered", event.event_id)
                letters.append(dead_letter(ERASED_ROWS, rec, ERASURE_FAILED, exc))
            waiting.forget(at)
    write_dead_letters(event_log, eraser.warehouse, letters)
    event_log.commit(topic, ERASED_ROWS, next_offsets(records))
    return len(records)


def _warn_if_long(waiting: Pending, at: tuple[int, int], event_id: object) -> None:
    waited = time.monotonic() - waiting.since[at]
    if waited >= WAIT_WARNING_S and int(waited) % int(WAIT_WARNING_S) < 2:
        logger.warning(
            "erasure %s: its rows have waited %.0fs for the projections to store what was "
            "filed before it (a projection group stopped?)",
            event_id,
            waited,
        )


def deployed_groups(event_log: EventLog, topic: str, groups: Sequence[str]) -> list[str]:
    """The groups that have committed a position on `topic` at least once: those deployed. A
    deployment without one of the projection workers (no satisfaction worker) would otherwise
    keep every erasure's rows waiting for a group that never reads."""
    return [g for g in groups if event_log.committed(topic, g)]


def _projected(
    event_log: EventLog, topic: str, groups: Sequence[str], mark: dict[int, int], timeout_s: float
) -> bool:
    """Whether every group has committed `mark` (partition: offset) of `topic`, waiting up to
    `timeout_s` for it."""
    deadline = time.monotonic() + timeout_s
    while True:
        behind = [
            g
            for g in groups
            if any(event_log.committed(topic, g).get(p, 0) < end for p, end in mark.items())
        ]
        if not behind:
            return True
        if time.monotonic() >= deadline:
            logger.info("erasure rows wait for %s to project what was filed before it", behind)
            return False
        time.sleep(0.05)
