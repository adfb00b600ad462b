"""Identifier normalisation: every spelling of one mailbox, line or account becomes one value, and
placeholders typed by agents or systems never become identifiers (pure: no I/O or clock)."""

from __future__ import annotations

import itertools
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, lru_cache, partial
from typing import Any, Literal

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from rapidfuzz.distance import OSA

from kernel.shredding import UNATTRIBUTED, subject_of
from schemas.envelope import CustomerRef
from services.identity.keyboard import keyboard_slip, neighbours
from services.identity.placeholders import PLACEHOLDER_EMAIL_LOCALS, PLACEHOLDER_TOKENS
from services.identity.placeholders import words as _words
from services.identity.rules import ExternalNamespace, Identifier, TenantRules


@dataclass(frozen=True)
class Rejected:
    """An identifier of the event that cannot link anyone, and why."""

    kind: str
    raw: str
    reason: Literal["blocked", "placeholder", "invalid"]

    @property
    def explanation(self) -> str:
        """Why, in words a producer can act on."""
        return _EXPLANATIONS[self.reason]

    @property
    def path(self) -> str:
        """Where the event carried it: `customer.email`, `customer.external_ids.loyalty`."""
        family, _, namespace = self.kind.partition(":")
        return f"customer.external_ids.{namespace}" if namespace else f"customer.{family}"


def explanation_of(reason: str) -> str:
    return _EXPLANATIONS.get(reason, reason)


_EXPLANATIONS = {
    "blocked": "on this tenant's list of values that identify nobody",
    "placeholder": "a placeholder (a value typed when the real one is unknown), not an identifier",
    "invalid": "not a valid value of its kind",
}


@dataclass(frozen=True)
class Normalised:
    identifiers: tuple[Identifier, ...]
    rejected: tuple[Rejected, ...]


# RFC 2606 reserves example.*, .invalid, .test and localhost; the rest are what people type.
PLACEHOLDER_EMAIL_DOMAINS = _words(
    "correo.com email.com example.com example.net example.org invalid localhost noemail.com "
    "none.com sincorreo.com sinemail.com test test.com unknown.com"
)
# As a domain's name the same words mean nothing, except those that are real providers' names.
_PLACEHOLDER_DOMAIN_NAMES = PLACEHOLDER_EMAIL_LOCALS - {"correo", "email", "mail"}
# Words for "email" as a whole domain's name (`x@email.net`, `a@correo.es`): a field filled in,
# not a provider, unless the tenant lists it as one (`mail.com` is a provider; so is `gmx`).
_EMAIL_WORD_DOMAIN_NAMES = _words("correo e-mail email")
# Role mailboxes (RFC 2142's, and their Spanish names): they name a desk or a shop, not a person.
# At a consumer provider such a mailbox is a business's own account, typed by its clerks for
# customers who gave none (`tienda@gmail.com`); at a company's own domain it stays an identifier
# (the desk is a customer of its own), see `_placeholder_email`.
ROLE_EMAIL_LOCALS = _words(
    "abuse admin administracion atencion atencionalcliente billing comercial compras contact "
    "contacto facturacion hostmaster info informacion marketing noc oficina pedidos postmaster "
    "recepcion reservas sales security soporte support tienda ventas webmaster"
)
_PHONE_SEQUENCES = "01234567890123456789", "98765432109876543210"
# Digits of a subscriber number: six alike (`600 000 000`) is typed, not dialled.
_SUBSCRIBER_DIGITS = 6
MEMO_E164 = 32_768  # numbers read in one region, remembered (see `_valid_e164`)


def normalise_email(raw: str, rules: TenantRules) -> str | None:
    """One spelling per mailbox, or None when the text is not an email address at all (nor one
    mended by `mend_email`)."""
    try:
        address = validate_email(raw.strip(), check_deliverability=False)
    except EmailNotValidError:
        mended = mend_email(raw, rules.consumer_domains)
        if mended is None:
            return _without_stray_comma(raw, rules)
        try:
            address = validate_email(mended, check_deliverability=False)
        except EmailNotValidError:
            return None
    local, domain = address.local_part.lower(), address.domain.lower().rstrip(".")
    domain = fix_domain(rules.email_domain_fixes.get(domain, domain), rules.consumer_domains)
    if rules.email_strip_plus_tags:
        local = local.partition("+")[0] or local
    if domain in rules.email_dotless_domains:
        local = local.replace(".", "")
    return f"{local}@{domain}"


