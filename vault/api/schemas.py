"""Request and response bodies of the API (pydantic), with OpenAPI examples."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from vault.records.types import RecordInfo, VersionInfo
from vault.store.models import stored_utc

#: The largest version number or log sequence a query may name: the widest integer every
#: backend stores (SQL BIGINT); a wider one would overflow the database driver (a 500).
MAX_SQL_INT = 2**63 - 1


class ErrorBody(BaseModel):
    code: str = Field(examples=["not_found"])
    message: str = Field(examples=["no such record"])
    details: dict[str, Any] = Field(default_factory=dict)


ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": description}
    for status, description in {
        400: "malformed request (the body or the multipart data cannot be parsed)",
        401: "not authenticated (missing, invalid or expired token; face did not match)",
        403: "authenticated but not allowed (no consent on chain, another patient's data)",
        404: "no such object (or not yours)",
        409: "conflicts with the current state",
        413: "too large",
        422: "invalid input; `details` names the failing fields",
        429: "locked out after repeated failed face verifications",
        503: "the chain or the database cannot answer; the vault refuses rather than guesses",
    }.items()
}


class SessionToken(BaseModel):
    token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth token type, not a secret
    expires_at: int = Field(description="Unix seconds.")
    subject: str


class Record(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "record_id": "5d0c2a8e-1f3b-4a51-9a0e-0a8f3b2c1d4e",
                    "resource_type": "Observation",
                    "category": "Observation",
                    "version": 2,
                    "content_type": "application/fhir+json",
                    "created_at": "2026-11-24T03:00:00Z",
                    "updated_at": "2026-11-24T03:05:00Z",
                    "deleted": False,
                }
            ]
        }
    )

    record_id: str
    resource_type: str
    category: str
    version: int
    content_type: str
    created_at: datetime
    updated_at: datetime
    deleted: bool

    @classmethod
    def of(cls, info: RecordInfo) -> Record:
        return cls(
            record_id=info.record_id,
            resource_type=info.resource_type,
            category=info.category,
            version=info.version,
            content_type=info.content_type,
            created_at=stored_utc(info.created_at),
            updated_at=stored_utc(info.updated_at),
            deleted=info.deleted,
        )


class RecordVersion(BaseModel):
    record_id: str
    version: int
    content_type: str
    size: int
    sha256: str
    created_at: datetime

    @classmethod
    def of(cls, info: VersionInfo) -> RecordVersion:
        return cls(
            record_id=info.record_id,
            version=info.version,
            content_type=info.content_type,
            size=info.size,
            sha256=info.sha256,
            created_at=stored_utc(info.created_at),
        )


class RecordWithContent(BaseModel):
    record: Record
    resource: dict[str, Any]


class DocumentStored(BaseModel):
    document_reference: Record
    binary: Record


class BundleImported(BaseModel):
    count: int
    by_category: dict[str, int]
    record_ids: list[str]
