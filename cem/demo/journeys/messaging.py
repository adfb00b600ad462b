"""Messaging channels where the company answers in its own time: SMS and social media."""

from __future__ import annotations

from cem.demo.journeys.sim import Sim
from cem.demo.journeys.surveys import survey
from cem.demo.people import Customer
from cem.demo.reference import QUEUE_OF
from cem.demo.timing import HOUR, MINUTE, SECOND


def sms(sim: Sim, c: Customer, t: int) -> None:
    """A text to the support number: an automatic reply, then an agent's."""
    topic, thread = sim.topic(), sim.thread("sms", "sms_support", {"phone": c.phone}, "sms")
    thread.message(t, "customer", sim.say(c, f"opener.{topic}"), attributes={"topic": topic})
    thread.message(t + sim.between(2, 10) * SECOND, "bot", sim.say(c, "sms.auto_reply"))
    agent = sim.agent(QUEUE_OF[topic])
    t += sim.between(*sim.timing.reply) // 4
    thread.message(t, "agent", sim.say(c, "agent.reply"), agent=agent.login)
    if sim.rng.random() < 0.5:
        t += sim.between(MINUTE, 20 * MINUTE)
        thread.message(t, "customer", sim.say(c, "customer.thanks"))
    survey(sim, c, t, thread, agent.skill, via="sms")


def social(sim: Sim, c: Customer, t: int) -> None:
    """A public post mentioning the shop; the social team usually answers."""
    assert c.social is not None, "social journeys are only drawn for customers with a handle"
    network, handle = c.social
    post = sim.thread("social", "social_care", {"external_ids": {network: handle}}, "soc")
    post.message(t, "customer", sim.say(c, "social.post"), attributes={"network": network})
    if sim.rng.random() < 0.8:
        t += sim.between(*sim.timing.reply)
        post.message(t, "agent", sim.say(c, "social.reply"), agent=sim.agent("orders").login)
        if sim.rng.random() < 0.4:
            t += sim.between(5 * MINUTE, HOUR)
            post.message(t, "customer", sim.say(c, "customer.chase"))