_SPACE = "[ \u00a0]*"
_BESIDE_AT = re.compile(f"{_SPACE}@{_SPACE}")
_SPACED_FIRST_DOT = re.compile(f"([^.\\s]+){_SPACE}\\.{_SPACE}(\\S+)")
_AT_RUN = re.compile(r"@{2,}")
# Wide forms of `@` and `.` a phone's keyboard may give; nothing else of the text is rewritten.
_WIDE = str.maketrans({"\uff20": "@", "\ufe6b": "@", "\uff0e": ".", "\ufe52": ".", "\u2024": "."})
# The shortest consumer domain an address missing its `@` is read at: typed as a dot before it
# (`ana.gil.live.com`), or left out, the domain glued to the name (`anagil77gmail.com`), where a
# shorter one ends too many words (`x.olive.com` is no `x.o@live.com`, `jaime.com` no `jai@me.com`).
_MEND_AFTER_DOT = 8
_MEND_GLUED = 9
# A provider's web address is no mailbox (`outlook.live.com`, `www.gmail.com`, `es.yahoo.com`).
_HOST_WORDS = _words("account accounts correo email login mail signin webmail www")


def mend_email(raw: str, consumer_domains: tuple[str, ...]) -> str | None:
    """An address as its writer meant it when a slip on a phone's keyboard made it invalid:
    a space beside its `@` (`ana.gil @gmail.com`) or beside the first dot of its domain
    (`ana@hotmail. es`), a full stop after it (`ana@hotmail.es.`), a full-width `＠`, the `@` typed twice (`ana@@gmail.com`), or the `@`
    typed as a dot or left out before a consumer provider's domain (`ana.gil.hotmail.es`,
    `anagil77gmail.com`). Never words apart (`no tiene correo @gmail.com`, `Sr. ana@gmail.com`,
    `ana@gmail.com. Gracias`), a placeholder domain (`ninguno.email.com`) or a provider's web
    address (`outlook.live.com`). None when none of these mends it; what is mended is validated
    again by the caller."""
    text = _AT_RUN.sub("@", _BESIDE_AT.sub("@", raw.strip().translate(_WIDE)))
    if "@" in text:
        local, _, domain = text.rpartition("@")
        spaced = _SPACED_FIRST_DOT.fullmatch(domain)  # a space beside the domain's first dot only
        domain = f"{spaced[1]}.{spaced[2]}" if spaced else domain
        # A full stop after the whole domain (`ana@gmail.com.`: the end of a sentence): a domain
        # written with its final dot is the same domain, and what is left is validated again.
        if domain.endswith(".") and not domain.endswith(".."):
            domain = domain[:-1]
        text = f"{local}@{domain}"
        if " " in text or "\u00a0" in text:
            return None
        return text if text != raw.strip() else None
    if " " in text or "\u00a0" in text:
        return None
    lowered = text.lower()
    if any(lowered.endswith(d) for d in PLACEHOLDER_EMAIL_DOMAINS):
        return None
    for domain in sorted(consumer_domains, key=len, reverse=True):  # `gmail`, not `mail`
        if not lowered.endswith(domain):
            continue
        local = text[: len(text) - len(domain)]
        after_dot = local.endswith(".")
        local = local.removesuffix(".")
        if after_dot and _host_label(local.lower(), consumer_domains):
            return None
        shortest = _MEND_AFTER_DOT if after_dot else _MEND_GLUED
        return f"{local}@{domain}" if len(domain) >= shortest and len(local) > 1 else None
    return None


def _without_stray_comma(raw: str, rules: TenantRules) -> str | None:
    """The mailbox an address with one comma in its local part means, when the comma was hit
    with a key beside it: `,` sits right of `m` and under `k` and `l`, next to `.` (keyboard.py),
    and a comma is never part of an address as forms take it (an unquoted local part has none).
    The comma beside one of those keys is read as hit with it (dropped), as hit for a dot, and as
    hit for the letter beside it (`guil,ermo@` for `guillermo@`, a review); the address is mended
    only when every reading that is an address names one mailbox: at Gmail, whose dots identity
    drops, `cristinavil,lalobos@gmail.com` (a third `l` in a row is no one's spelling) and
    `ana.,gil@`; not `guil,ermo@` (`guilermo@` or `guillermo@`?), `,mcortes@` (`mmcortes@`?) nor
    `ana,lopez@hotmail.es` (`analopez@` or `ana.lopez@`?). A comma beside none of those keys stood
    for a letter (`migue,@` for `miguel@`): what it stood for is a guess, and it stays invalid.
    Readings that disagree are read as the one a customer holds, when one alone is
    (`comma_readings`, `with_known_reading`)."""
    readings = _comma_readings(raw, rules)
    return readings.pop() if len(readings) == 1 else None


