"""Request-scoped dependencies, taken from ``app.state`` (set by ``create_app``).

The ones that do not block (state lookups, token checks: CPU only, microseconds) are
``async`` so FastAPI runs them on the event loop: a sync dependency costs a round trip
through the thread pool each, which under load cost more than the whole consent check.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param

from vault.access.accounts import PatientAccount
from vault.auth.tokens import Principal, SubjectKind
from vault.errors import AuthenticationFailed, NotFound
from vault.runtime import Vault
from vault.services import Services

bearer = HTTPBearer(
    auto_error=False,
    description="A session token from /patients/{handle}/sessions or /provider/sessions",
)


async def get_vault(request: Request) -> Vault:
    vault: Vault = request.app.state.vault
    return vault


async def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


VaultDep = Annotated[Vault, Depends(get_vault)]
ServicesDep = Annotated[Services, Depends(get_services)]
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


def _token(credentials: HTTPAuthorizationCredentials | None) -> str:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise AuthenticationFailed("a bearer session token is required")
    return credentials.credentials


def current_patient(credentials: Credentials, services: ServicesDep) -> PatientAccount:
    principal = services.tokens.verify(_token(credentials), kind=SubjectKind.PATIENT)
    try:
        return services.accounts.get(principal.subject)
    except NotFound as exc:
        # A deleted account's tokens die with it.
        raise AuthenticationFailed("invalid or expired session token") from exc


async def current_provider(credentials: Credentials, services: ServicesDep) -> Principal:
    return services.tokens.verify(_token(credentials), kind=SubjectKind.PROVIDER)


async def require_admin(credentials: Credentials, services: ServicesDep) -> None:
    """The operator's bearer token: VAULT_ADMIN_TOKEN, or the hex in data/secrets/admin.token."""
    _check_admin(_token(credentials), services)


def _check_admin(given: str, services: Services) -> None:
    if not hmac.compare_digest(given.encode(), services.admin_token):
        raise AuthenticationFailed("invalid admin token")


@dataclass(frozen=True)
class ProviderRead:
    """What the provider read route needs from the request: who asks, and the services."""

    provider: Principal
    services: Services


def provider_read(request: Request) -> ProviderRead:
    """The provider and the services, for the hot read route only, which solves no
    FastAPI dependencies (each is resolved anew per request, and the ``HTTPBearer``,
    ``current_provider`` and ``get_services`` chain was a quarter of that route's time at
    concurrency 32). Same header rules as ``HTTPBearer``; the route declares the bearer
    scheme in its OpenAPI itself (``BEARER_SECURITY``)."""
    services: Services = request.app.state.services
    token = _bearer_token(request)
    return ProviderRead(services.tokens.verify(token, kind=SubjectKind.PROVIDER), services)


def _bearer_token(request: Request) -> str:
    # The parser HTTPBearer itself uses, so the two refuse exactly the same headers.
    scheme, token = get_authorization_scheme_param(request.headers.get("authorization"))
    if scheme.lower() != "bearer" or not token:
        raise AuthenticationFailed("a bearer session token is required")
    return token


def check_admin_header(request: Request) -> None:
    """:func:`require_admin` for a route that solves no dependencies (the bench's)."""
    _check_admin(_bearer_token(request), request.app.state.services)


#: The OpenAPI security requirement of a route authenticated without the ``bearer`` dependency.
BEARER_SECURITY: dict[str, object] = {"security": [{bearer.scheme_name: []}]}

CurrentPatient = Annotated[PatientAccount, Depends(current_patient)]
CurrentProvider = Annotated[Principal, Depends(current_provider)]
AdminDep = Annotated[None, Depends(require_admin)]
