"""The contact centre: calls and chats, and what an unresolved customer does next."""

from __future__ import annotations

from typing import Any

from cem.demo.journeys.cases import case
from cem.demo.journeys.identifiers import chat_ids, phone_ids
from cem.demo.journeys.sim import Sim, Thread
from cem.demo.journeys.surveys import survey
from cem.demo.people import Agent, Customer
from cem.demo.reference import QUEUE_OF, QUEUES
from cem.demo.timing import DAY, HOUR, MINUTE, SECOND

_BOT_ANSWERABLE = ("delivery_status", "product_info")


def call(sim: Sim, c: Customer, t: int, topic: str | None = None, depth: int = 0) -> None:
    """An inbound call: queued, sometimes abandoned, else answered, maybe held or transferred."""
    if not sim.force_bad and depth == 0 and sim.rng.random() < 0.06:
        return outbound_call(sim, c, t)
    topic = topic or sim.topic()
    queue = QUEUE_OF[topic]
    line = sim.thread("phone", "support_line", phone_ids(sim.rng, c), "call")
    wait = _queue_wait(sim)
    line(t, "call.offered", {"queue": queue})
    t += int(wait * 1000)
    if not sim.force_bad and sim.rng.random() < min(0.5, 0.03 + wait / 900):
        gave_up = {"queue": queue, "queue_wait_s": wait, "abandoned": True, "topic": topic}
        line(t, "call.ended", gave_up)
        return repeat(sim, c, t, topic, depth, 0.6)
    _answered(sim, c, t, line, topic, wait, depth)


def _queue_wait(sim: Sim) -> float:
    """Seconds in the queue: median about 30 s, with a long tail."""
    if sim.force_bad:
        return round(sim.rng.uniform(900, 1800), 1)
    return round(min(1800.0, sim.rng.lognormvariate(3.4, 1.0)), 1)


def _answered(sim: Sim, c: Customer, t: int, line: Thread, topic: str, wait: float,
              depth: int) -> None:  # fmt: skip
    r, queue = sim.rng, QUEUE_OF[topic]
    agent = sim.agent(queue)
    line(t, "call.answered", {"queue": queue, "agent": agent.login, "queue_wait_s": wait})
    talk = round(min(5400.0, r.lognormvariate(5.5, 0.6)), 1)
    hold = _hold(sim, line, t + int(talk * 400), agent)
    moved_to = _transfer(sim, line, t + int(talk * 600 + hold * 1000), queue, agent)
    transferred, agent = moved_to is not None, moved_to or agent
    resolved = not sim.force_bad and r.random() < 0.62 + 2 * agent.skill - 0.15 * transferred
    t += int((talk + hold) * 1000)
    ended = {
        "agent": agent.login, "queue": queue, "queue_wait_s": wait, "talk_s": talk,
        "hold_s": hold, "wrap_s": round(r.uniform(15, 120), 1), "resolved": resolved,
        "topic": topic,
    }  # fmt: skip
    if r.random() < 0.15:
        ended["transcript"] = transcript(sim, c, topic, agent)
    line(t, "call.ended", ended)
    mood = handled_mood(agent, resolved) - 0.1 * (wait > 180) - 0.05 * transferred
    survey(sim, c, t, line, mood, via="sms")
    if not resolved:
        follow_up(sim, c, t, line, topic, agent, depth)


def _hold(sim: Sim, line: Thread, t: int, agent: Agent) -> float:
    """Seconds the caller is put on hold, if they are."""
    if not (sim.force_bad or sim.rng.random() < 0.25):
        return 0.0
    hold = round(sim.rng.uniform(15, 300), 1)
    line(t, "call.held", {"agent": agent.login, "hold_s": hold})
    return hold


def _transfer(sim: Sim, line: Thread, t: int, queue: str, agent: Agent) -> Agent | None:
    """The agent the call is transferred to, if it is."""
    r = sim.rng
    if not (sim.force_bad or r.random() < 0.08):
        return None
    to_queue = queue if r.random() < 0.5 else r.choice(QUEUES)
    to = sim.agent(to_queue, other_than=agent)
    line(t, "call.transferred", {"from_agent": agent.login, "to_agent": to.login,
                                 "to_queue": to_queue})  # fmt: skip
    return to


def handled_mood(agent: Agent, resolved: bool) -> float:
    """How an agent-handled contact moves satisfaction: their skill, and whether it was fixed."""
    return agent.skill + (0.06 if resolved else -0.12)


def outbound_call(sim: Sim, c: Customer, t: int) -> None:
    """A retention call the company makes: no queue, no survey."""
    r, agent = sim.rng, sim.agent("retention")
    line = sim.thread("phone", "sales_line", phone_ids(r, c), "call")
    ended: dict[str, Any] = {"agent": agent.login, "queue": "retention", "direction": "outbound"}
    if r.random() < 0.35:
        ended["attributes"] = {"outcome": "no_answer"}
        return line(t + sim.between(20 * SECOND, 40 * SECOND), "call.ended", ended)
    t += sim.between(5 * SECOND, 25 * SECOND)
    line(t, "call.answered", {"agent": agent.login, "queue": "retention"})
    talk = round(r.lognormvariate(5.0, 0.5), 1)
    ended.update(talk_s=talk, wrap_s=round(r.uniform(10, 60), 1), topic="retention_offer")
    line(t + int(talk * 1000), "call.ended", ended)


