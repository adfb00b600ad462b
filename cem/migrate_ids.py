"""`cem migrate-ids --into NEW`: an embedded data directory whose customers had readable ids
(`email:maria@…`) becomes a new one whose customers have opaque ids (`kernel.opaque_ids`).

Readable ids live in the identity store, in every filing and in every table, so no table can be
patched in place: the touchpoints are what the platform was told, and filing them again with the
new naming rebuilds the rest, as a replay would. The command copies the touchpoints (re-keyed:
their keys held the readable customer key too) and the stores that hold no customer ids (keys,
people's accounts, channels, the platform key, so the ids derive under the same key, and the key
vault, whose data keys open the touchpoints sealed with `CEM_SEAL_PERSONAL_DATA`) into `NEW`;
`cem up --data-dir NEW` then files and projects them. The old directory is left as it was (its
SQLite files are opened read-only), a backup until the new one is checked; `NEW` appears only
once complete (the copy is made beside it and renamed).

What is not carried over: filings, the identity store and the tables, rebuilt from the
touchpoints; so merges, splits, unlinks and candidate decisions people made by hand are lost and
must be made again (the command counts them, by kind), and the
access audit, whose entries name customers by the old ids, stays in the old directory.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from cem import data_dir
from cem.adapters.sqlite_log import SqliteLog
from cem.adapters.sqlite_snapshot import backup, events_by_topic, log_records
from cem.adapters.sqlite_vault import VAULT_FILE, SqliteKeyVault
from cem.cli_errors import CliError
from cem.sealing import NEVER_SEALED, LazyVault, default_rules, subject_function
from kernel.customer_key import customer_key
from kernel.partitioning import touchpoint_bucket_key, touchpoint_key
from kernel.ports import TOUCHPOINTS_TOPIC, Record
from kernel.sealing import EventOpener, EventSealer, KeyCache, decode_opened, maybe_sealed
from kernel.secrets import KEY_FILE, platform_key
from kernel.settings import CoreSettings
from services.identity.changes import SYSTEM_ACTOR

# Stores without customer ids, copied as they are: SQLite ones through SQLite (their recent
# commits may still be in a -wal file beside them), the key file as a file.
COPIED_STORES = ("keys.sqlite", "users.sqlite", "channels.sqlite", VAULT_FILE)
COPIED_FILES = (KEY_FILE,)
CHUNK = 5000
# The identity store's events table (the library's default name) and the events people make by
# hand, by their stored topics' class names: merges, splits, unlinks and candidate decisions.
EVENTS_TABLE = "stored_events"
HAND_MADE = {
    "Customer.CustomersMerged": "merges",
    "Customer.CustomersSplit": "splits",
    "Customer.IdentifierUnlinked": "unlinks",
    "MergeCandidate.Accepted": "candidate decisions",
    "MergeCandidate.Rejected": "candidate decisions",
    "MergeCandidate.Separated": "candidate decisions",
}
_BUCKET = re.compile(rb"[^/]*/[0-9a-f]{4}")


@dataclass(frozen=True)
class Migration:
    touchpoints: int
    undecodable: int  # kept with a bucketed old key: the filing stage dead-letters them as before
    # Identity events people made by hand in the old store, by kind (`HAND_MADE`); not carried.
    hand_made: dict[str, int] = field(default_factory=dict)
    sealed: int = 0  # touchpoints copied in clear from the old log and sealed on the way


def migrate(old: Path, new: Path, secret_key: str | None = None, *, seal: bool = True) -> Migration:
    """Copy `old`'s touchpoints, re-keyed, and its stores without customer ids into `new`.

    `old` is only read (every SQLite file opened read-only). The copy is made in a staging
    directory beside `new`, renamed to `new` once complete: a crash leaves no partial `new`.
    The touchpoints are keyed with the bucket key `new` will ingest with: derived from
    `secret_key` (CEM_SECRET_KEY) when given, else from the key file copied from `old` (made in
    `new` when `old` had none, the one `cem up --data-dir NEW` then uses). With `seal` (personal
    data sealed, the default), a touchpoint the old log holds in clear is sealed on the way, as
    ingest seals, so that `new` holds no clear personal data and an erasure there holds through
    a replay (a review: the copy kept them clear while an erasure answered `log_sealed: true`)."""
    if not (old / "log.sqlite").exists():
        raise CliError(f"no event log in {old}")
    if new.exists():
        raise CliError(f"{new} exists: migrate into a new directory")
    staging = new.with_name(f".{new.name}.migrating")
    if staging.exists():
        shutil.rmtree(staging)  # what a crashed migration left
    staging.mkdir(parents=True)
    staging.chmod(0o700)
    for name in COPIED_STORES:
        if (old / name).exists():
            backup(old / name, staging / name)
    for name in COPIED_FILES:
        if (old / name).exists():
            shutil.copy2(old / name, staging / name)
    key = platform_key(staging, secret_key)
    # Sealed touchpoints are opened (with the vault's copy: the old one is only read) to name
    # their customer; they are copied sealed, as they were.
    opener = EventOpener(LazyVault(lambda: SqliteKeyVault(staging / VAULT_FILE, key)), KeyCache())
    vault = SqliteKeyVault(staging / VAULT_FILE, key) if seal else None
    sealer = None
    if vault is not None:
        sealer = EventSealer(vault, key, subject_function(default_rules), KeyCache(), NEVER_SEALED)
    try:
        copied, undecodable, sealed = _copy_touchpoints(
            old / "log.sqlite", staging / "log.sqlite", touchpoint_bucket_key(key), opener, sealer
        )
    finally:
        opener.close()
        if vault is not None:
            vault.close()
    hand_made = _hand_made(old / "identity.sqlite")
    _sync_dir(staging)
    staging.rename(new)
    _sync_dir(new.parent)
    return Migration(copied, undecodable, hand_made, sealed)


def _copy_touchpoints(
    old_log: Path, new_log: Path, bucket_key: bytes, opener: EventOpener, sealer: EventSealer | None
) -> tuple[int, int, int]:
    """Every touchpoint, each partition in order (one customer's are in one partition, so they
    keep their order), read without writing the old log (no consumer group is committed); with
    `sealer`, the clear ones that decode sealed on the way. How many were copied, did not
    decode, and were sealed."""
    target, copied, undecodable, sealed = SqliteLog(new_log), 0, 0, 0
    try:
        for batch in log_records(old_log, TOUCHPOINTS_TOPIC, CHUNK):
            rekeyed = [_rekeyed(r.key, r.value, r.headers, bucket_key, opener) for r in batch]
            undecodable += sum(not decoded for decoded, _ in rekeyed)
            records = [record for _, record in rekeyed]
            if sealer is not None:
                clear = [i for i, (decoded, r) in enumerate(rekeyed)
                         if decoded and not maybe_sealed(r.value)]  # fmt: skip
                values = sealer.seal_values([records[i].value for i in clear])
                for i, value in zip(clear, values, strict=True):
                    records[i] = replace(records[i], value=value)
                sealed += len(clear)
            target.append(TOUCHPOINTS_TOPIC, records)
            copied += len(rekeyed)
    finally:
        target.close()
    return copied, undecodable, sealed


def _rekeyed(
    key: bytes,
    value: bytes,
    headers: tuple[tuple[str, bytes], ...],
    bucket_key: bytes,
    opener: EventOpener,
) -> tuple[bool, Record]:
    """Whether the record decodes, and the record with the key ingest gives it now; when its
    value does not decode (the filing stage dead-letters it, as before), its old key bucketed
    the same way: the old key may be readable (`acme/email:maria@...`)."""
    try:
        event = decode_opened(value, opener)
    except ValueError:
        return False, Record(_bucketed(bytes(key), bucket_key), value, headers)
    return True, Record(
        touchpoint_key(bucket_key, event.tenant_id, customer_key(event.customer)), value, headers
    )


def _bucketed(key: bytes, bucket_key: bytes) -> bytes:
    if _BUCKET.fullmatch(key):
        return key  # bucketed already (by this or an earlier release: no identifier either way)
    tenant, _, rest = key.decode(errors="replace").partition("/")
    return touchpoint_key(bucket_key, tenant, rest)


def _hand_made(path: Path) -> dict[str, int]:
    """The old identity store's hand-made events by kind (an actor other than the resolver)."""
    if not path.exists():
        return {}
    counts: dict[str, int] = {}
    for name, count in events_by_topic(path, EVENTS_TABLE, HAND_MADE, SYSTEM_ACTOR).items():
        counts[HAND_MADE[name]] = counts.get(HAND_MADE[name], 0) + count
    return counts