def _comma_readings(raw: str, rules: TenantRules) -> set[str]:
    """The mailboxes an address with one stray comma may be (`_without_stray_comma`)."""
    local, at, domain = raw.strip().rpartition("@")
    if not at or local.count(",") != 1 or "," in domain:
        return set()
    comma = local.index(",")
    before, after = local[:comma], local[comma + 1 :]
    beside = {c.lower() for c in before[-1:] + after[:1]} & set(neighbours()[","])
    if not beside:
        return set()
    hits = {"", "."} | {c for c in beside if c.isalpha() and not _third_in_a_row(before, c, after)}
    found = {normalise_email(f"{before}{hit}{after}@{domain}", rules) for hit in hits}
    return {r for r in found if r is not None}


def _third_in_a_row(before: str, letter: str, after: str) -> bool:
    """`letter` between `before` and `after` makes three of it in a row."""
    run = f"{before[-2:]}{letter}{after[:2]}".lower()
    return letter * 3 in run


def _host_label(local: str, consumer_domains: tuple[str, ...]) -> bool:
    """A web host's first label, not a mailbox: `www`, `login`, a country (`es`), a provider."""
    providers = {d.partition(".")[0] for d in consumer_domains}
    return "." not in local and (len(local) <= 3 or local in _HOST_WORDS or local in providers)


def fix_domain(domain: str, known: tuple[str, ...]) -> str:
    """The consumer domain a mistyped one means: the only known domain one edit away (a letter
    missed, added, changed or two swapped), never a known domain or a short one (`me.co`). When
    several are, the only one a finger's slip reaches (`keyboard.keyboard_slip`: `mgail.com` is
    `gmail.com` with two letters swapped, not `mail.com` with a `g` from nowhere); when no slip
    of a finger reaches any, the only one a letter left out reaches (`gail.com` is `gmail.com`
    without its `m`, where `mail.com` needs a `g` typed for an `m` across the keyboard); else
    none."""
    if domain in known or len(domain) < 8:
        return domain
    near = [k for k in known if OSA.distance(domain, k, score_cutoff=1) <= 1]
    if len(near) > 1:
        slips = [k for k in near if keyboard_slip(domain, k)]
        near = slips or [k for k in near if _letter_left_out(domain, k)]
    return near[0] if len(near) == 1 else domain


def _letter_left_out(typed: str, meant: str) -> bool:
    """`typed` is `meant` with one of its letters missing."""
    return len(meant) == len(typed) + 1 and any(
        meant[:i] + meant[i + 1 :] == typed for i in range(len(meant))
    )


def normalise_phone(raw: str, rules: TenantRules) -> str | None:
    """E.164, or None when it is not a valid number: read in the tenant's region when national
    (`617 345 678`, `0034…`), else as written with its country code, which may have lost its `+`
    (`447700900123`, or a `+` that a URL turned into a space), else in the one other region of
    the tenant's customers where it is valid (`0351 15-976-5565`: Argentina's only)."""
    for text in (raw, _without_retired_prefix(raw)):
        if text is None:
            continue
        if _bare_argentine(text, rules.phone_region):
            return None  # a landline or a mobile: `ambiguous_readings`
        for spelled, region in ((text, rules.phone_region), ("+" + text.strip(), None)):
            found = _valid_e164(spelled, region)
            if found:
                return found
    readings = _other_readings(raw, rules)
    return readings.pop() if len(readings) == 1 else None


def _other_readings(raw: str, rules: TenantRules) -> set[str]:
    """What a national number, invalid in the tenant's region, is in its other regions: with an
    Argentine reading's mobile twin (`_argentine_mobile`) beside it."""
    readings: set[str] = set()
    for region in rules.other_phone_regions:
        reading = _valid_e164(raw, region)
        if reading:
            readings.add(reading)
            readings.update(_argentine_mobile(reading))
    return readings


