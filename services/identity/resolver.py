"""The identity application: resolve touchpoints to customers; merge, split, unlink; review.

Built on the eventsourcing library: every change is an event on an aggregate, saved atomically with
the other changes of the same command. Commands are retried on a concurrency conflict, so concurrent
resolutions of the same new identifiers converge on one customer. Reads of the identity map go
through `identity_map`, which is versioned for projections.

Commands of one resolver run one at a time (a lock) on aggregates read in bulk through its cache
(state.AggregateCache), each brought up to date with the store when read; an attempt that fails
discards what it changed from the cache, so its retry reads the store's current state.
"""

from __future__ import annotations

import gc
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from functools import lru_cache, partial
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application, ProcessingEvent
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError, Recording
from eventsourcing.utils import Environment, EnvType

from kernel.processing import to_micros
from schemas.envelope import CustomerRef
from services.identity import audit, changes, erasure
from services.identity.at_rest import StoreNamingMismatch, check_readable
from services.identity.changes import SYSTEM_ACTOR, Evidence
from services.identity.domain import KEYED, NAMING_ID, IndexNaming, NamingChosen
from services.identity.errors import (
    AmbiguousCustomer,
    CandidateAlreadyDecided,
    CandidateErased,
    CustomerNotFound,
    ErasedGroupSplit,
    IdentifierNotLinked,
    IdentityBusy,
    MergeRefused,
)
from services.identity.models import (
    AuditEntry,
    CandidateView,
    CustomerIdentities,
    FiledTouchpoint,
    IgnoredIdentifier,
    LocatedCustomer,
    MergePlan,
    ResolvedCustomer,
    SplitOutcome,
)
from services.identity.naming import identifier_of_key, likely_name, preferred_name
from services.identity.normalise import (
    Normalised,
    Rejected,
    ambiguous_readings,
    comma_readings,
    normalise_one,
    normalise_ref,
    readings_carried,
    sealing_subject,
    with_known_reading,
)
from services.identity.person_names import normalise_name
from services.identity.policy import Group, household_line
from services.identity.ports import IdentityStore
from services.identity.reasons import reason_text
from services.identity.resolution import resolve_in
from services.identity.rules import Identifier, IdentityRules, TenantRules
from services.identity.state import (
    DEFAULT_CACHE_SIZE,
    UNKEYED,
    AggregateCache,
    AggregateReader,
    FilingReader,
    IdentityState,
    SlipReader,
)
from services.identity.views import CandidateBoard, IdentityMap

T = TypeVar("T")
MAX_ATTEMPTS = 25
# The steps of `Application.save` after collecting events (eventsourcing 9.x), which `save` takes
# one by one; without them (another version of the library) it leaves saving to the library.
_LIBRARY_SAVE_STEPS = all(
    callable(getattr(Application, step, None)) for step in ("_record", "_take_snapshots", "_notify")
)
# (identifiers, evidence event id, source) and, when known, when the touchpoint happened and
# the person's name it carries (`person_names.name_in` of its payload).
Touchpoint = (
    tuple[CustomerRef, str | UUID, str]
    | tuple[CustomerRef, str | UUID, str, datetime | None]
    | tuple[CustomerRef, str | UUID, str, datetime | None, str]
)


# Why an erasure rejected the open merge candidates of the customers it erased.
CANDIDATE_ERASED_REASON = "a customer of the pair was erased"


