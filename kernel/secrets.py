"""Channel secrets at rest: authenticated encryption (AES-256-GCM from `cryptography`).

A webhook secret must be available in clear to verify the provider's HMAC, so it cannot be stored
hashed like an API key; it is encrypted under one platform key instead. The key comes from
`CEM_SECRET_KEY` (32 bytes, URL-safe base64) when set — every replica of the distributed mode must
share it — else from `secret.key` in the data directory, created on first use with mode 0600.
The channel id is the associated data, so a ciphertext copied onto another channel's row fails.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_FILE = "secret.key"
KEY_BYTES = 32
NONCE_BYTES = 12


class SecretKeyError(ValueError):
    """The platform key is missing, malformed, or does not open a stored secret."""


def _decode_key(text: str, where: str) -> bytes:
    try:
        key = base64.urlsafe_b64decode(text.strip().encode())
    except (binascii.Error, ValueError):
        raise SecretKeyError(f"{where} is not URL-safe base64") from None
    if len(key) != KEY_BYTES:
        raise SecretKeyError(f"{where} must decode to {KEY_BYTES} bytes, not {len(key)}")
    return key


def new_key_text() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES)).decode()


def key_file(data_dir: Path) -> bytes:
    """The data directory's key, created 0600 (owner only) the first time."""
    path = data_dir / KEY_FILE
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL: two processes starting together never overwrite each other's fresh key.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _decode_key(path.read_text(), str(path))
    with os.fdopen(fd, "w") as out:
        out.write(new_key_text())
    return _decode_key(path.read_text(), str(path))


def key_file_sealed_before(data_dir: Path) -> bytes | None:
    """The data directory's key when it has one (never created here): a distributed installation
    that sealed channel secrets with it before the key was shared in PostgreSQL keeps them, the
    first replica to ask for the shared key (for channels, or customer ids) offering this one."""
    return key_file(data_dir) if (data_dir / KEY_FILE).is_file() else None


def platform_key(data_dir: Path, env_value: str | None = None) -> bytes:
    """CEM_SECRET_KEY (`env_value`, from the settings) when given, else the data directory's key
    file."""
    value = env_value
    if value:
        return _decode_key(value, "CEM_SECRET_KEY")
    return key_file(data_dir)


class SecretBox:
    """Encrypts and decrypts channel secrets, bound to the channel they belong to."""

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    def seal(self, secret: str, channel_id: str) -> bytes:
        nonce = secrets.token_bytes(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, secret.encode(), channel_id.encode())

    def seal_bytes(self, data: bytes, context: str) -> bytes:
        """`data` encrypted and bound to `context` (what it belongs to: a dead letter's id)."""
        nonce = secrets.token_bytes(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, data, context.encode())

    def open_bytes(self, sealed: bytes, context: str) -> bytes:
        nonce, ciphertext = sealed[:NONCE_BYTES], sealed[NONCE_BYTES:]
        try:
            return self._aead.decrypt(nonce, ciphertext, context.encode())
        except InvalidTag:
            raise SecretKeyError(
                f"{context} does not open with this platform key "
                "(CEM_SECRET_KEY or secret.key changed?)"
            ) from None

    def open(self, sealed: bytes, channel_id: str) -> str:
        nonce, ciphertext = sealed[:NONCE_BYTES], sealed[NONCE_BYTES:]
        try:
            return self._aead.decrypt(nonce, ciphertext, channel_id.encode()).decode()
        except InvalidTag:
            raise SecretKeyError(
                f"the secret of channel {channel_id} does not open with this platform key "
                "(CEM_SECRET_KEY or secret.key changed?)"
            ) from None