def _argentine_mobile(e164: str) -> tuple[str, ...]:
    """The mobile an Argentine number written without its mobile prefix may be. Argentina's
    mobiles and landlines share one ten-digit numbering: a mobile is dialled with `15` after the
    area code at home and `9` after the country code from abroad (`+54 9 341 362-3389`), and
    people write their mobile with neither (`341 362-3389`), which libphonenumber reads as a
    landline. Both are one subscriber's line; which one the writer meant, nothing says."""
    national = e164.removeprefix(ARGENTINA)
    if national == e164 or len(national) != 10 or national.startswith("9"):
        return ()
    mobile = _valid_e164(f"{ARGENTINA}9{national}", None)
    return (mobile,) if mobile else ()


ARGENTINA = "+54"


@lru_cache(maxsize=MEMO_E164)
def _bare_argentine(text: str, region: str) -> tuple[str, ...]:
    """An Argentine number written nationally in the tenant's own region (a tenant in Argentina)
    without its mobile `15` (`341 362-3389`): its landline and mobile readings; else empty."""
    try:
        number = phonenumbers.parse(text, region, keep_raw_input=True)
    except phonenumbers.NumberParseException:
        return ()
    national = number.country_code_source == phonenumbers.CountryCodeSource.FROM_DEFAULT_COUNTRY
    landline = _valid_e164(text, region) if national else None
    mobile = _argentine_mobile(landline) if landline else ()
    return (landline, *mobile) if landline and mobile else ()


# Remembered: a national number invalid in the tenant's region is read in its other regions
# twice, for its value (`normalise_phone`) and for its readings (`ambiguous_readings`).
@lru_cache(maxsize=MEMO_E164)
def _valid_e164(text: str, region: str | None) -> str | None:
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


# Mexico's mobile `1` after the country code, retired in 2019 (`+52 1 55 1234 5678` is
# `+52 55 1234 5678`), is still how many phones and WhatsApp write Mexican mobiles.
_RETIRED_MX_MOBILE = re.compile(r"\s*(?:\+|00)?\s*52[\s\-.]*1[\s\-.(]*(\d[\d\s\-.()]{9,})")


def _without_retired_prefix(raw: str) -> str | None:
    """The number without a retired mobile prefix, when it has one and is written with its
    country code; None otherwise."""
    found = _RETIRED_MX_MOBILE.fullmatch(raw)
    if not found:
        return None
    digits = re.sub(r"\D", "", found.group(1))
    return f"+52{digits}" if len(digits) == 10 else None


def normalise_external(namespace: str, raw: str, rules: TenantRules) -> str:
    config = rules.external.get(namespace, ExternalNamespace())
    value = raw.strip()
    value = value.translate({ord(c): None for c in config.drop})
    if config.case == "lower":
        return value.lower()
    return value.upper() if config.case == "upper" else value


def is_placeholder(identifier: Identifier, raw: str, consumer_domains: tuple[str, ...]) -> bool:
    """Whether the value was typed to fill a required field rather than to name anyone; emails at
    `consumer_domains` (the providers that give people their mailboxes) are held to the names
    those providers give out."""
    if (
        identifier.value.casefold() in PLACEHOLDER_TOKENS
        or raw.strip().casefold() in PLACEHOLDER_TOKENS
    ):
        return True
    if identifier.family == "email":
        return _placeholder_email(identifier.value, consumer_domains)
    if identifier.family == "phone":
        return _placeholder_digits(re.sub(r"\D", "", raw))
    return False


def is_example_number(identifier: Identifier) -> bool:
    """Whether a phone is the example number of its region for some line type, as forms and
    guides print it (libphonenumber's metadata: Spain's mobile example is `+34612345678`)."""
    return identifier.family == "phone" and identifier.value in _example_numbers()


@cache
def _example_numbers() -> frozenset[str]:
    # Read once, on first use: every region's example of every line type (about a thousand).
    found = set()
    for region in phonenumbers.SUPPORTED_REGIONS:
        for line_type in _LINE_TYPES:
            number = phonenumbers.example_number_for_type(region, line_type)
            if number is not None:
                found.add(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))
    return frozenset(found)


_LINE_TYPES = tuple(
    value
    for name, value in vars(phonenumbers.PhoneNumberType).items()
    if name.isupper() and isinstance(value, int) and name != "UNKNOWN"
)