class IdentityResolver(Application[UUID]):
    name = "Identity"  # PostgreSQL tables are named after it: identity_events

    def __init__(
        self,
        store: IdentityStore,
        rules: IdentityRules | None = None,
        cache_size: int = DEFAULT_CACHE_SIZE,
        fast_path: bool = True,
        id_key: bytes | None = None,
    ) -> None:
        """A resolver on `store` (an adapter the composition root picks), keeping up to
        `cache_size` aggregates in memory between commands (0: none). `fast_path`: touchpoints
        that change nothing skip the policy's full decision (`known.quiet_decision`; the same
        answers, which tests check by turning it off). `id_key` derives new customers' opaque ids
        (`kernel.opaque_ids`); the composition root passes the platform's, so ids are the same in
        every run and replica. Without one, a random key: ids as opaque, stable only while this
        resolver lives (filings keep what it named, so a replay of its filings is unchanged)."""
        self.id_key = id_key or secrets.token_bytes(32)
        self.rules = rules or IdentityRules()
        self.fast_path = fast_path
        self.store = store
        super().__init__(env=store.persistence_env())
        try:  # a store sealed when opened in clear (or the reverse) is refused at once
            check_readable(self.recorder, self.mapper)
        except Exception:
            self.close()
            raise
        # Identifiers named as the store names them; a key it was not written with: refused.
        self._keyed = IndexNaming.keyed(id_key) if id_key else None
        try:
            self.naming, self._naming_unsaved = self._index_naming(self._keyed)
        except Exception:
            self.close()
            raise
        self.identity_map = IdentityMap(self.recorder, self.mapper)
        self.candidate_board = CandidateBoard(self.recorder, self.mapper)
        self.cache = AggregateCache(cache_size) if cache_size > 0 else None
        self.reader = AggregateReader(self.recorder, self.mapper, store.select_since, self.cache)
        self.select_filings: FilingReader = partial(store.select_filings, self.recorder)
        self.select_slips: SlipReader = partial(store.select_slips, self.recorder)
        self._commands = threading.Lock()  # the cache's aggregates are shared, not copied

    @property
    def sealed_at_rest(self) -> bool:
        """Whether the store keeps its events sealed (`services.identity.at_rest`)."""
        return self.mapper.cipher is not None

    def _index_naming(self, keyed: IndexNaming | None) -> tuple[IndexNaming, bool]:
        """How this store names identifiers (`domain.IndexNaming`), and whether that is still to
        be recorded: keyed when it recorded so (`NamingChosen`, checked against this key) or has
        no event yet and a key is given (recorded with its first save, in the same transaction:
        opening a store writes nothing); unkeyed when it was written before keyed names, or no
        key is given. Converting a store is a copy into a new one (`cem migrate-ids --into`)."""
        # The events first: a replica's first save commits the record with its events, so a
        # store seen with events shows its record, if it has one, to the read after.
        written = bool(self.recorder.max_notification_id())
        try:
            chosen: NamingChosen | None = self.repository.get(NAMING_ID)
        except AggregateNotFoundError:
            chosen = None
        if chosen is not None:
            if keyed is None or chosen.check != keyed.check():
                raise StoreNamingMismatch(
                    "the identity store names identifiers under another key (CEM_SECRET_KEY or "
                    "the data directory's secret.key changed?): start with the key it was "
                    "written with"
                )
            return keyed, False
        if keyed is None or written:
            return UNKEYED, False
        return keyed, True

    def state(self, tenant_id: str, **readers: Any) -> IdentityState:
        """A tenant's identity state on this store, its identifiers named as the store names
        them; `readers`: IdentityState's (reader, filings, slips)."""
        return IdentityState(self.repository, tenant_id, naming=self.naming, **readers)

    def save(self, *objs: Any, **kwargs: Any) -> list[Recording[UUID]]:
        """Save aggregates as `Application.save` does, without its runtime protocol checks of
        every object (a third of a batch's save on Python 3.11): ours are all aggregates."""
        if not (_LIBRARY_SAVE_STEPS and all(isinstance(o, Aggregate) for o in objs)):
            return super().save(*objs, **kwargs)
        processing_event = ProcessingEvent[UUID]()
        for aggregate in objs:
            processing_event.events.extend(aggregate.collect_events())
            processing_event.aggregates[aggregate.id] = aggregate
        processing_event.saved_kwargs.update(kwargs)
        recordings = self._record(processing_event)
        self._take_snapshots(processing_event)
        self._notify(recordings)
        self.notify(processing_event.events)  # deprecated in the library, still called by it
        return recordings

    def construct_env(self, name: str, env: EnvType | None = None) -> Environment:
        # The composition root passes persistence settings explicitly; the process environment is
        # not read, so two resolvers in one process (or one test) never share a store by accident.
        return Environment(name, dict(env or {}))

    # writes

    def resolve(
        self,
        tenant_id: str,
        ref: CustomerRef,
        evidence_event_id: str | UUID,
        source: str,
        actor: str = SYSTEM_ACTOR,
        at: datetime | None = None,
        name: str = "",
    ) -> ResolvedCustomer:
        """The customer a touchpoint (that happened `at`, carrying the person's `name` if any)
        belongs to; links, merges or proposes as the rules allow."""
        touchpoint = (ref, evidence_event_id, source, at, name)
        return self.resolve_batch(tenant_id, [touchpoint], actor)[0]

    def resolve_batch(
        self,
        tenant_id: str,
        touchpoints: Sequence[Touchpoint],
        actor: str = SYSTEM_ACTOR,
    ) -> list[ResolvedCustomer]:
        """Resolve (ref, evidence event id, source[, time]) in order, in one transaction: the same
        results as one call each, for one commit per batch instead of one per touchpoint."""
        rules = self.rules.for_tenant(tenant_id)
        normalised = [normalise_ref(t[0], rules) for t in touchpoints]
        work = [
            (n, _evidence(t, actor, n, rules), preferred_name(t[0], rules, self.id_key))
            for t, n in zip(touchpoints, normalised, strict=True)
        ]
        seen = [(*n.identifiers, *([p.identifier] if p.identifier else [])) for n, _, p in work]
        readings = [
            i
            for n, _, _ in work
            for r in n.rejected
            for i in ambiguous_readings(r, rules) or comma_readings(r, rules)
        ]
        # and the readings themselves, where they are the subject its customer carries
        readings += [i for _, e, _ in work if (i := readings_carried(e.subject)) is not None]

        def resolve_all(state: IdentityState) -> list[ResolvedCustomer]:
            state.preload(
                event_ids=[e.event_id for _, e, _ in work if e.event_id],
                identifiers=dict.fromkeys([*(i for ids in seen for i in ids), *readings]),
                names=[p.name for _, _, p in work if p.name],
                touchpoints=seen,
                named_emails=[
                    i for n, e, _ in work if e.name for i in n.identifiers if i.kind == "email"
                ],
            )
            # Registering a customer asks whether its name is taken: asked for the batch at once.
            state.preload_customers(
                name
                for n, e, _ in work
                if e.event_id and state.filing(e.event_id) is None
                if (name := likely_name(state, n, e.event_id, rules, self.id_key))
            )

            def held(identifier: Identifier) -> bool:
                return bool(state.claim(identifier).holders)

            # Read one at a time, as each touchpoint's turn comes: what the ones before it in
            # the batch registered counts, as it would one call each.
            return [
                resolve_in(state, with_known_reading(n, held, rules), e, rules, p, self.fast_path)
                for n, e, p in work
            ]

        # Resolving registers what it needs, so a customer it cannot find was being written by
        # another replica while this attempt read (an index entry seen before its aggregate):
        # a conflict like any other, and the retry reads the other's commit.
        return self._run(tenant_id, resolve_all, (IntegrityError, CustomerNotFound))

    def merge(
        self,
        tenant_id: str,
        survivor_id: str,
        absorbed_id: str,
        reason: str,
        actor: str,
        preview: bool = False,
    ) -> MergePlan:
        """Merge absorbed into survivor (both keep their events; absorbed redirects to survivor)."""
        rules = self.rules.for_tenant(tenant_id)

        def work(state: IdentityState) -> MergePlan:
            plan = changes.plan_merge(state, survivor_id, absorbed_id, rules)
            if preview:
                return plan
            if not plan.allowed:
                raise MergeRefused(list(plan.reasons))
            merge_id = changes.merge(state, plan.survivor_id, plan.absorbed_id, reason, actor)
            _close_open_candidate(state, plan, merge_id, reason, actor)
            return replace(plan, merge_id=merge_id)

        return self._run(tenant_id, work)

    def name_caller(self, tenant_id: str, call_id: str, caller_id: str, actor: str) -> MergePlan:
        """The agent on a call from a household's line alone (filed under a customer of its own,
        `policy._line_alone`: anyone at home may have called) heard who is calling: the caller's
        customer, a holder of that line, absorbs the call's (a merge, audited with who said so,
        that a manager can split). Refused (`MergeRefused`) unless the call's customer holds no
        identifier and its touchpoints carried a line the caller's customer holds."""
        rules = self.rules.for_tenant(tenant_id)

        def work(state: IdentityState) -> MergePlan:
            call, caller = state.group(call_id), state.group(caller_id)
            offered = _household_lines(state, call, rules)
            if not offered:
                raise MergeRefused([f"{call.canonical_id} is not a call from a shared line alone"])
            if state.kept_apart({g.canonical_id: g for g in (call, caller)}):
                # a manager split them (or a reviewer rejected the pair): theirs to undo
                raise MergeRefused(
                    [f"{call.canonical_id} was kept apart from {caller.canonical_id}"]
                )
            # holders are neither erased nor kept apart from the call (`_household_lines`)
            lines = [line for line, holders in offered if caller.canonical_id in holders]
            if not lines:
                raise MergeRefused([f"{caller.canonical_id} does not hold the line of the call"])
            plan = changes.plan_merge(state, caller.canonical_id, call.canonical_id, rules)
            if not plan.allowed:
                raise MergeRefused(list(plan.reasons))
            reason = reason_text("caller_named", identifier=str(lines[0]))
            merge_id = changes.merge(state, plan.survivor_id, plan.absorbed_id, reason, actor)
            return replace(plan, merge_id=merge_id)

        return self._run(tenant_id, work)

    def household_lines(self, tenant_id: str, customer_id: str) -> list[HouseholdLine]:
        """The household lines a call's customer called from alone (`_household_lines`), each
        with the groups of the customers holding it: whom to ask about, and to name the caller
        among (`name_caller`)."""
        state = self.state(tenant_id)
        found = _household_lines(state, state.group(customer_id), self.rules.for_tenant(tenant_id))
        return [
            HouseholdLine(line, tuple(state.group(h) for h in holders)) for line, holders in found
        ]

    def split(
        self, tenant_id: str, customer_id: str, absorbed_id: str, reason: str, actor: str
    ) -> SplitOutcome:
        """Reverse the merge that brought absorbed_id into customer_id's group, exactly. Not
        when the two were erased together: the erasure took its group whole, and a member split
        off would be a customer nothing says was erased (`erasure.erased_together`)."""

        def work(state: IdentityState) -> SplitOutcome:
            survivor_id = changes.survivor_of(state, customer_id, absorbed_id)
            if erasure.erased_together(state, survivor_id, absorbed_id):
                raise ErasedGroupSplit(f"{absorbed_id} was erased with {survivor_id}")
            merge_id = changes.split(state, survivor_id, absorbed_id, reason, actor)
            return SplitOutcome(
                merge_id=merge_id,
                survivor_id=survivor_id,
                absorbed_id=state.customer(absorbed_id).customer_id,
                survivor_members=tuple(state.members(state.canonical(survivor_id))),
                absorbed_members=tuple(state.members(absorbed_id)),
            )

        return self._run(tenant_id, work)

    def unlink(
        self,
        tenant_id: str,
        customer_id: str,
        kind: str,
        value: str,
        reason: str,
        actor: str,
        erase: bool = False,
    ) -> str:
        """Unlink an identifier (never relinked to this customer automatically); returns its holder.
        With erase, the identifier stops linking anybody, whatever is replayed later."""
        identifier = normalise_one(kind, value, self.rules.for_tenant(tenant_id))
        if isinstance(identifier, Rejected):
            raise IdentifierNotLinked(f"that {kind} is not a linkable identifier")
        return self._run(
            tenant_id,
            lambda state: changes.unlink(state, customer_id, identifier, reason, actor, erase),
        )

    def erase_customer(
        self,
        tenant_id: str,
        customer_id: str,
        reason: str,
        actor: str,
        erasure_event_id: str,
        key_id_of: erasure.KeyIdOf,
        expected: Sequence[str] | None = None,
    ) -> erasure.Erasure:
        """Forget who the customer is: every identifier of its group unlinked (and suppressed
        unless someone outside the group holds it), the erasure recorded with the data keys to
        destroy (`services.identity.erasure`). Run again, for the same erasure event or for
        another one of a customer already erased, it changes nothing and answers as the first
        time. `expected`: the group as the admin confirmed it (`GroupChanged` when it is not the
        group now, and nothing changes). The open merge candidates of its members are rejected
        with it: the evidence they were proposed on is gone (`decide_candidate`)."""
        proposed = self.candidate_board.list(tenant_id, "open")
        rules = self.rules.for_tenant(tenant_id)

        def work(state: IdentityState) -> erasure.Erasure:
            done = erasure.erase(
                state, customer_id, reason, actor, erasure_event_id, key_id_of, rules, expected
            )
            if done.already:  # its first run rejected them (a record's members may be today's)
                return done
            members = set(done.members)
            for view in proposed:
                if {view.first_id, view.second_id} & members:
                    pair = state.candidate(view.candidate_id)
                    if pair.status == "open":
                        pair.reject(reason=CANDIDATE_ERASED_REASON, actor=SYSTEM_ACTOR)
            return done

        return self._run(tenant_id, work)

    def erasure_completed(
        self, tenant_id: str, customer_id: str, erasure_event_id: str, counts: dict[str, int]
    ) -> None:
        """Record how many keys and warehouse rows the erasure removed."""
        self._run(
            tenant_id,
            lambda state: erasure.complete(state, customer_id, erasure_event_id, counts),
        )

    def erasure_rows_deleted(
        self, tenant_id: str, customer_id: str, erasure_event_id: str, counts: dict[str, int]
    ) -> None:
        """Record how many warehouse rows the erasure's `erased-rows` group deleted, beside the
        keys its completion recorded (`erasure.record_rows`)."""
        self._run(
            tenant_id,
            lambda state: erasure.record_rows(state, customer_id, erasure_event_id, counts),
        )

    def erasure_recorded_on(self, tenant_id: str, customer_id: str) -> dict[str, Any] | None:
        """The erasure recorded on the customer itself, not through a merge since (the one the
        `erased-rows` group deletes the rows of); None if none."""
        return erasure.recorded_on(self.state(tenant_id), customer_id)

    def erased_among(self, tenant_id: str, customer_ids: Sequence[str]) -> set[str]:
        """Which of the customers were erased (`erasure.erased`: named in an erasure's group; not
        a live customer merged into an erased one since). An id the store does not know is
        not erased."""
        state = self.state(tenant_id)
        found = set()
        for customer_id in customer_ids:
            try:
                if erasure.erased(state, customer_id):
                    found.add(customer_id)
            except CustomerNotFound:
                continue
        return found

    def erased_before_merge(self, tenant_id: str, members: Sequence[str]) -> set[str]:
        """The erased members of a group (`members`, canonical first) that a live customer was
        merged into after the erasure (`merged_since_erasure`): erased before the group was as
        it is now, so not news to a page that shows it (a live stream tells a page only of
        other erasures). Empty otherwise, and for a group this store does not know (events keyed
        by an id identity never linked: nothing of it was erased through identity)."""
        try:
            if not self.merged_since_erasure(tenant_id, members[0]):
                return set()
        except CustomerNotFound:
            return set()
        return self.erased_among(tenant_id, members)

    def erasure_of(self, tenant_id: str, customer_id: str) -> dict[str, Any] | None:
        """The erasure recorded on the customer's group, None if it was never erased."""
        return erasure.erasure_of(self.state(tenant_id), customer_id)

    def merged_since_erasure(self, tenant_id: str, customer_id: str) -> list[str]:
        """Members of the customer's erased group merged into it after the erasure, not erased
        (`erasure.merged_since`); empty when the group was never erased."""
        return erasure.merged_since(self.state(tenant_id), customer_id)

    def erasure_plan(self, tenant_id: str, customer_id: str) -> erasure.ErasurePlan:
        """What erasing the customer would take (its group, each identifier and whether its
        key would go), changing nothing: the preview an admin reads before erasing."""
        return erasure.plan(self.state(tenant_id), customer_id, self.rules.for_tenant(tenant_id))

    def decide_candidate(
        self,
        tenant_id: str,
        candidate_id: str,
        accept: bool,
        reason: str,
        actor: str,
        survivor_id: str | None = None,
    ) -> CandidateView:
        """Accept (merge the pair) or reject (keep it apart for good) an open merge candidate.
        One whose customer was erased since it was proposed is only rejected (CandidateErased)."""
        rules = self.rules.for_tenant(tenant_id)

        def work(state: IdentityState) -> None:
            pair = state.candidate(candidate_id)
            if pair.status != "open":
                raise CandidateAlreadyDecided(f"candidate {candidate_id} is already {pair.status}")
            if not accept:
                pair.reject(reason=reason, actor=actor)
                return
            for side in (pair.first_id, pair.second_id):
                if erasure.erasure_touches(state, side):
                    raise CandidateErased(f"candidate {candidate_id}: {side} was erased since")
            survivor, absorbed = changes.pair_sides(pair, survivor_id)
            merge_id = changes.merge_pair(state, survivor, absorbed, reason, actor, rules)
            pair.accept(merge_id=merge_id, reason=reason, actor=actor)

        self._run(tenant_id, work)
        decided = self.candidate_board.get(tenant_id, candidate_id)
        assert decided is not None, "a decided candidate is on the board"
        return decided

    # reads

    def candidates(self, tenant_id: str, status: str | None = "open") -> list[CandidateView]:
        """Merge candidates; open ones whose customers were merged since, or one of them erased
        since (it can no longer be accepted: `decide_candidate`), are left out."""
        found = self.candidate_board.list(tenant_id, status)
        if status != "open":  # decided ones stay listed: those of erased customers name nothing
            sides = [side for c in found for side in (c.first_id, c.second_id)]
            return audit.without_erased(found, self.erased_among(tenant_id, sides))
        redirects = self.redirects(tenant_id)
        # Read in one query, around the shared cache: it is the commands' (under their lock),
        # and may hold what a command changed and has not saved yet.
        uncached = AggregateReader(self.recorder, self.mapper, self.store.select_since)
        state = self.state(tenant_id, reader=uncached)
        sides = [side for c in found for side in (c.first_id, c.second_id)]
        state.preload_customers([*sides, *(redirects.get(side, side) for side in sides)])
        return [
            c
            for c in found
            if redirects.get(c.first_id, c.first_id) != redirects.get(c.second_id, c.second_id)
            and not any(erasure.erasure_touches(state, side) for side in (c.first_id, c.second_id))
        ]

    def identities(self, tenant_id: str, customer_id: str) -> CustomerIdentities:
        return audit.identities(self.state(tenant_id), customer_id)

    def history(self, tenant_id: str, customer_id: str) -> list[AuditEntry]:
        return audit.history(self.state(tenant_id), customer_id)

    def canonical_id(self, tenant_id: str, customer_id: str, as_of: int | None = None) -> str:
        return self.identity_map.canonical(tenant_id, customer_id, as_of)

    def members(self, tenant_id: str, customer_id: str, as_of: int | None = None) -> list[str]:
        return self.identity_map.members(tenant_id, customer_id, as_of)

    def groups(
        self, tenant_id: str, customer_ids: Sequence[str], as_of: int | None = None
    ) -> dict[str, list[str]]:
        """Each customer id's members (canonical first), in one read of the identity map."""
        return self.identity_map.groups(tenant_id, customer_ids, as_of)

    def redirects(self, tenant_id: str) -> dict[str, str]:
        """Absorbed customer id -> the customer it stands for now (a customer never merged into
        another is absent: it stands for itself)."""
        return self.identity_map.redirects(tenant_id)

    def identity_version(self, tenant_id: str) -> int:
        return self.identity_map.version(tenant_id)

    def holders_of(self, tenant_id: str, kind: str, raw: str) -> tuple[str, ...]:
        """The customers holding an identifier, read as identity reads it (normalised by the
        tenant's rules); none when it is not a usable identifier."""
        found = normalise_one(kind, raw, self.rules.for_tenant(tenant_id))
        if isinstance(found, Rejected):
            return ()
        return self.state(tenant_id).claim(found).holders

    def filing_of(self, tenant_id: str, event_id: str) -> FiledTouchpoint | None:
        """The customer a touchpoint was filed under and the one it stands for now; None when
        this tenant has no touchpoint of that id filed (yet)."""
        state = self.state(tenant_id, filings=self.select_filings)
        filing = state.filing(event_id)
        if filing is None:
            return None
        ignored = tuple(IgnoredIdentifier(*note.rsplit(":", 1)) for note in filing.ignored)
        return FiledTouchpoint(event_id, filing.home_id, state.canonical(filing.home_id), ignored)

    def locate(self, tenant_id: str, requested: str) -> LocatedCustomer:
        """The customer an id stands for, with every member whose history is theirs, as of the
        current identity version. The id may be a customer's id (an absorbed one answers for its
        survivor) or any key of an identifier it holds (`cust-1`, `email:ana@x.io` ...).
        Raises CustomerNotFound, or AmbiguousCustomer when several customers hold the identifier."""
        return self.group_of(tenant_id, self._named(tenant_id, requested), requested)

    def customer_for(self, tenant_id: str, requested: str) -> str:
        """The customer a command names: the customer with this id, else the one customer holding
        the identifier the key names (several holders of one group: its canonical customer)."""
        named = self._named(tenant_id, requested)
        if len(named) == 1:
            return named[0]
        return self.group_of(tenant_id, named, requested).customer_id

    def _named(self, tenant_id: str, requested: str) -> tuple[str, ...]:
        """The customer with this id, else the holders of the identifier it is the key of."""
        state = self.state(tenant_id)
        found = state.find_customer(requested)
        if found is not None:
            return (found.customer_id,)
        identifier = identifier_of_key(requested, self.rules.for_tenant(tenant_id))
        return state.claim(identifier).holders if identifier else ()

    def group_of(
        self, tenant_id: str, customer_ids: Sequence[str], requested: str
    ) -> LocatedCustomer:
        """The one customer the given customer ids all stand for now (see `locate`)."""
        version = self.identity_version(tenant_id)
        canonical = sorted({self.canonical_id(tenant_id, c, version) for c in customer_ids})
        if not canonical:
            raise CustomerNotFound(requested)
        if len(canonical) > 1:
            raise AmbiguousCustomer(requested, canonical)
        members = self.members(tenant_id, canonical[0], version)
        return LocatedCustomer(requested, canonical[0], tuple(members), version)

    def _run(
        self,
        tenant_id: str,
        work: Callable[[IdentityState], T],
        conflicts: tuple[type[Exception], ...] = (IntegrityError,),
    ) -> T:
        """Run a command on fresh state and save its events; on a conflict, run it again."""
        for attempt in range(MAX_ATTEMPTS):
            with self._commands, _no_collection_pauses():
                state = self.state(
                    tenant_id,
                    reader=self.reader,
                    filings=self.select_filings,
                    slips=self.select_slips,
                )
                changed: list[Aggregate] = []
                try:
                    result = work(state)
                    changed = state.pending()
                    filings = state.new_filings()
                    if changed or filings:
                        naming = self._naming_record()
                        self.save(*naming, *changed, filings=filings, slips=state.new_slips())
                        self._naming_unsaved = False
                except conflicts:
                    # Another writer changed one of these aggregates first: its commit is visible
                    # now, and the retry reads it (what this attempt changed leaves the cache).
                    self._forget(changed)
                    if self._naming_unsaved:  # another replica may have recorded the naming
                        self.naming, self._naming_unsaved = self._index_naming(self._keyed)
                except BaseException:
                    self._forget(changed or state.pending())
                    raise
                else:
                    if self.cache is not None:
                        for aggregate in changed:
                            self.cache.put(aggregate)
                    # Freed now, before collection resumes: else its first pass walks them all.
                    del state, changed, filings
                    return result
            time.sleep(0.001 * attempt)
        raise IdentityBusy(f"gave up after {MAX_ATTEMPTS} conflicting attempts; retry later")

    def _naming_record(self) -> list[NamingChosen]:
        """The store's record of its keyed naming, with its first save only."""
        if not self._naming_unsaved:
            return []
        return [NamingChosen(KEYED, self.naming.check())]

    def _forget(self, changed: Sequence[Aggregate]) -> None:
        if self.cache is not None:
            self.cache.discard(a.id for a in changed)


