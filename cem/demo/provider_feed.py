"""Part of the demo's live traffic as the providers themselves send it: Twilio calls and SMS,
SendGrid opens, Chatwoot chats, Typeform surveys and Shopify orders, each delivery signed with its
channel's secret and posted to the webhook URL a tenant would give the provider. So a new user of
`cem up --demo` sees events from those channels in timelines and in satisfaction, through the
same adapters real deliveries take (`services/ingest/channels/`).

The channels are configured for the demo tenant on first start and remembered (with their
secrets, 0600) in `demo-channels.json` in the data directory.
"""

from __future__ import annotations

import json
import random
import secrets
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from cem.demo.people import Customer
from cem.demo.population import Population
from cem.demo.reference import QUEUES, SURVEY_KINDS, TOUCHPOINT_BASELINE
from cem.demo.texts import TEXTS
from kernel.channels import ChannelStore
from services.ingest.channels import signing

PROVIDERS = ("twilio-voice", "twilio-messaging", "sendgrid", "chatwoot", "typeform", "shopify")
TYPEFORM_QUESTIONS = {"demo_csat": "csat", "demo_nps": "nps", "demo_ces": "ces"}
SCALES = {"csat": (1, 5), "nps": (0, 10), "ces": (1, 7)}
Delivery = tuple[str, bytes, dict[str, str]]  # (url, body, headers)


@dataclass
class FeedChannel:
    provider: str
    channel_id: str
    secret: str
    signing_key: str = ""  # SendGrid: the private key (PEM) the demo signs with

    @property
    def path(self) -> str:
        return f"/v1/webhooks/{self.provider}/{self.channel_id}"


def _new_channel(store: ChannelStore, tenant: str, provider: str) -> FeedChannel:
    secret, signing_key = secrets.token_urlsafe(24), ""
    if provider == "sendgrid":
        private, secret = signing.sendgrid_keypair()
        signing_key = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
    settings = {"questions": TYPEFORM_QUESTIONS} if provider == "typeform" else {}
    config = store.add(tenant, provider, secret, name="demo", settings=settings)
    return FeedChannel(provider, config.channel_id, secret, signing_key)


def demo_channels(store: ChannelStore, tenant: str, data_dir: Path) -> dict[str, FeedChannel]:
    """One channel per provider for the demo tenant, reused across restarts."""
    path = data_dir / "demo-channels.json"
    known: dict[str, FeedChannel] = {}
    if path.exists():
        known = {p: FeedChannel(**c) for p, c in json.loads(path.read_text()).items()}
    for provider in PROVIDERS:
        if provider not in known or store.get(known[provider].channel_id) is None:
            known[provider] = _new_channel(store, tenant, provider)
    path.write_text(json.dumps({p: vars(c) for p, c in known.items()}, indent=2))
    path.chmod(0o600)
    return known


