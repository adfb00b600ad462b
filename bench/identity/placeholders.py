"""What agents type when a form wants an email or a phone and the customer gives none.

Each agent (a call-centre seat, a store clerk) has a habit, made once from the words and patterns
people use for "nothing" (`sin`, `no`, `ninguno`, `x` …) and kept: that is why one placeholder
recurs across many customers. Habits are built from words, never picked from a list of known
placeholders: the same patterns yield `sin@email.com`, `no@tiene.com`, `ninguno@ninguno.es`,
`x@x.com` or `cliente@tienda.com`, and their phone equivalents (`000000000`, `+34 600 000 000`).
Some are not even addresses: `no tiene`, `n/a` or `-` typed in the email field.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

# Words for "none", "customer", "shop" and "mail" in agents' Spanish (and the odd English one),
# most used first: a word's chance falls with its rank (Zipf), as word frequencies do.
NOTHING = ("sin", "no", "ninguno", "ninguna", "nada", "notiene", "sincorreo", "sinmail", "nomail")
FILLERS = ("x", "xx", "xxx", "a", "aa", "asd", "qwe", "prueba", "test")
ROLES = ("cliente", "clientes", "tienda", "correo", "email", "mail", "info", "desconocido")
SUFFIXES = ("com", "com", "com", "es", "es", "net")
PROVIDERS = ("gmail.com", "hotmail.com", "hotmail.es", "yahoo.es", "outlook.com")
# Text typed in a field that wants an address: not an address at all.
WORDS_INSTEAD = ("no tiene", "n/a", "-", "no", "NO TIENE", "no da", "no quiere", "ninguno", ".")
PHONE_WORDS = ("no tiene", "-", "0", "n/a")


@dataclass(frozen=True)
class Habit:
    """The placeholders one agent types: an email (or a word instead) and a phone."""

    email: str
    phone: str


def _word(rng: random.Random) -> str:
    words = rng.choice((NOTHING, FILLERS, ROLES))
    return rng.choices(words, weights=[1 / rank for rank in range(1, len(words) + 1)])[0]


def placeholder_email(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.12:
        return rng.choice(WORDS_INSTEAD)
    local = _word(rng)
    if roll < 0.3:
        return f"{local}@{rng.choice(PROVIDERS)}"  # no@gmail.com
    if roll < 0.5:
        return f"{local}@{local}.{rng.choice(SUFFIXES)}"  # x@x.com, ninguno@ninguno.es
    return f"{local}@{_word(rng)}.{rng.choice(SUFFIXES)}"  # sin@email.com, cliente@tienda.com


def placeholder_phone(rng: random.Random) -> str:
    """A digit repeated, a mobile prefix and zeros, a counting run, or a word."""
    roll = rng.random()
    if roll < 0.1:
        return rng.choice(PHONE_WORDS)
    if roll < 0.45:
        return rng.choice("069") * rng.choice((9, 9, 10))  # 000000000, 999999999
    if roll < 0.75:
        head = rng.choice(("6", "60", "600", "666", "9", "900"))
        digits = head + "0" * (9 - len(head))
        return rng.choice((digits, f"+34 {digits[:3]} {digits[3:6]} {digits[6:]}"))
    return rng.choice(("123456789", "987654321", "612345678", "111111111", "1234"))


def make_habits(count: int, rng: random.Random) -> list[Habit]:
    """`count` agents' habits. Habits spread by imitation (a colleague shows the new one how to
    get past the mandatory field), so a few are shared by many: each agent copies a colleague's
    habit half of the time, a popular habit more likely than a rare one."""
    habits: list[Habit] = []
    for _ in range(count):
        if habits and rng.random() < 0.5:
            habits.append(rng.choice(habits))
        else:
            habits.append(Habit(placeholder_email(rng), placeholder_phone(rng)))
    return habits