def _placeholder_email(value: str, consumer_domains: tuple[str, ...]) -> bool:
    """A mailbox nobody reads: a no-value word before the `@` (`desconocido@x.com`) or as the
    domain's name, the same word on both sides (`ninguno@ninguno.es`, `x@x.com`), one key
    repeated (`xxx@yahoo.es`, `tienda@a.net`), the word "email" as the domain (`x@email.net`),
    one character before the `@` at any domain (`a@x.com`, `x@qwe.es`), or at a consumer
    provider a name it gives nobody (`nil@gmail.com`) or a shop's own mailbox
    (`tienda@gmail.com`): what people type to get past a required field."""
    local, _, domain = value.rpartition("@")
    label = domain.partition(".")[0]
    return (
        local in PLACEHOLDER_EMAIL_LOCALS
        # The shortest mailbox a form accepts, wherever it is typed: consumer providers give
        # nobody one letter, and the rare person whose own domain gives them one (`j@acme.es`)
        # loses only this link (her phone and devices still find her), while an agent's `a@x.com`
        # typed for every walk-in would serve strangers' histories to each other.
        or len(local) == 1
        # Consumer providers give nobody `nil@` or `guest@`; a company naming its own mailboxes
        # may (`nil@acme.cat`: Nil is a Catalan name; `guest@hotelsol.es`).
        or (
            domain in consumer_domains
            and (local in PLACEHOLDER_TOKENS or local in ROLE_EMAIL_LOCALS)
        )
        or label in _PLACEHOLDER_DOMAIN_NAMES  # x@ninguno.es, a@sinemail.com
        or (label in _EMAIL_WORD_DOMAIN_NAMES and domain not in consumer_domains)
        or (len(label) > 1 and len(set(label)) == 1)  # @xxx.es, @aa.com: a key held down
        # A desk's mailbox at a one-letter domain (`tienda@a.net`): the shortest domain a form
        # accepts, not a company's (a person's `ana@x.es` may be real).
        or (len(label) == 1 and local in ROLE_EMAIL_LOCALS)
        or domain in PLACEHOLDER_EMAIL_DOMAINS
        or local == label
        or (len(local) > 1 and len(set(local)) == 1)  # xx@, xxx@: a key held down
    )


def _placeholder_digits(digits: str) -> bool:
    if len(digits) < _SUBSCRIBER_DIGITS:
        return False  # too short to be a number at all: invalid, not a placeholder
    national = digits[-9:]
    subscriber = national[-_SUBSCRIBER_DIGITS:]
    return (
        len(set(national)) <= 1
        or len(set(subscriber)) <= 1
        or any(national in seq for seq in _PHONE_SEQUENCES)
    )


def is_blocked(identifier: Identifier, raw: str, rules: TenantRules) -> bool:
    blocked = {v.casefold() for v in rules.blocked.get(identifier.family, ())}  # type: ignore[call-overload]
    return identifier.value.casefold() in blocked or raw.strip().casefold() in blocked


def raw_identifiers(ref: CustomerRef) -> list[tuple[str, str]]:
    """The (kind, value as sent) identifiers an event carries, in the order identity reads them."""
    found = [
        (kind, raw)
        for kind, raw in (
            ("customer_id", ref.customer_id),
            ("email", ref.email),
            ("phone", ref.phone),
            ("anonymous_id", ref.anonymous_id),
        )
        if raw
    ]
    return found + [(f"external:{ns}", raw) for ns, raw in sorted(ref.external_ids.items())]


def normalise_one(kind: str, raw: str, rules: TenantRules) -> Identifier | Rejected:
    """One identifier of the event, normalised, or why it cannot link anyone. Answers are
    remembered (a bounded memo): the same customers present the same spellings over and over."""
    key, found = _recall(_answers, rules, kind, raw)
    if found is _UNKNOWN:
        found = _normalise_one(kind, raw, rules)
        _remember(_answers, key, found)
    assert isinstance(found, Identifier | Rejected)
    return found


