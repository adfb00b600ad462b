"""Why identity did something on its own, in a form a page can say in its reader's language.

A history entry's `reason` is English text stored in the customer's event, kept as it always
was. The reasons identity writes itself (not a manager's typed ones) come from the templates
below; `reason_code` gives a stored reason's code and parameters when the reason is one of them,
so the console names it in the reader's language (an older or typed reason shows as it is).
Reading the code back from the text, rather than storing it beside it, gives events stored
before a reason had a code theirs too; the English stays byte for byte what it was (the hub split
finds the merges to undo by their reason).
"""

from __future__ import annotations

import re

from services.identity.rules import FAMILIES

REASONS: dict[str, str] = {
    # Why a customer was registered, or an identifier moved to it.
    "device_profile": "profile of {identifier}, a device of another customer",
    "first_seen_with": "first seen with {kind}",
    "only_shared": "only identifiers shared by several customers",
    "no_usable_identifier": "no usable identifier",
    "reassigned": "reassigned: unused by this customer for too long, then presented by another",
    # Why the linking rules merged two customers (services/identity/policy.py).
    "profile_of_user": "profile of {identifier}, its user",
    "used_before": "used {identifier} before",
    "keystroke_apart": "two emails one keystroke apart, on one {kind}",
    "account_and_contact": "an account and its holder's contact details on one {kind}",
    "named_alike": "two emails named after one person, on one {kind}",
    "same_full_name": "the same full name, and no other name, on one {kind}",
    "slip_and_name": "an email one keystroke from the other's, and the same name",
    "slip_and_name_on": "two emails one slip apart and the same name, on one {kind}",
    "both_hold": "both hold {identifier}",
    "caller_named": "the caller said who they are, on {identifier}",
    "completed_through": "completed through {identifier}",
    # Why they split one (services/identity/changes.py, policy.py).
    "hub_split": "split: {hub} turned out to be a hub, shared by people who disagree on the rest",
    "device_shared": "{identifier} is used by several customers",
    # Why they proposed a merge for review (a candidate's reason); the longer one first, as a
    # reason is read back by the first template it fits.
    "share_hold_different": "share {identifier}; hold different {kinds}",
    "share": "share {identifier}",
    "slip_for_review": "an email one keystroke from the other's",
}


# Why a merge is not allowed (a merge plan's `reasons`): each also given as its code and parameters
# (`MergePlan.refusals`, the API's `refusals`), so a page says it in its reader's language.
REFUSALS: dict[str, str] = {
    "same_customer": "a customer cannot be merged into itself",
    "absorbed_merged": "{absorbed_id} is already merged into {canonical}",
    "survivor_merged": "{survivor_id} is merged into {canonical}: merge into it",
    "conflicting_identifiers": "both hold a different {kinds}",
}


def reason_text(code: str, **params: str) -> str:
    """The English reason of `code` filled with `params` (what the event stores)."""
    return REASONS[code].format(**params)


# What a parameter can be: an identifier is written `kind=value` (`email=ana@x.io`,
# `external:crm=C-7`), a kind is one of the families (an external one with its namespace), kinds
# are a list of them. A manager's typed reason seldom fits these, so it is not read as a code.
_KIND = "(?:{}|external:[^=\\s,;]+)".format("|".join(f for f in FAMILIES if f != "external"))
_SHAPES = {
    "identifier": f"{_KIND}=.+",
    "hub": f"{_KIND}=.+",
    "kind": _KIND,
    "kinds": f"{_KIND}(?:, {_KIND})*",
}


def _pattern(template: str) -> re.Pattern[str]:
    parts = re.split(r"\{([a-z_]+)\}", template)
    literal = [
        re.escape(part) if i % 2 == 0 else f"(?P<{part}>{_SHAPES.get(part, '.+')})"
        for i, part in enumerate(parts)
    ]
    return re.compile("".join(literal) + r"\Z")


_PATTERNS = {code: _pattern(template) for code, template in REASONS.items()}


def reason_code(reason: str) -> tuple[str, dict[str, str]] | None:
    """The code and parameters of a reason identity wrote from `REASONS`; None otherwise."""
    for code, pattern in _PATTERNS.items():
        found = pattern.match(reason)
        if found is not None:
            return code, found.groupdict()
    return None
