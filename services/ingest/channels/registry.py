"""The provider registry: every module in `providers/` registers itself when imported."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

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


class BadSettings(ValueError):
    """A channel's settings its provider cannot use: `path` (under `settings`) and what is
    wrong, in one line."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"settings.{path}: {message}" if path else f"settings: {message}")
        self.path, self.message = path, message


def check_settings(adapter: Provider, settings: Mapping[str, Any]) -> dict[str, Any]:
    """The settings as the provider reads them, or BadSettings naming the first field at fault.
    A provider without a `settings_model` takes any JSON object (Twilio's are URL parameters)."""
    model: type[BaseModel] | None = getattr(adapter, "settings_model", None)
    if model is None:
        return dict(settings)
    try:
        return model.model_validate(settings).model_dump(exclude_unset=True)
    except ValidationError as exc:
        error = exc.errors()[0]
        path = ".".join(str(part) for part in error["loc"])
        message = _SAID.get(error["type"], error["msg"])
        if error["type"] == "extra_forbidden":
            message += f" (one of: {', '.join(model.model_fields)})"
        raise BadSettings(path, message) from None


class BadSecret(ValueError):
    """A secret its provider can tell is none it signs with (SendGrid's verification key is a
    public key); the message says what is wrong without repeating the secret."""


def check_secret(adapter: Provider, secret: str) -> None:
    """BadSecret when the provider can tell the secret is unusable (`secret_problem`); an HMAC
    secret can be any text, so most providers check nothing."""
    checker: Callable[[str], str | None] | None = getattr(adapter, "secret_problem", None)
    problem = checker(secret) if checker else None
    if problem:
        raise BadSecret(problem)


# What pydantic's own words for these would leave unclear to whoever configures a channel.
_SAID = {
    "extra_forbidden": "not a setting of this provider",
    "string_pattern_mismatch": "a name of a-z, 0-9, '_', '.', '-' (64 at most)",
}
