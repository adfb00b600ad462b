"""What a tenant id may hold: checked wherever one is made (keys, accounts, channels, settings)."""

from __future__ import annotations

import re

TENANT_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.\-]{0,63}$")


def check_tenant_id(tenant_id: str) -> str:
    """A tenant id as given, or ValueError saying what one may hold."""
    if not TENANT_PATTERN.fullmatch(tenant_id):
        raise ValueError(f"invalid tenant id {tenant_id!r}: use a-z, 0-9, '_', '.', '-' (≤64)")
    return tenant_id
