"""Slips of a finger versus other names one letter away."""

from __future__ import annotations

import pytest

from services.identity.keyboard import keyboard_slip, neighbours


@pytest.mark.parametrize(
    "typed, meant",
    [
        ("kateo.carrasco", "mateo.carrasco"),  # k sits next to m
        ("ana.gracia", "ana.garcia"),  # two neighbouring letters swapped
        ("annna", "anna"),  # a letter doubled
        ("luisd", "luis"),  # the key next to the last one hit too
        ("mariñ", "maril"),  # ñ sits right of l on a Spanish keyboard
        ("af.ores", "aflores"),  # . sits below l
    ],
)
def test_slips_of_a_finger(typed: str, meant: str) -> None:
    assert keyboard_slip(typed, meant) and keyboard_slip(meant, typed)


@pytest.mark.parametrize(
    "one, other",
    [
        ("maria.lopez", "mario.lopez"),  # a and o are far apart: another name
        ("julia", "julio"),
        ("daniel", "daniela"),  # an ending added: another name
        ("gabriel", "gabriela"),
        ("ana", "ana"),  # the same is no slip
        ("ana", "anabel"),  # more than one letter
        ("abcd", "badc"),  # two swaps
        ("a.lopez", "alopez"),  # a dot added: another way to write a name (two mailboxes)
        ("ana-lopez", "analopez"),
        ("ana-lopez", "ana.lopez"),  # - sits right of ., but both are ways to write a name
        ("ana.l", "ana.a"),  # . is near l, not a: still two letters far apart
    ],
)
def test_other_names_one_letter_away_are_no_slip(one: str, other: str) -> None:
    assert not keyboard_slip(one, other)


def test_neighbours_are_mutual_and_follow_the_rows() -> None:
    near = neighbours()
    assert all(key in near[n] for key, ns in near.items() for n in ns)
    assert near["g"] == frozenset("tyfhvb")
    assert "ñ" in near["l"] and "a" not in near["o"]
    assert near["."] == frozenset("lñ,-") and near["m"] == frozenset("jk,n")
