"""The names the console's type filter offers: every type the timeline words, in each language."""

from services.projections.timeline import type_titles


def test_every_worded_type_has_a_title_without_placeholders_in_each_language() -> None:
    english, spanish = type_titles("en"), type_titles("es")
    assert english.keys() == spanish.keys()
    assert {"call.ended", "survey.answered", "alert.resolved"} <= english.keys()
    assert english["survey.answered"] == "Survey answered"
    assert spanish["call.ended"] == "Llamada finalizada"
    assert not [title for title in [*english.values(), *spanish.values()] if "{" in title]


def test_a_language_the_timeline_does_not_speak_gets_english() -> None:
    assert type_titles("fr") == type_titles("en")
