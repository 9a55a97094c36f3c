"""Secret hashing as Langfuse does it, so keys and passwords carry over."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os


class Sha256SecretHasher:
    """API keys: sha256(secret ‖ hex(sha256(salt))), Langfuse's `fast_hashed_secret_key`.

    A fast deterministic hash is what lets a key be found by a unique-index lookup;
    the secrets are random UUIDs, so a slow KDF would add latency without adding safety.
    Passwords are a different matter and use scrypt.
    """

    def __init__(self, salt: str) -> None:
        self._salt_hex = hashlib.sha256(salt.encode()).hexdigest().encode()

    def fast_hash(self, secret: str) -> str:
        digest = hashlib.sha256()
        digest.update(secret.encode())
        digest.update(self._salt_hex)
        return digest.hexdigest()

    def hash_password(self, password: str) -> str:
        salt = os.urandom(16)
        key = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1)
        return "scrypt$" + base64.b64encode(salt).decode() + "$" + base64.b64encode(key).decode()

    def verify_password(self, password: str, password_hash: str) -> bool:
        try:
            scheme, salt_b64, key_b64 = password_hash.split("$")
        except ValueError:
            return False
        if scheme != "scrypt":
            return False
        key = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt_b64), n=2**14, r=8, p=1)
        return hmac.compare_digest(key, base64.b64decode(key_b64))
