"""The people of the demo: customers with every identifier some channel knows, and agents."""

from __future__ import annotations

from dataclasses import dataclass, field

from cem.demo.reference import KINDS


@dataclass(frozen=True, slots=True)
class Customer:
    """One demo customer and every identifier some channel may know them by."""

    index: int
    name: str
    language: str  # "es" or "en": the language of their messages and comments
    country: str
    email: str | None
    phone: str | None  # E.164
    customer_id: str | None  # online account; None for customers who never made one
    web_ids: tuple[str, ...]  # anonymous cookie ids, one per browser
    app_id: str | None  # anonymous id of the app install
    crm_id: str | None
    loyalty_id: str | None
    social: tuple[str, str] | None  # (network, handle)
    persona: str
    segment: str  # value segment: vip, loyal, regular, occasional
    currency: str
    home_store: str
    marketing_opt_in: bool
    joined_days_ago: float
    journey_cum: tuple[float, ...] = field(repr=False)  # over KINDS: the channel mix

    @property
    def external_ids(self) -> dict[str, str]:
        ids = {"crm": self.crm_id, "loyalty": self.loyalty_id}
        if self.social:
            ids[self.social[0]] = self.social[1]
        return {k: v for k, v in ids.items() if v}

    @property
    def channel_mix(self) -> dict[str, float]:
        """The share of this customer's journeys that start on each kind of contact."""
        total = self.journey_cum[-1]
        shares = [b - a for a, b in zip((0.0, *self.journey_cum), self.journey_cum, strict=False)]
        return {k: s / total for k, s in zip(KINDS, shares, strict=True)}


@dataclass(frozen=True, slots=True)
class Agent:
    """A contact-centre agent. `skill` moves resolution and satisfaction (±0.2 around 0)."""

    login: str
    name: str
    queues: tuple[str, ...]
    skill: float
