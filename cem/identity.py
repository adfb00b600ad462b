"""How the identity resolver is built: the store of the configured mode, the rules file, the
cache size. Called from the composition roots (`cem.bootstrap`, `cem.distributed`)."""

from __future__ import annotations

from cem.adapters.postgres_channels import PostgresChannelStore
from cem.adapters.postgres_identity_store import PostgresIdentityStore
from cem.adapters.sqlite_identity_store import SqliteIdentityStore
from kernel.opaque_ids import customer_id_key
from kernel.private_files import private_file
from kernel.secrets import key_file_sealed_before, platform_key
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


def shared_platform_key(settings: IdentitySettings) -> bytes:
    """The platform key customer ids derive from, the same on every replica: CEM_SECRET_KEY;
    unset, the key kept in PostgreSQL when distributed (the one channel secrets are sealed with
    then: never a host's own file, which replicas would not share), else the data directory's
    `secret.key`."""
    secret = settings.secret_key.get_secret_value() if settings.secret_key else None
    if secret or settings.mode != "distributed":
        return platform_key(settings.data_dir, secret)
    dsn = settings.postgres_dsn.get_secret_value()
    channels = PostgresChannelStore(dsn, first_key=key_file_sealed_before(settings.data_dir))
    try:
        return channels.shared_key()
    finally:
        channels.close()


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
