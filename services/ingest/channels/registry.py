"""The provider registry: every module in `providers/` registers itself when imported."""

from __future__ import annotations

import importlib
import pkgutil

from services.ingest.channels import providers
from services.ingest.channels.base import Provider

_PROVIDERS: dict[str, Provider] = {}


def register(provider: Provider) -> Provider:
    """Called by a provider module at import; a second module with the same name is a bug."""
    if provider.name in _PROVIDERS and type(_PROVIDERS[provider.name]) is not type(provider):
        raise ValueError(f"two providers are named {provider.name!r}")
    _PROVIDERS[provider.name] = provider
    return provider


def load_providers() -> dict[str, Provider]:
    """Import every provider module (adding a channel is adding one file), then list them."""
    for module in pkgutil.iter_modules(providers.__path__):
        importlib.import_module(f"{providers.__name__}.{module.name}")
    return dict(sorted(_PROVIDERS.items()))


def provider(name: str) -> Provider | None:
    return load_providers().get(name)
