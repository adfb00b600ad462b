"""The replay's erasure check distributed: PostgreSQL's channel store and key vault, whose
destruction times are the server's clock (tests/unit/test_webhook_replay_erasure.py has the
cases on the memory and SQLite vaults)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cem.adapters.memory_log import MemoryLog, MemoryPublisher
from cem.adapters.postgres_channels import PostgresChannelStore
from cem.adapters.postgres_vault import PostgresKeyVault
from cem.sealing import SealingPublisher, subject_function
from kernel.channels import NewDeadLetter
from kernel.ports import TOUCHPOINTS_TOPIC
from kernel.sealing import EventSealer, KeyCache
from kernel.shredding import subject_key_id, tenant_keys
from services.identity.rules import IdentityRules, TenantRules
from services.ingest.channels.replay import replay_webhooks
from tests.contract.test_channel_store import box
from tests.events import BUCKET_KEY

pytestmark = pytest.mark.postgres

PLATFORM_KEY = b"q" * 32
RULES = IdentityRules(default=TenantRules(phone_region="ES"))
FIXTURE = json.loads(
    (
        Path(__file__).parents[1] / "fixtures" / "channels" / "shopify" / "order_online.json"
    ).read_text()
)


def test_a_letter_before_the_erasure_is_settled_erased_and_one_after_it_replays(
    postgres_dsn: str,
) -> None:
    tenant = f"acme-{uuid.uuid4().hex[:8]}"
    store = PostgresChannelStore(postgres_dsn, box())
    vault = PostgresKeyVault(postgres_dsn, PLATFORM_KEY)
    try:
        channel = store.add(tenant, "shopify", FIXTURE["secret"])

        def keep(received_at: datetime, order: int) -> str:
            body = json.loads(FIXTURE["body"])
            body["id"] = order
            return store.keep_dead_letter(
                NewDeadLetter(tenant, "shopify", channel.channel_id, received_at, FIXTURE["url"],
                              FIXTURE["headers"], json.dumps(body).encode(), "unmappable")
            )  # fmt: skip

        before = keep(datetime.fromisoformat(FIXTURE["received_at"]), 1)
        phone = subject_key_id(tenant_keys(PLATFORM_KEY, tenant), "phone:+34600333444")
        vault.get_or_create(tenant, phone)
        vault.destroy(tenant, [phone])  # at the server's time: after the first letter arrived
        destroyed = vault.last_destroyed_at(tenant, phone)
        assert destroyed is not None
        after = keep(destroyed + timedelta(minutes=2), 2)  # came back since, past the margin
        log = MemoryLog(partitions=2)
        sealer = EventSealer(vault, PLATFORM_KEY, subject_function(lambda: RULES), KeyCache())
        publisher = SealingPublisher(MemoryPublisher(log), sealer, vault)
        report = replay_webhooks(store, publisher, bucket_key=BUCKET_KEY, tenant_id=tenant)
        assert (report.restored, report.still_failing, report.erased) == (1, 0, 1)
        assert len(log.poll(TOUCHPOINTS_TOPIC, "g", 100, 0)) == 1
        letters = {d.dead_letter_id: d for d in store.dead_letters(tenant_id=tenant, status=None)}
        assert (letters[before].status, letters[before].body) == ("erased", b"")
        assert letters[after].status == "replayed" and letters[after].body
        with store.db.transaction() as cursor:  # the row itself holds no body
            row = cursor.execute(
                "SELECT length(body) FROM webhook_dead_letters WHERE dead_letter_id = %s",
                (before,),
            ).fetchone()
        assert row is not None and row[0] == 0
        assert datetime.now(UTC) - destroyed < timedelta(minutes=5)
    finally:
        store.close()
        vault.close()
