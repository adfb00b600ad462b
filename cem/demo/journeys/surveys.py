"""Surveys after an interaction: who gets one, how it reaches them, what they answer."""

from __future__ import annotations

from cem.demo.draws import pick
from cem.demo.journeys.sim import Ids, Sim, Thread
from cem.demo.people import Customer
from cem.demo.reference import SURVEY_KINDS, TOUCHPOINT_BASELINE
from cem.demo.texts import TEXTS
from cem.demo.timing import DAY


def survey(sim: Sim, c: Customer, t: int, on: Thread, mood: float, via: str) -> None:
    """Sent after an interaction, with its touchpoint and correlation id; a fraction answers.

    `mood` moves the touchpoint's baseline satisfaction: the agent's skill, the outcome.
    """
    if not sim.force_bad and _left_alone(sim, c, t):
        return  # do not harass the customer
    sim.last_survey[c.index] = t
    sent_via, ids = _route(c, on, via)
    asked = Thread(sim, "survey", on.touchpoint, ids, on.corr)
    kinds, cum = SURVEY_KINDS.get(on.touchpoint, (("csat",), (1,)))
    kind, survey_id = pick(sim.rng, kinds, cum), f"srv-{sim.hex()}"
    sent = t + sim.between(*sim.timing.survey_send)
    sent_payload = {"survey_id": survey_id, "kind": kind, "attributes": {"sent_via": sent_via}}
    asked(sent, "survey.sent", sent_payload)
    satisfaction = _satisfaction_if_answered(sim, on.touchpoint, mood)
    if satisfaction is None:
        return
    answer = {"survey_id": survey_id, "kind": kind, "score": score(kind, satisfaction)}
    if sim.force_bad or sim.rng.random() < 0.45:
        answer["comment"] = comment(sim, c, on.touchpoint, satisfaction)
    asked(sent + sim.between(*sim.timing.survey_answer), "survey.answered", answer)


def _left_alone(sim: Sim, c: Customer, t: int) -> bool:
    """Not every interaction is surveyed, and nobody is surveyed too often."""
    last = sim.last_survey.get(c.index)
    recent = last is not None and t - last < sim.timing.suppress_days * DAY
    return sim.rng.random() >= sim.timing.survey_rate or recent


def _route(c: Customer, on: Thread, via: str) -> tuple[str, Ids]:
    """The channel the survey is sent on and the identifiers it is sent to."""
    if via == "inline":  # shown where the interaction happened, e.g. the chat widget
        return on.channel, on.ids
    sent_via = "sms" if (via == "sms" and c.phone) or not c.email else "email"
    return sent_via, {"phone": c.phone} if sent_via == "sms" else {"email": c.email}


def _satisfaction_if_answered(sim: Sim, touchpoint: str, mood: float) -> float | None:
    if sim.force_bad:
        return sim.rng.uniform(0, 0.1)
    base = TOUCHPOINT_BASELINE.get(touchpoint, 0.6)
    satisfaction = clamp(base + mood + sim.rng.gauss(0, 0.17))
    if sim.rng.random() >= 0.22 + 0.1 * (satisfaction < 0.35):  # the unhappy answer more often
        return None
    return satisfaction


def clamp(x: float) -> float:
    return 0.0 if x < 0 else 1.0 if x > 1 else x


def score(kind: str, satisfaction: float) -> int:
    """A latent satisfaction in [0, 1] expressed on the survey's scale (METRICS.md v1)."""
    if kind == "nps":
        return int(satisfaction * 10.999)
    return 1 + int(satisfaction * (4.999 if kind == "csat" else 6.999))


def comment(sim: Sim, c: Customer, tp: str, satisfaction: float) -> str:
    band = "neg" if satisfaction < 0.4 else "mid" if satisfaction < 0.65 else "pos"
    specific = f"comment.{tp}.{band}"
    use_specific = specific in TEXTS and sim.rng.random() < 0.5
    return sim.say(c, specific if use_specific else f"comment.{band}")