def transcript(sim: Sim, c: Customer, topic: str, agent: Agent) -> str:
    lines = (sim.say(c, f"opener.{topic}"), sim.say(c, "agent.hello").format(agent.name),
             sim.say(c, "customer.chase"), sim.say(c, "agent.reply"))  # fmt: skip
    who = ("Cliente", "Agente") if c.language == "es" else ("Customer", "Agent")
    return "\n".join(f"{who[i % 2]}: {line}" for i, line in enumerate(lines))


def follow_up(sim: Sim, c: Customer, t: int, on: Thread, topic: str, agent: Agent,
              depth: int) -> None:  # fmt: skip
    """After an unresolved contact: sometimes a case, sometimes the customer tries again."""
    if sim.rng.random() < 0.4:
        opened = t + sim.between(MINUTE, 10 * MINUTE)
        case(sim, c, opened, on.channel, on.touchpoint, topic, agent)
    repeat(sim, c, t, topic, depth, 0.5)


def repeat(sim: Sim, c: Customer, t: int, topic: str, depth: int, chance: float) -> None:
    """An unresolved customer comes back about the same thing, on any channel (FCR)."""
    if depth >= 2 or not sim.timing.long_horizon or sim.rng.random() >= chance:
        return
    get_in_touch(sim, c, t + sim.between(2 * HOUR, 5 * DAY), topic, depth + 1)


def get_in_touch(sim: Sim, c: Customer, t: int, topic: str, depth: int) -> None:
    """The customer calls if they have a phone and feel like it, else chats."""
    contact = call if c.phone and sim.rng.random() < 0.6 else chat
    contact(sim, c, t, topic, depth)


def chat(sim: Sim, c: Customer, t: int, topic: str | None = None, depth: int = 0) -> None:
    """A web chat: the bot greets, answers the easy ones, hands the rest to an agent."""
    topic = topic or sim.topic()
    queue = QUEUE_OF[topic]
    talk = sim.thread("chat", "chat_support", chat_ids(sim.rng, c), "chat")
    talk.message(t, "customer", sim.say(c, f"opener.{topic}"), queue=queue,
                 attributes={"topic": topic})  # fmt: skip
    t += sim.between(1500, 4000)
    talk.message(t, "bot", sim.say(c, "bot.greeting"))
    if topic in _BOT_ANSWERABLE and not sim.force_bad and sim.rng.random() < 0.3:
        return _self_served(sim, c, t, talk)
    t += sim.between(10 * SECOND, 40 * SECOND)
    talk.message(t, "customer", sim.say(c, "customer.chase"))
    t += sim.between(1500, 3000)
    talk.message(t, "bot", sim.say(c, "bot.handoff"))
    _with_agent(sim, c, t, talk, topic, depth)


def _self_served(sim: Sim, c: Customer, t: int, talk: Thread) -> None:
    t += sim.between(3 * SECOND, 8 * SECOND)
    talk.message(t, "bot", sim.say(c, "bot.self_serve"))
    t += sim.between(10 * SECOND, 40 * SECOND)
    talk.message(t, "customer", sim.say(c, "customer.thanks"))
    survey(sim, c, t, talk, 0.02, via="inline")


def _with_agent(sim: Sim, c: Customer, t: int, talk: Thread, topic: str, depth: int) -> None:
    r, queue = sim.rng, QUEUE_OF[topic]
    agent = sim.agent(queue)
    # FRT: bot replies do not stop the clock, the first human reply does.
    first_response = r.uniform(900, 1800) if sim.force_bad else r.lognormvariate(4.3, 0.8)
    t = _conversation(sim, c, t + int(first_response * 1000), talk, agent, queue)
    resolved = not sim.force_bad and r.random() < 0.68 + 2 * agent.skill
    t += sim.between(10 * SECOND, MINUTE)
    closing = sim.say(c, "agent.solved" if resolved else "agent.escalated")
    outcome = {"resolved": resolved, "topic": topic}
    talk.message(t, "agent", closing, agent=agent.login, queue=queue, attributes=outcome)
    mood = handled_mood(agent, resolved) - 0.1 * (first_response > 300)
    survey(sim, c, t, talk, mood, via="inline")
    if not resolved:
        follow_up(sim, c, t, talk, topic, agent, depth)


def _conversation(sim: Sim, c: Customer, t: int, talk: Thread, agent: Agent, queue: str) -> int:
    """The agent says hello, then one to three rounds with the customer. Returns when it ends."""
    hello = sim.say(c, "agent.hello").format(agent.name.split()[0])
    talk.message(t, "agent", hello, agent=agent.login, queue=queue)
    for _ in range(sim.between(1, 3)):
        t += sim.between(20 * SECOND, 2 * MINUTE)
        talk.message(t, "customer", sim.say(c, "customer.chase"))
        t += sim.between(15 * SECOND, 90 * SECOND)
        talk.message(t, "agent", sim.say(c, "agent.reply"), agent=agent.login, queue=queue)
    return t
