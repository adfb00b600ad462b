"""`cem up --read-only`: serve the tables as they are, refuse every write with 503 in the one shape.

A read-only platform processes nothing, so a write it accepted would sit in the log unseen; it is
refused instead, saying why, before the body is read.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from kernel.api_errors import error_body
from services.ingest.segment_router import SEGMENT_PATHS

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Signing in and out writes only people's sessions, not the log or the tables being served.
SESSION_PATHS = frozenset({"/signin", "/signout"})
MESSAGE = (
    "this instance is read-only (cem up --read-only): it serves the tables and takes no writes"
)


def refuse_writes(app: FastAPI) -> None:
    """Answer every request that is not a read with 503 `read_only`, before its credential is
    checked (no write is taken from anyone); the OpenAPI document lists that 503 on each write."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        document = generate()  # FastAPI keeps it: amended once, in place
        for item in document.get("paths", {}).values():
            for method, operation in item.items():
                if method.upper() not in READ_METHODS:
                    operation.setdefault("responses", {})["503"] = {"description": MESSAGE}
        return document

    app.openapi = openapi  # type: ignore[method-assign]

    @app.middleware("http")
    async def _read_only(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        if request.method in READ_METHODS or request.url.path in SESSION_PATHS:
            return await call_next(request)
        body = error_body("read_only", MESSAGE)
        if request.url.path in SEGMENT_PATHS:  # Segment's SDKs read `code` and `message` there
            body = {"code": "read_only", "message": MESSAGE, **body}
        return JSONResponse(body, status_code=503)
