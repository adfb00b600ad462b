"""Domain errors of the identity service; the router maps each to one HTTP status."""

from __future__ import annotations


class IdentityError(Exception):
    """Base class: a command that cannot be carried out as asked."""


class CustomerNotFound(IdentityError):
    def __init__(self, customer_id: str) -> None:
        super().__init__(f"no customer {customer_id!r} in this tenant")
        self.customer_id = customer_id


class AmbiguousCustomer(IdentityError):
    """An identifier held by several customers (a shared line, a family tablet) names none."""

    def __init__(self, requested: str, customer_ids: list[str]) -> None:
        super().__init__(f"{requested!r} is held by {len(customer_ids)} customers")
        self.requested = requested
        self.customer_ids = customer_ids


class CandidateNotFound(IdentityError):
    def __init__(self, candidate_id: str) -> None:
        super().__init__(f"no merge candidate {candidate_id!r} in this tenant")
        self.candidate_id = candidate_id


class IdentifierNotLinked(IdentityError):
    """The customer does not hold the identifier to unlink."""


class MergeRefused(IdentityError):
    """The merge would break a rule (same customer, already merged, unique identifiers differ)."""

    def __init__(self, reasons: list[str]) -> None:
        super().__init__("; ".join(reasons))
        self.reasons = reasons


class GroupChanged(IdentityError):
    """An erasure confirmed for a group (the preview's `members`) that is not the customer's
    group any more: a merge or split since. Nothing is erased; the admin previews again."""

    def __init__(self, expected: list[str], members: list[str]) -> None:
        super().__init__(
            f"the customer's group changed since it was confirmed: {len(members)} customer(s) "
            f"now, {len(expected)} confirmed; preview it again"
        )
        self.expected = expected
        self.members = members


class SplitRefused(IdentityError):
    """There is no active merge to reverse."""


class ErasedGroupSplit(SplitRefused):
    """The two were erased together: an erasure takes its group whole, and a member split off
    would be a customer nothing says was erased."""


class CandidateAlreadyDecided(IdentityError):
    """A decision was already recorded for this candidate."""


class CandidateErased(IdentityError):
    """A candidate proposed before one of its customers was erased: accepting it would bring a
    live customer's history into an erased group (or an erased member into a live one) on the
    strength of evidence the erasure took. It can still be rejected; a manager who knows the two
    are one person merges them by hand, which the erasure's rules then govern."""


class IdentityBusy(IdentityError):
    """Concurrent writers kept conflicting with this command; the caller may retry later."""
