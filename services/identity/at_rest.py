"""The identity store's events at rest: in clear, or sealed as a whole by the library's cipher.

With personal data sealed (the default; `CEM_SEAL_PERSONAL_DATA=false` turns it off), the
composition root gives the store adapter a key
(`kernel.shredding.identity_store_key`) and the adapter adds the library's cipher settings
(`cipher_env`): every stored event and snapshot is AES-256-GCM ciphertext (nonce, tag, then the
JSON the library would have stored), so the identifiers, names and reasons in the aggregates'
events are no longer readable in the store's files. What stays readable is listed in
docs/erasure.md (the aggregate ids, the topics, the filings table).

A store is sealed or clear from its first event: the library reads whatever it finds with the
mapper it was given, and a mismatch would surface in the middle of filing as a deserialisation
traceback. `check_readable` refuses such a store at start instead, with one line naming the
setting. Converting a store from one form to the other is not built.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from eventsourcing.persistence import ApplicationRecorder, Mapper, StoredEvent

CIPHER_TOPIC = "eventsourcing.cryptography:AESCipher"
SETTING = "CEM_SEAL_PERSONAL_DATA"


class StoreSealingMismatch(ValueError):
    """The identity store was written sealed and is opened in clear, or the reverse, or sealed
    under another key. A ValueError: a setting to correct, reported in one line."""


class StoreHeldInClear(StoreSealingMismatch):
    """The identity store holds its events in clear and is opened sealed."""


class StoreNamingMismatch(ValueError):
    """The identity store names its identifiers under a key (`domain.IndexNaming`) and is opened
    with another one, or with none. A ValueError: a setting to correct, reported in one line."""


def cipher_env(cipher_key: bytes | None) -> dict[str, str]:
    """The library's settings sealing stored events and snapshots under `cipher_key` (AES-GCM,
    `cryptography`); none: stored in clear."""
    if cipher_key is None:
        return {}
    return {"CIPHER_TOPIC": CIPHER_TOPIC, "CIPHER_KEY": base64.b64encode(cipher_key).decode()}


def check_readable(recorder: ApplicationRecorder, mapper: Mapper[Any]) -> None:
    """Refuse a store whose first or last event this mapper cannot read (an empty one is fine).
    Both ends: two replicas that started on an empty store with different settings leave a store
    that one of them, at least, refuses at its next start."""
    last = recorder.max_notification_id()
    if last is None:
        return
    ends = [*recorder.select_notifications(None, 1), *recorder.select_notifications(last, 1)]
    for stored in ends:
        _check(stored, mapper)


def _check(stored: StoredEvent, mapper: Mapper[Any]) -> None:
    # Only the bytes: whether the topic still names a class is the library's business (an older
    # store's first event may be of a class long gone, read by the adapters' own SQL).
    if mapper.cipher is None:
        if _is_json(stored.state):
            return
        raise StoreSealingMismatch(
            f"the identity store is sealed but {SETTING} is off: set {SETTING}=true, with the "
            "platform key it was sealed under"
        )
    try:
        mapper.cipher.decrypt(stored.state)
        return
    except ValueError:  # what the library's AESCipher raises for a tag that does not verify
        clear = _is_json(stored.state)
    if clear:
        raise StoreHeldInClear(
            f"the identity store holds its events in clear but {SETTING} is on: unset it or set "
            "it to false for this store (embedded, `cem migrate-ids --into NEW` copies it into "
            "a sealed one, without hand-made changes)"
        )
    raise StoreSealingMismatch(
        "the identity store is sealed under another platform key (CEM_SECRET_KEY or the "
        "data directory's secret.key changed?): start with the key it was sealed under"
    )


def _is_json(state: bytes) -> bool:
    # What the library's JSON transcoder writes (no compressor: the adapters name none, and the
    # process environment is not read). Ciphertext is random bytes, a nonce first, which
    # practically never decode as UTF-8 JSON.
    try:
        json.loads(state)
    except ValueError:
        return False
    return True