# Answers remembered, of every rules object together: about 12 MB at most in each memo, the least
# recently used forgotten first. Rules objects hold dicts, so they are not hashable: answers are
# keyed by a token of the rules' contents, so that equal rules share them (the ingest's note and
# identity's filing read one spelling once, whichever object each holds). A rules object's token
# is found by its id, and every rules object with a token is held here (its id cannot be another
# object's while it is alive); more than MEMO_RULES of them are let go (their tokens stay), more
# than MEMO_RULES different contents (rules files edited again and again) forget everything.
# Tokens are never reused, so an answer remembered under a token let go is never another's.
MEMO_ANSWERS = 32_768
MEMO_RULES = 64
Key = tuple[int, str, str]  # (token of the rules' contents, kind, spelling)
_answers: OrderedDict[Key, Identifier | Rejected] = OrderedDict()
# Normalised values by (rules, kind, spelling): see `_spelling`.
_values: OrderedDict[Key, str | None] = OrderedDict()
# A rejected national number's readings in the other regions, by (rules, "phone", spelling): asked
# for by the ingest's note, then twice by identity (its preload, then the touchpoint's turn).
_readings: OrderedDict[Key, tuple[Identifier, ...]] = OrderedDict()
_rules_held: dict[int, tuple[TenantRules, int]] = {}  # by id: the rules and their token
_tokens: dict[str, int] = {}  # by the rules' contents (JSON)
_next_token = itertools.count()
_memo_lock = threading.Lock()
_UNKNOWN: Any = object()


def _recall(
    memo: OrderedDict[Key, Any], rules: TenantRules, kind: str, text: str
) -> tuple[Key, Any]:
    """The memo's key for this spelling under these rules, and its answer (`_UNKNOWN`: none)."""
    with _memo_lock:
        key = (_token(rules), kind, text)
        found = memo.get(key, _UNKNOWN)
        if found is not _UNKNOWN:
            memo.move_to_end(key)
    return key, found


def _token(rules: TenantRules) -> int:
    """The token of the rules' contents (called under `_memo_lock`)."""
    held = _rules_held.get(id(rules))
    if held is not None:
        return held[1]
    if len(_rules_held) >= MEMO_RULES:
        _rules_held.clear()
    contents = rules.model_dump_json()
    token = _tokens.get(contents)
    if token is None:
        if len(_tokens) >= MEMO_RULES:
            _tokens.clear()
            _answers.clear()
            _values.clear()
            _readings.clear()
        token = _tokens[contents] = next(_next_token)
    _rules_held[id(rules)] = (rules, token)
    return token


def _remember(memo: OrderedDict[Key, Any], key: Key, answer: Any) -> None:
    with _memo_lock:
        if len(memo) >= MEMO_ANSWERS:
            memo.popitem(last=False)  # the least recently used
        memo[key] = answer


# What a phone number may be written with besides its digits and a leading `+`: separators that
# phonenumbers drops when it reads a number (no letters, extensions or second numbers).
_PHONE_SEPARATED = re.compile(r" *\+?[0-9 ().\-]*")
_PHONE_SEPARATORS = re.compile(r"[ ().\-]")


def _spelling(kind: str, raw: str) -> str | None:
    """A spelling of `raw` that normalises to the same value, shared by the other ways of writing
    it (`617 34 56 78`, `617-345-678` -> `617345678`; `Ana@X.io ` -> `ana@x.io`), so that parsing
    runs once for all of them; None when no such spelling is known to be safe."""
    if kind == "phone" and _PHONE_SEPARATED.fullmatch(raw):
        return _PHONE_SEPARATORS.sub("", raw)
    if kind == "email" and raw.isascii():
        return raw.strip().lower()  # normalise_email ignores the case and surrounding spaces
    return None


def _value_of(kind: str, raw: str, rules: TenantRules) -> str | None:
    """`_normalised_value`, remembered by spelling for emails and phones (parsing is costly)."""
    found = _by_spelling(
        _values, kind, raw, rules, lambda text: _normalised_value(kind, text, rules)
    )
    assert found is None or isinstance(found, str)
    return found


def _by_spelling(
    memo: OrderedDict[Key, Any],
    kind: str,
    raw: str,
    rules: TenantRules,
    compute: Callable[[str], Any],
) -> Any:
    """`compute` of `raw`, remembered in `memo` by its spelling (`_spelling`) when it has one."""
    spelling = _spelling(kind, raw)
    if spelling is None:
        return compute(raw)
    key, found = _recall(memo, rules, kind, spelling)
    if found is _UNKNOWN:
        found = compute(spelling)
        _remember(memo, key, found)
    return found


