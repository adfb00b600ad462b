"""`cem migrate-ids --into NEW`: an embedded data directory whose customers had readable ids
(`email:maria@…`) becomes a new one whose customers have opaque ids (`kernel.opaque_ids`).

Readable ids live in the identity store, in every filing and in every table, so no table can be
patched in place: the touchpoints are what the platform was told, and filing them again with the
new naming rebuilds the rest, as a replay would. The command copies the touchpoints (re-keyed:
their keys held the readable customer key too) and the stores that hold no customer ids (keys,
people's accounts, channels, the platform key, so the ids derive under the same key) into `NEW`;
`cem up --data-dir NEW` then files and projects them. The old directory is left as it was, a
backup until the new one is checked.

What is not carried over: filings, the identity store and the tables, rebuilt from the
touchpoints; so merges, splits, unlinks and candidate decisions people made by hand are lost and
must be made again (the command says how many identity events the old store had), and the
access audit, whose entries name customers by the old ids, stays in the old directory.
"""

from __future__ import annotations

import argparse
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cem import data_dir
from cem.adapters.sqlite_identity_store import SqliteIdentityStore
from cem.adapters.sqlite_log import SqliteLog
from cem.cli_errors import CliError
from kernel.customer_key import customer_key
from kernel.partitioning import touchpoint_key
from kernel.ports import TOUCHPOINTS_TOPIC, Consumed, Record
from kernel.secrets import KEY_FILE
from schemas.validate import decode
from services.identity.resolver import IdentityResolver

# Stores without customer ids, copied as they are.
COPIED = ("keys.sqlite", "users.sqlite", "channels.sqlite", KEY_FILE)
CHUNK = 5000


@dataclass(frozen=True)
class Migration:
    touchpoints: int
    undecodable: int  # kept with their old key: the filing stage dead-letters them as before
    identity_events: int  # in the old identity store: hand-made merges and splits among them


def migrate(old: Path, new: Path) -> Migration:
    """Copy `old`'s touchpoints, re-keyed, and its stores without customer ids into `new`."""
    if not (old / "log.sqlite").exists():
        raise CliError(f"no event log in {old}")
    if new.exists() and any(new.iterdir()):
        raise CliError(f"{new} is not empty: migrate into a new directory")
    new.mkdir(parents=True, exist_ok=True)
    new.chmod(0o700)
    for name in COPIED:
        if (old / name).exists():
            shutil.copy2(old / name, new / name)
    copied, undecodable = _copy_touchpoints(old / "log.sqlite", new / "log.sqlite")
    return Migration(copied, undecodable, _identity_events(old / "identity.sqlite"))


def _copy_touchpoints(old_log: Path, new_log: Path) -> tuple[int, int]:
    """Every touchpoint, each partition in order (one customer's are in one partition, so they
    keep their order), read as `cem replay` reads: by a group of its own."""
    source, target = SqliteLog(old_log), SqliteLog(new_log)
    group, copied, undecodable = f"migrate-ids-{uuid.uuid4().hex[:8]}", 0, 0
    try:
        end = source.end_offsets(TOUCHPOINTS_TOPIC)
        while any(source.committed(TOUCHPOINTS_TOPIC, group).get(p, 0) < e for p, e in end.items()):
            batch = source.poll(TOUCHPOINTS_TOPIC, group, CHUNK, 0.0)
            rekeyed = [_rekeyed(r) for r in batch]
            undecodable += sum(not decoded for decoded, _ in rekeyed)
            records = [record for _, record in rekeyed]
            target.append(TOUCHPOINTS_TOPIC, records)
            source.commit(TOUCHPOINTS_TOPIC, group, _next_offsets(batch))
            copied += len(records)
    finally:
        source.close()
        target.close()
    return copied, undecodable


def _next_offsets(batch: list[Consumed]) -> dict[int, int]:
    offsets: dict[int, int] = {}
    for record in batch:
        offsets[record.partition] = max(offsets.get(record.partition, 0), record.offset + 1)
    return offsets


def _rekeyed(record: Consumed) -> tuple[bool, Record]:
    """Whether the record decodes, and the record with the key ingest gives it now; its old key
    when its value does not decode (the filing stage dead-letters it, as before)."""
    try:
        event = decode(record.value)
    except ValueError:
        return False, Record(record.key, record.value, record.headers)
    key = touchpoint_key(event.tenant_id, customer_key(event.customer))
    return True, Record(key, record.value, record.headers)


def _identity_events(path: Path) -> int:
    if not path.exists():
        return 0
    identity = IdentityResolver(SqliteIdentityStore(path))
    try:
        return identity.recorder.max_notification_id() or 0
    finally:
        identity.close()


def _run(args: argparse.Namespace) -> int:
    state = data_dir.prepare(args.data_dir)
    new = Path(args.into)
    if new.resolve() == state.path.resolve():
        raise CliError("migrate into a new directory, not the one being migrated")
    with data_dir.exclusive(state.path):
        state.announce()
        done = migrate(state.path, new)
    print(f"copied {done.touchpoints} touchpoints into {new}")
    if done.undecodable:
        print(f"{done.undecodable} of them do not decode and will be dead-lettered as before")
    print(f"now run `cem up --data-dir {new}`: it files them with opaque customer ids")
    if done.identity_events:
        print(
            f"the old identity store held {done.identity_events} identity events: merges, splits "
            "and unlinks made by hand are not carried over; make them again in the new one"
        )
    return 0


def add_commands(sub: Any, command: Any) -> None:
    parser = command(sub, "migrate-ids", "re-file an embedded data directory with opaque ids")
    parser.add_argument("--data-dir", default=None, help="the directory to migrate")
    parser.add_argument("--into", required=True, help="a new, empty data directory")
    parser.set_defaults(func=_run)
