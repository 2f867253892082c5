from __future__ import annotations

import secrets
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from siwe import SiweMessage
from sqlalchemy.orm import Session, sessionmaker

from vault.auth.siwe_login import ProviderSignIn
from vault.errors import AuthenticationFailed, InvalidInput
from vault.store.database import make_engine, make_session_factory

DOMAIN = "127.0.0.1:8400"


@pytest.fixture
def signin(session_factory: sessionmaker[Session]) -> ProviderSignIn:
    """Sign-in with its nonces in a fresh database of each backend."""
    return ProviderSignIn(
        session_factory=session_factory, domain=DOMAIN, chain_id=31337, nonce_ttl_seconds=300
    )


def signed(
    nonce: str,
    *,
    domain: str = DOMAIN,
    chain_id: int = 31337,
    key: bytes | None = None,
    expires_in: timedelta = timedelta(minutes=5),
    issued_ago: timedelta = timedelta(0),
) -> tuple[str, str, str]:
    account = Account.from_key(key or secrets.token_bytes(32))
    now = datetime.now(UTC) - issued_ago
    message = SiweMessage(
        domain=domain,
        address=account.address,
        uri=f"http://{domain}",
        version="1",
        chain_id=chain_id,
        issued_at=now.isoformat().replace("+00:00", "Z"),
        expiration_time=(now + expires_in).isoformat().replace("+00:00", "Z"),
        nonce=nonce,
        statement="Sign in to the health data vault.",
    ).prepare_message()
    signature = account.sign_message(encode_defunct(text=message)).signature.to_0x_hex()
    return message, signature, account.address


def test_valid_sign_in_returns_the_signer(signin: ProviderSignIn) -> None:
    nonce, _ = signin.new_nonce()
    message, signature, address = signed(nonce)
    assert signin.verify(message=message, signature=signature) == address


def test_replayed_message_is_refused(signin: ProviderSignIn) -> None:
    nonce, _ = signin.new_nonce()
    message, signature, _ = signed(nonce)
    signin.verify(message=message, signature=signature)
    with pytest.raises(AuthenticationFailed):
        signin.verify(message=message, signature=signature)


def test_unknown_nonce_is_refused(signin: ProviderSignIn) -> None:
    message, signature, _ = signed(secrets.token_hex(16))
    with pytest.raises(AuthenticationFailed):
        signin.verify(message=message, signature=signature)


@pytest.mark.parametrize(
    "variant",
    [
        {"domain": "evil.example:8400"},
        {"chain_id": 1},
        {"expires_in": timedelta(seconds=-1)},
        {"issued_ago": timedelta(hours=1), "expires_in": timedelta(hours=2)},
    ],
)
def test_wrong_domain_chain_or_time_is_refused(
    signin: ProviderSignIn, variant: dict[str, Any]
) -> None:
    nonce, _ = signin.new_nonce()
    message, signature, _ = signed(nonce, **variant)
    with pytest.raises(AuthenticationFailed):
        signin.verify(message=message, signature=signature)


def test_signature_of_another_key_is_refused(signin: ProviderSignIn) -> None:
    nonce, _ = signin.new_nonce()
    message, _, _ = signed(nonce)
    _, other_signature, _ = signed(nonce)
    with pytest.raises(AuthenticationFailed):
        signin.verify(message=message, signature=other_signature)


def test_garbage_is_invalid_input(signin: ProviderSignIn) -> None:
    with pytest.raises(InvalidInput):
        signin.verify(message="hello", signature="0x00")


def test_a_message_replayed_at_once_through_two_processes_signs_in_once(
    database_url: str,
) -> None:
    """Two API processes (two engines, two ProviderSignIn) on one database, a signed
    message sent to both at the same moment, several times: one sign-in, the rest refused."""
    engines = [make_engine(database_url) for _ in range(2)]
    try:
        signins = [
            ProviderSignIn(
                session_factory=make_session_factory(engine),
                domain=DOMAIN,
                chain_id=31337,
                nonce_ttl_seconds=300,
            )
            for engine in engines
        ]
        nonce, _ = signins[0].new_nonce()
        message, signature, address = signed(nonce)
        attempts = 8
        start = threading.Barrier(attempts)

        def attempt(n: int) -> str | None:
            start.wait()
            try:
                return signins[n % 2].verify(message=message, signature=signature)
            except AuthenticationFailed:
                return None

        with ThreadPoolExecutor(attempts) as pool:
            results = list(pool.map(attempt, range(attempts)))
        assert results.count(address) == 1
        assert results.count(None) == attempts - 1
    finally:
        for engine in engines:
            engine.dispose()
