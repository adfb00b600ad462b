"""How the identity resolver is built: the store of the configured mode, the rules file, the
cache size. Called from the composition roots (`cem.bootstrap`, `cem.distributed`)."""

from __future__ import annotations

import logging

from cem.adapters.postgres_identity_store import PostgresIdentityStore
from cem.adapters.sqlite_identity_store import SqliteIdentityStore
from cem.platform_keys import shared_platform_key
from kernel.opaque_ids import customer_id_key
from kernel.private_files import private_file
from kernel.shredding import identity_store_key
from services.identity.at_rest import StoreHeldInClear, StoreSealingMismatch
from services.identity.ports import IdentityStore
from services.identity.resolver import IdentityResolver
from services.identity.rules import IdentityRules
from services.identity.settings import IdentitySettings, load_rules

log = logging.getLogger(__name__)


def identity_store(
    settings: IdentitySettings, platform_key: bytes | None = None, *, sealed: bool | None = None
) -> IdentityStore:
    """PostgreSQL when distributed (every replica shares it), else the data dir's SQLite file;
    sealed (`sealed`, else the settings' `sealing`), its events under a key derived from the
    platform key (`platform_key`, else the one `shared_platform_key` finds: the same on every
    replica)."""
    cipher_key = None
    if settings.sealing if sealed is None else sealed:
        cipher_key = identity_store_key(platform_key or shared_platform_key(settings))
    if settings.mode == "distributed":
        return PostgresIdentityStore(
            settings.postgres_dsn,
            settings.identity_postgres_schema,
            settings.identity_postgres_pool_size,
            cipher_key=cipher_key,
        )
    path = settings.sqlite_path()
    private_file(path)  # personal data: the owner's alone
    return SqliteIdentityStore(path, cipher_key=cipher_key)


def build_identity(
    settings: IdentitySettings, *, rules: IdentityRules | None = None, warn: bool = True
) -> IdentityResolver:
    """The identity resolver for the configured mode.

    Sealed unless CEM_SEAL_PERSONAL_DATA=false; with the setting unset, a store that already
    holds its events in clear (written before sealing became the default) is opened in clear, as
    it was written (a store is one or the other from its first event; embedded, `cem migrate-ids
    --into` copies it into a new, sealed one). `warn`: say so in the log (the embedded filing
    process does not: its parent, on the same store, said it already)."""
    key = shared_platform_key(settings)

    def resolver(sealed: bool) -> IdentityResolver:
        return IdentityResolver(
            identity_store(settings, key, sealed=sealed),
            rules or load_rules(settings),
            cache_size=settings.identity_cache_size,
            id_key=customer_id_key(key),
        )

    try:
        return resolver(settings.sealing)
    except StoreHeldInClear:
        if settings.seal_personal_data is not None:  # asked for explicitly: refused, one line
            raise
    try:
        kept = resolver(False)
    except StoreSealingMismatch:  # one of its ends in clear, the other sealed
        raise StoreSealingMismatch(
            "the identity store holds events both in clear and sealed "
            "(replicas started with different CEM_SEAL_PERSONAL_DATA on an empty store?): "
            "neither setting reads it; restore it from a backup taken before"
        ) from None
    if warn:
        log.warning(
            "the identity store holds its events in clear (written before sealing became the "
            "default): it stays in clear, and so do the log's older events, while new events are "
            "sealed; to keep it so and say it, set CEM_SEAL_PERSONAL_DATA=false (embedded: `cem "
            "migrate-ids --into NEW` copies it into a sealed store, without hand-made changes)"
        )
    return kept
