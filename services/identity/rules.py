"""The per-tenant resolution rules and the identifier they apply to (pure: no I/O or clock).

An identifier is a `(kind, value)` pair. Kinds are `customer_id`, `email`, `phone`, `anonymous_id`
and `external:<namespace>`; the *family* of `external:loyalty` is `external`. Values are normalised
first (normalise.py), so every spelling of one mailbox, line or account compares equal.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

import phonenumbers
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Family = Literal["customer_id", "external", "email", "phone", "anonymous_id"]
FAMILIES: tuple[Family, ...] = ("customer_id", "external", "email", "phone", "anonymous_id")


@dataclass(frozen=True, order=True)
class Identifier:
    """A normalised identifier of a customer."""

    kind: str
    value: str

    @property
    def family(self) -> str:
        return self.kind.partition(":")[0]

    def __str__(self) -> str:
        return f"{self.kind}={self.value}"


class KindRule(BaseModel):
    """How one kind of identifier takes part in resolution."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Higher wins: chooses the customer an event belongs to and the survivor of an automatic merge.
    priority: int = Field(ge=0, le=1000)
    # Strong identifiers name one person: they may merge two customers automatically and may bring
    # new strong identifiers to a customer. Weak ones (shared lines, devices) only propose merges.
    strong: bool
    # A customer holds at most one value of a unique kind; two customers holding different values
    # are never merged, automatically or by hand.
    unique: bool = False
    # How many customers may share one value; one more and the value stops linking anybody.
    max_holders: int = Field(default=1, ge=1, le=1000)
    # Whether sharing a value of this kind proposes a merge candidate for review.
    propose_candidates: bool = True
    # A personal identifier (a mobile, an app install) held by one customer only may complete that
    # customer: bring strong identifiers of kinds it does not hold yet (a first login, a first
    # loyalty card). It never extends one (a second email) unless `extends`; shared ones never
    # vouch at all.
    vouches: bool = False
    # A vouching identifier that also extends brings further values of kinds the customer holds
    # (a second email) and joins two customers holding different emails, unless a unique kind
    # differs, and only while in use (see `reassign_after_days`). On for mobiles by default.
    extends: bool = False
    # Carriers give a number that was given up to a new subscriber after some months. A value of
    # this kind none of whose holders confirmed using it (next to another of their identifiers)
    # for this many days stops vouching, merging or anchoring, and passes to the next customer
    # who presents it with a strong identifier of their own. None: never reassigned.
    reassign_after_days: int | None = Field(default=None, ge=1, le=3650)
    # A value of a reassignable kind whose every holder has since moved to another value of it
    # (confirmed using a newer number) and not used this one for this many days was given up:
    # it passes to the next customer who presents it, sooner than `reassign_after_days` (which
    # waits out the longest ageing because nothing says the holder left). None: only that.
    moved_on_after_days: int | None = Field(default=None, ge=1, le=3650)
    # Identifies a device or a line rather than a person (a browser, a tablet, a landline). A
    # touchpoint carrying only such identifiers is filed under the device's own profile, which
    # joins the one person known to use it; when a second person uses it, the profile leaves that
    # person again (a split) and the device stops linking anybody: it is shared.
    device_profile: bool = False


