"""Why identity did something on its own, in a form a page can say in its reader's language.

A history entry's `reason` is English text stored in the customer's event, kept as it always
was. The reasons identity writes itself (not a manager's typed ones) come from the templates
below; `reason_code` gives a stored reason's code and parameters when the reason is one of them,
so the console names it in the reader's language (an older or typed reason shows as it is).
"""

from __future__ import annotations

import re

REASONS: dict[str, str] = {
    "device_profile": "profile of {identifier}, a device of another customer",
    "first_seen_with": "first seen with {kind}",
    "only_shared": "only identifiers shared by several customers",
    "no_usable_identifier": "no usable identifier",
    "reassigned": "reassigned: unused by this customer for too long, then presented by another",
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


def _pattern(template: str) -> re.Pattern[str]:
    parts = re.split(r"\{([a-z_]+)\}", template)
    literal = [re.escape(part) if i % 2 == 0 else f"(?P<{part}>.+)" for i, part in enumerate(parts)]
    return re.compile("".join(literal) + r"\Z")


_PATTERNS = {code: _pattern(template) for code, template in REASONS.items()}


def reason_code(reason: str) -> tuple[str, dict[str, str]] | None:
    """The code and parameters of a reason identity wrote from `REASONS`; None otherwise."""
    for code, pattern in _PATTERNS.items():
        found = pattern.match(reason)
        if found is not None:
            return code, found.groupdict()
    return None
