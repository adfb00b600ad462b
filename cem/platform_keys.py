"""The keys derived from the platform key that every replica must share: customer ids
(`kernel.opaque_ids.customer_id_key`) and touchpoint buckets
(`kernel.partitioning.touchpoint_bucket_key`). Called from the composition roots."""

from __future__ import annotations

from cem.adapters.postgres_channels import PostgresChannelStore
from kernel.partitioning import touchpoint_bucket_key
from kernel.secrets import key_file_sealed_before, platform_key
from kernel.settings import CoreSettings


def local_platform_key(settings: CoreSettings) -> bytes:
    """CEM_SECRET_KEY, else the data directory's `secret.key` (made on first use): an embedded
    platform's key, whatever the mode setting says."""
    return platform_key(settings.data_dir, _secret_text(settings))


def _secret_text(settings: CoreSettings) -> str | None:
    return settings.secret_key.get_secret_value() if settings.secret_key else None


def shared_platform_key(settings: CoreSettings) -> bytes:
    """The platform key other keys derive from, the same on every replica: CEM_SECRET_KEY;
    unset, the key kept in PostgreSQL when distributed (the one channel secrets are sealed with
    then: never a host's own file, which replicas would not share), else the data directory's
    `secret.key`."""
    if settings.mode != "distributed" or _secret_text(settings):
        return local_platform_key(settings)
    dsn = settings.postgres_dsn.get_secret_value()
    channels = PostgresChannelStore(dsn, first_key=key_file_sealed_before(settings.data_dir))
    try:
        return channels.shared_key()
    finally:
        channels.close()


def shared_bucket_key(settings: CoreSettings) -> bytes:
    """The key every producer of touchpoints buckets record keys with (`touchpoint_key`)."""
    return touchpoint_bucket_key(shared_platform_key(settings))
