"""How the identity resolver is built: the store of the configured mode, the rules file, the
cache size. Called from the composition roots (`cem.bootstrap`, `cem.distributed`)."""

from __future__ import annotations

from cem.adapters.postgres_identity_store import PostgresIdentityStore
from cem.adapters.sqlite_identity_store import SqliteIdentityStore
from cem.platform_keys import shared_platform_key
from kernel.opaque_ids import customer_id_key
from kernel.private_files import private_file
from services.identity.ports import IdentityStore
from services.identity.resolver import IdentityResolver
from services.identity.rules import IdentityRules
from services.identity.settings import IdentitySettings, load_rules


def identity_store(settings: IdentitySettings) -> IdentityStore:
    """PostgreSQL when distributed (every replica shares it), else the data dir's SQLite file."""
    if settings.mode == "distributed":
        return PostgresIdentityStore(
            settings.postgres_dsn,
            settings.identity_postgres_schema,
            settings.identity_postgres_pool_size,
        )
    path = settings.sqlite_path()
    private_file(path)  # personal data: the owner's alone
    return SqliteIdentityStore(path)


def build_identity(
    settings: IdentitySettings, *, rules: IdentityRules | None = None
) -> IdentityResolver:
    """The identity resolver for the configured mode."""
    return IdentityResolver(
        identity_store(settings),
        rules or load_rules(settings),
        cache_size=settings.identity_cache_size,
        id_key=customer_id_key(shared_platform_key(settings)),
    )
