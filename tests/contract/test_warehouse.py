"""The Warehouse port's contract: one abstract suite, run on every adapter.

Subclass `WarehouseContract` and provide a `warehouse` fixture (the chdb one comes from conftest):

    from tests.contract.test_warehouse import WarehouseContract

    class TestClickhouseWarehouse(WarehouseContract):
        @pytest.fixture
        def warehouse(self) -> Iterator[Warehouse]: ...

Every test works in its own randomly named table, so a shared server database is fine. Besides
the port's behaviour, the suite pins the SQL subset the projections rely on, so that running it on
the oldest supported server (18.16) proves the SQL there too.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from kernel.dialect import OLDEST_SUPPORTED, replacing_engine
from kernel.ports import Warehouse

# B12: strings that must come back byte-identical, whether stored as data or passed as parameters.
UNICODE = [
    "plain ascii",
    "Ünïcödé café",
    "שלום \u202eabc\u202c مرحبا",  # Hebrew, Arabic and an RTL override
    "👩🏽‍💻 🇫🇷 ❤️",  # ZWJ sequence, flag, variation selector
    "e\u0301 vs é",  # combining accent vs precomposed
    "東京都 𝔘𝔫𝔦𝔠𝔬𝔡𝔢",  # CJK and a supplementary plane
    "zero\u200bwidth\ufeffbom",
    "\x01\x07\x1b[31m control",
    "quotes ' \" ` and braces {name:String}",
    "carriage\rreturn and a back\\slash",
]
HUGE = "ö" * 500_000  # 1 MB of UTF-8
# Characters with a meaning in ClickHouse's escaped text format, which parameters are sent in.
ESCAPED = ["tab\there", "line\nbreak", "\\N", "trailing\\", "hex \\x41", "literal \\n"]
# S04: parameters are data, never SQL.
INJECTIONS = [
    "'; DROP TABLE {table}; --",
    "' OR '1'='1",
    "x' UNION ALL SELECT name, '', 0, 0, 0.0, [] FROM system.tables --",
    "1; SELECT 1",
    "') OR 1=1 --",
    "{s:String}",
    "\\'; DROP TABLE {table}; --",
]


def run_in_threads(work: Callable[[int], None], threads: int) -> list[BaseException]:
    """`work(i)` on `threads` threads at once; what any of them raised (assertions included)."""
    errors: list[BaseException] = []

    def guarded(worker: int) -> None:
        try:
            work(worker)
        except BaseException as exc:  # noqa: BLE001 — returned to the test
            errors.append(exc)

    started = [threading.Thread(target=guarded, args=(i,)) for i in range(threads)]
    for thread in started:
        thread.start()
    for thread in started:
        thread.join()
    return errors


class WarehouseContract:
    """The behaviour every Warehouse adapter must show; subclasses provide `warehouse`."""

    @pytest.fixture
    def table(self, warehouse: Warehouse) -> Iterator[str]:
        name = f"contract_{uuid.uuid4().hex[:12]}"
        warehouse.command(
            f"""CREATE TABLE {name} (id String, s String, n Int64, u UInt8, f Float64,
                tags Array(String)) ENGINE = MergeTree() ORDER BY id"""
        )
        yield name
        warehouse.command(f"DROP TABLE IF EXISTS {name}")

    def test_calls_from_many_threads_at_once_all_land(
        self, warehouse: Warehouse, table: str
    ) -> None:
        """Request threads and runners share one warehouse: concurrent inserts and reads each
        complete, and every row is there after."""

        def work(worker: int) -> None:
            for n in range(15):
                row = {"id": f"{worker}-{n}", "s": "x", "n": n, "u": 0, "f": 0.0, "tags": []}
                warehouse.insert(table, [row])
                found = warehouse.select(
                    f"SELECT count() AS c FROM {table} WHERE id = {{id:String}}",
                    {"id": row["id"]},
                )
                assert found[0]["c"] >= 1

        assert run_in_threads(work, 6) == []
        assert warehouse.select(f"SELECT count() AS c FROM {table}")[0]["c"] == 90

    def _round_trip(self, warehouse: Warehouse, table: str, value: str) -> dict[str, Any]:
        warehouse.insert(
            table, [{"id": "k", "s": value, "n": 0, "u": 0, "f": 0.0, "tags": [value]}]
        )
        [row] = warehouse.select(f"SELECT s, tags, length(s) AS size FROM {table}")
        return row

    # --- the port ---------------------------------------------------------------------------
    def test_version_is_a_tuple_of_ints_no_older_than_supported(self, warehouse: Warehouse) -> None:
        assert isinstance(warehouse.version, tuple) and len(warehouse.version) >= 2
        assert all(isinstance(part, int) for part in warehouse.version)
        assert warehouse.version[:2] >= OLDEST_SUPPORTED

    def test_inserted_rows_come_back_with_their_types(
        self, warehouse: Warehouse, table: str
    ) -> None:
        rows = [
            {"id": "a", "s": "x", "n": -(2**62), "u": 255, "f": 0.5, "tags": ["p", "q"]},
            {"id": "b", "s": "", "n": 2**62, "u": 0, "f": -1.25, "tags": []},
        ]
        warehouse.insert(table, rows)
        assert warehouse.select(f"SELECT id, s, n, u, f, tags FROM {table} ORDER BY id") == rows

    def test_inserting_no_rows_does_nothing(self, warehouse: Warehouse, table: str) -> None:
        warehouse.insert(table, [])
        assert warehouse.select(f"SELECT count() AS n FROM {table}") == [{"n": 0}]

    def test_a_query_with_no_rows_returns_an_empty_list(
        self, warehouse: Warehouse, table: str
    ) -> None:
        assert warehouse.select(f"SELECT id FROM {table} WHERE n > {{n:Int64}}", {"n": 0}) == []

    def test_columns_hold_the_rows_values_by_column_even_with_no_rows(
        self, warehouse: Warehouse, table: str
    ) -> None:
        rows = [
            {"id": "a", "s": "ö\tx", "n": -(2**62), "u": 255, "f": 0.5, "tags": ["p"]},
            {"id": "b", "s": "", "n": 2**62, "u": 0, "f": -1.25, "tags": []},
        ]
        warehouse.insert(table, rows)
        sql = f"SELECT id, s, n, u, f, tags FROM {table} WHERE n > {{n:Int64}} ORDER BY id"
        assert warehouse.select_columns(sql, {"n": -(2**63)}) == {
            name: [row[name] for row in rows] for name in rows[0]
        }
        assert warehouse.select_columns(sql, {"n": 2**62}) == {name: [] for name in rows[0]}

    def test_parameters_of_several_types(self, warehouse: Warehouse) -> None:
        params = {"s": "text", "n": -(2**62), "u": 4_000_000_000, "f": 2.5, "b": 1}
        sql = "SELECT {s:String} AS s, {n:Int64} AS n, {u:UInt32} AS u, {f:Float64} AS f, {b:UInt8} AS b"
        assert warehouse.select(sql, params) == [params]

    def test_parameters_filter_rows(self, warehouse: Warehouse, table: str) -> None:
        warehouse.insert(
            table,
            [
                {"id": str(i), "s": f"s{i % 3}", "n": i, "u": 0, "f": 0.0, "tags": []}
                for i in range(9)
            ],
        )
        sql = f"""SELECT id FROM {table} WHERE s = {{s:String}} AND n >= {{n:Int64}} ORDER BY id"""
        assert warehouse.select(sql, {"s": "s1", "n": 4}) == [{"id": "4"}, {"id": "7"}]

    def test_command_accepts_parameters(self, warehouse: Warehouse, table: str) -> None:
        warehouse.insert(table, [{"id": "a", "s": "", "n": 1, "u": 0, "f": 0.0, "tags": []}])
        warehouse.command(
            f"INSERT INTO {table} SELECT {{id:String}}, '', {{n:Int64}}, 0, 0.0, []",
            {"id": "b", "n": 7},
        )
        assert warehouse.select(f"SELECT id, n FROM {table} ORDER BY id") == [
            {"id": "a", "n": 1},
            {"id": "b", "n": 7},
        ]

    @pytest.mark.parametrize("value", [*UNICODE, *ESCAPED, HUGE], ids=lambda v: repr(v)[:24])
    def test_stored_strings_round_trip_byte_identical(
        self, warehouse: Warehouse, table: str, value: str
    ) -> None:
        row = self._round_trip(warehouse, table, value)
        assert row["s"].encode() == value.encode()
        assert row["tags"] == [value]
        assert row["size"] == len(value.encode())

    @pytest.mark.parametrize("value", [*UNICODE, HUGE], ids=lambda v: repr(v)[:24])
    def test_string_parameters_round_trip_byte_identical(
        self, warehouse: Warehouse, table: str, value: str
    ) -> None:
        self._round_trip(warehouse, table, value)
        found = warehouse.select(
            f"SELECT {{v:String}} AS v, count() AS n FROM {table} WHERE s = {{v:String}}",
            {"v": value},
        )
        assert found == [{"v": value, "n": 1}]

    @pytest.mark.parametrize("value", ESCAPED, ids=repr)
    def test_string_parameters_with_escape_characters_round_trip(
        self, warehouse: Warehouse, table: str, value: str
    ) -> None:
        self._round_trip(warehouse, table, value)
        found = warehouse.select(
            f"SELECT {{v:String}} AS v, count() AS n FROM {table} WHERE s = {{v:String}}",
            {"v": value},
        )
        assert found == [{"v": value, "n": 1}]

    @pytest.mark.parametrize("attack", INJECTIONS, ids=repr)
    def test_injection_through_parameters_is_inert(
        self, warehouse: Warehouse, table: str, attack: str
    ) -> None:
        value = attack.replace("{table}", table)
        warehouse.insert(table, [{"id": "a", "s": "secret", "n": 1, "u": 0, "f": 0.0, "tags": []}])
        sql = (
            f"SELECT {{p:String}} AS p, s FROM {table} WHERE id = {{p:String}} OR s = {{p:String}}"
        )
        assert warehouse.select(sql, {"p": value}) == []
        assert warehouse.select("SELECT {p:String} AS p", {"p": value}) == [{"p": value}]
        assert warehouse.select(f"SELECT s FROM {table}") == [{"s": "secret"}]

    # --- the SQL subset the projections rely on ---------------------------------------------
    def test_replacing_tables_deduplicate_with_limit_by_and_combine_latest_by_tuple(
        self, warehouse: Warehouse
    ) -> None:
        name = f"contract_{uuid.uuid4().hex[:12]}"
        # Column names as the projections use them: `key` and `field` are keywords elsewhere.
        engine = replacing_engine(("field", "key", "at", "id"), warehouse.version)
        warehouse.command(
            f"""CREATE TABLE IF NOT EXISTS {name} (field String, key String, at Int64, id String,
                ids Array(String)) {engine}"""
        )
        try:
            rows = [
                {"field": "f", "key": "x", "at": at, "id": i, "ids": [i]}
                for at, i in [(1, "b"), (2, "a"), (2, "c"), (1, "d")]
            ]
            warehouse.insert(name, rows)
            warehouse.insert(name, rows)  # a reprocessed batch
            deduped = f"""(SELECT field, key, at, id FROM {name}
                           ORDER BY at DESC, id DESC LIMIT 1 BY id)"""
            assert warehouse.select(f"SELECT id FROM {deduped}") == [
                {"id": "c"}, {"id": "a"}, {"id": "d"}, {"id": "b"},
            ]  # fmt: skip
            combined = warehouse.select(
                f"""SELECT field, key, count() AS n, uniqExact(id) AS ids, min(at) AS first,
                           argMax(id, (at, id)) AS latest FROM {deduped} GROUP BY field, key"""
            )
            assert combined == [
                {"field": "f", "key": "x", "n": 4, "ids": 4, "first": 1, "latest": "c"}
            ]
        finally:
            warehouse.command(f"DROP TABLE IF EXISTS {name}")


class TestChdbWarehouse(WarehouseContract):
    """The embedded adapter, on the per-test chdb database from conftest."""

    def test_concurrent_calls_on_two_databases_each_land_in_their_own(
        self, warehouse: Warehouse, chdb_path: Any
    ) -> None:
        """Calls from many threads share a pool of sessions, each remembering its database: an
        insert or read of one warehouse never lands in another's, whatever session it gets."""
        from cem.adapters.chdb_warehouse import ChdbWarehouse

        other = ChdbWarehouse(chdb_path, database=f"t_{uuid.uuid4().hex[:12]}")
        try:
            pair = [warehouse, other]
            for wh in pair:
                wh.command("CREATE TABLE t (w String, n Int64) ENGINE = MergeTree() ORDER BY n")
            names = ["first", "second"]

            def work(worker: int) -> None:
                for n in range(20):
                    which = (worker + n) % 2
                    pair[which].insert("t", [{"w": names[which], "n": worker * 100 + n}])
                    seen = pair[which].select("SELECT DISTINCT w FROM t")
                    assert [r["w"] for r in seen] == [names[which]]

            assert run_in_threads(work, 8) == []
            counts = [wh.select("SELECT count() AS c FROM t")[0]["c"] for wh in pair]
            assert counts == [80, 80]
        finally:
            other.drop_database()
            other.close()

    def test_a_dropped_database_leaves_nothing_for_the_engine_to_load_again(
        self, warehouse: Warehouse, chdb_path: Any
    ) -> None:
        """Dropped at once (`SYNC`): before, its tables waited in `metadata_dropped`, and every
        later start of the engine loaded them again (the test suite's chdb starts grew 10×)."""
        from cem.adapters.chdb_warehouse import ChdbWarehouse

        other = ChdbWarehouse(chdb_path, database=f"t_{uuid.uuid4().hex[:12]}")
        try:
            other.command("CREATE TABLE t (n Int64) ENGINE = MergeTree() ORDER BY n")
            other.insert("t", [{"n": 1}])
            [uuid_row] = other.select(
                "SELECT toString(uuid) AS u FROM system.tables "
                "WHERE database = currentDatabase() AND name = 't'"
            )
            other.drop_database()
            waiting = [p.name for p in (chdb_path / "metadata_dropped").glob("*")]
            assert not [name for name in waiting if uuid_row["u"] in name], waiting
            assert other.database not in [
                r["name"] for r in warehouse.select("SELECT name FROM system.databases")
            ]
        finally:
            other.close()

    def test_a_warehouse_that_fails_to_start_gives_its_use_of_the_engine_back(
        self, warehouse: Warehouse, chdb_path: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from cem.adapters import chdb_warehouse

        users = chdb_warehouse._shared["users"]

        def broken(self: Any) -> tuple[int, ...]:
            raise RuntimeError("version unreadable")

        monkeypatch.setattr(chdb_warehouse.ChdbWarehouse, "_read_version", broken)
        with pytest.raises(RuntimeError, match="version unreadable"):
            chdb_warehouse.ChdbWarehouse(chdb_path, database=f"t_{uuid.uuid4().hex[:12]}")
        assert chdb_warehouse._shared["users"] == users  # else the engine never shuts down
