"""A ClickHouse outage logs one line per failed connection attempt, not a traceback each."""

from __future__ import annotations

import logging

import pytest
from clickhouse_driver import Client

import cem.adapters.clickhouse_warehouse  # noqa: F401 - installs the driver's log filter
from cem.serving import free_port


def test_a_failed_connection_is_one_line(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="clickhouse_driver.connection")
    with pytest.raises(Exception):  # noqa: B017 - the driver's NetworkError, whatever its class
        Client("127.0.0.1", port=free_port(), connect_timeout=1).execute("SELECT 1")
    [record] = [r for r in caplog.records if r.name == "clickhouse_driver.connection"]
    assert record.exc_info is None
    assert "Failed to connect to 127.0.0.1" in record.getMessage()
    assert "Connection refused" in record.getMessage()
