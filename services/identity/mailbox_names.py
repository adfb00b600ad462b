"""Whether two mailboxes are named after one person (pure): the evidence that two emails used on
one browser are one person's personal and work (or old and new) addresses, not two people of a
household (or two companies) sharing a computer.

The rule is strict, because a household's mailboxes look alike: Spanish children carry both
parents' first surnames and often a parent's given name (`jose.lopez` and his son
`jose.lopez.garcia`; `carmen.garcia.ruiz` and her daughter `carmen.lopez.garcia`), and siblings
share both surnames. So two local parts name one person only when each holds at least two names
and both hold the same names, in any order and with any separators (`luismiguel.cruz.ferrer` and
`ferrer_cruz.luismiguel`); an extra or a missing surname means two people. A local part of one
word (`dduran`, `jlopez`, `joselopez`) never counts: where an initial or a run-together name
ends is a guess, and an initial and a surname fit a parent and a child alike. Nor does a role
mailbox (`facturacion@`, `info@`, `ventas@`): it names a job, held by a different person at each
company. Numbers tell numbered accounts apart (`ana.garcia1`, `ana.garcia2`: often one
household), so they must agree too.

Identity keeps a Gmail address without its dots (Gmail ignores them: `dolores.rojas@` and
`doloresrojas@` are one mailbox), so the separators that tell its names apart are gone. Such a
run-together local part (at a domain in `dotless`) is read as the other address's names when it
is exactly those names written together, in any order (`doloresrojas@gmail.com` and
`rojas_dolores@bbva.com`); read alone it stays one word, as before, and two dotless addresses
never name each other.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Collection
from itertools import permutations

# Each side needs this many names of at least MIN_NAME letters (a given name and a surname):
# initials and fillers (`a`, `jr`, `de`) are too common to name anybody on their own.
MIN_NAMES = 2
MIN_NAME = 3

# More names than this on the other side: a run-together local part is not read as them.
MAX_RUN_TOGETHER = 5

# Local-part words that name a job or a department, not a person (Spanish and English).
ROLE_WORDS = frozenset(
    {
        "admin",
        "administracion",
        "administration",
        "atencion",
        "billing",
        "cliente",
        "clientes",
        "comercial",
        "compras",
        "contabilidad",
        "contact",
        "contacto",
        "direccion",
        "facturacion",
        "facturas",
        "gerencia",
        "hello",
        "hola",
        "info",
        "informacion",
        "invoices",
        "mail",
        "marketing",
        "no",
        "noreply",
        "office",
        "oficina",
        "orders",
        "pedidos",
        "recepcion",
        "reply",
        "reservas",
        "rrhh",
        "sales",
        "soporte",
        "support",
        "tienda",
        "ventas",
        "web",
    }
)


def one_persons_mailboxes(first: str, second: str, dotless: Collection[str] = ()) -> bool:
    """Whether two email addresses' local parts name the same person (see the module); `dotless`:
    the domains whose addresses are kept without their dots."""
    (a, _, domain_a), (b, _, domain_b) = first.rpartition("@"), second.rpartition("@")
    if _digits(a) != _digits(b):
        return False
    names_a, names_b = _names(a), _names(b)
    if domain_a in dotless:
        names_a = _run_together(names_a, names_b)
    if domain_b in dotless:
        names_b = _run_together(names_b, names_a)
    if ROLE_WORDS & (set(names_a) | set(names_b)):
        return False
    if not (_enough(names_a) and _enough(names_b)):
        return False
    return Counter(names_a) == Counter(names_b)


def _run_together(names: list[str], other: list[str]) -> list[str]:
    """`names` read as the other side's names when they are those names written together (a
    Gmail address kept without its dots); otherwise as they are."""
    if len(names) != 1 or not 1 < len(other) <= MAX_RUN_TOGETHER:
        return names
    written = {"".join(order) for order in permutations(other)}
    return list(other) if names[0] in written else names


def _enough(names: list[str]) -> bool:
    return sum(len(n) >= MIN_NAME for n in names) >= MIN_NAMES


def _names(local: str) -> list[str]:
    return [part for part in re.split(r"[^a-z]+", local.lower()) if part]


def _digits(text: str) -> str:
    return "".join(c for c in text if c.isdigit())
