"""A seeded population of calls, conversations and surveys, as raw events a channel would send,
and an independent pandas computation of the service metrics (METRICS.md v1) over those raws."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

BASE = datetime(2026, 3, 1, tzinfo=UTC)
HORIZON_S = 3 * 24 * 3600  # three days, so day buckets differ
QUEUES = ["billing", "tech"]
AGENTS = ["ann", "bob", "cid"]
Raw = dict[str, Any]


def _raw(channel: str, type_: str, tp: str, conv: str, at: float, payload: Raw, who: int) -> Raw:
    occurred = BASE + timedelta(seconds=at)
    raw = {
        "channel": channel,
        "type": type_,
        "touchpoint": tp,
        "customer": {"customer_id": f"cust-{who}"},
        "occurred_at": occurred.isoformat(),
        "payload": payload,
    }
    return raw | ({"correlation_id": conv} if conv else {})


def _call(rnd: random.Random, i: int) -> list[Raw]:
    # One conversation in ten holds two calls (the customer called back): its steps are told
    # apart by when each call ended.
    conv = f"call-{i - 1 if i and rnd.random() < 0.1 else i}"
    start = rnd.uniform(0, HORIZON_S)
    tp, queue = rnd.choice(["support_line", "billing_line"]), rnd.choice(QUEUES)
    # The slow queue waits longer: a plausible difference the metrics must show.
    wait = round(rnd.expovariate(1 / (40 if queue == "tech" else 12)), 3)
    ended: Raw = {
        "queue": queue,
        "queue_wait_s": wait,
        "direction": rnd.choice(["inbound"] * 4 + ["outbound"]),
    }
    raws = []
    if rnd.random() < 0.15:
        ended["abandoned"] = True
    else:
        ended |= {"agent": rnd.choice(AGENTS), "talk_s": round(rnd.uniform(30, 600), 3)}
        ended |= {"hold_s": rnd.choice([0, 0, 15.5, 60]), "wrap_s": rnd.choice([0, 10, 30])}
        if rnd.random() < 0.2:
            raws.append(
                _raw("phone", "call.transferred", tp, conv, start + 5, {"to_queue": "tech"}, i)
            )
    if rnd.random() < 0.3:  # reported in steps, as Twilio's callbacks do: see _in_steps
        return raws + _in_steps(rnd, ended, tp, conv, start, wait, i)
    raws.append(_raw("phone", "call.ended", tp, conv, start + wait + 1, ended, i))
    return raws


def _in_steps(
    rnd: random.Random, ended: Raw, tp: str, conv: str, start: float, wait: float, i: int
) -> list[Raw]:
    """The call offered in its queue (outbound said there), answered by its agent after its wait,
    ended with the durations only; an abandoned one is ended with its wait (no answer gives it).
    One answered call in four is answered again, by an agent of the tech queue (a transfer)."""
    offered: Raw = {"queue": ended.pop("queue")}
    if ended.pop("direction") == "outbound":
        offered["direction"] = "outbound"
    raws = [_raw("phone", "call.offered", tp, conv, start, offered, i)]
    if not ended.get("abandoned"):
        answered = {"queue": offered["queue"], "agent": ended.pop("agent")}
        answered["queue_wait_s"] = ended.pop("queue_wait_s")
        raws.append(_raw("phone", "call.answered", tp, conv, start + wait, answered, i))
        if rnd.random() < 0.25:
            again = {"queue": "tech", "agent": rnd.choice(AGENTS), "queue_wait_s": wait + 30}
            raws.append(_raw("phone", "call.answered", tp, conv, start + wait + 0.5, again, i))
    return [*raws, _raw("phone", "call.ended", tp, conv, start + wait + 1, ended, i)]


def _conversation(rnd: random.Random, i: int, reply_mean_s: float) -> list[Raw]:
    conv, start = f"conv-{i}", rnd.uniform(0, HORIZON_S)
    channel = rnd.choice(["chat", "sms", "social", "email"])
    tp = "live_chat" if channel != "email" else "support_mail"
    inbound, outbound = (
        ("email.replied", "email.sent")
        if channel == "email"
        else ("message.received", "message.sent")
    )
    raws = []
    if rnd.random() < 0.1 and channel != "email":  # an agent wrote first: not a response
        raws.append(_raw(channel, outbound, tp, conv, start - 30, _reply(rnd, channel), i))
    raws.append(_raw(channel, inbound, tp, conv, start, _inbound(channel), i))
    raws.append(_raw(channel, inbound, tp, conv, start + rnd.uniform(1, 50), _inbound(channel), i))
    if channel != "email" and rnd.random() < 0.5:  # a bot answers first: the clock keeps running
        bot = {"sender": "bot", "text": "hola"}
        raws.append(_raw(channel, outbound, tp, conv, start + 2, bot, i))
    for _ in range(rnd.choice([0, 1, 1, 2])):
        at = start + round(rnd.expovariate(1 / reply_mean_s), 3)
        raws.append(_raw(channel, outbound, tp, conv, at, _reply(rnd, channel), i))
    return raws


def _inbound(channel: str) -> Raw:
    return {"message_id": "m1", "text": "help"} if channel == "email" else {"sender": "customer"}


def _reply(rnd: random.Random, channel: str) -> Raw:
    if channel == "email":
        return {"message_id": "m2"}
    return {"sender": "agent", "agent": rnd.choice(AGENTS), "queue": rnd.choice(QUEUES)}


def _survey(rnd: random.Random, i: int) -> list[Raw]:
    at, tp, survey_id = rnd.uniform(0, HORIZON_S), rnd.choice(["post_call", "web"]), f"s-{i}"
    sent = _raw("email", "survey.sent", tp, "", at, {"survey_id": survey_id, "kind": "csat"}, i)
    if rnd.random() < 0.4:
        return [sent]
    answer = {"survey_id": survey_id, "kind": "csat", "score": rnd.randint(1, 5)}
    return [sent, _raw("survey", "survey.answered", tp, "", at + 3600, answer, i)]


def population(seed: int, size: int = 120, reply_mean_s: float = 300.0) -> list[Raw]:
    """Raw events of `size` calls, conversations and surveys each, from one seed; agents reply
    after `reply_mean_s` on average."""
    rnd = random.Random(seed)
    raws: list[Raw] = []
    for i in range(size):
        raws += _call(rnd, i) + _conversation(rnd, i, reply_mean_s) + _survey(rnd, i)
    return [
        raw | {"event_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{seed}/{n}"))}
        for n, raw in enumerate(raws)
    ]


def shifted(raws: list[Raw], by: timedelta) -> list[Raw]:
    """The same raws, each `by` later."""
    return [
        r | {"occurred_at": (datetime.fromisoformat(r["occurred_at"]) + by).isoformat()}
        for r in raws
    ]


# A tenant's calendar in its JSON form (GET /v1/settings/calendar): a Madrid office, open on
# weekdays 09:00–14:00 and 15:00–18:00 but on two holidays. 2026-03-29 (a Sunday) is 23 hours long.
OFFICE: Raw = {
    "time_zone": "Europe/Madrid",
    "hours": {
        day: [["09:00", "14:00"], ["15:00", "18:00"]] for day in ("mon", "tue", "wed", "thu", "fri")
    },
    "holidays": ["2026-03-03", "2026-03-27"],
}


# --- the reference: pandas over the raws, written from METRICS.md, not from the SQL ---------------
def frame(raws: list[Raw]) -> pd.DataFrame:
    """One row per raw event, payload fields as columns, times as epoch micros."""
    df = pd.json_normalize(raws)
    df.columns = [c.removeprefix("payload.") for c in df.columns]
    df["t"] = (
        pd.to_datetime(df["occurred_at"], utc=True) - pd.Timestamp(0, tz="UTC")
    ) // pd.Timedelta(microseconds=1)
    for column in ("correlation_id", "agent", "queue", "sender", "survey_id", "direction"):
        df[column] = df[column].fillna("") if column in df else ""
    return df


def bucket_of(t: pd.Series, bucket: str) -> pd.Series:
    width = 3600 if bucket == "hour" else 86400
    return t // 1_000_000 // width * width


KEYS = ["touchpoint", "channel", "queue", "agent", "bucket_start"]


def reference_calls(
    df: pd.DataFrame, since: int, until: int, bucket: str, threshold: float = 20.0
) -> pd.DataFrame:
    transferred = set(df.loc[df["type"] == "call.transferred", "correlation_id"])
    calls = df[(df["type"] == "call.ended") & (df["t"] >= since) & (df["t"] < until)].copy()
    calls["abandoned"] = (
        calls["abandoned"].fillna(False).astype(bool) if "abandoned" in calls else False
    )
    for column in ("talk_s", "hold_s", "wrap_s", "queue_wait_s"):
        calls[column] = calls[column].fillna(0.0)
    calls["direction"] = calls["direction"].replace("", "inbound")
    # A call in steps (docs/metrics.md): what its offers and answers say, row by row.
    kinds = ["call.offered", "call.answered", "call.ended"]
    conversation = df[df["type"].isin(kinds) & (df["correlation_id"] != "")].copy()
    conversation["queue_wait_s"] = conversation["queue_wait_s"].fillna(0.0)
    by_id = {c: g.sort_values(["t", "event_id"]) for c, g in conversation.groupby("correlation_id")}
    completed = [
        _completed(call, by_id.get(call["correlation_id"])) for _, call in calls.iterrows()
    ]
    for column in ("queue", "agent", "queue_wait_s", "direction"):
        calls[column] = [c[column] for c in completed]
    calls["bucket_start"] = bucket_of(calls["t"], bucket)
    rows = {}
    for key, g in calls.groupby(KEYS):
        handled = g[~g["abandoned"]]
        inbound = g[g["direction"] == "inbound"]
        answered = inbound[~inbound["abandoned"]]
        rows[key] = {
            "calls": len(g),
            "aht@1": _mean(
                (handled["talk_s"] + handled["hold_s"] + handled["wrap_s"]), len(handled)
            ),
            "asa@1": _mean(answered["queue_wait_s"], len(answered)),
            "service_level@1": _pct((answered["queue_wait_s"] <= threshold).sum(), len(inbound)),
            "abandonment@1": _pct(inbound["abandoned"].sum(), len(inbound)),
            "transfer@1": _pct(handled["correlation_id"].isin(transferred).sum(), len(handled)),
        }
    return rows


def _completed(call: pd.Series, conversation: pd.DataFrame | None) -> dict[str, Any]:
    """The call's queue, agent, wait and direction, its steps read as docs/metrics.md says: the
    steps after its conversation's previous call ended, up to its own end; its own values first,
    then the latest answer's queue (else the latest offer's), the latest agent, the first
    answer's wait; outbound when it or a step says so."""
    own = {k: call[k] for k in ("queue", "agent", "queue_wait_s", "direction")}
    if conversation is None:
        return own
    mine = (call["t"], call["event_id"])
    before = conversation[
        (conversation["type"] == "call.ended")
        & (
            (conversation["t"] < mine[0])
            | ((conversation["t"] == mine[0]) & (conversation["event_id"] < mine[1]))
        )
    ]
    previous_end = before["t"].max() if len(before) else 0
    steps = conversation[
        (conversation["type"] != "call.ended")
        & (conversation["t"] > previous_end)
        & (conversation["t"] <= mine[0])
    ]  # sorted by time, then event id
    answers = steps[steps["type"] == "call.answered"]
    queues = answers[answers["queue"] != ""]
    if queues.empty:
        queues = steps[steps["queue"] != ""]
    agents = steps[steps["agent"] != ""]
    return {
        "queue": own["queue"] or (queues["queue"].iloc[-1] if len(queues) else ""),
        "agent": own["agent"] or (agents["agent"].iloc[-1] if len(agents) else ""),
        "queue_wait_s": own["queue_wait_s"]
        or (answers["queue_wait_s"].iloc[0] if len(answers) else 0.0),
        "direction": "outbound"
        if own["direction"] == "outbound" or (steps["direction"] == "outbound").any()
        else "inbound",
    }