class DeliveryMaker:
    """Builds one signed delivery of a provider about a demo customer, at `now`."""

    def __init__(self, base_url: str, channels: dict[str, FeedChannel], population: Population,
                 rng: random.Random) -> None:  # fmt: skip
        self.base_url, self.channels = base_url.rstrip("/"), channels
        self.population, self.rng = population, rng

    def url(self, provider: str) -> str:
        return self.base_url + self.channels[provider].path

    def secret(self, provider: str) -> str:
        return self.channels[provider].secret

    def text(self, customer: Customer, key: str) -> str:
        es, en = self.rng.choice(TEXTS[key])
        return es if customer.language == "es" else en

    def agent(self, queue: str) -> str:
        agents = self.population.agents_by_queue.get(queue) or self.population.agents
        return self.rng.choice(agents).login

    def call(self, customer: Customer, now: datetime) -> list[Delivery]:
        queue = self.rng.choice(QUEUES)
        url = self.url("twilio-voice") + "?" + urlencode(
            {"queue": queue, "agent": self.agent(queue), "hold_s": self.rng.choice((0, 0, 30, 90)),
             "touchpoint": "support_line"})  # fmt: skip
        sid, stamp = (
            "CA" + uuid.UUID(int=self.rng.getrandbits(128)).hex,
            now.strftime("%a, %d %b %Y %H:%M:%S +0000"),
        )
        common = {"CallSid": sid, "From": customer.phone or "", "To": "+34910000000",
                  "Direction": "inbound", "Timestamp": stamp, "QueueTime": str(self.rng.randint(5, 240))}  # fmt: skip
        answered = {**common, "CallStatus": "in-progress"}
        ended = {
            **common,
            "CallStatus": "completed",
            "CallDuration": str(self.rng.randint(300, 900)),
        }
        return [self._twilio(url, form) for form in (answered, ended)]

    def _twilio(self, url: str, form: dict[str, str]) -> Delivery:
        body = urlencode(form).encode()
        return url, body, signing.twilio_headers(self.secret(url.split("/")[-2]), url, body)

    def sms(self, customer: Customer, now: datetime) -> list[Delivery]:
        form = {"MessageSid": "SM" + uuid.UUID(int=self.rng.getrandbits(128)).hex,
                "From": customer.phone or "", "To": "+34910000000",
                "Body": self.text(customer, "opener.delivery_status")}  # fmt: skip
        return [self._twilio(self.url("twilio-messaging"), form)]

    def email(self, customer: Customer, now: datetime) -> list[Delivery]:
        event = self.rng.choice(("open", "open", "click", "delivered"))
        item = {"email": customer.email, "event": event, "timestamp": int(now.timestamp()),
                "sg_event_id": uuid.UUID(int=self.rng.getrandbits(128)).hex,
                "sg_message_id": f"demo-{self.rng.getrandbits(40):x}", "category": "novedades",
                "url": "https://tienda.demo/ofertas"}  # fmt: skip
        body = json.dumps([item]).encode()
        private = serialization.load_pem_private_key(
            self.channels["sendgrid"].signing_key.encode(), None
        )
        assert isinstance(private, ec.EllipticCurvePrivateKey)
        return [
            (
                self.url("sendgrid"),
                body,
                signing.sendgrid_headers(private, body, int(now.timestamp())),
            )
        ]

    def chat(self, customer: Customer, now: datetime) -> list[Delivery]:
        contact = {"id": 100_000 + customer.index, "email": customer.email,
                   "phone_number": customer.phone, "type": "contact"}  # fmt: skip
        conversation = {"id": self.rng.getrandbits(31), "channel": "Channel::WebWidget",
                        "meta": {"sender": contact}}  # fmt: skip
        message = {"event": "message_created", "id": self.rng.getrandbits(40), "message_type": "incoming",
                   "content": self.text(customer, "opener.product_info"), "created_at": int(now.timestamp()),
                   "sender": contact, "conversation": conversation, "inbox": {"id": 1, "name": "chat_support"}}  # fmt: skip
        body = json.dumps(message).encode()
        headers = signing.chatwoot_headers(self.secret("chatwoot"), body, int(now.timestamp()))
        return [(self.url("chatwoot"), body, headers)]

    def survey(self, customer: Customer, now: datetime) -> list[Delivery]:
        touchpoint = self.rng.choice(sorted(SURVEY_KINDS))
        kind = self.rng.choice(SURVEY_KINDS[touchpoint][0])
        low, high = SCALES[kind]
        mood = min(1.0, max(0.0, self.rng.gauss(TOUCHPOINT_BASELINE[touchpoint], 0.2)))
        ref = next(r for r, k in TYPEFORM_QUESTIONS.items() if k == kind)
        answer = {"type": "number", "number": round(low + mood * (high - low)),
                  "field": {"id": ref, "type": "opinion_scale", "ref": ref}}  # fmt: skip
        hidden = {"touchpoint": touchpoint, "email": customer.email, "phone": customer.phone}
        response = {"form_id": "demo-form", "token": uuid.UUID(int=self.rng.getrandbits(128)).hex,
                    "submitted_at": now.isoformat(), "answers": [answer],
                    "hidden": {k: v for k, v in hidden.items() if v}}  # fmt: skip
        body = json.dumps({"event_type": "form_response", "form_response": response}).encode()
        return [
            (self.url("typeform"), body, signing.typeform_headers(self.secret("typeform"), body))
        ]

    def order(self, customer: Customer, now: datetime) -> list[Delivery]:
        pos = self.rng.random() < 0.4
        order = {"id": self.rng.getrandbits(50), "name": f"#D{self.rng.getrandbits(24)}",
                 "email": customer.email, "phone": customer.phone, "created_at": now.isoformat(),
                 "currency": customer.currency, "total_price": f"{self.rng.uniform(9, 180):.2f}",
                 "source_name": "pos" if pos else "web", "location_id": customer.home_store,
                 "line_items": [{"quantity": self.rng.randint(1, 3)}],
                 "customer": {"id": 500_000 + customer.index, "email": customer.email}}  # fmt: skip
        body = json.dumps(order).encode()
        headers = signing.shopify_headers(
            self.secret("shopify"),
            body,
            "orders/create",
            str(uuid.UUID(int=self.rng.getrandbits(128))),
        )
        return [(self.url("shopify"), body, headers)]

    def any(self, now: datetime) -> list[Delivery]:
        """One delivery (or a call's two) about a customer the chosen provider would know."""
        kinds: list[tuple[Callable[[Customer, datetime], list[Delivery]], Callable[[Customer], Any]]] = [
            (self.call, lambda c: c.phone), (self.sms, lambda c: c.phone),
            (self.email, lambda c: c.email), (self.chat, lambda c: c.email or c.phone),
            (self.survey, lambda c: c.email or c.phone), (self.order, lambda c: c.email),
        ]  # fmt: skip
        make, needs = self.rng.choice(kinds)
        for _ in range(20):
            customer = self.rng.choice(self.population.customers)
            if needs(customer):
                return make(customer, now)
        return []


def provider_feed(maker: DeliveryMaker, rate: float, stop: threading.Event) -> None:
    """Post deliveries at about `rate` per second until `stop`; a refused one is printed, once."""
    reported: set[int] = set()
    with httpx.Client(timeout=30.0) as client:
        while not stop.wait(1.0 / rate):
            for url, body, headers in maker.any(datetime.now(UTC)):
                try:
                    status = client.post(url, content=body, headers=headers).status_code
                except httpx.HTTPError:
                    status = 0
                if status != 200 and status not in reported:
                    reported.add(status)
                    print(f"demo: a provider delivery to {url} answered {status}", flush=True)


def start_provider_feed(
    base_url: str, store: ChannelStore, data_dir: Path, population: Population, rate: float,
    stop: threading.Event, tenant: str = "demo",
) -> threading.Thread:  # fmt: skip
    """Configure the demo's provider channels and feed them in a background thread."""
    channels = demo_channels(store, tenant, data_dir)
    maker = DeliveryMaker(
        base_url, channels, population, random.Random(f"feed-{secrets.token_hex(8)}")
    )
    thread = threading.Thread(
        target=provider_feed, args=(maker, rate, stop), daemon=True, name="provider-feed"
    )
    thread.start()
    return thread