@contextmanager
def _no_collection_pauses() -> Iterator[None]:
    """No automatic garbage collection during one attempt of a command.

    An attempt keeps thousands of objects alive until it ends (its aggregates, their pending
    events, the rows it saves); the collector takes them for long-lived and runs full collections
    over the whole heap every few batches, which took about a quarter of the time. Reference
    counting still frees everything; cycles wait until the attempt ends, when collection resumes
    and finds the attempt's objects freed already."""
    paused = gc.isenabled()
    if paused:
        gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()


def _evidence(
    touchpoint: Touchpoint, actor: str, normalised: Normalised, rules: TenantRules
) -> Evidence:
    at = touchpoint[3] if len(touchpoint) > 3 else None
    name = _name_of(touchpoint[4]) if len(touchpoint) > 4 else ""  # type: ignore[misc]
    # The subject the sealing publisher named from the same identifiers, normalised alike
    # (`cem.sealing.subject_function`): erasure needs to know who else used its key.
    subject = sealing_subject(normalised, rules)
    micros = to_micros(at) if at else 0
    return Evidence(str(touchpoint[1]), touchpoint[2], actor, micros, name, subject)


def _name_of(text: str) -> str:
    """`normalise_name`, remembered: a person's name comes again with each of their touchpoints."""
    if not text:
        return ""
    return _normalised_name(text) if isinstance(text, str) else normalise_name(text)


