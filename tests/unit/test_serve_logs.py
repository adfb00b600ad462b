"""The distributed HTTP services keep no access log: its lines would carry customers' emails and
phones from paths and queries (`?email=`, `/v1/customers/email:…`), beyond any erasure's reach
(found by a review of the distributed mode)."""

from __future__ import annotations

from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI

from cem import serve


class _Service:
    def __init__(self) -> None:
        self.app = FastAPI()
        self.closed = False

    def start(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


def test_serve_http_runs_uvicorn_without_an_access_log(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: seen.update(kwargs))
    service = _Service()
    serve.serve_http(service, "127.0.0.1", 8999)  # type: ignore[arg-type]
    assert seen["access_log"] is False and seen["server_header"] is False
    assert service.closed
