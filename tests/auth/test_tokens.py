from __future__ import annotations

from collections.abc import Callable

import pytest

from vault.auth.tokens import SubjectKind, TokenIssuer
from vault.errors import AuthenticationFailed


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def test_token_names_its_subject_and_kind() -> None:
    issuer = TokenIssuer(key=b"k" * 32, ttl_seconds=60)
    token, _ = issuer.issue(SubjectKind.PATIENT, "pat_1")
    principal = issuer.verify(token, kind=SubjectKind.PATIENT)
    assert principal.subject == "pat_1"


def test_token_of_another_kind_is_refused() -> None:
    issuer = TokenIssuer(key=b"k" * 32, ttl_seconds=60)
    token, _ = issuer.issue(SubjectKind.PATIENT, "pat_1")
    with pytest.raises(AuthenticationFailed):
        issuer.verify(token, kind=SubjectKind.PROVIDER)


def test_expired_token_is_refused() -> None:
    clock = Clock()
    issuer = TokenIssuer(key=b"k" * 32, ttl_seconds=60, clock=clock)
    token, expires = issuer.issue(SubjectKind.PROVIDER, "0xabc")
    clock.now = expires
    with pytest.raises(AuthenticationFailed):
        issuer.verify(token, kind=SubjectKind.PROVIDER)


@pytest.mark.parametrize("mangle", [lambda t: t[:-2] + "xx", lambda t: "a.b.c", lambda t: ""])
def test_tampered_token_is_refused(mangle: Callable[[str], str]) -> None:
    issuer = TokenIssuer(key=b"k" * 32, ttl_seconds=60)
    token, _ = issuer.issue(SubjectKind.PATIENT, "pat_1")
    with pytest.raises(AuthenticationFailed):
        issuer.verify(mangle(token), kind=SubjectKind.PATIENT)


def test_token_under_another_key_is_refused() -> None:
    token, _ = TokenIssuer(key=b"a" * 32, ttl_seconds=60).issue(SubjectKind.PATIENT, "p")
    with pytest.raises(AuthenticationFailed):
        TokenIssuer(key=b"b" * 32, ttl_seconds=60).verify(token, kind=SubjectKind.PATIENT)
