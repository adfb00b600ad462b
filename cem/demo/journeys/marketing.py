"""Email marketing: onboarding after sign-up, the newsletter and the monthly promotion."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import timedelta

from cem.demo.journeys.identifiers import email_ids
from cem.demo.journeys.shopping import session
from cem.demo.journeys.sim import Payload, Sim, Thread
from cem.demo.journeys.surveys import survey
from cem.demo.people import Customer
from cem.demo.reference import SEGMENTS, SHOP_ES
from cem.demo.timing import DAY, EPOCH, HOUR, MINUTE, SECOND

_ONBOARDING_URL = f"{SHOP_ES}/mi-cuenta?utm_source=email&utm_campaign=onboarding"


def campaign_email(sim: Sim, c: Customer, t: int, campaign: str, subject: str, tp: str, url: str,
                   corr: str | None = None) -> None:  # fmt: skip
    """Sent, then delivered or bounced; opened by some, clicked through by fewer."""
    if not c.email or c.index in sim.bounced:
        return
    mail = Thread(sim, "email", tp, email_ids(sim.rng, c), corr)
    base = {"message_id": sim.message_id(), "campaign": campaign,
            "subject": sim.say(c, f"subject.{subject}")}  # fmt: skip
    mail(t, "email.sent", base)
    t += sim.between(SECOND, MINUTE)
    if sim.rng.random() < 0.02:
        return _bounced(sim, c, t, mail, base)
    mail(t, "email.delivered", dict(base))
    if sim.rng.random() < SEGMENTS[c.segment][4]:
        _opened(sim, c, t, mail, base, url)


def _bounced(sim: Sim, c: Customer, t: int, mail: Thread, base: Payload) -> None:
    hard = sim.rng.random() < 0.6
    reason = "user_unknown" if hard else "mailbox_full"
    mail(t, "email.bounced", {**base, "reason": reason, "hard": hard})
    if hard:
        sim.bounced.add(c.index)  # an address that hard-bounced is not mailed again


def _opened(sim: Sim, c: Customer, t: int, mail: Thread, base: Payload, url: str) -> None:
    r = sim.rng
    t += min(3 * DAY, int(r.lognormvariate(math.log(2 * HOUR), 1.2)))
    mail(t, "email.opened", dict(base))
    if r.random() < 0.25:
        t += sim.between(5 * SECOND, 5 * MINUTE)
        mail(t, "email.clicked", {**base, "url": url})
        if sim.timing.long_horizon and r.random() < 0.6:
            session(sim, c, t + 3 * SECOND, app=False, referrer=url)
    elif r.random() < 0.02:
        reply = {**base, "text": sim.say(c, "email.campaign_reply")}
        mail(t + sim.between(MINUTE, HOUR), "email.replied", reply)


def onboarding(sim: Sim, c: Customer, t: int) -> None:
    """Sign-up, a welcome email, tips three days later and a survey after a week."""
    corr, tp = f"onb-{sim.hex()}", "onboarding_email"
    if c.customer_id:
        ids = {"anonymous_id": c.web_ids[0], "customer_id": c.customer_id}
        if c.email:
            ids["email"] = c.email
        Thread(sim, "web", "website", ids, None)(t, "action.performed", {"name": "sign_up"})
    welcome_at = t + sim.between(MINUTE, 5 * MINUTE)
    campaign_email(sim, c, welcome_at, "onboarding", "onboarding-welcome", tp, _ONBOARDING_URL,
                   corr)  # fmt: skip
    tips_at = t + 3 * DAY + sim.between(0, 2 * HOUR)
    campaign_email(sim, c, tips_at, "onboarding", "onboarding-tips", tp, _ONBOARDING_URL, corr)
    if c.email:
        survey(sim, c, t + 7 * DAY, Thread(sim, "email", tp, {}, corr), 0.0, via="email")


def campaigns(sim: Sim, midnight: int, lo: int, hi: int, joined: Sequence[int]) -> None:
    """The day's campaign, if any, to each customer who opted in to marketing email."""
    planned = _campaign_on(midnight)
    if planned is None:
        return
    campaign, subject, tp, path = planned
    url = f"{SHOP_ES}{path}?utm_source=email&utm_campaign={campaign}"
    for c in sim.pop.customers:
        t = midnight + 8 * HOUR + sim.between(0, 30 * MINUTE)
        if c.marketing_opt_in and lo <= t < hi and joined[c.index] <= t:
            campaign_email(sim, c, t, campaign, subject, tp, url)


def _campaign_on(midnight: int) -> tuple[str, str, str, str] | None:
    """(campaign, subject key, touchpoint, landing path): a newsletter every other Tuesday and a
    promotion on the first Thursday of each month."""
    date = EPOCH + timedelta(milliseconds=midnight)
    if date.weekday() == 1 and (midnight // DAY // 7) % 2 == 0:
        return f"newsletter-{date:%Y-%m-%d}", "newsletter", "newsletter", "/"
    if date.weekday() == 3 and date.day <= 7:
        return f"promo-{date:%Y-%m}", "promo", "promo_campaign", "/rebajas"
    return None
