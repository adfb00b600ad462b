"""The web product served by the query API: sign-in, the agent console and the CX dashboard.

Templates and static files ship inside the package (nothing is built with Node). The pages read
every datum through the public API with the session cookie, like any other client.
"""

from __future__ import annotations

import inspect
from pathlib import Path

from fastapi import FastAPI, Request, Response
from fastapi.staticfiles import StaticFiles

HERE = Path(__file__).parent


def include_web(app: FastAPI) -> None:
    """Mount the pages and their static files on an app that has `state.accounts`."""
    from services.query_api.web.pages import router
    from services.query_api.web.settings import WebSettings

    # Read (and validated) once, when the app is assembled: not on every request.
    app.state.web_settings = WebSettings()
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    _not_found_page(app)


def _not_found_page(app: FastAPI) -> None:
    """A person's browser asking for a page that is not one (`/dashbaord`) gets a page saying so,
    in their language, with the way back; an API client keeps its JSON error (a browser review
    found the JSON shown to people)."""
    from starlette.exceptions import HTTPException

    from services.query_api.web.pages import not_found_page

    json_error = app.exception_handlers[HTTPException]

    async def handler(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 404 and _a_page_navigation(request):
            return not_found_page(request)
        answer = json_error(request, exc)
        return await answer if inspect.isawaitable(answer) else answer

    app.add_exception_handler(HTTPException, handler)


def _a_page_navigation(request: Request) -> bool:
    """A browser loading a page (not a script's or a client's call to the API)."""
    path = request.url.path
    accepts = request.headers.get("accept", "")
    return (
        request.method == "GET"
        and "text/html" in accepts
        and not path.startswith(("/v1/", "/static/"))
    )
