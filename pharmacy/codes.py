"""Dispense codes and kiosk secrets: generation, normalisation and keyed hashes.

A dispense code is 8 characters from a 32-letter alphabet without look-alikes (no 0/O, 1/I):
40 bits, typed on a kiosk touch screen as ``ABCD-EFGH``. The code is derived from SECRET_KEY and a
random per-code salt, and looked up by an HMAC of the code, so the database alone reveals no code
(like a password hash) while the server can still show it again to the patient's health worker.

Kiosk secrets are 256-bit random tokens, so a fast keyed hash (HMAC-SHA256) is enough: a slow
password hash would add ~100 ms to every kiosk request and buy nothing against a random secret.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from django.conf import settings

ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # 32 symbols: 5 bits each
CODE_LENGTH = 8
_CODE_RE = re.compile(rf"^[{ALPHABET}]{{{CODE_LENGTH}}}$")


def _hmac(purpose: str, value: str) -> str:
    key = settings.SECRET_KEY.encode()
    return hmac.new(key, f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()


def new_salt() -> str:
    return secrets.token_hex(16)


def code_from_salt(salt: str) -> str:
    digest = hmac.new(
        settings.SECRET_KEY.encode(), f"dispense-code:{salt}".encode(), hashlib.sha256
    ).digest()
    number = int.from_bytes(digest[:5], "big")  # 40 bits = 8 symbols of 5 bits
    chars = []
    for _ in range(CODE_LENGTH):
        chars.append(ALPHABET[number & 31])
        number >>= 5
    return "".join(chars)


def normalize_code(raw: object) -> str | None:
    """The canonical form of a typed code (separators, spaces and case ignored), or None if it
    cannot be a code."""
    if not isinstance(raw, str) or len(raw) > 32:
        return None
    cleaned = re.sub(r"[\s\-]", "", raw).upper()
    return cleaned if _CODE_RE.match(cleaned) else None


def code_hash(code: str) -> str:
    return _hmac("dispense-code-hash", code)


def format_code(code: str) -> str:
    return f"{code[:4]}-{code[4:]}"


def new_kiosk_secret() -> str:
    # Operators paste the secret into shells and config tools (`kiosk_simulate --secret S`); one
    # that starts with "-" reads there as an option, so such draws are thrown away (1 in 64).
    while True:
        secret = secrets.token_urlsafe(32)
        if not secret.startswith("-"):
            return secret


def kiosk_secret_hash(secret: str) -> str:
    return _hmac("kiosk-secret", secret)


def kiosk_secret_matches(secret: str, stored_hash: str) -> bool:
    return hmac.compare_digest(kiosk_secret_hash(secret), stored_hash)
