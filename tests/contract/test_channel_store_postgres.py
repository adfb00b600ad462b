"""The ChannelStore contract on a real PostgreSQL server (the distributed mode's store)."""

from __future__ import annotations

import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from cem.adapters.postgres_channels import PostgresChannelStore
from kernel.channels import ChannelStore
from kernel.secrets import SecretKeyError
from tests.contract.test_channel_store import ChannelStoreContract, box

pytestmark = pytest.mark.postgres


class TestPostgresChannelStore(ChannelStoreContract):
    @pytest.fixture(autouse=True)
    def _server(self, postgres_dsn: str) -> None:
        self.dsn = postgres_dsn

    def make_store(self, tmp_path: Path) -> ChannelStore:
        return PostgresChannelStore(self.dsn, box())

    def stored_bytes(self, store: ChannelStore) -> bytes:
        assert isinstance(store, PostgresChannelStore)
        with store.db.transaction() as cursor:
            rows = cursor.execute("SELECT row_to_json(c)::text FROM channels AS c").fetchall()
            letters = cursor.execute("SELECT body FROM webhook_dead_letters").fetchall()
        return "\n".join(row[0] for row in rows).encode() + b"".join(bytes(r[0]) for r in letters)


def test_replicas_without_a_platform_key_share_the_one_kept_in_postgresql(
    postgres_dsn: str,
) -> None:
    # Two replicas (or an admin's `cem channels add` and an ingest on another host) with no
    # CEM_SECRET_KEY: what one seals the other opens, and the table holds no secret in clear.
    first, second = PostgresChannelStore(postgres_dsn), PostgresChannelStore(postgres_dsn)
    try:
        channel = first.add("acme", "twilio", "s3cret-auth-token-0123456789")
        assert second.secret(channel.channel_id) == "s3cret-auth-token-0123456789"
        with first.db.transaction() as cursor:
            row = cursor.execute(
                "SELECT sealed_secret FROM channels WHERE channel_id = %s", (channel.channel_id,)
            ).fetchone()
        assert row is not None and b"s3cret-auth-token" not in bytes(row[0])
        # A store given a platform key does not open what the shared key sealed (and says so).
        keyed = PostgresChannelStore(postgres_dsn, box())
        try:
            with pytest.raises(SecretKeyError, match="does not open"):
                keyed.secret(channel.channel_id)
        finally:
            keyed.close()
    finally:
        first.close()
        second.close()


def test_secrets_sealed_with_a_hosts_key_file_before_still_open(
    postgres_dsn: str, tmp_path: Path
) -> None:
    # Before the shared key, a distributed replica without CEM_SECRET_KEY sealed with its data
    # directory's secret.key; the first replica to ask now offers that key as the shared one.
    import psycopg
    from pydantic import SecretStr

    from cem.distributed import channels_from_settings
    from kernel.secrets import SecretBox, platform_key
    from kernel.settings import CoreSettings

    database = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_dsn, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{database}"')
    dsn = urlunsplit(urlsplit(postgres_dsn)._replace(path=f"/{database}"))
    data_dir = tmp_path / "data"
    before = PostgresChannelStore(dsn, SecretBox(platform_key(data_dir)))  # makes secret.key
    channel = before.add("acme", "twilio", "s3cret-auth-token-0123456789")
    before.close()
    settings = CoreSettings(mode="distributed", data_dir=data_dir, postgres_dsn=SecretStr(dsn))
    after = channels_from_settings(settings)
    try:
        assert after.secret(channel.channel_id) == "s3cret-auth-token-0123456789"
        replica = PostgresChannelStore(dsn)  # another host, without the old file
        assert replica.secret(channel.channel_id) == "s3cret-auth-token-0123456789"
        replica.close()
    finally:
        after.close()


def test_identity_asking_first_for_the_shared_key_offers_the_hosts_key_file_too(
    postgres_dsn: str, tmp_path: Path
) -> None:
    # The identity worker derives customer ids from the same shared key; when it is the first to
    # ask, the secrets sealed with the host's key file before must still open afterwards.
    import psycopg
    from pydantic import SecretStr

    from cem.distributed import channels_from_settings
    from cem.platform_keys import shared_bucket_key, shared_platform_key
    from kernel.partitioning import touchpoint_bucket_key
    from kernel.secrets import SecretBox, platform_key
    from services.identity.settings import IdentitySettings

    database = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_dsn, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{database}"')
    dsn = urlunsplit(urlsplit(postgres_dsn)._replace(path=f"/{database}"))
    data_dir = tmp_path / "data"
    host_key = platform_key(data_dir)  # makes secret.key
    before = PostgresChannelStore(dsn, SecretBox(host_key))
    channel = before.add("acme", "twilio", "s3cret-auth-token-0123456789")
    before.close()
    settings = IdentitySettings(mode="distributed", data_dir=data_dir, postgres_dsn=SecretStr(dsn))
    assert shared_platform_key(settings) == host_key
    # Touchpoint buckets derive from that same key, under their own label.
    assert shared_bucket_key(settings) == touchpoint_bucket_key(host_key) != host_key
    after = channels_from_settings(settings)
    try:
        assert after.secret(channel.channel_id) == "s3cret-auth-token-0123456789"
    finally:
        after.close()