def _normalise_one(kind: str, raw: str, rules: TenantRules) -> Identifier | Rejected:
    value = _value_of(kind, raw, rules)
    # Placeholders are named as such even when they are not valid values (0000000000).
    seen = Identifier(kind, value or raw.strip())
    if is_blocked(seen, raw, rules):
        return Rejected(kind, raw, "blocked")
    if rules.detect_placeholders and (
        is_placeholder(seen, raw, rules.consumer_domains)
        or (rules.phone_examples_are_placeholders and is_example_number(seen))
    ):
        return Rejected(kind, raw, "placeholder")
    if not value:
        return Rejected(kind, raw, "invalid")
    return seen


def _normalised_value(kind: str, raw: str, rules: TenantRules) -> str | None:
    family, _, namespace = kind.partition(":")
    if family == "email":
        return normalise_email(raw, rules)
    if family == "phone":
        return normalise_phone(raw, rules)
    if family == "external":
        return normalise_external(namespace, raw, rules)
    return raw.strip()


def normalise_ref(ref: CustomerRef, rules: TenantRules) -> Normalised:
    """Every identifier of the event, normalised; those that may not link anyone are set apart."""
    results = [normalise_one(kind, raw, rules) for kind, raw in raw_identifiers(ref)]
    return Normalised(
        identifiers=tuple(r for r in results if isinstance(r, Identifier)),
        rejected=tuple(r for r in results if isinstance(r, Rejected)),
    )


def ambiguous_readings(rejected: Rejected, rules: TenantRules) -> tuple[Identifier, ...]:
    """The numbers a national phone number, invalid in the tenant's region, is in several of its
    other regions (`316 951 3292`: Colombian or Mexican); empty for any other rejection."""
    if rejected.kind != "phone" or rejected.reason != "invalid":
        return ()
    found = _by_spelling(_readings, "phone", rejected.raw, rules, partial(_readings_of, rules))
    assert isinstance(found, tuple)
    return found


def _readings_of(rules: TenantRules, raw: str) -> tuple[Identifier, ...]:
    found = sorted(_bare_argentine(raw, rules.phone_region) or _other_readings(raw, rules))
    return tuple(Identifier("phone", r) for r in found) if len(found) > 1 else ()


# The sealing subject of a touchpoint whose only phone is a national number several of the
# tenant's other regions read (`ambiguous_readings`), and nothing else usable: its readings,
# sorted and joined. Not an identifier anyone holds or links; identity records who carried it
# (`changes.carry_while_skipped`) so that erasing them takes its key (docs/erasure.md).
READINGS_KIND = "phone_readings"
READINGS_SEPARATOR = "|"


def sealing_subject(normalised: Normalised, rules: TenantRules) -> str:
    """The subject an event is sealed under (`kernel.shredding.subject_of`), from its
    identifiers as identity normalises them before any known reading: the sealer
    (`cem.sealing.subject_function`) and identity (`resolver._evidence`) both ask here, so they
    agree. With no usable identifier, a national number read in several regions names the
    readings (`readings_subject`: the first, sorted, of several such numbers), else
    `UNATTRIBUTED`."""
    if normalised.identifiers:
        return subject_of((i.kind, i.value) for i in normalised.identifiers)
    subjects = sorted(
        readings_subject(readings)
        for rejected in normalised.rejected
        if (readings := ambiguous_readings(rejected, rules))
    )
    return subjects[0] if subjects else UNATTRIBUTED


def readings_subject(readings: tuple[Identifier, ...]) -> str:
    return f"{READINGS_KIND}:{READINGS_SEPARATOR.join(sorted(r.value for r in readings))}"


def readings_in(carried: Identifier) -> list[Identifier]:
    """The phone numbers a `phone_readings` pseudo-identifier (`readings_carried`) stands for."""
    return [Identifier("phone", v) for v in carried.value.split(READINGS_SEPARATOR)]


def readings_carried(subject: str) -> Identifier | None:
    """The readings a subject of `readings_subject` names, as the pseudo-identifier identity
    records its carriers under (kind `phone_readings`); None for any other subject."""
    kind, _, value = subject.partition(":")
    return Identifier(READINGS_KIND, value) if kind == READINGS_KIND and value else None


