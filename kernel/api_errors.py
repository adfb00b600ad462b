"""One JSON error shape for every HTTP service, and the one place domain errors map to statuses.

Shape: {"error": {"code": str, "message": str, "details": [{"code", "message", "path", "index"?}]}}
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from kernel.ports import LogUnavailable, WarehouseUnavailable
from kernel.web_security import with_security_headers

# What a route that reads the warehouse documents for an outage (`_warehouse_unavailable`).
WAREHOUSE_UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    503: {"description": "the warehouse is unavailable; retry later"},
}


class ApiError(Exception):
    """An error with an HTTP status, a machine-readable code and optional per-field details."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.details = details or []
        self.headers = headers or {}


def naming_the_first(message: str, details: list[dict[str, Any]]) -> str:
    """`message` followed by the first violation (its path and what is wrong) and how many more
    there are: one line that says what to fix, with `details` listing every violation."""
    if not details:
        return message
    first = details[0]
    what = str(first.get("message", "")).strip() or str(first.get("code", "invalid"))
    path = str(first.get("path", ""))
    more = f" (and {len(details) - 1} more)" if len(details) > 1 else ""
    return f"{message}: {path + ': ' if path else ''}{what}{more}"


def error_body(
    code: str, message: str, details: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or []}}


def _respond(
    status: int, code: str, message: str, details: Any = None, headers: Any = None
) -> JSONResponse:
    return JSONResponse(error_body(code, message, details), status_code=status, headers=headers)


async def _api_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return _respond(exc.status, exc.code, exc.message, exc.details, exc.headers)


async def _log_unavailable(_: Request, exc: Exception) -> JSONResponse:
    # Never a 2xx without the log's acknowledgement (F01, F12): the client retries later.
    # The code of the store that does not answer: the log's, or PostgreSQL's (`store_unavailable`).
    code = exc.code if isinstance(exc, LogUnavailable) else "log_unavailable"
    message = str(exc) or "event log unavailable"
    return _respond(503, code, message, headers={"Retry-After": "5"})


# The codes `_log_unavailable` answers with (each a `LogUnavailable.code`), for the pages' words.
STORE_CODES = ("log_unavailable", "store_unavailable")


async def _warehouse_unavailable(_: Request, exc: Exception) -> JSONResponse:
    # A read during a warehouse outage: nothing is wrong with the request, so ask for a retry.
    return _respond(
        503,
        "warehouse_unavailable",
        "the warehouse does not answer right now; retry later",
        headers={"Retry-After": "5"},
    )


async def _validation(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = [
        {
            "code": e.get("type", "invalid"),
            "message": e.get("msg", ""),
            "path": ".".join(str(p) for p in e.get("loc", ())),
        }
        for e in exc.errors()
    ]
    message = naming_the_first("the request has invalid parameters", details)
    return _respond(422, "invalid_request", message, details)


async def _http(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = {401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed"}
    return _respond(
        exc.status_code,
        code.get(exc.status_code, "http_error"),
        str(exc.detail),
        headers=getattr(exc, "headers", None),
    )


async def _internal(_: Request, exc: Exception) -> JSONResponse:
    # A bug. Starlette's outermost middleware sends this, past every other middleware, then
    # logs the traceback: so the security headers are set here (a plain-text "Internal Server
    # Error" without them was the answer).
    headers = {
        name.decode(): value.decode() for name, value in with_security_headers([], static=False)
    }
    return _respond(500, "internal_error", "the server failed; retry later", headers=headers)


def install(app: FastAPI) -> None:
    """Register the handlers that give every error the one shape."""
    app.add_exception_handler(Exception, _internal)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(LogUnavailable, _log_unavailable)
    app.add_exception_handler(WarehouseUnavailable, _warehouse_unavailable)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
