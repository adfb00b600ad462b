"""Each store that does not answer is named by its own 503 code."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

from cem.adapters.postgres import PostgresUnavailable
from kernel import api_errors


def test_a_postgresql_outage_is_named_as_such_not_as_the_event_log() -> None:
    # PostgreSQL holds keys, accounts and identities: a query API whose PostgreSQL was down
    # answered `log_unavailable`, which the console words "the event log does not answer".
    app = FastAPI()
    api_errors.install(app)

    @app.get("/down")
    def down() -> None:
        raise PostgresUnavailable("PostgreSQL at db:5432/cem: couldn't get a connection")

    answer = TestClient(app).get("/down")
    assert (answer.status_code, answer.headers["retry-after"]) == (503, "5")
    assert answer.json()["error"]["code"] == "store_unavailable"
