"""Whether two mailboxes are named after one person (pure): the evidence that two emails used on
one browser are one person's personal and work (or old and new) addresses, not two people of a
household sharing a computer.

People name their mailboxes after themselves, and a workplace names one after its holder in a few
fixed shapes: the same name with other separators or another domain (`dduran@gmail.com`,
`dduran@bbva.com`), the given name and a surname in another order (`luismiguel.cruz.ferrer`,
`cruz.luismiguel`), or the initial and a surname (`dolores.rojas.nunez`, `drojas`). Two members of
one household rarely match so: Spanish spouses keep their own surnames, and a child sharing a
parent's surname needs the parent's initial too. Numbers tell numbered accounts apart
(`ana.garcia1`, `ana.garcia2`: often one household), so they must agree when the names do.
"""

from __future__ import annotations

import re

# Shorter pieces are initials or fillers (`a`, `jr`): too common to name anybody.
MIN_NAME = 3
# An initial and a surname run together with the given name (`fbenitez` of `fernandobenitez`):
# the surname this long at least, since where it starts is a guess (`igil` of `ignaciogil` is not).
MIN_RUN_TOGETHER_SURNAME = 4


def one_persons_mailboxes(first: str, second: str) -> bool:
    """Whether two email addresses' local parts name the same person (see the module)."""
    a, b = first.rpartition("@")[0], second.rpartition("@")[0]
    if _digits(a) and _digits(b) and _digits(a) != _digits(b):
        return False
    names_a, names_b = _names(a), _names(b)
    if not names_a or not names_b:
        return False
    if "".join(names_a) == "".join(names_b):
        return len("".join(names_a)) >= 2 * MIN_NAME
    shared = {n for n in names_a if len(n) >= MIN_NAME} & set(names_b)
    return (
        len(shared) >= 2
        or _initial_and_surname(names_a, names_b)
        or (_initial_and_surname(names_b, names_a))
    )


def _initial_and_surname(full: list[str], short: list[str]) -> bool:
    """`short` is one word: the initial of one of `full`'s names and another of them, whichever
    comes first there (`drojas` of `dolores.rojas.nunez`, `egarrido` of `garrido.enrique`), or of a
    name run together (`fbenitez` of `fernandobenitez`)."""
    if len(short) != 1 or len(short[0]) < MIN_NAME + 1:
        return False
    initial, surname = short[0][0], short[0][1:]
    if len(full) > 1:
        return any(
            given[0] == initial and surname == other
            for i, given in enumerate(full)
            for j, other in enumerate(full)
            if i != j
        )
    if initial != full[0][0]:
        return False
    run_together = len(surname) >= MIN_RUN_TOGETHER_SURNAME and len(full[0]) > len(short[0])
    return run_together and full[0].endswith(surname)


def _names(local: str) -> list[str]:
    return [part for part in re.split(r"[^a-z]+", local.lower()) if part]


def _digits(text: str) -> str:
    return "".join(c for c in text if c.isdigit())
