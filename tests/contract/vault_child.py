"""A second process asking a vault for a key: `python -m tests.contract.vault_child KIND WHERE
PLATFORM_KEY_HEX TENANT KEY_ID` prints the data key in hex (KIND is sqlite or postgres)."""

from __future__ import annotations

import sys
from pathlib import Path

from kernel.ports import KeyVault


def open_vault(kind: str, where: str, platform_key: bytes) -> KeyVault:
    if kind == "sqlite":
        from cem.adapters.sqlite_vault import SqliteKeyVault

        return SqliteKeyVault(Path(where), platform_key)
    from cem.adapters.postgres_vault import PostgresKeyVault

    return PostgresKeyVault(where, platform_key)


def main(kind: str, where: str, platform_key_hex: str, tenant: str, key_id: str) -> None:
    vault = open_vault(kind, where, bytes.fromhex(platform_key_hex))
    try:
        print(vault.get_or_create(tenant, key_id).hex())
    finally:
        vault.close()


if __name__ == "__main__":
    main(*sys.argv[1:6])
