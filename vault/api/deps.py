"""Request-scoped dependencies, taken from ``app.state`` (set by ``create_app``).

The ones that do not block (state lookups, token checks: CPU only, microseconds) are
``async``, so FastAPI runs them on the event loop instead of sending each to its thread
pool; the ones that query the database are plain functions, which it runs in the pool.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

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
    if not hmac.compare_digest(_token(credentials).encode(), services.admin_token):
        raise AuthenticationFailed("invalid admin token")


CurrentPatient = Annotated[PatientAccount, Depends(current_patient)]
CurrentProvider = Annotated[Principal, Depends(current_provider)]
AdminDep = Annotated[None, Depends(require_admin)]
