"""How the identity routes that change something read their bodies (RELIABILITY B04, S09): the
key is checked before a byte of the body is read, the body is capped, and it is parsed by the
ingest's strict JSON parser (duplicate keys refused). Driven at the ASGI level, where a test can
count what the application actually pulled from the connection."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi import FastAPI

import kernel.api_errors
from cem.adapters.memory_access_audit import MemoryAccessAudit
from cem.adapters.memory_keys import MemoryKeyStore
from cem.adapters.sqlite_identity_store import SqliteIdentityStore
from services.identity import IdentityResolver
from services.identity.router import MAX_BODY_BYTES, router

CHUNK = 64 * 1024
ROUTES = [
    "/v1/customers/merge",
    "/v1/customers/c-1/split",
    "/v1/customers/c-1/caller",
    "/v1/customers/c-1/unlink",
    "/v1/merge-candidates/k-1/decision",
]


class Connection:
    """One HTTP request fed to the app in chunks; remembers how many chunks the app pulled."""

    def __init__(self, body_chunks: int | None, chunk: bytes = b" " * CHUNK) -> None:
        self.left, self.chunk, self.pulled = body_chunks, chunk, 0
        self.status: int | None = None
        self.body = b""

    async def receive(self) -> dict[str, Any]:
        self.pulled += 1
        if self.left is not None:
            self.left -= 1
        return {"type": "http.request", "body": self.chunk, "more_body": self.left != 0}

    async def send(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        elif message["type"] == "http.response.body":
            self.body += message.get("body", b"")


@pytest.fixture
def app(tmp_path: Path) -> Iterator[tuple[FastAPI, str]]:
    identity = IdentityResolver(SqliteIdentityStore(tmp_path / "identity.sqlite"))
    keys = MemoryKeyStore()
    app = FastAPI()
    kernel.api_errors.install(app)
    app.include_router(router)
    app.state.identity, app.state.keys = identity, keys
    app.state.access_audit = MemoryAccessAudit()
    yield app, keys.create("acme", "manager")[1]
    identity.close()


def post(app: FastAPI, path: str, connection: Connection, headers: dict[str, str]) -> Connection:
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "client": ("127.0.0.1", 1), "server": ("testserver", 80),
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    }  # fmt: skip
    asyncio.run(app(scope, connection.receive, connection.send))
    return connection


@pytest.mark.parametrize("path", ROUTES)
def test_a_body_without_a_key_is_refused_before_any_of_it_is_read(
    app: tuple[FastAPI, str], path: str
) -> None:
    endless = Connection(body_chunks=None)  # a 400 MB upload, as far as the app can tell
    answer = post(app[0], path, endless, {"content-type": "application/json",
                                          "content-length": str(400 * 1024 * 1024)})  # fmt: skip
    assert answer.status == 401
    assert endless.pulled == 0


@pytest.mark.parametrize("path", ROUTES)
def test_a_body_over_the_limit_is_413_and_reading_stops_there(
    app: tuple[FastAPI, str], path: str
) -> None:
    auth = {"authorization": f"Bearer {app[1]}", "content-type": "application/json"}
    declared = post(app[0], path, Connection(None), {**auth, "content-length": str(10**9)})
    assert (declared.status, declared.pulled) == (413, 0)
    chunked = post(app[0], path, Connection(None), auth)  # no length: counted as it arrives
    assert chunked.status == 413
    assert chunked.pulled <= MAX_BODY_BYTES // CHUNK + 2
    assert orjson.loads(chunked.body)["error"]["code"] == "payload_too_large"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b'{"absorbed_id": "a", "absorbed_id": "b", "reason": "r"}', "malformed_json"),
        (b'{"absorbed_id": "a", "reason": NaN}', "malformed_json"),
        (b'{"absorbed_id": "a", "reason": "r"', "malformed_json"),
    ],
)
def test_the_identity_routes_use_the_ingests_strict_json_parser(
    app: tuple[FastAPI, str], body: bytes, code: str
) -> None:
    auth = {"authorization": f"Bearer {app[1]}", "content-type": "application/json"}
    answer = post(app[0], "/v1/customers/c-1/split", Connection(1, body), auth)
    assert answer.status == 400
    assert orjson.loads(answer.body)["error"]["code"] == code


def test_an_invalid_body_is_422_naming_each_path(app: tuple[FastAPI, str]) -> None:
    auth = {"authorization": f"Bearer {app[1]}", "content-type": "application/json"}
    body = b'{"survivor_id": "", "absorbed_id": "b", "colour": "red"}'
    answer = post(app[0], "/v1/customers/merge", Connection(1, body), auth)
    assert answer.status == 422
    paths = {d["path"] for d in orjson.loads(answer.body)["error"]["details"]}
    assert paths == {"body.survivor_id", "body.reason", "body.colour"}


def test_the_openapi_document_still_describes_each_body(app: tuple[FastAPI, str]) -> None:
    spec = app[0].openapi()
    merge = spec["paths"]["/v1/customers/merge"]["post"]["requestBody"]
    schema = merge["content"]["application/json"]["schema"]
    assert set(schema["required"]) == {"survivor_id", "absorbed_id", "reason"}