_normalised_name = lru_cache(maxsize=16_384)(normalise_name)


def _close_open_candidate(
    state: IdentityState, plan: MergePlan, merge_id: str, reason: str, actor: str
) -> None:
    pair = state.pair(plan.survivor_id, plan.absorbed_id)
    if pair is not None and pair.status == "open":
        pair.accept(merge_id=merge_id, reason=reason, actor=actor)


@dataclass(frozen=True)
class HouseholdLine:
    """A household's line a call came from alone, and the groups of the customers holding it."""

    line: Identifier
    holders: tuple[Group, ...]


def _household_lines(
    state: IdentityState, group: Group, rules: TenantRules
) -> list[tuple[Identifier, tuple[str, ...]]]:
    """The household lines (`policy.household_line`: fixed lines) the group's touchpoints were
    sealed under while carrying them alone (`carried_skipped`: filed apart, anyone at home may
    have called), with the canonical ids of the other customers holding each; none when the
    group holds an identifier of its own (not a call's customer), for a line shared by too many
    (saturated: more holders than the line's rule allows a household) or held by nobody else."""
    # A call's customer alone: not one holding identifiers, several calls a manager merged, or a
    # group an erasure touched (its evidence went with it).
    if group.identifiers or len(group.members) > 1:
        return []
    if erasure.erasure_touches(state, group.canonical_id):
        return []
    carried = {
        i
        for member in sorted(group.members)
        for i in state.customer(member).carried_skipped
        if household_line(i, rules)
    }
    found = []
    for line in sorted(carried, key=str):
        claim = state.claim(line)
        holders = sorted({state.canonical(h) for h in claim.holders} - {group.canonical_id})
        # not erased, nor kept apart from the call (a manager split an earlier naming back off)
        holders = [
            h
            for h in holders
            if not erasure.erasure_touches(state, h)
            and not state.kept_apart({group.canonical_id: group, h: state.group(h)})
        ]
        # saturated: held by more than the rule's `max_holders` (a switchboard's, not a home's)
        if holders and not claim.saturated:
            found.append((line, tuple(holders)))
    return found
