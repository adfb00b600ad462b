"""What every channel admin route shares: who may configure channels, the app's channel store,
and the one answer to a provider nobody knows (router.py and dead_letters_api.py)."""

from __future__ import annotations

from fastapi import Request

from kernel.api_errors import ApiError
from kernel.channels import ChannelStore
from services.ingest.channels.registry import load_providers

CAN_CONFIGURE = frozenset({"admin"})


def channels_of(request: Request) -> ChannelStore:
    store: ChannelStore | None = getattr(request.app.state, "channels", None)
    if store is None:
        raise ApiError(404, "not_found", "this service has no channel store")
    return store


def unknown_provider(name: str, path: str) -> ApiError:
    """422 naming the provider asked for and every one there is, at `path`."""
    known = ", ".join(load_providers())
    return ApiError(422, "unknown_provider", f"no provider {name!r}; one of {known}",
                    [{"code": "unknown_provider", "message": known, "path": path}])  # fmt: skip
