"""The words people type for "nothing" in a field that wants a value (pure; imports nothing of
ours): identity ignores identifiers spelled with them (`normalise`), and a name made of them names
nobody (`person_names.written_name`)."""

from __future__ import annotations


def words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Tokens that mean "no value" in any kind, compared case-insensitively (English and Spanish).
PLACEHOLDER_TOKENS = words(
    "- 0 00000000-0000-0000-0000-000000000000 anon anonymous default desconocido guest n/a na "
    "nada nan nil ninguno no none notiene null sin test undefined unknown x xx xxx"
)
# Local parts that say there is no mailbox, or name a role rather than a person.
PLACEHOLDER_EMAIL_LOCALS = words(
    "anonimo anonymous cliente clientes correo desconocida desconocido do-not-reply donotreply "
    "email mail n/a na nada ninguna ninguno no no-email no-reply nobody noemail nomail none "
    "noreply notengo notiene null prueba sin sincorreo sinemail sinmail test undefined unknown usuario"
)
