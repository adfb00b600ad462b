"""Spanish and Latin-American names, the mailboxes people make of them, and how names get written.

A person has one or two given names and, as in Spain and most of Latin America, two surnames. A
name is written by whoever types it: in full with accents, without accents, in capitals, with the
second surname left out, abbreviated (`Mª José`) or by a nickname (`Pepe` for José).
"""

from __future__ import annotations

import random
import unicodedata

GIVEN = (
    "María",
    "José",
    "Antonio",
    "Ana",
    "Manuel",
    "Lucía",
    "Francisco",
    "Carmen",
    "David",
    "Laura",
    "Javier",
    "Marta",
    "Daniel",
    "Isabel",
    "Jesús",
    "Cristina",
    "Alejandro",
    "Sofía",
    "Miguel",
    "Elena",
    "Rafael",
    "Paula",
    "Pablo",
    "Raquel",
    "Álvaro",
    "Inés",
    "Sergio",
    "Nuria",
    "Jorge",
    "Beatriz",
    "Fernando",
    "Rosario",
    "Luis",
    "Dolores",
    "Ángel",
    "Concepción",
    "Ignacio",
    "Teresa",
    "Enrique",
    "Begoña",
    "Íñigo",
    "Ángela",
    "Raúl",
    "Mónica",
    "Martín",
    "Silvia",
    "Guadalupe",
    "Juan",
    "Valentina",
    "Camila",
    "Santiago",
    "Mateo",
    "Ximena",
    "Agustín",
)
COMPOUND = (
    "María José",
    "José Luis",
    "Juan Carlos",
    "Ana Belén",
    "María Teresa",
    "José María",
    "María del Carmen",
    "Juan Pablo",
    "María Fernanda",
    "Luis Miguel",
)
SURNAMES = (
    "García", "Fernández", "González", "Rodríguez", "López", "Martínez", "Sánchez", "Pérez",
    "Gómez", "Martín", "Jiménez", "Ruiz", "Hernández", "Díaz", "Moreno", "Muñoz", "Álvarez",
    "Romero", "Alonso", "Gutiérrez", "Navarro", "Torres", "Domínguez", "Vázquez", "Ramos", "Gil",
    "Ramírez", "Serrano", "Blanco", "Molina", "Morales", "Suárez", "Ortega", "Delgado", "Castro",
    "Ortiz", "Rubio", "Marín", "Sanz", "Núñez", "Iglesias", "Medina", "Garrido", "Cortés",
    "Castillo", "Santos", "Lozano", "Guerrero", "Cano", "Prieto", "Méndez", "Cruz", "Calvo",
    "Gallego", "Vidal", "León", "Márquez", "Herrera", "Peña", "Flores", "Cabrera", "Campos",
    "Vega", "Fuentes", "Carrasco", "Reyes", "Caballero", "Nieto", "Aguilar", "Pascual", "Ibáñez",
    "Ferrer", "Durán", "Benítez", "Vargas", "Rojas", "Mendoza", "Quintero", "Villalobos",
)  # fmt: skip
NICKNAMES = {
    "José": "Pepe", "Francisco": "Paco", "Dolores": "Lola", "María Teresa": "Maite",
    "Rosario": "Charo", "Ignacio": "Nacho", "Enrique": "Quique", "Manuel": "Manolo",
    "Concepción": "Concha", "José María": "Chema", "Guadalupe": "Lupe", "Antonio": "Toni",
    "Alejandro": "Álex", "Cristina": "Cris", "María José": "Majo",
}  # fmt: skip
# Where mailboxes live, by country of the person, with rough shares.
PROVIDERS = {
    "ES": (("gmail.com", 50), ("hotmail.com", 15), ("hotmail.es", 8), ("yahoo.es", 5),
           ("outlook.es", 5), ("outlook.com", 4), ("icloud.com", 5), ("telefonica.net", 3),
           ("movistar.es", 2), ("live.com", 3)),
    "MX": (("gmail.com", 55), ("hotmail.com", 25), ("outlook.com", 8), ("yahoo.com.mx", 7),
           ("prodigy.net.mx", 5)),
    "AR": (("gmail.com", 55), ("hotmail.com", 20), ("yahoo.com.ar", 12), ("outlook.com", 8),
           ("fibertel.com.ar", 5)),
    "CO": (("gmail.com", 60), ("hotmail.com", 22), ("outlook.com", 10), ("yahoo.com", 8)),
}  # fmt: skip
WORKPLACES = ("mercadona.es", "telefonica.com", "santander.com", "uam.es", "ayto-madrid.es",
              "inditex.com", "bbva.com", "repsol.com", "iberdrola.es", "ucm.es")  # fmt: skip


def plain(text: str) -> str:
    """Lower case without accents or spaces, as names go into mailboxes (ñ becomes n)."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in decomposed if c.isalnum() and not unicodedata.combining(c))


def draw_name(country: str, rng: random.Random) -> tuple[str, tuple[str, str]]:
    given = rng.choice(COMPOUND) if rng.random() < 0.2 else rng.choice(GIVEN)
    return given, (rng.choice(SURNAMES), rng.choice(SURNAMES))


def mailbox_local(given: str, surnames: tuple[str, str], rng: random.Random) -> str:
    """A local part a person of this name would choose; the caller makes it unique."""
    first, last, second = plain(given), plain(surnames[0]), plain(surnames[1])
    year = str(rng.randint(60, 99) if rng.random() < 0.7 else rng.randint(2000, 2006))
    nickname = plain(NICKNAMES.get(given, given))
    return rng.choice(
        (
            f"{first}.{last}",
            f"{first}{last}",
            f"{first}.{last}{year}",
            f"{first[0]}{last}",
            f"{first}_{last}",
            f"{first}{last}{second[0]}",
            f"{first}.{last}.{second}",
            f"{nickname}{last}{year}",
            f"{last}.{first}",
        )
    )


def provider(country: str, rng: random.Random) -> str:
    shares = PROVIDERS[country]
    return rng.choices([d for d, _ in shares], weights=[w for _, w in shares])[0]


def written_name(given: str, surnames: tuple[str, str], rng: random.Random) -> str:
    """The name as someone typed it into a form, a till or a CRM."""
    roll = rng.random()
    if roll < 0.3:
        name = f"{given} {surnames[0]} {surnames[1]}"
    elif roll < 0.6:
        name = f"{given} {surnames[0]}"
    elif roll < 0.7:
        name = f"{NICKNAMES.get(given, given)} {surnames[0]}"
    elif roll < 0.78 and given.startswith("María "):
        name = f"Mª {given[6:]} {surnames[0]}"
    elif roll < 0.85:
        name = given
    else:
        name = f"{given} {surnames[0]} {surnames[1]}"
    return _as_typed(name, rng)


def _as_typed(name: str, rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.25:  # typed without accents
        decomposed = unicodedata.normalize("NFKD", name)
        kept = "".join(c for c in decomposed if not unicodedata.combining(c))
        return unicodedata.normalize("NFC", kept)
    if roll < 0.35:
        return name.upper()
    if roll < 0.42:
        return name.lower()
    return name
