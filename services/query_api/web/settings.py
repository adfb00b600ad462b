"""Settings of the web pages (CEM_ environment)."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict


class WebSettings(BaseSettings):
    """`CEM_BEHIND_TLS=true` when a TLS-terminating proxy serves the site: the session cookie is
    then sent only over HTTPS even though this process sees plain HTTP."""

    model_config = SettingsConfigDict(env_prefix="CEM_", extra="ignore")

    behind_tls: bool = False