def comma_readings(rejected: Rejected, rules: TenantRules) -> tuple[Identifier, ...]:
    """The mailboxes an email with one stray comma may be when they disagree, so that it was
    dropped (`_without_stray_comma`: `,mcortes@bbva.com` is `mcortes@` or `mmcortes@`); empty for
    any other rejection."""
    if rejected.kind != "email" or rejected.reason != "invalid" or "," not in rejected.raw:
        return ()
    found = sorted(_comma_readings(rejected.raw, rules))
    return tuple(Identifier("email", r) for r in found) if len(found) > 1 else ()


def with_known_reading(
    normalised: Normalised, held: Callable[[Identifier], bool], rules: TenantRules
) -> Normalised:
    """The touchpoint's identifiers with each ambiguous national number (`ambiguous_readings`)
    read as the one of its readings a customer already holds, when exactly one is held: a person
    writing their own number without its country code (`316 951 3292` from someone whose calls
    came from `+57 316 951 3292`). With none or several held it stays dropped: which one? An
    Argentine landline reading and its mobile twin held are one line (`_one_line`). An email
    with a stray comma whose readings disagree (`comma_readings`) is read so too:
    `,mcortes@bbva.com` as `mcortes@bbva.com` when that is held and `mmcortes@bbva.com` is not;
    only beside another identifier the touchpoint is sealed under (`sealing_subject`): alone, it
    is sealed under the unattributed key, which erasing the holder would not take."""
    identifiers, rejected = list(normalised.identifiers), []
    for dropped in normalised.rejected:
        readings = ambiguous_readings(dropped, rules) or (
            comma_readings(dropped, rules) if normalised.identifiers else ()
        )
        known = _one_line([i for i in readings if held(i)])
        if len(known) == 1 and known[0] not in identifiers:
            identifiers.append(known[0])
        else:
            rejected.append(dropped)
    return Normalised(tuple(identifiers), tuple(rejected))


def _one_line(known: list[Identifier]) -> list[Identifier]:
    """Readings held, an Argentine landline reading and its mobile twin counting as one line
    (`_argentine_mobile`), read as the mobile: the same ten digits."""
    if len(known) == 2:
        landline, mobile = sorted(known, key=lambda i: len(i.value))
        if _argentine_mobile(landline.value) == (mobile.value,):
            return [mobile]
    return known


def lookup_spellings(kind: str, raw: str, rules: TenantRules) -> tuple[str, ...]:
    """Spellings, as a producer may have sent them, of the identifier a lookup names: every way of
    writing the one number (`614790674`, `0034614790674`, `34614790674`, `+34614790674`) or the
    mailbox identity reads it as, so that a search finds what was stored as sent. Empty when it
    names no valid identifier of the kind. A national number with several readings
    (`ambiguous_readings`: `316 951 3292`, `341 362-3389`) is looked up in all of them: identity
    reads it as whichever a customer holds."""
    if kind == "phone":
        readings = phone_readings(raw, rules)
        return tuple(dict.fromkeys(s for r in readings for s in _phone_spellings(r, rules)))
    found = _normalised_value(kind, raw, rules)
    return (found,) if found else ()


def phone_readings(raw: str, rules: TenantRules) -> tuple[str, ...]:
    """The E.164 numbers a phone spelling may be, as identity reads it: the one it normalises to,
    else the readings of a national number with several (`ambiguous_readings`); else none."""
    found = normalise_phone(raw, rules)
    if found:
        return (found,)
    return tuple(i.value for i in ambiguous_readings(Rejected("phone", raw, "invalid"), rules))


def _phone_spellings(found: str, rules: TenantRules) -> tuple[str, ...]:
    """The ways a producer may have written the number `found` that identity reads as it (alone
    or among the readings of a national number with several)."""
    number = phonenumbers.parse(found)
    national = re.sub(
        r"\D", "", phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    )
    with_code = f"{number.country_code}{number.national_number}"
    # The national number without its trunk `0` too (`3413623389` for `03413623389`).
    bare = str(number.national_number)
    spellings: tuple[str, ...] = (found, national, bare, with_code, f"00{with_code}")
    # An Argentine mobile written bare (`_argentine_mobile`): its ten digits, with and without 0.
    if found.startswith(f"{ARGENTINA}9") and len(bare) == 11:
        spellings += (bare[1:], f"0{bare[1:]}")
    # Not a spelling identity reads as another number (a French `612345679` is a Spanish mobile).
    return tuple(s for s in dict.fromkeys(spellings) if found in phone_readings(s, rules))
