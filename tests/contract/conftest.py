"""Fixtures of the contract suites run on real engines (tests/engines.py says where they come from).

`kafka_bootstrap`, `clickhouse_url`, `postgres_dsn` (session) and `clickhouse_warehouse` (a fresh
database per test) need a real service: locally a test skips without one, under CI it fails.
"""

from tests.engines import (  # noqa: F401  (fixtures, imported to register them here)
    clickhouse_url,
    clickhouse_warehouse,
    engines,
    kafka_bootstrap,
    postgres_dsn,
)
