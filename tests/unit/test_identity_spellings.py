"""Normalised values are remembered by a shared spelling (`normalise._spelling`): every way of
writing one number or mailbox is parsed once. The spelling must normalise exactly as the text it
stands for does, in every region, or two spellings of different values would share an answer."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from services.identity import normalise
from services.identity.rules import TenantRules

REGIONS = [TenantRules(phone_region=r) for r in ("ES", "MX", "GB", "US", "AR", "DE")]
NUMBERS = [
    "617345678",
    "+34617345678",
    "0034617345678",
    "34617345678",
    "5512345678",
    "+525512345678",
    "07700900123",
    "+447700900123",
    "+44 (0) 20 7946 0018",
    "2025550123",
    "+12025550123",
    "1 800 555 0123",
    "+54 9 11 2345 6789",
    "0000000000",
    "123",
    "+",
]
SEPARATORS = ["", " ", "-", ".", "(", ")", " (", ") ", "  "]


@st.composite
def written_numbers(draw: st.DrawFn) -> str:
    """A number as people write it: separators anywhere between its characters."""
    number = draw(st.sampled_from(NUMBERS)).replace(" ", "")
    gaps = draw(st.lists(st.sampled_from(SEPARATORS), min_size=len(number), max_size=len(number)))
    return draw(st.sampled_from(["", " "])) + "".join(
        c + g for c, g in zip(number, gaps, strict=True)
    )


@settings(max_examples=300, deadline=None)
@given(written=written_numbers())
def test_a_phone_spelling_normalises_as_the_number_written(written: str) -> None:
    spelling = normalise._spelling("phone", written)
    assert spelling is not None and spelling == spelling.strip()
    for rules in REGIONS:
        expected = normalise._normalised_value("phone", written, rules)
        assert normalise._normalised_value("phone", spelling, rules) == expected, rules.phone_region


@settings(max_examples=200, deadline=None)
@given(
    local=st.from_regex(r"[A-Za-z0-9._+\-]{1,12}", fullmatch=True),
    domain=st.sampled_from(["Gmail.com", "hotmial.com", "X.io", "googlemail.COM", "acme", "a.b"]),
    padding=st.sampled_from(["", " ", "  "]),
)
def test_an_email_spelling_normalises_as_the_address_written(
    local: str, domain: str, padding: str
) -> None:
    written = f"{padding}{local}@{domain}{padding}"
    spelling = normalise._spelling("email", written)
    assert spelling == written.strip().lower()
    for rules in REGIONS[:2]:
        expected = normalise._normalised_value("email", written, rules)
        assert normalise._normalised_value("email", spelling, rules) == expected


def test_text_with_letters_or_other_marks_keeps_its_own_spelling() -> None:
    for kind, raw in [
        ("phone", "617 345 678 ext 12"),
        ("phone", "tel:+34617345678"),
        ("phone", "617/345/678"),
        ("email", "Ána@x.io"),
        ("anonymous_id", "Cookie-1"),
    ]:
        assert normalise._spelling(kind, raw) is None
