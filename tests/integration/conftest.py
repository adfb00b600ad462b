"""The integration tests use the real engines' fixtures registered by tests/conftest.py
(`kafka_bootstrap`, `clickhouse_url`, `postgres_dsn` (session) and `clickhouse_warehouse`): locally a
test skips without the engine, under CI it fails."""