def _mean(values: pd.Series, n: int) -> tuple[float | None, int]:
    return (float(values.sum()) / n if n else None, n)


def _pct(count: int, n: int) -> tuple[float | None, int]:
    return (100.0 * count / n if n else None, n)


def _rank(values: pd.Series, q: float) -> float:
    ordered = values.sort_values().reset_index(drop=True)
    return float(ordered.iloc[min(int(q * len(ordered)), len(ordered) - 1)])


def _first_response(conv: pd.DataFrame) -> dict[str, Any]:
    conv = conv.sort_values(["t", "event_id"])
    sender = conv["sender"].where(conv["type"] != "email.replied", "customer")
    sender = sender.where(conv["type"] != "email.sent", "agent")
    first = conv[sender == "customer"].iloc[0]
    replies = conv[(sender == "agent") & (conv["t"] >= first["t"])]
    found = {"touchpoint": first["touchpoint"], "channel": first["channel"], "first_in": first["t"]}
    if replies.empty:
        return found | {"queue": "", "agent": "", "frt": None, "reply_at": None}
    reply_at = replies["t"].min()
    at_reply = replies[replies["t"] == reply_at]
    frt = (reply_at - first["t"]) / 1_000_000
    return found | {
        "queue": at_reply["queue"].min(), "agent": at_reply["agent"].min(), "frt": frt,
        "reply_at": reply_at,
    }  # fmt: skip