class ExternalNamespace(BaseModel):
    """Normalisation (and optionally a rule) for one namespace of external ids."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    case: Literal["exact", "lower", "upper"] = "exact"
    # Characters removed before comparing, e.g. " -" for card numbers printed in groups.
    drop: str = ""
    rule: KindRule | None = None


# Carriers age a given-up mobile number for up to 90 days before giving it to someone else.
REASSIGN_AFTER_DAYS = 90
# ... and for about a month at the least. A holder seen using a newer number who has not used the
# old one for that long has changed numbers: the old one may be someone else's already. (One
# person's two lines in use are both confirmed as they are used, so neither looks given up.)
MOVED_ON_AFTER_DAYS = 30
DEFAULT_KINDS: dict[Family, KindRule] = {
    "customer_id": KindRule(priority=100, strong=True, unique=True),
    "external": KindRule(priority=90, strong=True, unique=True),
    "email": KindRule(priority=80, strong=True),
    "phone": KindRule(
        priority=60,
        strong=False,
        max_holders=3,
        vouches=True,
        extends=True,
        reassign_after_days=REASSIGN_AFTER_DAYS,
        moved_on_after_days=MOVED_ON_AFTER_DAYS,
    ),
    # Browsers and tablets are shared at home more often than mobiles are: they never vouch.
    "anonymous_id": KindRule(priority=40, strong=False, max_holders=3, device_profile=True),
}
# Fixed lines ring in a household or an office: several people answer them.
DEFAULT_FIXED_LINE = KindRule(priority=50, strong=False, max_holders=6, device_profile=True)
DEFAULT_BLOCKED: dict[Family, tuple[str, ...]] = {
    "email": ("a@a.com", "test@test.com", "no@email.com", "email@email.com"),
    "phone": ("0000000000", "1234567890", "+10000000000"),
}
# Other names of one provider's mailboxes (not misspellings: those are found by edit distance
# from CONSUMER_DOMAINS, see normalise.fix_domain).
DEFAULT_DOMAIN_FIXES: dict[str, str] = {
    "googlemail.com": "gmail.com",
    "hotmail.es.com": "hotmail.es",
}
# Mail providers that hold people's personal mailboxes in Spain and Latin America. A domain one
# keystroke away from exactly one of them, and not one of them, is that one mistyped.
CONSUMER_DOMAINS: tuple[str, ...] = (
    "aol.com",
    "gmail.com",
    "gmx.com",
    "gmx.es",
    "hotmail.com",
    "hotmail.es",
    "icloud.com",
    "live.com",
    "live.com.mx",
    "mail.com",
    "me.com",
    "msn.com",
    "outlook.com",
    "outlook.es",
    "proton.me",
    "protonmail.com",
    "telefonica.net",
    "yahoo.com",
    "yahoo.com.mx",
    "yahoo.es",
    "ymail.com",
)
# The region a tenant's national phone numbers are read in unless its rules say otherwise: this
# product is for the Spanish market (CEM_DEFAULT_REGION changes it for a deployment).
DEFAULT_PHONE_REGION = "ES"
# Where a Spanish retailer's other customers come from: Spanish-speaking Latin America. A national
# number that is no valid number of the tenant's region is read in each of these, and kept when
# exactly one of them reads it as a valid number (`0351 15-976-5565` is only Argentinian).
DEFAULT_OTHER_PHONE_REGIONS: tuple[str, ...] = (
    "AR", "BO", "CL", "CO", "CR", "CU", "DO", "EC", "GT", "HN",
    "MX", "NI", "PA", "PE", "PR", "PY", "SV", "UY", "VE",
)  # fmt: skip


class TenantRules(BaseModel):
    """Resolution rules of one tenant. Changing them affects future resolutions, never past ones."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kinds: dict[Family, KindRule] = Field(default_factory=lambda: dict(DEFAULT_KINDS))
    external: dict[str, ExternalNamespace] = Field(default_factory=dict)
    # The rule for phone numbers that are fixed lines (by the numbering plan); None: as `phone`.
    fixed_line: KindRule | None = DEFAULT_FIXED_LINE
    # Normalised values that never link, by family (in addition to the built-in placeholders).
    blocked: dict[Family, tuple[str, ...]] = Field(default_factory=lambda: dict(DEFAULT_BLOCKED))
    detect_placeholders: bool = True
    # The numbers forms print as examples (libphonenumber's example number of each region and
    # line type: `+34 612 345 678`, `+1 201-555-0123`) are what clerks copy into a required
    # field: placeholders. A tenant one of whose customers really holds one turns this off.
    phone_examples_are_placeholders: bool = True
    # Region used to read phone numbers written without a country code (ISO 3166 alpha-2).
    phone_region: str = DEFAULT_PHONE_REGION
    # Regions a national number invalid in `phone_region` may be read in instead: kept when it is
    # valid in exactly one of them (one number), dropped when in none or in several (which one?).
    other_phone_regions: tuple[str, ...] = DEFAULT_OTHER_PHONE_REGIONS
    email_domain_fixes: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_DOMAIN_FIXES))
    # `a+news@x` and `a@x` are one mailbox; so are `a.b@gmail.com` and `ab@gmail.com`.
    email_strip_plus_tags: bool = True
    email_dotless_domains: tuple[str, ...] = ("gmail.com",)
    # Domains a mistyped domain is corrected to (by edit distance; empty: no correction).
    consumer_domains: tuple[str, ...] = CONSUMER_DOMAINS
    auto_merge: bool = True
    # An event whose only identifiers are shared by several customers: leave it unattributed (its
    # own one-off customer) or file it under the customer who claimed the identifier most recently.
    shared_identifier: Literal["unresolved", "most_recent"] = "unresolved"
    # Surnames a full name carries in the tenant's region (two in Spain and Spanish-speaking
    # America, one where people carry one): customers whose full names are the same, on a browser
    # only they used, are one person (services/identity/person_names.py). 0: names never join.
    name_surnames: int = Field(default=2, ge=0, le=4)

    @model_validator(mode="after")
    def _every_family_has_a_rule(self) -> TenantRules:
        missing = [f for f in FAMILIES if f not in self.kinds]
        if missing:
            raise ValueError(f"kinds needs a rule for every family; missing: {', '.join(missing)}")
        return self

    @field_validator("phone_region")
    @classmethod
    def _known_region(cls, value: str) -> str:
        return _region(value)

    @field_validator("other_phone_regions")
    @classmethod
    def _known_regions(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_region(v) for v in values)

    def rule_for(self, identifier: Identifier) -> KindRule:
        key = (id(self), identifier.kind, identifier.value)
        found = _rules_found.get(key)
        if found is None:
            found = self._rule_for(identifier)
            _remember_rule(self, key, found)
        return found

    def _rule_for(self, identifier: Identifier) -> KindRule:
        family, _, namespace = identifier.kind.partition(":")
        namespace_rules = self.external.get(namespace) if family == "external" else None
        if namespace_rules and namespace_rules.rule:
            return namespace_rules.rule
        if family == "phone" and self.fixed_line and is_fixed_line(identifier.value):
            return self.fixed_line
        return self.kinds[family]  # type: ignore[index]

    def is_strong(self, identifier: Identifier) -> bool:
        return self.rule_for(identifier).strong


