"""Provider sign-in with Ethereum (EIP-4361) through the ``siwe`` library's model.

The vault issues a nonce (stored in SQL, single use, short-lived); the provider signs a
SIWE message naming this vault's domain, the configured chain id and that nonce; the vault
checks all of them plus the message's expiry and the signature, then burns the nonce
with a conditional UPDATE so a replayed message loses even against a concurrent twin.
Whether the address is a registered, active provider is asked of the chain by the caller.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from siwe import VerificationError
from sqlalchemy import delete, update
from sqlalchemy.orm import Session, sessionmaker

from vault.auth.siwe_message import parse_siwe_message
from vault.errors import AuthenticationFailed
from vault.store.auth_models import SiweNonceRow
from vault.store.models import utcnow

MAX_MESSAGE_AGE = timedelta(minutes=10)


def _naive(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(tzinfo=None) if at.tzinfo else at


class ProviderSignIn:
    def __init__(
        self,
        *,
        session_factory: sessionmaker[Session],
        domain: str,
        chain_id: int,
        nonce_ttl_seconds: int,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._factory = session_factory
        self.domain = domain
        self.chain_id = chain_id
        self._ttl = timedelta(seconds=nonce_ttl_seconds)
        self._clock = clock

    def new_nonce(self) -> tuple[str, datetime]:
        """A fresh single-use nonce and when it expires. Also sweeps expired nonces."""
        now = _naive(self._clock())
        nonce = secrets.token_hex(16)
        with self._factory() as session, session.begin():
            session.execute(delete(SiweNonceRow).where(SiweNonceRow.expires_at < now))
            session.add(SiweNonceRow(nonce=nonce, expires_at=now + self._ttl))
        return nonce, (now + self._ttl).replace(tzinfo=UTC)

    def verify(self, *, message: str, signature: str) -> str:
        """The checksummed address that signed ``message``; burns its nonce.

        Raises :class:`InvalidInput` for a message that does not parse (a bounded cost:
        see :mod:`vault.auth.siwe_message`) and
        :class:`AuthenticationFailed` for everything else (wrong domain, chain, expired,
        unknown or used nonce, bad signature).
        """
        parsed = parse_siwe_message(message)
        now = self._clock().astimezone(UTC)
        if parsed.chain_id != self.chain_id:
            raise AuthenticationFailed("sign-in message is for another chain")
        if parsed.expiration_time is None:
            raise AuthenticationFailed("sign-in message must carry an expiration time")
        issued = datetime.fromisoformat(str(parsed.issued_at).replace("Z", "+00:00"))
        if issued.tzinfo is None or not now - MAX_MESSAGE_AGE <= issued <= now + timedelta(
            minutes=1
        ):
            raise AuthenticationFailed("sign-in message is too old or from the future")
        try:
            parsed.verify(signature, domain=self.domain, timestamp=now)
        except VerificationError as exc:
            raise AuthenticationFailed(f"sign-in refused: {type(exc).__name__}") from exc
        except Exception as exc:  # malformed signature bytes
            raise AuthenticationFailed("sign-in refused: bad signature") from exc
        with self._factory() as session, session.begin():
            burned = session.execute(
                update(SiweNonceRow)
                .where(
                    SiweNonceRow.nonce == parsed.nonce,
                    SiweNonceRow.used_at.is_(None),
                    SiweNonceRow.expires_at >= _naive(now),
                )
                .values(used_at=_naive(now))
            )
            if burned.rowcount != 1:  # type: ignore[attr-defined]
                raise AuthenticationFailed("sign-in nonce unknown, expired or already used")
        return str(parsed.address)
