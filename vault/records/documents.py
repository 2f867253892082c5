"""Documents (PDF, images): accepted types, content sniffing, the DocumentReference."""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime
from typing import Any

from vault.errors import InvalidInput

#: Media types accepted as documents, with the bytes each must start with. Sniffing the
#: content keeps a mislabelled upload (an executable called "report.pdf") out.
DOCUMENT_SIGNATURES: dict[str, tuple[bytes, ...]] = {
    "application/pdf": (b"%PDF-",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/tiff": (b"II*\x00", b"MM\x00*"),
}


def check_document(content: bytes, content_type: str) -> str:
    """Return the normalised media type, or raise :class:`InvalidInput`."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    signatures = DOCUMENT_SIGNATURES.get(media_type)
    if signatures is None:
        raise InvalidInput(
            f"documents of type {media_type!r} are not accepted",
            details={"field": "content_type", "accepted": sorted(DOCUMENT_SIGNATURES)},
        )
    if not content.startswith(signatures):
        raise InvalidInput(f"content is not a {media_type} file", details={"field": "content"})
    return media_type


def document_reference(
    *,
    template: dict[str, Any] | None,
    binary_id: str,
    media_type: str,
    content: bytes,
    title: str | None,
    created: datetime,
) -> dict[str, Any]:
    """A DocumentReference pointing at the Binary record ``binary_id``.

    ``template`` may carry any DocumentReference elements (type, category, subject,
    author...); the vault sets ``status`` if absent and replaces ``content`` with the
    one attachment it stores.
    """
    resource = dict(template or {})
    resource["resourceType"] = "DocumentReference"
    resource.setdefault("status", "current")
    resource.setdefault("date", created.isoformat())
    attachment: dict[str, Any] = {
        "contentType": media_type,
        "url": f"Binary/{binary_id}",
        "size": len(content),
        # FHIR defines Attachment.hash as the base64 SHA-1 of the data.
        "hash": base64.b64encode(hashlib.sha1(content).digest()).decode("ascii"),  # noqa: S324
        "creation": created.isoformat(),
    }
    if title:
        attachment["title"] = title
    resource["content"] = [{"attachment": attachment}]
    return resource
