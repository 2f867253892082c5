"""A small HTTP client of the vault API (httpx), shared by ``vault demo`` and ``vault bench api``.

Every call names the step it belongs to and the status codes that step expects; anything
else raises a :class:`~vault.errors.VaultError` carrying the server's own error code, so
the CLI prints one line ``error[code]: message`` instead of a stack trace.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from siwe import SiweMessage

from vault.config import Settings
from vault.errors import ConfigurationError, VaultError

#: Face matching and relaying a transaction take a second or two; enrollment a few more.
REQUEST_TIMEOUT_SECONDS = 120.0


class VaultUnreachable(VaultError):
    """Nothing answers HTTP at the vault's URL (not started, wrong port, timed out)."""

    code = "vault_unreachable"


class UnexpectedReply(VaultError):
    """The API answered a step with a status the step does not expect.

    ``code`` is the server's machine-readable error code when the body has one.
    """

    code = "unexpected_reply"

    def __init__(self, step: str, reply: httpx.Response) -> None:
        body = _json_or_none(reply)
        server_code = body.get("code") if isinstance(body, dict) else None
        server_message = body.get("message") if isinstance(body, dict) else None
        message = server_message or reply.text[:200] or reply.reason_phrase
        super().__init__(
            f"{step}: HTTP {reply.status_code}: {message}",
            details={"status": reply.status_code, "step": step},
        )
        if isinstance(server_code, str) and server_code:
            self.code = server_code
        self.status = reply.status_code


def _json_or_none(reply: httpx.Response) -> Any:
    try:
        return reply.json()
    except ValueError:
        return None


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def photo_files(field: str, paths: Iterable[Path]) -> list[tuple[str, tuple[str, bytes, str]]]:
    """Multipart parts for face photos (``photos`` to enroll, ``photo`` for a step-up)."""
    parts = []
    for path in paths:
        kind = "image/png" if path.suffix.lower() == ".png" else "image/jpeg"
        parts.append((field, (path.name, path.read_bytes(), kind)))
    return parts


def admin_token(settings: Settings) -> str:
    """The operator's bearer token as the vault itself resolves it (env, else the secret file).

    Raises :class:`ConfigurationError` when neither is there: the demo must run with the
    vault's settings (same ``VAULT_DATA_DIR`` or ``VAULT_ADMIN_TOKEN``).
    """
    if settings.admin_token is not None:
        return settings.admin_token.get_secret_value()
    path = settings.admin_token_file
    try:
        return path.read_text().strip()
    except OSError as exc:
        raise ConfigurationError(
            f"no admin token: set VAULT_ADMIN_TOKEN or VAULT_DATA_DIR to the vault's ({path})"
        ) from exc


@dataclass
class VaultApi:
    """One vault's API at ``base_url``. Close it with :meth:`close`."""

    base_url: str
    timeout: float = REQUEST_TIMEOUT_SECONDS

    def __post_init__(self) -> None:
        self.base_url = self.base_url.rstrip("/")
        self.http = httpx.Client(base_url=self.base_url, timeout=self.timeout)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> VaultApi:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def call(
        self,
        method: str,
        path: str,
        *,
        step: str,
        expect: Iterable[int] = (200,),
        token: str | None = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """Send one request; raise unless the status is one ``step`` expects."""
        headers = {**(headers or {}), **(bearer(token) if token else {})}
        try:
            reply = self.http.request(method, path, headers=headers, **kwargs)
        except httpx.TimeoutException as exc:
            raise VaultUnreachable(
                f"{step}: {self.base_url} did not answer within {self.timeout:.0f} s"
            ) from exc
        except httpx.TransportError as exc:
            raise VaultUnreachable(
                f"no vault answers at {self.base_url} ({type(exc).__name__}); "
                "start one with `make run` or `vault serve`"
            ) from exc
        if reply.status_code not in set(expect):
            raise UnexpectedReply(step, reply)
        return reply

    def json(self, method: str, path: str, *, step: str, **kwargs: Any) -> Any:
        reply = self.call(method, path, step=step, **kwargs)
        body = _json_or_none(reply)
        if body is None:
            raise UnexpectedReply(step, reply)
        return body

    # ------------------------------------------------------------------ the story's calls

    def health(self) -> dict[str, Any]:
        body: dict[str, Any] = self.json("GET", "/healthz", step="check the vault's health")
        return body

    def enroll(self, photos: list[Path]) -> dict[str, Any]:
        body: dict[str, Any] = self.json(
            "POST",
            "/patients",
            step="enroll the patient",
            expect=(201,),
            files=photo_files("photos", photos),
        )
        return body

    def patient_session(self, handle: str, photo: Path) -> str:
        body = self.json(
            "POST",
            f"/patients/{handle}/sessions",
            step="verify the patient's face",
            files=photo_files("photo", [photo]),
        )
        return str(body["token"])

    def register_provider(self, admin: str, address: str) -> dict[str, Any]:
        body: dict[str, Any] = self.json(
            "POST",
            "/admin/providers",
            step="register the provider",
            expect=(201,),
            token=admin,
            json={"address": address, "emergency": False},
        )
        return body

    def sign_in_provider(self, account: LocalAccount) -> tuple[str, dict[str, Any]]:
        """Sign in with Ethereum (EIP-4361); ``(session token, the nonce's terms)``."""
        nonce: dict[str, Any] = self.json("GET", "/provider/nonce", step="get a SIWE nonce")
        now = datetime.now(UTC)
        message = SiweMessage(
            domain=nonce["domain"],
            address=account.address,
            uri=f"http://{nonce['domain']}",
            version="1",
            chain_id=nonce["chain_id"],
            issued_at=_zulu(now),
            expiration_time=_zulu(now + timedelta(minutes=5)),
            nonce=nonce["nonce"],
            statement="Sign in to the health data vault.",
        ).prepare_message()
        signature = account.sign_message(encode_defunct(text=message)).signature.to_0x_hex()
        body = self.json(
            "POST",
            "/provider/sessions",
            step="sign the provider in",
            json={"message": message, "signature": signature},
        )
        return str(body["token"]), nonce

    def request_access(
        self, token: str, *, patient: str, scope: str, purpose: str, duration_seconds: int
    ) -> dict[str, Any]:
        body: dict[str, Any] = self.json(
            "POST",
            "/provider/requests",
            step="request access",
            expect=(201,),
            token=token,
            json={
                "patient": patient,
                "scope": scope,
                "purpose": purpose,
                "duration_seconds": duration_seconds,
            },
        )
        return body

    def approve(self, token: str, request_id: str, photo: Path) -> dict[str, Any]:
        body: dict[str, Any] = self.json(
            "POST",
            f"/patient/requests/{request_id}/approve",
            step="approve the request",
            token=token,
            files=photo_files("photo", [photo]),
        )
        return body

    def revoke(
        self, token: str, photo: Path, *, provider: str, scope: str, purpose: str
    ) -> dict[str, Any]:
        body: dict[str, Any] = self.json(
            "POST",
            "/patient/consents/revoke",
            step="revoke the consent",
            token=token,
            files=photo_files("photo", [photo]),
            data={"provider": provider, "scope": scope, "purpose": purpose},
        )
        return body


def _zulu(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")