class IdentityRules(BaseModel):
    """Rules for every tenant: a default and per-tenant overrides."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    default: TenantRules = Field(default_factory=TenantRules)
    tenants: dict[str, TenantRules] = Field(default_factory=dict)

    def for_tenant(self, tenant_id: str) -> TenantRules:
        return self.tenants.get(tenant_id, self.default)

    def with_default_region(self, region: str) -> IdentityRules:
        """These rules with `region` for every tenant whose rules do not name one."""

        def regional(rules: TenantRules) -> TenantRules:
            if "phone_region" in rules.model_fields_set:
                return rules
            return rules.model_copy(update={"phone_region": region.upper()})

        tenants = {t: regional(r) for t, r in self.tenants.items()}
        return self.model_copy(update={"default": regional(self.default), "tenants": tenants})

    @classmethod
    def from_file(cls, path: Path) -> IdentityRules:
        return cls.model_validate(json.loads(path.read_text(encoding="utf-8")))


def _region(value: str) -> str:
    if value.upper() not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"unknown phone region {value!r}: use an ISO 3166 code such as ES or US")
    return value.upper()


# `TenantRules.rule_for`'s answers, by (id of the rules, kind, value): the policy asks for the rule
# of each identifier of a touchpoint a score of times. Rules hold dicts, so they are not hashable:
# every rules object with answers is held here (its id cannot be another object's while it is
# alive). Bounded: past RULES_FOUND answers or RULES_HELD rules objects, all are forgotten.
RULES_FOUND = 65_536
RULES_HELD = 64
_rules_found: dict[tuple[int, str, str], KindRule] = {}
_rules_held: dict[int, TenantRules] = {}


_rules_lock = threading.Lock()


def _remember_rule(rules: TenantRules, key: tuple[int, str, str], rule: KindRule) -> None:
    # Under the lock, every answer's rules object is held: one found by the id of a live object
    # is that object's (`rule_for` reads without the lock).
    with _rules_lock:
        if key[0] not in _rules_held:
            if len(_rules_held) >= RULES_HELD:
                _rules_found.clear()
                _rules_held.clear()
            _rules_held[key[0]] = rules
        if len(_rules_found) >= RULES_FOUND:
            _rules_found.clear()
        _rules_found[key] = rule


@lru_cache(maxsize=65536)
def is_fixed_line(e164: str) -> bool:
    """Whether the numbering plan says this is a fixed line (not mobile, not either)."""
    try:
        number = phonenumbers.parse(e164)
    except phonenumbers.NumberParseException:
        return False
    return phonenumbers.number_type(number) == phonenumbers.PhoneNumberType.FIXED_LINE
