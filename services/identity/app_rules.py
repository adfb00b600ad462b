"""The identity rules of an HTTP app: the resolver's own when this process has one (embedded),
else the same rules loaded from the same settings (a distributed ingest or query API)."""

from __future__ import annotations

from fastapi import FastAPI

from services.identity.rules import IdentityRules
from services.identity.settings import IdentitySettings, load_rules


def identity_rules_of(app: FastAPI) -> IdentityRules:
    identity = getattr(app.state, "identity", None)
    if identity is not None:
        resolver_rules: IdentityRules = identity.rules
        return resolver_rules
    rules: IdentityRules | None = getattr(app.state, "identity_rules", None)
    if rules is None:
        rules = load_rules(IdentitySettings())
        app.state.identity_rules = rules
    return rules
