"""Build the FastAPI application for one opened :class:`Vault` (no import-time state)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from vault import __version__
from vault.api.errors import install_error_handlers
from vault.api.json_body import StrictJsonBody
from vault.api.limits import RequestSizeLimit
from vault.api.routes import admin, health, patients, providers, records
from vault.audit.anchoring import anchor_audit_log
from vault.housekeeping import Housekeeping, Job
from vault.runtime import Vault
from vault.services import Services, build_services
from vault.store.locks import Leadership

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
    vault: Vault, services: Services | None = None, *, housekeeping: bool = False
) -> FastAPI:
    """The API over ``vault``; with ``housekeeping``, also the periodic jobs (``vault serve``)."""
    built = services or build_services(vault)
    settings = vault.settings
    jobs = Housekeeping(
        [
            Job(
                "anchor audit log",
                settings.anchor_interval_seconds,
                lambda: anchor_audit_log(built.audit, built.registry),
            ),
            Job(
                "prune failed face-attempt counters",
                3600.0,
                built.enrollment.prune_attempts,
            ),
            Job(
                "sweep blobs of interrupted writes",
                max(settings.blob_sweep_grace_seconds / 4, 60.0),
                lambda: built.records.sweep(older_than_seconds=settings.blob_sweep_grace_seconds),
            ),
        ]
        if housekeeping
        else [],
        # One process of all that serve this vault runs the jobs (vault/housekeeping.py).
        election=Leadership(vault.engine, "housekeeping") if housekeeping else None,
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        jobs.start()
        try:
            yield
        finally:
            jobs.stop()

    app = FastAPI(
        title="Biometric-gated health data vault",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.vault = vault
    app.state.services = built
    install_error_handlers(app)
    app.add_middleware(StrictJsonBody)  # inside the size limit: what it buffers is bounded
    app.add_middleware(RequestSizeLimit, max_bytes=vault.settings.max_request_bytes)
    # Providers' routes before patients' ones: the provider read is the hot path, and
    # every route ahead of it is one more pattern tried on every read.
    for module in (health, providers, patients, records, admin):
        app.include_router(module.router)
    return app
