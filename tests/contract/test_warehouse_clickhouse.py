"""The Warehouse contract on a ClickHouse server through clickhouse-driver (locally Debian's
18.16), plus the adapter's own rules: `{name:Type}` translation, type coercion, unavailability."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest
from clickhouse_driver.errors import ServerException

from cem.adapters.clickhouse_warehouse import (
    ClickHouseWarehouse,
    WarehouseUnavailable,
    coerce,
    translate,
)
from kernel.ports import Warehouse
from tests.contract.test_warehouse import WarehouseContract
from tests.engines import Engines


@pytest.mark.clickhouse
class TestClickHouseWarehouse(WarehouseContract):
    """The shared suite on a fresh database of the session's ClickHouse server."""

    @pytest.fixture
    def warehouse(self, clickhouse_url: str) -> Iterator[Warehouse]:  # noqa: F811
        wh = ClickHouseWarehouse(clickhouse_url, database=f"t_{uuid.uuid4().hex[:12]}")
        yield wh
        wh.drop_database()
        wh.close()


# --- translation of parameters (no server needed) --------------------------------------------


def test_placeholders_become_driver_parameters_and_percent_signs_are_doubled() -> None:
    sql, values = translate(
        "SELECT {a:Int64} AS a, 'x%' AS b WHERE s LIKE {p:String}", {"a": 1, "p": "%y"}
    )
    assert sql == "SELECT  %(p0)s AS a, 'x%%' AS b WHERE s LIKE  %(p1)s"
    assert values == {"p0": 1, "p1": "%y"}


def test_braces_inside_literals_identifiers_and_comments_are_not_parameters() -> None:
    sql = "SELECT '{a:Int64}', `{b:String}`, \"{c:UInt8}\" -- {d:Int8}\n /* {e:Int8} */"
    assert translate(sql, {}) == (sql, {})


def test_escaped_quotes_do_not_end_a_literal_early() -> None:
    sql = r"SELECT 'it\'s {a:Int64}', 'it''s {b:Int64}', {c:Int64} AS c"
    template, values = translate(sql, {"c": 3})
    assert template.endswith(" %(p0)s AS c") and values == {"p0": 3}
    assert "{a:Int64}" in template and "{b:Int64}" in template


def test_a_query_without_parameters_is_sent_unchanged() -> None:
    assert translate("SELECT '100%'", None) == ("SELECT '100%'", {})


def test_a_missing_parameter_is_an_error() -> None:
    with pytest.raises(ValueError, match="'n'"):
        translate("SELECT {n:Int64}", {})


@pytest.mark.parametrize(
    ("value", "type_", "expected"),
    [
        ("42", "Int64", 42),
        (True, "UInt8", 1),
        (3.0, "Int32", 3),
        (2, "Float64", 2.0),
        (7, "String", "7"),
        (b"caf\xc3\xa9", "String", "café"),
        (uuid.UUID(int=1), "UUID", "00000000-0000-0000-0000-000000000001"),
        (None, "Nullable(String)", None),
        (("a", 1), "Array(String)", ["a", "1"]),
        ([1, None], "Array(Nullable(Int64))", [1, None]),
        ("x", "LowCardinality(String)", "x"),
        (datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), "DateTime", 1767323045),
        (datetime(2026, 1, 2, 3, 4, 5), "DateTime", "2026-01-02 03:04:05"),
        (date(2026, 1, 2), "Date", "2026-01-02"),
    ],
)
def test_values_are_coerced_to_their_declared_type(
    value: object, type_: str, expected: object
) -> None:
    assert coerce(value, type_) == expected


@pytest.mark.parametrize(
    ("value", "type_"),
    [
        ("1; DROP TABLE t", "Int64"),
        (2.5, "Int64"),
        (None, "String"),
        ("abc", "Array(String)"),
        (object(), "String"),
        (b"\xff", "String"),
        (1, "Map(String, String)"),
    ],
)
def test_values_that_do_not_fit_their_type_are_refused(value: object, type_: str) -> None:
    with pytest.raises((TypeError, ValueError)):
        coerce(value, type_)


def test_a_server_that_does_not_answer_is_reported_as_unavailable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # Nothing listens on the port once the socket is closed: the connection is refused.
    with pytest.raises(WarehouseUnavailable):
        ClickHouseWarehouse(f"clickhouse://127.0.0.1:{port}/default")


@pytest.mark.clickhouse
def test_a_restarted_server_is_unavailable_then_usable_again(
    engines: Engines,  # noqa: F811
    clickhouse_url: str,  # noqa: F811
) -> None:
    wh = ClickHouseWarehouse(clickhouse_url, database=f"t_{uuid.uuid4().hex[:12]}")
    try:
        wh.command("CREATE TABLE t (k String) ENGINE = MergeTree() ORDER BY k")
        wh.insert("t", [{"k": "before"}])
        engines.kill("clickhouse")
        try:
            with pytest.raises(WarehouseUnavailable):
                wh.insert("t", [{"k": "while down"}])
        finally:
            engines.restart("clickhouse")
        wh.insert("t", [{"k": "after"}])  # the adapter reconnects by itself
        assert wh.select("SELECT k FROM t ORDER BY k") == [{"k": "after"}, {"k": "before"}]
    finally:
        wh.drop_database()
        wh.close()


@pytest.mark.clickhouse
def test_rows_must_share_their_columns_and_names_must_be_plain(
    clickhouse_url: str,  # noqa: F811
) -> None:
    wh = ClickHouseWarehouse(clickhouse_url, database=f"t_{uuid.uuid4().hex[:12]}")
    try:
        wh.command("CREATE TABLE t (a String, b String) ENGINE = MergeTree() ORDER BY a")
        with pytest.raises(ValueError):
            wh.insert("t", [{"a": "x", "b": "y"}, {"a": "z"}])
        with pytest.raises(ValueError):
            wh.insert("t", [{"a": "x", "b) SELECT 1 --": "y"}])
        assert wh.select("SELECT count() AS n FROM t") == [{"n": 0}]
    finally:
        wh.drop_database()
        wh.close()


@pytest.mark.clickhouse
def test_a_query_over_its_time_limit_is_reported_as_unavailable(
    clickhouse_warehouse: ClickHouseWarehouse,
) -> None:
    # The server says "not now" (code 159): a caller retries it as after a lost connection, where
    # an error the query would meet every time (a syntax error) stays what it is.
    with pytest.raises(WarehouseUnavailable, match=r"busy \(code 159\): .*Timeout exceeded"):
        clickhouse_warehouse.select(
            "SELECT sum(number) AS n FROM numbers(10000000000) SETTINGS max_execution_time = 1"
        )
    with pytest.raises(ServerException) as refused:  # a syntax error: the same on every retry
        clickhouse_warehouse.select("SELEKT 1")
    assert refused.value.code == 62
    assert clickhouse_warehouse.select("SELECT 1 AS one") == [{"one": 1}]