def opening_hours(calendar: Raw, since: int, until: int) -> tuple[np.ndarray, np.ndarray]:
    """UTC micros of the opening and closing of every opening interval of the calendar's local
    days around [since, until) (epoch micros). Local wall times become UTC with pandas: a
    repeated one as its first (summer-time) pass, a skipped one moved an hour later, which for
    Madrid's one-hour gap is the offset before the change (zoneinfo's fold=0)."""
    zone = calendar["time_zone"]
    ends = pd.to_datetime([since, until], unit="us", utc=True).tz_convert(zone).tz_localize(None)
    days = pd.date_range(
        ends[0].normalize() - pd.Timedelta(days=1), ends[1].normalize() + pd.Timedelta(days=1)
    )
    names = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    walls = [
        (
            day + pd.Timedelta(hours=int(o[:2]), minutes=int(o[3:])),
            day + pd.Timedelta(hours=int(c[:2]), minutes=int(c[3:])),
        )
        for day in days
        if day.date().isoformat() not in calendar.get("holidays", [])
        for o, c in calendar["hours"].get(names[day.weekday()], [])
    ]
    local = pd.DataFrame(walls, columns=["open", "close"])
    utc = [
        local[c].dt.tz_localize(
            zone, ambiguous=np.ones(len(local), bool), nonexistent=pd.Timedelta(hours=1)
        )
        for c in ("open", "close")
    ]
    micros = [(u - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(microseconds=1) for u in utc]
    return micros[0].to_numpy(np.int64), micros[1].to_numpy(np.int64)


def _business(convs: pd.DataFrame, calendar: Raw | None) -> pd.Series:
    """Each answered conversation's first response time inside the calendar's opening hours."""
    answered = convs.dropna(subset=["reply_at"])
    if calendar is None or answered.empty:
        return convs["frt"]
    first, reply = answered["first_in"].to_numpy(np.int64), answered["reply_at"].to_numpy(np.int64)
    opens, closes = opening_hours(calendar, int(first.min()), int(reply.max()))
    overlap = np.minimum(reply[:, None], closes[None, :]) - np.maximum(
        first[:, None], opens[None, :]
    )
    seconds = pd.Series(np.clip(overlap, 0, None).sum(axis=1) / 1_000_000, index=answered.index)
    return seconds.reindex(convs.index)


def _times(prefix: str, times: pd.Series) -> dict[str, Any]:
    n = len(times)
    return {
        f"{prefix}_p50@1": (_rank(times, 0.5) if n else None, n),
        f"{prefix}_p90@1": (_rank(times, 0.9) if n else None, n),
        f"{prefix}_mean@1": _mean(times, n),
    }


def reference_first_responses(
    df: pd.DataFrame, since: int, until: int, bucket: str, calendar: Raw | None = None
) -> dict[tuple[Any, ...], dict[str, Any]]:
    """FRT per cell, and FRT in the business hours of a calendar (its JSON form; None: open
    all the time)."""
    types = ["message.received", "message.sent", "email.replied", "email.sent"]
    msgs = df[df["type"].isin(types) & (df["correlation_id"] != "")]
    convs = pd.DataFrame(
        [_first_response(g) for _, g in msgs.groupby("correlation_id") if _has_inbound(g)]
    )
    convs = convs[(convs["first_in"] >= since) & (convs["first_in"] < until)].copy()
    convs["business"] = _business(convs, calendar)
    convs["bucket_start"] = bucket_of(convs["first_in"], bucket)
    rows = {}
    for key, g in convs.groupby(KEYS):
        times = g["frt"].dropna().astype(float)
        rows[key] = (
            {"conversations": len(g), "unanswered": len(g) - len(times)}
            | _times("frt", times)
            | _times("frt_business", g["business"].dropna().astype(float))
        )
    return rows


def _has_inbound(conv: pd.DataFrame) -> bool:
    return bool(((conv["sender"] == "customer") | (conv["type"] == "email.replied")).any())


def reference_surveys(
    df: pd.DataFrame, since: int, until: int, bucket: str
) -> dict[tuple[Any, ...], dict[str, Any]]:
    answered = set(df.loc[(df["type"] == "survey.answered") & (df["survey_id"] != ""), "survey_id"])
    sent = df[(df["type"] == "survey.sent") & (df["t"] >= since) & (df["t"] < until)].copy()
    sent["bucket_start"] = bucket_of(sent["t"], bucket)
    rows = {}
    for key, g in sent.groupby(KEYS):
        rows[key] = {
            "surveys_sent": len(g),
            "response_rate@1": _pct(g["survey_id"].isin(answered).sum(), len(g)),
        }
    return rows
