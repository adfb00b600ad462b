"""Identity's settings and rules file: pure configuration, no engine client.

The stores they select are adapters (`cem.adapters.sqlite_identity_store`,
`cem.adapters.postgres_identity_store`), built by the composition roots (`cem.identity`).
"""

from __future__ import annotations

from pathlib import Path

import phonenumbers
from pydantic import Field, field_validator, model_validator

from kernel.settings import CoreSettings
from services.identity.rules import DEFAULT_PHONE_REGION, IdentityRules
from services.identity.state import DEFAULT_CACHE_SIZE


class IdentitySettings(CoreSettings):
    """Where identity lives and which rules resolve it. Env prefix CEM_."""

    identity_rules_file: Path | None = None
    # Where national phone numbers (`617 345 678`) are read when a tenant's rules name no region
    # (ISO 3166 alpha-2). Spain by default: the product's market. CEM_DEFAULT_REGION.
    default_region: str = DEFAULT_PHONE_REGION
    identity_sqlite_path: Path | None = None  # default: <data_dir>/identity.sqlite
    identity_postgres_schema: str = Field(default="", pattern=r"^[a-z_][a-z0-9_]*$|^$")
    identity_postgres_pool_size: int = Field(default=5, ge=1, le=100)
    # Aggregates kept in memory between commands, brought up to date from the store on every read
    # (one query per batch), so replicas stay exact; 0 = none (every read replays from the store).
    identity_cache_size: int = Field(default=DEFAULT_CACHE_SIZE, ge=0)

    @field_validator("default_region")
    @classmethod
    def _known_region(cls, value: str) -> str:
        if value.upper() not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(
                f"CEM_DEFAULT_REGION: unknown phone region {value!r}; use an ISO 3166 code such as ES"
            )
        return value.upper()

    @model_validator(mode="after")
    def _rules_file_exists(self) -> IdentitySettings:
        if self.identity_rules_file and not self.identity_rules_file.is_file():
            raise ValueError(f"CEM_IDENTITY_RULES_FILE: no such file {self.identity_rules_file}")
        return self

    def sqlite_path(self) -> Path:
        """The embedded store's file."""
        return self.identity_sqlite_path or self.data_dir / "identity.sqlite"


def load_rules(settings: IdentitySettings) -> IdentityRules:
    """The rules file's rules (or the defaults), reading phones in `default_region` wherever the
    rules do not name a region."""
    path = settings.identity_rules_file
    rules = IdentityRules() if path is None else IdentityRules.from_file(path)
    return rules.with_default_region(settings.default_region)
