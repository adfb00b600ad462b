"""The identity store sealed at rest (CEM_SEAL_PERSONAL_DATA): the library's cipher encrypts every
stored event, what was filed reads back, and a store written in one form is refused in the other
at start, in one line, with nothing lost (`services.identity.at_rest`).

Another store joins by subclassing `SealingContract` with `open_store` (the adapter on one fresh
location, sealed under the key given, or in clear for None) and `stored_states` (the raw `state`
of every stored event there). SQLite runs here; PostgreSQL in
tests/integration/test_identity_postgres.py. The whole contract (`IdentityStoreContract`) also
runs on sealed stores: `TestSealedSqliteIdentityStore` in test_identity_store.py.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import SecretStr

from cem.adapters.sqlite_identity_store import SqliteIdentityStore
from cem.bootstrap import embedded_identity
from cem.identity import build_identity, identity_store
from cem.sealing import log_sealed
from kernel.secrets import new_key_text, platform_key
from kernel.settings import CoreSettings
from kernel.shredding import identity_store_key
from schemas.envelope import CustomerRef
from services.identity import IdentityResolver, IdentitySettings
from services.identity.at_rest import CIPHER_TOPIC, StoreSealingMismatch
from services.identity.ports import IdentityStore
from tests.contract.test_identity_store import ID_KEY, RULES

KEY = identity_store_key(b"the platform key of this contract")
OTHER_KEY = identity_store_key(b"another platform key altogether")
EMAIL, PHONE, NAME = "lucia.perez@gmail.com", "+34 617 34 56 78", "Lucía Pérez"
# Every form the store could keep them in: as sent, normalised (Gmail without its dots, E.164),
# and the name's words as identity records them.
CLEAR_FORMS = (
    b"lucia.perez@gmail.com",
    b"luciaperez@gmail.com",
    b"luciaperez",
    b"+34617345678",
    b"617345678",
    b"lucia",
    b"perez",
    "Pérez".encode(),
)
TENANT = "acme"

OpenStore = Callable[[bytes | None], IdentityStore]


def file_lucia(store: IdentityStore) -> str:
    """Lucía's first touchpoint (email, phone, name), filed; her customer id."""
    identity = IdentityResolver(store, RULES, id_key=ID_KEY)
    try:
        ref = CustomerRef(email=EMAIL, phone=PHONE)
        return identity.resolve(TENANT, ref, str(uuid.uuid4()), "http", name=NAME).customer_id
    finally:
        identity.close()


def _is_json(data: bytes) -> bool:
    """Whether the state is the library's JSON (in clear), not ciphertext."""
    try:
        json.loads(data)
    except ValueError:  # invalid JSON or bytes that are no UTF-8 text
        return False
    return True


def forms_in(data: bytes) -> list[bytes]:
    lowered = data.lower()
    return [form for form in CLEAR_FORMS if form.lower() in lowered]


class SealingContract:
    @pytest.fixture
    def open_store(self, tmp_path: Path) -> OpenStore:
        raise NotImplementedError

    @pytest.fixture
    def stored_states(self, tmp_path: Path) -> Callable[[], list[bytes]]:
        raise NotImplementedError

    def test_a_sealed_store_reads_back_what_it_filed(self, open_store: OpenStore) -> None:
        customer_id = file_lucia(open_store(KEY))
        identity = IdentityResolver(open_store(KEY), RULES, id_key=ID_KEY)
        try:
            again = identity.resolve(TENANT, CustomerRef(email=EMAIL), str(uuid.uuid4()), "http")
            held = {(i.kind, i.value) for i in identity.identities(TENANT, customer_id).identities}
        finally:
            identity.close()
        assert (again.customer_id, again.created) == (customer_id, False)
        assert held == {("email", "luciaperez@gmail.com"), ("phone", "+34617345678")}

    def test_no_stored_event_holds_an_identifier_or_a_name(
        self, open_store: OpenStore, stored_states: Callable[[], list[bytes]]
    ) -> None:
        file_lucia(open_store(KEY))
        states = stored_states()
        assert states, "Lucía's filing recorded events"
        assert [forms_in(s) for s in states if forms_in(s)] == []
        # Not "does not start with `{`": a ciphertext starts with its random nonce, whose first
        # byte is `{` once in 256 (a flaky failure every few dozen runs).
        assert not [s for s in states if _is_json(s)], "every state is ciphertext"

    def test_a_clear_store_is_refused_sealed_and_keeps_its_customers(
        self, open_store: OpenStore
    ) -> None:
        customer_id = file_lucia(open_store(None))
        with pytest.raises(StoreSealingMismatch) as refused:
            IdentityResolver(open_store(KEY), RULES, id_key=ID_KEY)
        assert "in clear but CEM_SEAL_PERSONAL_DATA is on" in str(refused.value)
        assert "\n" not in str(refused.value)
        assert file_lucia(open_store(None)) == customer_id  # opened as written: all there

    def test_a_sealed_store_is_refused_in_clear_and_keeps_its_customers(
        self, open_store: OpenStore
    ) -> None:
        customer_id = file_lucia(open_store(KEY))
        with pytest.raises(StoreSealingMismatch, match="sealed but CEM_SEAL_PERSONAL_DATA is off"):
            IdentityResolver(open_store(None), RULES, id_key=ID_KEY)
        assert file_lucia(open_store(KEY)) == customer_id

    def test_a_sealed_store_is_refused_under_another_key(self, open_store: OpenStore) -> None:
        customer_id = file_lucia(open_store(KEY))
        with pytest.raises(StoreSealingMismatch, match="sealed under another platform key"):
            IdentityResolver(open_store(OTHER_KEY), RULES, id_key=ID_KEY)
        assert file_lucia(open_store(KEY)) == customer_id

    def test_an_empty_store_opens_either_way(self, open_store: OpenStore) -> None:
        for key in (KEY, None, OTHER_KEY):
            IdentityResolver(open_store(key), RULES, id_key=ID_KEY).close()
        assert file_lucia(open_store(None))


