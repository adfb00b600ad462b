"""Security headers on every response of every HTTP app, and an API docs page that loads nothing
from the internet.

Headers (RELIABILITY S11): a strict content-security policy — only this origin's scripts, styles,
images and connections, no inline script or style, no framing (`frame-ancestors 'none'`, against
clickjacking) — plus `X-Content-Type-Options: nosniff`, `Referrer-Policy: no-referrer` and
`Cache-Control: no-store` on everything but the static assets, since API answers hold personal
data. A route that sets a header itself keeps its own value. The servers run without a `server`
banner (uvicorn's `server_header=False`, set where they are started).

`/docs`: FastAPI's default page pulls Swagger UI from a CDN and starts it with an inline script.
Here Swagger UI's files come from the `fastapi-offline` package (Swagger UI 5, which reads the
OpenAPI 3.1 FastAPI writes; `swagger-ui-bundle` ships 4.15, which cannot), served under
`/static/swagger-ui/`, and the page starts it from a static file (`kernel/static/docs-init.js`).
"""

from __future__ import annotations

import importlib.resources
from html import escape
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        # Swagger UI's stylesheet draws its icons as data: SVG images.
        "img-src 'self' data:",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
)
STATIC_PREFIX = "/static/"
_STATIC_CACHE = b"public, max-age=3600"
_STATIC_DIR = Path(__file__).parent / "static"


class SecurityHeaders:
    """Pure ASGI middleware (a streaming answer such as SSE passes through untouched)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = str(scope.get("path", "")).startswith(STATIC_PREFIX)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = with_security_headers(message.get("headers", []), static)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def with_security_headers(
    headers: list[tuple[bytes, bytes]], static: bool
) -> list[tuple[bytes, bytes]]:
    """The response's headers plus every security header it does not set itself."""
    kept = [(name, value) for name, value in headers if name.lower() != b"server"]
    present = {name.lower() for name, _ in kept}
    cache = (b"cache-control", _STATIC_CACHE if static else b"no-store")
    added = [h for h in (*SECURITY_HEADERS, cache) if h[0] not in present]
    return kept + added


def docs_page(title: str, openapi_url: str) -> str:
    """Swagger UI on local files only; the start-up script is a file too (no inline script)."""
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{escape(title)} — API</title>
<link rel="stylesheet" href="/static/swagger-ui/swagger-ui.css">
</head>
<body data-openapi-url="{escape(openapi_url)}">
<div id="swagger-ui"></div>
<script src="/static/swagger-ui/swagger-ui-bundle.js"></script>
<script src="/static/docs/docs-init.js"></script>
</body>
</html>
"""


def install(app: FastAPI) -> None:
    """Security headers on every response, and the offline /docs page. The app must be built
    with `docs_url=None, redoc_url=None` (FastAPI's own pages load a CDN)."""
    swagger_ui = importlib.resources.files("fastapi_offline") / "static"
    app.add_middleware(SecurityHeaders)
    app.mount("/static/swagger-ui", StaticFiles(directory=str(swagger_ui)), "swagger-ui")
    app.mount("/static/docs", StaticFiles(directory=str(_STATIC_DIR)), "docs-static")
    page = docs_page(app.title, app.openapi_url or "/openapi.json")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return HTMLResponse(page)
