"""Turning a FHIR transaction Bundle into records: checks, ids, reference rewriting.

A transaction's entries name each other by ``fullUrl`` (``urn:uuid:...`` in Synthea
output). As a FHIR server does, the vault gives each new resource its own id — the
record id — and rewrites every ``reference`` that names an entry's ``fullUrl`` to
``ResourceType/record-id``. References it cannot resolve (conditional ones like
``Organization?identifier=...``, or absolute URLs) are kept as they are.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vault.errors import InvalidInput, InvalidRecord, PayloadTooLarge
from vault.records.fhir import Resource, validate_resource

ACCEPTED_BUNDLE_TYPES = frozenset({"transaction", "batch", "collection"})
CREATE_METHODS = frozenset({"POST", "PUT"})


@dataclass
class BundleEntry:
    index: int
    full_url: str | None
    resource_type: str
    resource: Resource


def entries_of(bundle: Resource, *, max_entries: int) -> list[BundleEntry]:
    """Check the bundle's shape and every entry's resource; collect every failure.

    Raises :class:`InvalidRecord` listing failing fields as ``entry.N.resource.path``.
    """
    if bundle.get("resourceType") != "Bundle":
        raise InvalidRecord(
            "not a FHIR Bundle",
            details={"errors": [{"field": "resourceType", "message": "expected Bundle"}]},
        )
    if bundle.get("type") not in ACCEPTED_BUNDLE_TYPES:
        raise InvalidInput(
            "only transaction, batch and collection bundles can be imported",
            details={"field": "type", "value": str(bundle.get("type"))[:40]},
        )
    raw_entries = bundle.get("entry") or []
    if not isinstance(raw_entries, list):
        raise InvalidRecord(
            "Bundle.entry must be a list",
            details={"errors": [{"field": "entry", "message": "not a list"}]},
        )
    if len(raw_entries) > max_entries:
        raise PayloadTooLarge(
            f"bundle has {len(raw_entries)} entries; the limit is {max_entries}",
            details={"limit": max_entries, "entries": len(raw_entries)},
        )
    entries: list[BundleEntry] = []
    errors: list[dict[str, str]] = []
    for index, raw in enumerate(raw_entries):
        location = f"entry.{index}"
        resource = raw.get("resource") if isinstance(raw, dict) else None
        if not isinstance(resource, dict):
            errors.append({"field": f"{location}.resource", "message": "missing resource"})
            continue
        method = ((raw.get("request") or {}).get("method") or "POST").upper()
        if method not in CREATE_METHODS:
            errors.append(
                {"field": f"{location}.request.method", "message": f"{method} not supported"}
            )
            continue
        try:
            resource_type = validate_resource(resource, location=f"{location}.resource")
        except InvalidRecord as exc:
            errors.extend(exc.details.get("errors", []))
            continue
        full_url = raw.get("fullUrl")
        entries.append(
            BundleEntry(
                index, full_url if isinstance(full_url, str) else None, resource_type, resource
            )
        )
        if len(errors) >= 50:
            break
    if errors:
        fields = ", ".join(e["field"] for e in errors[:5])
        raise InvalidRecord(f"invalid bundle entries: {fields}", details={"errors": errors[:50]})
    return entries


def rewrite_references(value: Any, targets: dict[str, str]) -> Any:
    """Replace, in place and recursively, every ``reference`` found in ``targets``."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "reference" and isinstance(item, str):
                value[key] = targets.get(item, item)
            elif isinstance(item, dict | list):
                rewrite_references(item, targets)
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict | list):
                rewrite_references(item, targets)
    return value


def assign_ids(entries: list[BundleEntry], new_id: Callable[[], str]) -> dict[str, str]:
    """Give each entry a record id; return ``fullUrl`` → record id.

    Also maps ``ResourceType/old-id`` so relative references to entries resolve.
    """
    id_map: dict[str, str] = {}
    targets: dict[str, str] = {}
    for entry in entries:
        record_id = new_id()
        local = f"{entry.resource_type}/{record_id}"
        if entry.full_url:
            id_map[entry.full_url] = record_id
            targets[entry.full_url] = local
        old_id = entry.resource.get("id")
        if isinstance(old_id, str):
            targets.setdefault(f"{entry.resource_type}/{old_id}", local)
        entry.resource["id"] = record_id
    for entry in entries:
        rewrite_references(entry.resource, targets)
    return id_map