class TestSealedSqlite(SealingContract):
    @pytest.fixture
    def open_store(self, tmp_path: Path) -> OpenStore:
        return lambda key: SqliteIdentityStore(tmp_path / "identity.sqlite", cipher_key=key)

    @pytest.fixture
    def stored_states(self, tmp_path: Path) -> Callable[[], list[bytes]]:
        def states() -> list[bytes]:
            with sqlite3.connect(tmp_path / "identity.sqlite") as db:
                return [bytes(row[0]) for row in db.execute("SELECT state FROM stored_events")]

        return states


def store_files(path: Path) -> tuple[bytes, bool]:
    """The SQLite file and its write-ahead log, as a byte search of the disk reads them, and
    whether there was a log."""
    wal = path.with_name(path.name + "-wal")
    return path.read_bytes() + (wal.read_bytes() if wal.exists() else b""), wal.exists()


def test_the_sqlite_files_hold_none_of_the_customers_identifiers_or_name(tmp_path: Path) -> None:
    """Byte search of the store's files while the resolver is open (recent commits in the -wal
    file) and after it closed: nothing in a sealed store; the same search finds them in a clear
    one, so it would see a leak. Nothing else in the file (the filings table) holds them either."""
    for key, where in ((KEY, "sealed"), (None, "clear")):
        path = tmp_path / where / "identity.sqlite"
        path.parent.mkdir()
        identity = IdentityResolver(SqliteIdentityStore(path, cipher_key=key), RULES, id_key=ID_KEY)
        try:
            ref = CustomerRef(email=EMAIL, phone=PHONE)
            identity.resolve(TENANT, ref, str(uuid.uuid4()), "http", name=NAME)
            while_open, had_wal = store_files(path)
        finally:
            identity.close()
        after_close, _ = store_files(path)
        assert had_wal
        if key is None:
            assert {b"luciaperez", b"+34617345678", b"lucia"} <= set(forms_in(after_close))
        else:
            assert (forms_in(while_open), forms_in(after_close)) == ([], [])


# how the setting reaches the store


def test_the_setting_seals_both_stores_under_a_key_derived_from_the_platform_key(
    tmp_path: Path,
) -> None:
    secret = SecretStr(new_key_text())
    clear = IdentitySettings(data_dir=tmp_path, secret_key=secret, seal_personal_data=False)
    sealed = IdentitySettings(data_dir=tmp_path, secret_key=secret, seal_personal_data=True)
    distributed = IdentitySettings(mode="distributed", secret_key=secret, seal_personal_data=True)
    assert "CIPHER_TOPIC" not in identity_store(clear).persistence_env()
    embedded_env = identity_store(sealed).persistence_env()
    assert embedded_env["CIPHER_TOPIC"] == CIPHER_TOPIC
    # One key from one platform key: every replica of the distributed mode derives the same.
    assert identity_store(distributed).persistence_env()["CIPHER_KEY"] == embedded_env["CIPHER_KEY"]
    other = IdentitySettings(
        data_dir=tmp_path, secret_key=SecretStr(new_key_text()), seal_personal_data=True
    )
    assert identity_store(other).persistence_env()["CIPHER_KEY"] != embedded_env["CIPHER_KEY"]
    assert "cipher_key" not in repr(identity_store(sealed))  # no key in a log line


def test_the_embedded_platform_passes_its_own_settings_to_the_identity_store(
    tmp_path: Path,
) -> None:
    settings = CoreSettings(data_dir=tmp_path, seal_personal_data=True)
    identity = embedded_identity(tmp_path, settings)
    try:
        assert identity.mapper.cipher is not None
        identity.resolve(TENANT, CustomerRef(email=EMAIL), str(uuid.uuid4()), "http")
    finally:
        identity.close()
    with pytest.raises(StoreSealingMismatch, match="is off"):
        embedded_identity(
            tmp_path, CoreSettings(data_dir=tmp_path, seal_personal_data=False)
        ).close()


