"""Support cases in the CRM, and the email support that opens one per message."""

from __future__ import annotations

from cem.demo.draws import pick, random_digits
from cem.demo.journeys.identifiers import crm_ids, email_ids
from cem.demo.journeys.sim import Payload, Sim, Thread
from cem.demo.journeys.surveys import survey
from cem.demo.people import Agent, Customer
from cem.demo.reference import QUEUE_OF
from cem.demo.timing import HOUR, MINUTE

_PRIORITIES, _PRIORITY_CUM = ("low", "normal", "high", "urgent"), (15, 75, 93, 100)


def case(sim: Sim, c: Customer, t: int, channel: str, tp: str, topic: str, agent: Agent,
         not_before: int = 0, subject: str | None = None) -> str:  # fmt: skip
    """Opened, usually resolved, sometimes reopened; the customer is surveyed on the outcome."""
    r, case_id = sim.rng, f"CS-{random_digits(sim.rng, 7)}"
    thread = Thread(sim, channel, tp, crm_ids(c), case_id)
    base = {"case_id": case_id, "topic": topic, "agent": agent.login, "queue": QUEUE_OF[topic]}
    priority = pick(r, _PRIORITIES, _PRIORITY_CUM)
    subject = subject or sim.say(c, f"opener.{topic}")
    thread(t, "case.opened", {**base, "subject": subject, "priority": priority})
    if not sim.force_bad and r.random() < 0.08:
        return case_id  # still open
    done = max(t, not_before) + sim.between(*sim.timing.case_resolve)
    resolution = {**base, "resolution": sim.say(c, "case.resolution")}
    thread(done, "case.resolved", resolution)
    mood = agent.skill
    if sim.force_bad or r.random() < 0.1:
        done = _reopened(sim, thread, done, base, resolution)
        mood -= 0.2
    survey(sim, c, done, thread, mood, via="email")
    return case_id


def _reopened(
    sim: Sim, thread: Thread, resolved_at: int, base: Payload, resolution: Payload
) -> int:
    """The fix did not hold: reopened, then resolved again. Returns when it finally was."""
    reopened_at = resolved_at + sim.between(*sim.timing.case_resolve)
    thread(reopened_at, "case.reopened", dict(base))
    done = reopened_at + sim.between(*sim.timing.case_resolve)
    thread(done, "case.resolved", dict(resolution))
    return done


def email_support(sim: Sim, c: Customer, t: int) -> None:
    """The customer writes in; a case is opened, an agent replies, the customer may answer."""
    topic = sim.topic()
    agent, subject = sim.agent(QUEUE_OF[topic]), sim.say(c, f"opener.{topic}")
    replied_at = t + sim.between(*sim.timing.reply)
    case_id = case(sim, c, t, "email", "email_support", topic, agent, replied_at + HOUR, subject)
    mail = Thread(sim, "email", "email_support", email_ids(sim.rng, c), case_id)
    reply = {"message_id": sim.message_id(), "subject": f"Re: {subject}",
             "attributes": {"agent": agent.login}}  # fmt: skip
    mail(replied_at, "email.sent", reply)
    if sim.rng.random() < 0.35:
        answer = {**reply, "text": sim.say(c, "email.support_reply")}
        mail(replied_at + sim.between(10 * MINUTE, HOUR), "email.replied", answer)
