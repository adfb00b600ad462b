"""How the identity store is built: eventsourcing on SQLite (embedded) or PostgreSQL (distributed).

The eventsourcing library reads its persistence settings from an environment mapping
(`PERSISTENCE_MODULE`, `SQLITE_DBNAME`, `POSTGRES_*`). We build that mapping from the validated
settings and pass it to the application explicitly; `os.environ` is never read or written.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, model_validator

from cem.settings import CoreSettings
from services.identity.resolver import IdentityResolver
from services.identity.rules import IdentityRules

# Seconds a writer waits for the SQLite write lock before a conflict is reported.
SQLITE_LOCK_TIMEOUT_S = 10


class IdentitySettings(CoreSettings):
    """Where identity lives and which rules resolve it. Env prefix CEM_."""

    identity_rules_file: Path | None = None
    identity_sqlite_path: Path | None = None  # default: <data_dir>/identity.sqlite
    identity_postgres_schema: str = Field(default="", pattern=r"^[a-z_][a-z0-9_]*$|^$")
    identity_postgres_pool_size: int = Field(default=5, ge=1, le=100)
    identity_cache_size: int = Field(default=0, ge=0)  # aggregates kept in memory; 0 = none

    @model_validator(mode="after")
    def _rules_file_exists(self) -> IdentitySettings:
        if self.identity_rules_file and not self.identity_rules_file.is_file():
            raise ValueError(f"CEM_IDENTITY_RULES_FILE: no such file {self.identity_rules_file}")
        return self


def sqlite_env(dbname: str | Path) -> dict[str, str]:
    """A file path, or an SQLite URI such as file:name?mode=memory&cache=shared for tests."""
    return {
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "SQLITE_DBNAME": str(dbname),
        "SQLITE_LOCK_TIMEOUT": str(SQLITE_LOCK_TIMEOUT_S),
    }


def postgres_env(dsn: str | SecretStr, schema: str = "", pool_size: int = 5) -> dict[str, str]:
    """A libpq connection string or URL, split into the keys the library expects."""
    from psycopg.conninfo import conninfo_to_dict  # the PostgreSQL client is imported only here

    secret = dsn.get_secret_value() if isinstance(dsn, SecretStr) else dsn
    parts = {k: str(v) for k, v in conninfo_to_dict(secret).items() if v is not None}
    env = {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": parts.get("dbname", "postgres"),
        "POSTGRES_HOST": parts.get("host", "localhost"),
        "POSTGRES_PORT": parts.get("port", "5432"),
        "POSTGRES_USER": parts.get("user", "postgres"),
        "POSTGRES_PASSWORD": parts.get("password", ""),
        "POSTGRES_POOL_SIZE": str(pool_size),
        "POSTGRES_CONNECT_TIMEOUT": parts.get("connect_timeout", "10"),
    }
    if schema:
        env["POSTGRES_SCHEMA"] = schema
    return env


def persistence_env(settings: IdentitySettings) -> dict[str, str]:
    if settings.mode == "distributed":
        env = postgres_env(
            settings.postgres_dsn,
            settings.identity_postgres_schema,
            settings.identity_postgres_pool_size,
        )
    else:
        path = settings.identity_sqlite_path or settings.data_dir / "identity.sqlite"
        path.parent.mkdir(parents=True, exist_ok=True)
        env = sqlite_env(path)
    if settings.identity_cache_size:
        # Cached aggregates are fast-forwarded from the store on every read, so replicas stay exact.
        env["AGGREGATE_CACHE_MAXSIZE"] = str(settings.identity_cache_size)
    return env


def load_rules(settings: IdentitySettings) -> IdentityRules:
    if settings.identity_rules_file is None:
        return IdentityRules()
    return IdentityRules.from_file(settings.identity_rules_file)


def build_identity(
    settings: IdentitySettings, *, rules: IdentityRules | None = None
) -> IdentityResolver:
    """The identity resolver for the configured mode. Call from the composition root."""
    return IdentityResolver(persistence_env(settings), rules or load_rules(settings))
