"""How the identity resolver is built: the store of the configured mode, the rules file, the
cache size. Called from the composition roots (`cem.bootstrap`, `cem.distributed`)."""

from __future__ import annotations

from cem.adapters.postgres_identity_store import PostgresIdentityStore
from cem.adapters.sqlite_identity_store import SqliteIdentityStore
from cem.platform_keys import shared_platform_key
from kernel.opaque_ids import customer_id_key
from kernel.private_files import private_file
from kernel.shredding import identity_store_key
from services.identity.ports import IdentityStore
from services.identity.resolver import IdentityResolver
from services.identity.rules import IdentityRules
from services.identity.settings import IdentitySettings, load_rules


def identity_store(settings: IdentitySettings, platform_key: bytes | None = None) -> IdentityStore:
    """PostgreSQL when distributed (every replica shares it), else the data dir's SQLite file;
    with CEM_SEAL_PERSONAL_DATA, its events sealed under a key derived from the platform key
    (`platform_key`, else the one `shared_platform_key` finds: the same on every replica)."""
    cipher_key = None
    if settings.seal_personal_data:
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
    settings: IdentitySettings, *, rules: IdentityRules | None = None
) -> IdentityResolver:
    """The identity resolver for the configured mode."""
    key = shared_platform_key(settings)
    return IdentityResolver(
        identity_store(settings, key),
        rules or load_rules(settings),
        cache_size=settings.identity_cache_size,
        id_key=customer_id_key(key),
    )
