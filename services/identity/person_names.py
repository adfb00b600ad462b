"""People's names as identity reads them: one spelling per name, and when names say "one person".

A touchpoint may carry the person's name in `payload.attributes`: `name` (one field: chat forms,
CRM notes) or `first_name` and `last_name` (checkout, loyalty card). Identity keeps each
customer's names, normalised (`normalise_name`: case, accents, spaces, `Mª` for `María`), and uses
them as evidence beside identifiers (see policy.py): a browser only used by customers whose
recorded full names are identical is one person's (`same_full_name`), and names that differ
(`may_be_one`: neither the other's beginning) stop a slip or two mailboxes named alike from
making one person of two. A customer with no name recorded is known by the full name its
mailbox is named after (`fits_mailbox`: `rgonzalez@` for `Raúl González Pérez`), when a
touchpoint carries that name. A name never links anything on its own, is no
identifier, and nicknames are not equated (`Pepe` is not `José`: a father and his son).

A *full* name is a given name and the surnames a person of the tenant's region carries: two in
Spain and Spanish-speaking America (`TenantRules.name_surnames`, default 2), so at least three
words. Two people of one household rarely share one (Spanish children take one surname of each
parent), while a child named after a parent with one surname given (`José García`) is not full,
and never joins. The words of a name cannot say where a compound given name ends (`María José
García` is a given name and one surname, yet three words): that is why every customer on the
device must have a full name, and why any two names on it that differ (one not the beginning of
the other: `Ana García` and `Ana García López` agree) keep them apart.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any

from services.identity.placeholders import PLACEHOLDER_EMAIL_LOCALS, PLACEHOLDER_TOKENS, words

MAX_NAME = 120  # longer is not a person's name as a form holds it (free text): ignored
# `Mª`, `M.ª`, `Mª.`: how Spanish forms abbreviate María (ª is the feminine ordinal indicator).
_MARIA = re.compile(r"(?<!\w)m\.?\s*ª\.?(?=\s|$)", re.IGNORECASE)


def normalise_name(text: str) -> str:
    """Lower case, no accents, single spaces, `Mª` written `maría`: `Mª José  GARCÍA` and `maria
    jose garcia` are one spelling. Anything but letters, spaces, hyphens and apostrophes is
    dropped; an empty result (a placeholder such as `-`) is no name."""
    if not isinstance(text, str) or len(text) > MAX_NAME:
        return ""
    text = _MARIA.sub(" maria ", text)
    # Decomposed before lowering too: some letters (bold `𝐋`) are capitals only once decomposed.
    decomposed = unicodedata.normalize("NFKD", unicodedata.normalize("NFKD", text).casefold())
    kept = "".join(
        c if (c.isalpha() or c in "-'") else " " for c in decomposed if not unicodedata.combining(c)
    )
    return " ".join(w.strip("-'") for w in kept.split() if w.strip("-'"))


def _name_text(payload: Mapping[str, Any]) -> str:
    """The person's name as a touchpoint's payload writes it (`attributes.name`, or `first_name`
    and `last_name`), untouched; empty when it carries none."""
    attributes = payload.get("attributes") if isinstance(payload, Mapping) else None
    if not isinstance(attributes, Mapping):
        return ""
    first, last = attributes.get("first_name"), attributes.get("last_name")
    if isinstance(first, str) and isinstance(last, str):
        return f"{first} {last}"
    whole = attributes.get("name")
    return whole if isinstance(whole, str) else ""


def name_in(payload: Mapping[str, Any]) -> str:
    """The person's name a touchpoint's payload carries, normalised; empty when it carries
    none."""
    return normalise_name(_name_text(payload))


# Words that fill a name field without naming anyone, for showing a name (`written_name`): those
# typed for "nothing" in any field, and what tills and agents type for a name (`Sin nombre`,
# `Consumidor Final`).
_NO_NAME_WORDS = (
    PLACEHOLDER_TOKENS
    | PLACEHOLDER_EMAIL_LOCALS
    | words("anonima consumidor erased final generico name nombre")
)
# Control, format (zero-width spaces, direction overrides), private-use and unassigned characters:
# nothing a person's name is written with, and nothing a page should show.
_INVISIBLE = frozenset({"Cc", "Cf", "Co", "Cs", "Cn"})


def written_name(payload: Mapping[str, Any]) -> str:
    """The person's name a touchpoint's payload carries (where `name_in` finds it), for showing
    it: accents and capitals as written, invisible characters and runs of spaces made one space
    (`María José García`). Empty when it carries none, or when no word of it names anyone (`-`,
    `n/a`, `Sin nombre`, `Consumidor Final`: single letters and `_NO_NAME_WORDS`)."""
    text = _name_text(payload)
    if not any(len(w) > 1 and w not in _NO_NAME_WORDS for w in normalise_name(text).split()):
        return ""
    shown = "".join(" " if unicodedata.category(c) in _INVISIBLE else c for c in text)
    return " ".join(shown.split())


def is_full(name: str, surnames: int) -> bool:
    """A given name and `surnames` surnames at least (see the module's docstring)."""
    return len(name.split()) >= surnames + 1


def fits_mailbox(name: str, email: str, surnames: int) -> bool:
    """A full name (`is_full`) that the email's mailbox is named after: one or more whole words of
    the local part (split at anything not a letter) that spell exactly the given name (or its
    initial) and the first surname, in either order, then possibly the second surname or its
    initial (`raul.gonzalez.perez`, `rgonzalez`, `gonzalez_raul85`, `raulgonzalezp` for `raul
    gonzalez perez`; not `rperez`, his mother's surname, nor `mariajosegarcia` for `jose garcia
    lopez`, nor `gonzalezraquel`). Words cannot say where a compound given name ends, so the name
    is also read as more given names, written whole, and fewer surnames
    (`mariafernandagonzalezm` for `maria fernanda gonzalez`); never as fewer given names (a
    second given name is not a surname: `mariajose85` fits no `maria jose garcia lopez`).
    Evidence that the name is the mailbox holder's, not a stranger's typed on the account; it
    names no one on its own: a brother or son of the same given name or initial fits too."""
    if not is_full(name, surnames):
        return False
    words = [w for w in ("".join(c for c in w if c.isalpha()) for w in name.split()) if w]
    parts = [p for p in re.split(r"[^a-z]+", email.rpartition("@")[0].lower()) if p]
    spans = {"".join(parts[i:j]) for i in range(len(parts)) for j in range(i + 1, len(parts) + 1)}
    usual = len(words) - surnames  # given names, as the tenant's people carry them
    for given_count in range(max(1, usual), len(words)):
        givens, (surname, *rest) = words[:given_count], words[given_count:]
        if min(len(givens[0]), len(surname)) < 3:
            continue
        spelled = {"".join(givens)}
        if given_count == usual:
            spelled |= {givens[0], givens[0][0]}
        forms = {g + surname for g in spelled} | {surname + g for g in spelled}
        # Then nothing, the second surname or its initial; with no second surname in the name,
        # any one letter (its initial).
        endings = ["", rest[0], rest[0][0]] if rest else [""]
        if {form + ending for form in forms for ending in endings} & spans:
            return True
        if not rest and any(span[:-1] in forms for span in spans):
            return True
    return False


def spells_whole(name: str, email: str) -> bool:
    """The email's local part is the whole name and nothing else, its words in any order, any
    separators or digits (`agustin.vega.vargas@`, `vega_vargas_agustin85@` for `agustin vega
    vargas`; not `agustinvega@`, `jgarcia@` nor `jose.garcia.martinez@` for `jose garcia lopez`)."""
    words = [w for w in ("".join(c for c in w if c.isalpha()) for w in name.split()) if w]
    parts = [p for p in re.split(r"[^a-z]+", email.rpartition("@")[0].lower()) if p]
    if not words:
        return False
    return sorted(parts) == sorted(words) or parts == ["".join(words)]


def agree(a: str, b: str) -> bool:
    """One name is the other, or its beginning word by word (`ana garcia` of `ana garcia
    lopez`): no evidence of two people. `pepe garcia` and `jose garcia` differ."""
    first, second = a.split(), b.split()
    shortest = min(len(first), len(second))
    return first[:shortest] == second[:shortest]


def same_full_name(ours: Iterable[str], theirs: Iterable[str], surnames: int) -> bool:
    """Two customers' recorded names say one person: each side has a full name, every full name
    on both sides is the same, and no two names on either side differ (`agree`). Not a full name
    and a longer one it begins (`jose luis garcia`, a compound given name and one surname, and
    `jose luis garcia lopez`): a son named after his father, one surname written on a form."""
    ours, theirs = sorted(set(ours)), sorted(set(theirs))
    fulls = {n for n in (*ours, *theirs) if is_full(n, surnames)}
    if len(fulls) != 1:
        return False
    if not any(is_full(n, surnames) for n in ours) or not any(is_full(n, surnames) for n in theirs):
        return False
    every = [*ours, *theirs]
    return all(agree(a, b) for i, a in enumerate(every) for b in every[i + 1 :])


def agree_with_surname(ours: Iterable[str], theirs: Iterable[str]) -> bool:
    """Two customers' recorded names agree (`agree`: any two of them, on either side) and each
    side has a given name and a surname at least (`concepcion vidal` and `concepcion vidal
    rojas`). Weaker than `same_full_name`: it only corroborates evidence that already points at
    one person (an email one keystroke from the other's, policy `_slip_holder`)."""
    ours, theirs = sorted(set(ours)), sorted(set(theirs))
    if not any(len(n.split()) >= 2 for n in ours) or not any(len(n.split()) >= 2 for n in theirs):
        return False
    every = [*ours, *theirs]
    return all(agree(a, b) for i, a in enumerate(every) for b in every[i + 1 :])


def may_be_one(a: str, b: str) -> bool:
    """Two names one person may have written: one is the other or its beginning word by word
    (`agree`), a word `ma` read as `maria` (`Ma. José`, as `Mª José`; `normalise_name` keeps
    the word as written, as identity has always recorded it). Nothing looser: an initial
    (`J. López García`) or a given name left out (`María López García` for `María Carmen López
    García`) fits a brother or a sister as well, who share both surnames."""
    return agree(*(" ".join("maria" if w == "ma" else w for w in n.split()) for n in (a, b)))


def names_agree(ours: Iterable[str], theirs: Iterable[str]) -> bool:
    """No name on one side differs from one on the other (`may_be_one`); true when a side has
    none."""
    return all(may_be_one(a, b) for a in set(ours) for b in set(theirs))
