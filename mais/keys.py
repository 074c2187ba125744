"""API keys and secrets at rest.

Keys look like ``pk_live_{slug}_{32 random}``. The secret key is stored only encrypted with
AES-256-GCM (a fresh 96-bit nonce per value) under ``MAIS_SECRETS_KEY``.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
import string

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app

_ALPHABET = string.ascii_letters + string.digits
_RANDOM_LENGTH = 32
_SECRET_KEY_AAD = b"mais:tenant-secret-key:v1"


def _random_part() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(_RANDOM_LENGTH))


def new_public_key(slug: str) -> str:
    return f"pk_live_{slug}_{_random_part()}"


def new_secret_key(slug: str) -> str:
    return f"sk_live_{slug}_{_random_part()}"


def slug_from_key(key: str) -> str | None:
    """The slug inside a well-formed key, or None."""
    for prefix in ("pk_live_", "sk_live_"):
        if key.startswith(prefix):
            body = key[len(prefix) :]
            slug, sep, random_part = body.rpartition("_")
            if sep and slug and len(random_part) == _RANDOM_LENGTH and random_part.isalnum():
                return slug
    return None


def _master_key() -> bytes:
    raw = current_app.config["MAIS_SECRETS_KEY"]
    try:
        key = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != 32:
        try:
            key = bytes.fromhex(raw)
        except ValueError:
            key = b""
    if len(key) != 32:
        raise ValueError("MAIS_SECRETS_KEY must be 32 bytes, base64- or hex-encoded")
    return key


def encrypt_secret(plaintext: str) -> bytes:
    nonce = secrets.token_bytes(12)
    return nonce + AESGCM(_master_key()).encrypt(nonce, plaintext.encode(), _SECRET_KEY_AAD)


def decrypt_secret(ciphertext: bytes) -> str:
    nonce, body = ciphertext[:12], ciphertext[12:]
    return AESGCM(_master_key()).decrypt(nonce, body, _SECRET_KEY_AAD).decode()


def secret_matches(ciphertext: bytes, candidate: str) -> bool:
    return hmac.compare_digest(decrypt_secret(ciphertext).encode(), candidate.encode())


def _purpose_key(purpose: str) -> bytes:
    # One key per purpose (HKDF): data sealed for one use never opens under another, and the
    # key guarding tenants' secrets is never used directly on anything else.
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose.encode())
    return hkdf.derive(_master_key())


def seal(plaintext: bytes, purpose: str, context: bytes = b"") -> bytes:
    """``plaintext`` encrypted and authenticated (AES-256-GCM) under the key of ``purpose``;
    ``context`` must be given again to open it."""
    nonce = secrets.token_bytes(12)
    return nonce + AESGCM(_purpose_key(purpose)).encrypt(nonce, plaintext, context)


def unseal(sealed: bytes, purpose: str, context: bytes = b"") -> bytes:
    """What ``seal`` sealed; ``cryptography.exceptions.InvalidTag`` if it was altered or sealed
    for another purpose or context."""
    nonce, body = sealed[:12], sealed[12:]
    return AESGCM(_purpose_key(purpose)).decrypt(nonce, body, context)
