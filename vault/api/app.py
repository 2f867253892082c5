"""Build the FastAPI application for one opened :class:`Vault` (no import-time state)."""

from __future__ import annotations

from fastapi import FastAPI

from vault import __version__
from vault.api.errors import install_error_handlers
from vault.api.routes import health
from vault.runtime import Vault


def create_app(vault: Vault) -> FastAPI:
    app = FastAPI(
        title="Biometric-gated health data vault",
        version=__version__,
        description=(
            "Patients enroll with their face and keep encrypted health records; providers "
            "read them only while consent stands on chain. Every error has the shape "
            "`{code, message, details}`."
        ),
    )
    app.state.vault = vault
    install_error_handlers(app)
    app.include_router(health.router)
    return app