def _sync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _run(args: argparse.Namespace) -> int:
    found = data_dir.resolve(args.data_dir)
    if not (found.path / "log.sqlite").exists():  # checked before a directory is made for it
        raise CliError(f"no event log in {found.path} (from {found.source})")
    state = data_dir.prepare(args.data_dir)
    new = Path(args.into)
    if new.resolve() == state.path.resolve():
        raise CliError("migrate into a new directory, not the one being migrated")
    with data_dir.exclusive(state.path):
        state.announce()
        done = migrate(state.path, new, _secret_key(), seal=CoreSettings().sealing)
    print(f"copied {done.touchpoints} touchpoints into {new}")
    if done.sealed:
        print(f"{done.sealed} of them were in clear and are sealed in the copy")
    if done.undecodable:
        print(f"{done.undecodable} of them do not decode and will be dead-lettered as before")
    print(f"now run `cem up --data-dir {new}`: it files them with opaque customer ids")
    if done.hand_made:
        made = ", ".join(f"{count} {kind}" for kind, count in sorted(done.hand_made.items()))
        print(
            f"made by hand in the old identity store and not carried over: {made}; "
            "make them again in the new one"
        )
    return 0


def _secret_key() -> str | None:
    settings = CoreSettings()
    return settings.secret_key.get_secret_value() if settings.secret_key else None


def add_commands(sub: Any, command: Any) -> None:
    parser = command(sub, "migrate-ids", "re-file an embedded data directory with opaque ids")
    parser.add_argument("--data-dir", default=None, help="the directory to migrate")
    parser.add_argument("--into", required=True, help="a data directory that does not exist yet")
    parser.set_defaults(func=_run)
