"""Short-lived session tokens bound to one subject.

JWTs (PyJWT, HS256) under a key kept in a 0600 secret file shared by every API process.
A token names its kind (patient, provider) and subject (patient handle, provider
address); a route for one kind refuses every other kind, and handlers compare the
subject with the resource they touch.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

import jwt

from vault.errors import AuthenticationFailed

AUDIENCE = "vault-api"
ALGORITHM = "HS256"


class SubjectKind(StrEnum):
    PATIENT = "patient"
    PROVIDER = "provider"


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of one request."""

    kind: SubjectKind
    subject: str
    token_id: str
    expires_at: int


#: Verified tokens remembered (a provider's session makes many reads); beyond, start over.
MAX_VERIFIED_TOKENS = 10_000


class TokenIssuer:
    def __init__(
        self, *, key: bytes, ttl_seconds: int, clock: Callable[[], float] = time.time
    ) -> None:
        self._key = key
        self._ttl = ttl_seconds
        self._clock = clock
        # Token string -> what its signature proved. Only the signature check is skipped
        # on a hit (it cannot change: same bytes, same key); kind and expiry are checked
        # on every request. Nothing revokes a token before its expiry, so this is exact.
        self._verified: dict[str, Principal] = {}

    def issue(self, kind: SubjectKind, subject: str) -> tuple[str, int]:
        """A signed token and its expiry (unix seconds)."""
        now = int(self._clock())
        expires = now + self._ttl
        claims = {
            "sub": subject,
            "kind": kind.value,
            "aud": AUDIENCE,
            "iat": now,
            "exp": expires,
            "jti": secrets.token_urlsafe(12),
        }
        return jwt.encode(claims, self._key, algorithm=ALGORITHM), expires

    def verify(self, token: str, *, kind: SubjectKind) -> Principal:
        """The principal a valid, unexpired token of ``kind`` names.

        Every failure (bad signature, expired, other kind, malformed) raises the same
        :class:`AuthenticationFailed`, so a caller learns nothing from the difference.
        """
        known = self._verified.get(token)
        if known is not None:
            if known.kind is kind and known.expires_at > int(self._clock()):
                return known
            raise AuthenticationFailed("invalid or expired session token")
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                # Expiry is checked below against the injectable clock.
                options={
                    "require": ["sub", "kind", "exp", "iat", "jti"],
                    "verify_exp": False,
                    "verify_iat": False,
                },
                leeway=0,
            )
            if int(claims["exp"]) <= int(self._clock()):
                raise jwt.ExpiredSignatureError
        except jwt.PyJWTError as exc:
            raise AuthenticationFailed("invalid or expired session token") from exc
        if claims.get("kind") != kind.value or not isinstance(claims.get("sub"), str):
            raise AuthenticationFailed("invalid or expired session token")
        principal = Principal(kind, claims["sub"], claims["jti"], int(claims["exp"]))
        if len(self._verified) >= MAX_VERIFIED_TOKENS:
            self._verified.clear()
        self._verified[token] = principal
        return principal
