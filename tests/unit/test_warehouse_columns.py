"""The warehouse adapters' batch transposition: rows in, one list per column out."""

from __future__ import annotations

import pytest

from cem.adapters.warehouse_columns import to_columns


def test_rows_become_columns_in_the_first_rows_order() -> None:
    rows = [{"b": 1, "a": "x", "tags": ["p"]}, {"a": "y", "tags": [], "b": 2}]
    assert to_columns("t", rows) == (["b", "a", "tags"], [[1, 2], ["x", "y"], [["p"], []]])


def test_sets_become_sorted_lists_and_tuples_lists_wherever_they_are_in_a_column() -> None:
    rows = [{"tags": ["a"]}, {"tags": {"z", "b"}}, {"tags": ("q", "p")}, {"tags": frozenset()}]
    assert to_columns("t", rows) == (["tags"], [[["a"], ["b", "z"], ["q", "p"], []]])


def test_rows_with_other_columns_are_refused() -> None:
    with pytest.raises(ValueError, match="do not all have the columns"):
        to_columns("t", [{"a": 1, "b": 2}, {"a": 1}])
    with pytest.raises(ValueError, match="do not all have the columns"):
        to_columns("t", [{"a": 1}, {"b": 1}])


@pytest.mark.parametrize(
    ("table", "column"), [("t; DROP TABLE x", "a"), ("t", "a) SELECT 1 --"), ("t", "")]
)
def test_names_that_are_not_identifiers_are_refused(table: str, column: str) -> None:
    with pytest.raises(ValueError, match="invalid table or column name"):
        to_columns(table, [{column: 1}])