def test_an_unset_setting_seals_a_new_store_and_keeps_an_old_clear_one_clear(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Sealing is the default since 2026-12-06: unset, a new store is sealed; a store written in
    clear before (when it was not) opens in clear with one warning instead of stopping the
    upgrade, and keeps its customers; set to true, the same store is refused as before."""
    secret = SecretStr(new_key_text())
    new, old = tmp_path / "new", tmp_path / "old"
    identity = embedded_identity(new, CoreSettings(data_dir=new, secret_key=secret))
    try:
        assert identity.mapper.cipher is not None
        identity.resolve(TENANT, CustomerRef(email=EMAIL), str(uuid.uuid4()), "http")
    finally:
        identity.close()
    was_clear = CoreSettings(data_dir=old, secret_key=secret, seal_personal_data=False)
    identity = embedded_identity(old, was_clear)
    try:
        customer_id = identity.resolve(TENANT, CustomerRef(email=EMAIL), "e1", "http").customer_id
    finally:
        identity.close()
    with caplog.at_level("WARNING", logger="cem.identity"):
        identity = embedded_identity(old, CoreSettings(data_dir=old, secret_key=secret))
    try:
        assert identity.mapper.cipher is None
        again = identity.resolve(TENANT, CustomerRef(email=EMAIL), "e2", "http")
        assert (again.customer_id, again.created) == (customer_id, False)
    finally:
        identity.close()
    warnings = [r.getMessage() for r in caplog.records if r.name == "cem.identity"]
    assert len(warnings) == 1 and "holds its events in clear" in warnings[0]
    # An erasure's answer says the log is not sealed there: its older events are in clear (a
    # review found `log_sealed: true` on such a directory, and a replay brought them back).
    assert not log_sealed(CoreSettings(data_dir=old, secret_key=secret), identity)
    caplog.clear()
    with caplog.at_level("WARNING", logger="cem.identity"):  # the filing process: said once
        quiet = build_identity(
            IdentitySettings(mode="embedded", data_dir=old, secret_key=secret), warn=False
        )
    quiet.close()
    assert not [r for r in caplog.records if r.name == "cem.identity"]
    asked = CoreSettings(data_dir=old, secret_key=secret, seal_personal_data=True)
    with pytest.raises(StoreSealingMismatch, match="in clear but CEM_SEAL_PERSONAL_DATA is on"):
        embedded_identity(old, asked).close()
    # The new store stays sealed when the setting is left unset: an unset setting never opens a
    # sealed store in clear.
    identity = embedded_identity(new, CoreSettings(data_dir=new, secret_key=secret))
    try:
        assert identity.mapper.cipher is not None
        assert log_sealed(CoreSettings(data_dir=new, secret_key=secret), identity)
        turned_off = CoreSettings(data_dir=new, secret_key=secret, seal_personal_data=False)
        assert not log_sealed(turned_off, identity)
    finally:
        identity.close()
    assert log_sealed(CoreSettings(data_dir=new), None)  # no identity store: the setting says


def test_a_store_written_both_ways_says_so_in_one_line(tmp_path: Path) -> None:
    """Two replicas that opened an empty store with different settings leave clear events first
    and sealed ones last: with the setting unset, the refusal says what happened, not "set it
    to true" (which the first events refuse too)."""
    secret = SecretStr(new_key_text())
    key = identity_store_key(platform_key(tmp_path, secret.get_secret_value()))
    path, other = tmp_path / "identity.sqlite", tmp_path / "other" / "identity.sqlite"
    other.parent.mkdir()
    for where, cipher_key in ((path, None), (other, key)):
        identity = IdentityResolver(
            SqliteIdentityStore(where, cipher_key=cipher_key), RULES, id_key=ID_KEY
        )
        try:
            identity.resolve(TENANT, CustomerRef(email=EMAIL), str(uuid.uuid4()), "http")
        finally:
            identity.close()
    # The sealed store's events written after the clear ones (their aggregates are the same
    # ids under the same naming key: renamed, as another replica's customers would be).
    with sqlite3.connect(path) as db, sqlite3.connect(other) as sealed:
        rows = sealed.execute("SELECT topic, state FROM stored_events").fetchall()
        db.executemany(
            "INSERT INTO stored_events (originator_id, originator_version, topic, state) "
            "VALUES (?, 1, ?, ?)",
            [(uuid.uuid4().hex, topic, state) for topic, state in rows],
        )
    with pytest.raises(StoreSealingMismatch) as refused:
        embedded_identity(tmp_path, CoreSettings(data_dir=tmp_path, secret_key=secret))
    assert "holds events both in clear and sealed" in str(refused.value)
    assert "\n" not in str(refused.value)
