"""Build the FastAPI application for one opened :class:`Vault` (no import-time state)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from vault import __version__
from vault.api.errors import install_error_handlers
from vault.api.limits import RequestSizeLimit
from vault.api.routes import admin, health, providers, records
from vault.audit.anchoring import ScheduledAnchoring
from vault.runtime import Vault
from vault.services import Services, build_services

DESCRIPTION = """
Patients enroll with their face and keep encrypted health records; providers read them
only while consent stands on chain.

* **Patients** authenticate with a face photo (`POST /patients/{handle}/sessions`) and get
  a short-lived bearer token. Approving, denying and revoking consent, re-enrolling and
  deleting the account need a fresh photo in the same request.
* **Providers** sign in with Ethereum (EIP-4361): `GET /provider/nonce`, sign, then
  `POST /provider/sessions`.
* **Operators** use `/admin/*` with the bearer `VAULT_ADMIN_TOKEN`.

Every error has the shape `{code, message, details}` with a stable machine-readable
`code`. When the chain cannot answer, provider reads are refused with 503, never allowed.
"""


def create_app(
    vault: Vault, services: Services | None = None, *, schedule_anchoring: bool = False
) -> FastAPI:
    services = services or build_services(vault)
    anchoring = ScheduledAnchoring(
        audit=services.audit,
        registry=services.registry,
        interval=vault.settings.anchor_interval_seconds if schedule_anchoring else 0,
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        anchoring.start()
        try:
            yield
        finally:
            anchoring.stop()

    app = FastAPI(
        title="Biometric-gated health data vault",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.vault = vault
    app.state.services = services
    install_error_handlers(app)
    app.add_middleware(RequestSizeLimit, max_bytes=vault.settings.max_request_bytes)
    for module in (health, records, providers, admin):
        app.include_router(module.router)
    return app
