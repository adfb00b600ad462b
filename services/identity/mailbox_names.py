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
"""

from __future__ import annotations

import re
from collections import Counter

# Each side needs this many names of at least MIN_NAME letters (a given name and a surname):
# initials and fillers (`a`, `jr`, `de`) are too common to name anybody on their own.
MIN_NAMES = 2
MIN_NAME = 3

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


def one_persons_mailboxes(first: str, second: str) -> bool:
    """Whether two email addresses' local parts name the same person (see the module)."""
    a, b = first.rpartition("@")[0], second.rpartition("@")[0]
    if _digits(a) != _digits(b):
        return False
    names_a, names_b = _names(a), _names(b)
    if ROLE_WORDS & (set(names_a) | set(names_b)):
        return False
    if not (_enough(names_a) and _enough(names_b)):
        return False
    return Counter(names_a) == Counter(names_b)


def _enough(names: list[str]) -> bool:
    return sum(len(n) >= MIN_NAME for n in names) >= MIN_NAMES


def _names(local: str) -> list[str]:
    return [part for part in re.split(r"[^a-z]+", local.lower()) if part]


def _digits(text: str) -> str:
    return "".join(c for c in text if c.isdigit())
