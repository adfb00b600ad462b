"""The demo's provider feed: every delivery it makes is signed as its provider signs (it verifies
with the channel's secret) and maps completely to valid events of the demo tenant."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from cem.adapters.memory_channels import MemoryChannelStore
from cem.demo.population import Population
from cem.demo.provider_feed import PROVIDERS, DeliveryMaker, demo_channels
from kernel.secrets import SecretBox, new_key_text, platform_key
from services.ingest.channels.base import WebhookRequest
from services.ingest.channels.intake import map_delivery
from services.ingest.channels.registry import load_providers
from tests.events import BUCKET_KEY

NOW = datetime(2026, 11, 10, 12, tzinfo=UTC)


def store() -> MemoryChannelStore:
    return MemoryChannelStore(SecretBox(platform_key(Path("/nonexistent"), new_key_text())))


def test_feed_deliveries_verify_and_map_for_every_provider(tmp_path: Path) -> None:
    channels_store = store()
    channels = demo_channels(channels_store, "demo", tmp_path)
    population = Population.generate(random.Random(1), 60)
    maker = DeliveryMaker("http://127.0.0.1:8000", channels, population, random.Random(2))
    seen: dict[str, int] = {}
    for _ in range(120):
        for url, body, headers in maker.any(NOW):
            provider_name, channel_id = urlsplit(url).path.split("/")[-2:]
            provider = load_providers()[provider_name]
            request = WebhookRequest(url, {k.lower(): v for k, v in headers.items()}, body, NOW)
            secret = channels_store.secret(channel_id)
            assert secret is not None and provider.verify(request, secret), provider_name
            config = channels_store.get(channel_id)
            assert config is not None and config.tenant_id == "demo"
            intake = map_delivery(provider, request, config, 64 * 1024, BUCKET_KEY)
            assert intake.complete and intake.outgoing, (provider_name, intake.violations)
            seen[provider_name] = seen.get(provider_name, 0) + len(intake.outgoing)
    assert set(seen) == set(PROVIDERS)


def test_channels_are_reused_across_restarts(tmp_path: Path) -> None:
    channels_store = store()
    first = demo_channels(channels_store, "demo", tmp_path)
    again = demo_channels(channels_store, "demo", tmp_path)
    assert {p: c.channel_id for p, c in first.items()} == {
        p: c.channel_id for p, c in again.items()
    }
    assert (tmp_path / "demo-channels.json").stat().st_mode & 0o777 == 0o600
