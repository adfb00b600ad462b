"""Phone numbers of Spain, Mexico, Argentina and Colombia, and the ways people write them.

A number is drawn at random in the country's numbering plan and kept only when the libphonenumber
metadata says the country issues it (so it is a number someone could really have). How it is then
written follows each country's habits: Spaniards group a mobile `612 345 678` or `612 34 56 78`,
dial abroad with `00`, WhatsApp exports `34612345678`; Mexicans write `(55) 1234-5678` and the old
mobile `1` after `+52`; Argentines keep the `15` of a mobile dialled locally and the `9` of one
dialled from abroad; Colombians write `300 123 4567`.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

import phonenumbers

# Country calling codes, and the area codes numbers are drawn in (the biggest cities first).
CODES = {"ES": "34", "MX": "52", "AR": "54", "CO": "57"}
AREAS = {
    "MX": ("55", "55", "33", "81", "222", "442", "998"),
    "AR": ("11", "11", "11", "351", "341", "261"),
    "CO": ("601", "604", "602"),  # landlines; Colombian mobiles have no area code
}


@dataclass(frozen=True)
class Phone:
    """A real number: its country, its E.164 form (the truth) and its parts as people say them."""

    country: str
    e164: str
    mobile: bool
    area: str  # empty where the country has no area code for this kind of number
    subscriber: str  # the rest of the national number (after the area code)

    @property
    def national(self) -> str:
        return self.area + self.subscriber


def draw(country: str, mobile: bool, rng: random.Random) -> Phone:
    """A number the country issues, drawn at random in its plan."""
    while True:
        found = _candidate(country, mobile, rng)
        parsed = phonenumbers.parse(found.e164)
        kind = phonenumbers.number_type(parsed)
        wanted = (
            phonenumbers.PhoneNumberType.MOBILE
            if mobile
            else phonenumbers.PhoneNumberType.FIXED_LINE
        )
        either = phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE
        if phonenumbers.is_valid_number(parsed) and kind in (wanted, either):
            return found


def _digits(count: int, rng: random.Random) -> str:
    return "".join(rng.choices("0123456789", k=count))


def _candidate(country: str, mobile: bool, rng: random.Random) -> Phone:
    code = CODES[country]
    if country == "ES":
        first = rng.choice("6666667" if mobile else "99998")
        number = first + _digits(8, rng)
        return Phone(country, f"+{code}{number}", mobile, "", number)
    if country == "CO" and mobile:
        number = "3" + rng.choice("0012") + _digits(8, rng)
        return Phone(country, f"+{code}{number}", mobile, "", number)
    area = rng.choice(AREAS[country])
    subscriber = _digits(10 - len(area), rng)
    # Argentina dials a mobile from abroad with a 9 before the area code.
    nine = "9" if country == "AR" and mobile else ""
    return Phone(country, f"+{code}{nine}{area}{subscriber}", mobile, area, subscriber)


def _groups(text: str, sizes: tuple[int, ...], sep: str) -> str:
    parts, start = [], 0
    for size in sizes:
        parts.append(text[start : start + size])
        start += size
    if start < len(text):
        parts.append(text[start:])
    return sep.join(p for p in parts if p)


Spelling = Callable[[Phone], str]


def _es(p: Phone) -> list[tuple[Spelling, int]]:
    n = p.national
    return [
        (lambda p: _groups(n, (3, 3, 3), " "), 22),  # 612 345 678
        (lambda p: n, 22),  # 612345678
        (lambda p: _groups(n, (3, 2, 2, 2), " "), 10),  # 612 34 56 78
        (lambda p: _groups(n, (3, 3, 3), "."), 3),  # 612.345.678
        (lambda p: _groups(n, (3, 3, 3), "-"), 3),  # 612-345-678
        (lambda p: "+34 " + _groups(n, (3, 2, 2, 2), " "), 8),  # +34 612 34 56 78
        (lambda p: "+34" + n, 10),  # +34612345678
        (lambda p: "+34 " + _groups(n, (3, 3, 3), " "), 6),
        (lambda p: "0034" + n, 5),  # 0034612345678
        (lambda p: "0034 " + _groups(n, (3, 3, 3), " "), 2),
        (lambda p: "34" + n, 5),  # WhatsApp-style 34612345678
        (lambda p: "(+34) " + _groups(n, (3, 3, 3), "-"), 2),  # (+34) 612-345-678
        (lambda p: "+34-" + _groups(n, (3, 3, 3), "-"), 2),
    ]


def _mx(p: Phone) -> list[tuple[Spelling, int]]:
    a, s = p.area, p.subscriber
    split = (len(s) + 1) // 2
    local = _groups(s, (split,), " ")
    return [
        (lambda p: f"{a} {local}", 12),  # 55 1234 5678
        (lambda p: f"({a}) {_groups(s, (split,), '-')}", 10),  # (55) 1234-5678
        (lambda p: a + s, 14),  # 5512345678
        (lambda p: f"+52 {a} {local}", 14),
        (lambda p: f"+52 1 {a} {local}", 8),  # the old mobile 1, still written
        (lambda p: f"521{a}{s}", 8),  # WhatsApp-style
        (lambda p: f"+52{a}{s}", 10),
        (lambda p: f"0052 {a} {local}", 4),
        (lambda p: f"044 {a} {local}", 3),  # the old national mobile prefix
    ]


def _ar(p: Phone) -> list[tuple[Spelling, int]]:
    a, s = p.area, p.subscriber
    head = len(s) - 4
    dashed = f"{s[:head]}-{s[head:]}"
    if not p.mobile:
        return [
            (lambda p: f"(0{a}) {dashed}", 12),
            (lambda p: f"0{a} {dashed}", 10),
            (lambda p: f"+54 {a} {dashed}", 10),
            (lambda p: f"{a} {s}", 6),
        ]
    return [
        (lambda p: f"0{a} 15-{dashed}", 12),  # a mobile dialled locally: 15 after the area
        (lambda p: f"{a} 15 {dashed}", 8),
        (lambda p: f"+54 9 {a} {dashed}", 14),
        (lambda p: f"549{a}{s}", 10),  # WhatsApp-style
        (lambda p: f"+549{a}{s}", 8),
        (lambda p: f"+54 {a} 15 {dashed}", 5),  # 15 kept with the country code: common
        (lambda p: f"0054 9 {a} {s}", 3),
        (lambda p: f"{a} {dashed}", 6),
    ]


def _co(p: Phone) -> list[tuple[Spelling, int]]:
    n = p.national
    if not p.mobile:
        return [(lambda p: f"({n[:3]}) {n[3:]}", 10), (lambda p: f"+57 {n[:3]} {n[3:]}", 8)]
    return [
        (lambda p: _groups(n, (3, 3, 4), " "), 18),  # 300 123 4567
        (lambda p: n, 14),
        (lambda p: f"+57 {n[:3]} {n[3:]}", 14),
        (lambda p: f"(+57) {_groups(n, (3, 3, 4), '-')}", 6),
        (lambda p: f"57{n}", 8),  # WhatsApp-style
        (lambda p: f"+57{n}", 10),
        (lambda p: f"0057 {n}", 3),
    ]


HABITS: dict[str, Callable[[Phone], list[tuple[Spelling, int]]]] = {
    "ES": _es,
    "MX": _mx,
    "AR": _ar,
    "CO": _co,
}


def write(phone: Phone, rng: random.Random) -> str:
    """The number as a person of its country writes it, one habit drawn at random."""
    habits = HABITS[phone.country](phone)
    spelling = rng.choices([h for h, _ in habits], weights=[w for _, w in habits])[0]
    return spelling(phone)


def caller_id(phone: Phone) -> str:
    """The calling number as a cloud contact centre presents it (Twilio and the like): E.164."""
    return phone.e164


def whatsapp(phone: Phone) -> str:
    """The number as messaging gateways export it: country code and digits, no `+`."""
    return phone.e164[1:]
