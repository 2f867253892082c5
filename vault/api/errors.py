"""Map domain errors to HTTP: one error shape ``{code, message, details}``, never a 500 leak."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from vault import errors

log = logging.getLogger("vault.api")

# Most specific first: the first matching class decides the status.
STATUS_BY_ERROR: list[tuple[type[errors.VaultError], int]] = [
    (errors.PayloadTooLarge, 413),
    (errors.LockedOut, 429),
    (errors.InvalidInput, 422),
    (errors.NotFound, 404),
    (errors.Conflict, 409),
    (errors.AuthenticationFailed, 401),
    (errors.AccessDenied, 403),
    (errors.DependencyUnavailable, 503),
    # A relayed transaction that failed for no decodable reason: the request stays
    # pending and retryable, like any other dependency failure.
    (errors.TransactionFailed, 503),
    # Stored data failed its integrity check: the server's storage, not the caller, is at
    # fault. 502 (what the store handed back is invalid), logged as an error for monitoring.
    (errors.TamperDetected, 502),
    (errors.TemplateCorrupt, 502),
    (errors.DecryptionFailed, 502),
    (errors.ConfigurationError, 500),
    (errors.ToolchainError, 500),
]


def status_for(exc: errors.VaultError) -> int:
    for cls, status in STATUS_BY_ERROR:
        if isinstance(exc, cls):
            return status
    return 400


def error_body(code: str, message: str, details: object | None = None) -> dict[str, object]:
    return {"code": code, "message": message, "details": details or {}}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(errors.VaultError)
    async def _vault_error(_request: Request, exc: errors.VaultError) -> JSONResponse:
        status = status_for(exc)
        if status >= 500:
            log.error("integrity or server failure: %s", exc.code)
        headers = {}
        if isinstance(exc, errors.LockedOut) and "retry_after" in exc.details:
            headers["Retry-After"] = str(int(exc.details["retry_after"]))
        return JSONResponse(
            error_body(exc.code, exc.message, exc.details), status_code=status, headers=headers
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        fields = [
            {"loc": list(err.get("loc", ())), "msg": err.get("msg", "")} for err in exc.errors()
        ]
        return JSONResponse(
            error_body("invalid_request", "the request is malformed", {"errors": fields}),
            status_code=422,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {
            400: "invalid_request",
            404: "not_found",
            405: "method_not_allowed",
            413: errors.PayloadTooLarge.code,
        }.get(exc.status_code, "http_error")
        return JSONResponse(
            error_body(code, str(exc.detail)), status_code=exc.status_code, headers=exc.headers
        )

    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    async def _database(_request: Request, exc: Exception) -> JSONResponse:
        # Locked, unreachable or gone: the database's trouble, not the caller's and not a
        # bug; a retry later may work. The driver's message (which may quote statement
        # parameters, i.e. personal data) is not returned or logged.
        log.warning("database unavailable: %s", type(exc).__name__)
        unavailable = errors.DatabaseUnavailable("the database is unavailable; retry later")
        return JSONResponse(
            error_body(unavailable.code, unavailable.message),
            status_code=503,
            headers={"Retry-After": "1"},
        )

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        # Log the type only: messages of arbitrary exceptions may carry personal data.
        log.error("unexpected error: %s", type(exc).__name__)
        return JSONResponse(error_body("internal_error", "internal error"), status_code=500)
