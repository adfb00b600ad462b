"""The web product served by the query API: sign-in, the agent console and the CX dashboard.

Templates and static files ship inside the package (nothing is built with Node). The pages read
every datum through the public API with the session cookie, like any other client.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
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
