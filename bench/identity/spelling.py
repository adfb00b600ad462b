"""One touchpoint's identifiers as they get written, with the truth behind each.

`Identifiers` collects the `customer` block of an envelope while remembering, for every value, the
truth it stands for (a key such as `email:ana.garcia@gmail.com` or `phone:+34612345678`), and the
hazards in how it was written. Keys of placeholders stand for nobody; a malformed value stands for
nothing. A mistyped address stands for its true mailbox only when the same touchpoint carries
another identifier of the person (someone could tell); alone, it is an address of its own.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from typing import Any

from bench.identity import keyboard
from bench.identity.phones import Phone, write

PLACEHOLDER = "placeholder:"
TYPO = "typo:"


@dataclass
class Identifiers:
    customer: dict[str, Any] = field(default_factory=dict)
    evidence: set[str] = field(default_factory=set)
    placeholders: set[str] = field(default_factory=set)
    typos: dict[str, str] = field(default_factory=dict)  # typed address -> true key
    hazards: set[str] = field(default_factory=set)
    spelled: dict[str, str] = field(default_factory=dict)  # key -> as written

    def put(self, kind: str, value: str, key: str | None, *hazards: str) -> None:
        """Set a field of the customer block (later calls for the same field are ignored)."""
        if kind in self.customer or not value:
            return
        self.customer[kind] = value
        self.hazards.update(h for h in hazards if h)
        if key:
            self.evidence.add(key)
            self.spelled.setdefault(key, value)

    def put_external(self, namespace: str, value: str, key: str) -> None:
        self.customer.setdefault("external_ids", {})[namespace] = value
        self.evidence.add(key)
        self.spelled.setdefault(key, f"{namespace}:{value}")

    def placeholder(self, kind: str, value: str) -> None:
        if kind in self.customer:
            return
        self.customer[kind] = value
        key = PLACEHOLDER + value.strip().lower()
        self.placeholders.add(key)
        self.spelled.setdefault(key, value)
        self.hazards.add(f"placeholder_{kind}")

    def typed_email(self, mailbox: str, rng: random.Random, by_agent: bool, *hazards: str) -> None:
        """A mailbox typed into a form, a till or a CRM, with the slips that come with it."""
        if "email" in self.customer:
            return
        self.hazards.update(hazards)
        roll, scale = rng.random(), 1.7 if by_agent else 1.0
        if roll < 0.015 * scale:
            self.put("email", malformed_email(mailbox, rng), None, "malformed_identifier")
        elif roll < 0.06 * scale:
            typed, where = keyboard.mistype_email(mailbox, rng)
            self.customer["email"] = typed
            self.typos[typed] = key_of(mailbox)
            self.hazards.update({"email_typo", f"email_typo_{where}"})
        elif roll < 0.09 * scale:
            self.put(
                "email",
                f" {mailbox} " if rng.random() < 0.5 else f"{mailbox} ",
                key_of(mailbox),
                "email_spaces",
            )
        else:
            self.put("email", *cased(mailbox, rng))

    def written_phone(self, phone: Phone, rng: random.Random, *hazards: str) -> None:
        """A number typed by a person or a clerk, in the habits of its country."""
        if rng.random() < 0.025:
            self.put("phone", malformed_phone(phone, rng), None, "malformed_identifier")
            return
        written = write(phone, rng)
        self.put("phone", written, f"phone:{phone.e164}", *phone_hazards(phone, written), *hazards)

    def finish(self) -> tuple[frozenset[str], frozenset[str]]:
        """(evidence, every key carried): a typo joins the evidence of its mailbox when
        something else in the touchpoint vouches for the person."""
        evidence = set(self.evidence)
        for typed, true_key in self.typos.items():
            evidence.add(true_key if self.evidence else TYPO + typed.lower())
            self.spelled.setdefault(true_key, typed)
        return frozenset(evidence), frozenset(evidence | self.placeholders)


def key_of(mailbox: str) -> str:
    return f"email:{mailbox}"


def cased(mailbox: str, rng: random.Random) -> tuple[str, str, str]:
    """(as written, key, hazard): people capitalise, shout, or (on Gmail) move the dots."""
    local, _, domain = mailbox.partition("@")
    roll = rng.random()
    if roll < 0.08:
        return mailbox.capitalize(), key_of(mailbox), "email_case"
    if roll < 0.12:
        return mailbox.upper(), key_of(mailbox), "email_case"
    if roll < 0.15:
        return f"{local.title()}@{domain.title()}", key_of(mailbox), "email_case"
    if roll < 0.19 and domain == "gmail.com" and "." in local:
        return f"{local.replace('.', '')}@{domain}", key_of(mailbox), "email_gmail_dots"
    return mailbox, key_of(mailbox), ""


def malformed_email(mailbox: str, rng: random.Random) -> str:
    local, _, domain = mailbox.partition("@")
    return rng.choice(
        (
            f"{local}{domain}",  # the @ forgotten
            f"{local}@@{domain}",
            f"{local}@{domain.rpartition('.')[0]}",  # no top-level domain
            f"{local} @{domain}",
            f"{local}@{domain}.",
            f"{local}@",
        )
    )


def malformed_phone(phone: Phone, rng: random.Random) -> str:
    n = phone.national
    return rng.choice(
        (
            n[:-1],  # a digit missed
            n + rng.choice("0123456789"),  # one too many
            f"{n} / {n[::-1]}",  # two numbers in one field
            f"{n} (casa)",
            f"tel. {n}",
            n[:3] + " " + n[3:6],  # cut short
        )
    )


def phone_hazards(phone: Phone, written: str) -> tuple[str, ...]:
    digits = re.sub(r"\D", "", written)
    code = phone.e164[1:3]
    if written.startswith("00"):
        form = "phone_00_prefix"
    elif "+" in written:
        form = "phone_punctuated" if re.search(r"[()\-.]", written) else "phone_international"
    elif digits.startswith(code) and len(digits) > len(phone.national) + 1:
        form = "phone_country_digits"  # WhatsApp-style, no +
    else:
        form = "phone_national"
    return (form, "foreign_number") if phone.country != "ES" else (form,)
