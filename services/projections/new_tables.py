"""Tables a release adds beside those an earlier release filled, made once per warehouse.

Such a table is filled from what the earlier release wrote under a temporary name (`filling`)
and renamed, so it appears only complete, and its existence is the record that it was made: the
readers that must wait for it ask one thing, and no table of records is kept. A fill cut short
(a crash) is done again from the start; rows it inserted twice collapse on merge, and the reads
deduplicate. Processes starting together may fill it together: one rename wins and the others
find the table and drop what they filled.
"""

from __future__ import annotations

from collections.abc import Callable

from kernel.ports import Warehouse


def filling(table: str) -> str:
    """The name a table is filled under before it is renamed to its own."""
    return f"{table}_backfill"


def table_exists(warehouse: Warehouse, table: str) -> bool:
    return bool(
        warehouse.select(
            "SELECT name FROM system.tables WHERE database = currentDatabase()"
            " AND name = {name:String}",
            {"name": table},
        )
    )


def create_filled(
    warehouse: Warehouse,
    table: str,
    ddl: Callable[[str], str],
    fill: Callable[[str], None],
) -> None:
    """Make `table` unless it exists: its `ddl(name)` run under `filling(table)`, `fill(name)`
    copying the earlier release's rows into it, then the rename."""
    if table_exists(warehouse, table):
        return
    try:
        warehouse.command(ddl(filling(table)))
        fill(filling(table))
        warehouse.command(f"RENAME TABLE {filling(table)} TO {table}")
    except Exception:  # another process renamed it first (any other failure is raised)
        if not table_exists(warehouse, table):
            raise
        # What this process filled under the fill's name after the other's rename: a copy.
        warehouse.command(f"DROP TABLE IF EXISTS {filling(table)}")
