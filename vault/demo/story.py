"""The demo's story, step by step, against a running vault.

Patient enrolls and stores records; operator registers a provider; provider signs in and
asks; patient approves with a new photo; provider reads; patient revokes; provider is
refused; operator anchors the access log; patient reads the history and the client checks
every proof against the chain. Each step prints what happened; any surprise raises a
:class:`~vault.errors.VaultError` (the CLI prints it as one line).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount

from vault.demo.client import VaultApi, photo_files
from vault.demo.proofs import registry_on_chain, verify_history
from vault.errors import NotFound

Say = Callable[[str], None]

SCOPE = "Observation"
PURPOSE = "TREAT"


@dataclass(frozen=True)
class SampleData:
    """The photos and records the story uses, all from ``sample_data/``."""

    enroll_photos: list[Path]
    probe_photo: Path
    other_person_photo: Path
    bundle: Path
    document: Path

    @classmethod
    def under(cls, sample_dir: Path) -> SampleData:
        faces, fhir = sample_dir / "faces", sample_dir / "fhir"
        obama = faces / "people" / "obama"
        return cls(
            enroll_photos=[
                obama / "obama2.jpg",
                obama / "obama_test1.jpg",
                faces / "obama_partial_face.jpg",
            ],
            probe_photo=obama / "obama.jpg",
            other_person_photo=faces / "people" / "biden" / "biden2.jpg",
            bundle=fhir / "synthea-patient-bundle.json",
            document=fhir / "discharge-summary.pdf",
        )


class Narrator:
    """Numbers the steps and indents their details, so a newcomer can follow."""

    def __init__(self, say: Say) -> None:
        self._say = say
        self._step = 0

    def step(self, who: str, what: str) -> None:
        self._step += 1
        self._say(f"\n{self._step:>2}. [{who}] {what}")

    def detail(self, text: str) -> None:
        self._say(f"      {text}")


def play(
    *,
    api: VaultApi,
    admin_token: str,
    sample: SampleData,
    rpc_url: str,
    project_root: Path,
    say: Say,
) -> None:
    """Play the whole story once. Raises a ``VaultError`` at the first step that goes wrong."""
    out = Narrator(say)
    health = api.health()
    chain = health["chain"]
    say(
        f"Vault at {api.base_url}: chain {chain['chain_id']} at block {chain['block_number']}, "
        f"ConsentRegistry {chain['contract_address']}"
    )

    # --- the patient -------------------------------------------------------------------
    out.step("patient", f"enrolls from {len(sample.enroll_photos)} photos")
    out.detail(", ".join(p.name for p in sample.enroll_photos))
    enrolled = api.enroll(sample.enroll_photos)
    handle = str(enrolled["handle"])
    out.detail(f"handle {handle}")
    out.detail(f"consent key {enrolled['address']} (derived from the face, never stored)")
    out.detail(f"registered on chain in tx {enrolled['tx_hash']}")

    out.step("patient", f"signs in with a new photo ({sample.probe_photo.name})")
    patient = api.patient_session(handle, sample.probe_photo)
    out.detail("face matched: short-lived session token issued")

    out.step("patient", f"imports a FHIR Bundle ({sample.bundle.name})")
    imported = api.json(
        "POST",
        "/patient/records/bundles",
        step="import the FHIR bundle",
        expect=(201,),
        token=patient,
        content=sample.bundle.read_bytes(),
        headers={"Content-Type": "application/json"},
    )
    by_category = sorted(imported["by_category"].items(), key=lambda kv: -kv[1])
    out.detail(f"{imported['count']} resources stored, each encrypted under the patient's key")
    out.detail(", ".join(f"{n} {c}" for c, n in by_category))

    out.step("patient", f"uploads a document ({sample.document.name})")
    stored = api.json(
        "POST",
        "/patient/records/documents",
        step="upload the document",
        expect=(201,),
        token=patient,
        files={"file": (sample.document.name, sample.document.read_bytes(), "application/pdf")},
        data={"title": "Discharge summary"},
    )
    out.detail(
        f"DocumentReference {stored['document_reference']['record_id']} -> "
        f"Binary {stored['binary']['record_id']}"
    )
    observations = api.json(
        "GET",
        f"/patient/records?category={SCOPE}",
        step="list the patient's observations",
        token=patient,
    )
    if not observations:
        raise NotFound(f"the imported records hold no {SCOPE} for the provider to read")
    record_id = str(observations[0]["record_id"])

    # --- the operator and the provider -------------------------------------------------
    provider_key: LocalAccount = Account.from_key(secrets.token_bytes(32))
    out.step("operator", "registers a provider on chain (a fresh random Ethereum key)")
    registered = api.register_provider(admin_token, provider_key.address)
    out.detail(f"provider {registered['address']}: {registered['status']}")

    out.step("provider", "signs in with Ethereum (EIP-4361)")
    provider, terms = api.sign_in_provider(provider_key)
    out.detail(
        f"signed the vault's nonce for {terms['domain']} on chain {terms['chain_id']}: "
        "session token issued"
    )

    read_path = f"/provider/patients/{handle}/records/{record_id}?purpose={PURPOSE}"
    out.step("provider", f"tries to read an Observation before any consent ({record_id})")
    _expect_refusal(api, read_path, provider, out, step="read before consent")

    out.step("provider", f"requests access: scope {SCOPE}, purpose {PURPOSE}, for 1 hour")
    request = api.request_access(
        provider, patient=handle, scope=SCOPE, purpose=PURPOSE, duration_seconds=3600
    )
    request_id = str(request["request_id"])
    out.detail(f"request {request_id}: {request['status']}")

    out.step("patient", "sees the pending request")
    pending = api.json(
        "GET", "/patient/requests?pending_only=true", step="list pending requests", token=patient
    )
    for r in pending:
        out.detail(f"{r['provider']} asks for {r['scope']} / {r['purpose']} ({r['request_id']})")

    out.step("patient", f"someone else's face cannot approve ({sample.other_person_photo.name})")
    wrong = api.call(
        "POST",
        f"/patient/requests/{request_id}/approve",
        step="approve with another person's face",
        expect=(401,),
        token=patient,
        files=photo_files("photo", [sample.other_person_photo]),
    )
    out.detail(f"refused: HTTP {wrong.status_code} {wrong.json()['code']}")

    out.step("patient", f"approves with a new photo ({sample.probe_photo.name})")
    approved = api.approve(patient, request_id, sample.probe_photo)
    out.detail("the face unlocked the consent key; it signed an EIP-712 grant")
    out.detail(f"relayed on chain in tx {approved['tx_hash']}: request {approved['status']}")

    out.step("provider", "reads the Observation (consent checked on chain at the latest block)")
    read = api.json("GET", read_path, step="read after approval", token=provider)
    out.detail(_describe(read["resource"]))
    listing = api.json(
        "GET",
        f"/provider/patients/{handle}/records?purpose={PURPOSE}",
        step="list the records in scope",
        token=provider,
    )
    categories = sorted({r["category"] for r in listing})
    out.detail(f"may list {len(listing)} records, all of {', '.join(categories)}")

    out.step("patient", "lists consents as the chain has them")
    for c in api.json("GET", "/patient/consents", step="list consents", token=patient):
        until = datetime.fromtimestamp(c["expires_at"], UTC).isoformat(timespec="seconds")
        out.detail(f"{c['provider']}: {c['scope']} / {c['purpose']} until {until}")

    out.step("patient", f"revokes the consent with a new photo ({sample.probe_photo.name})")
    revoked = api.revoke(
        patient, sample.probe_photo, provider=provider_key.address, scope=SCOPE, purpose=PURPOSE
    )
    out.detail(f"revocation mined in block {revoked['block_number']} (tx {revoked['tx_hash']})")

    out.step("provider", "reads the same Observation right after the revoke's receipt")
    _expect_refusal(api, read_path, provider, out, step="read after revoke")

    # --- the audit trail ---------------------------------------------------------------
    out.step("operator", "anchors the access log on chain (a Merkle root of the new entries)")
    anchored = api.json("POST", "/admin/audit/anchor", step="anchor the log", token=admin_token)
    if anchored["anchored"]:
        out.detail(
            f"entries {anchored['first_seq']}-{anchored['last_seq']}, root {anchored['root']}"
        )
        out.detail(f"tx {anchored['tx_hash']}")
    else:
        out.detail("nothing new: the scheduled anchoring already covered every entry")

    out.step("patient", "reads the access history")
    history = api.json("GET", "/patient/access-log", step="read the access history", token=patient)
    for item in history["entries"]:
        e = item["entry"]
        who = "patient" if e["actor"] == handle else e["actor"]
        what = " ".join(x for x in (e["scope"], e["purpose"]) if x)
        why = f" ({e['reason']})" if e["reason"] else ""
        out.detail(
            f"#{e['seq']:<4} {e['at'][:19]}  {e['action']:<8} {e['outcome']:<8} {who}  "
            f"{what}{why}".rstrip()
        )
    out.detail("on chain:")
    for ev in history["chain_events"]:
        by = f" {ev['provider']}" if ev.get("provider") else ""
        out.detail(f"  block {ev['block_number']:<5} {ev['kind']}{by}")

    out.step("patient", f"checks every proof against the chain itself ({rpc_url})")
    registry = registry_on_chain(
        rpc_url=rpc_url,
        address=history["registry"],
        chain_id=int(history["chain_id"]),
        project_root=project_root,
    )
    verified = verify_history(history, patient_handle=handle, registry=registry)
    anchors = sorted({v.anchor_index for v in verified})
    out.detail(
        f"{len(verified)}/{len(history['entries'])} entries: hash recomputed, inclusion proof "
        f"reaches the root stored on chain (anchor{'s' if len(anchors) > 1 else ''} "
        f"{', '.join(map(str, anchors))} of ConsentRegistry {registry.address})"
    )
    say("\nThe story is complete: every step behaved and every proof verifies against the chain.")


def _expect_refusal(api: VaultApi, path: str, token: str, out: Narrator, *, step: str) -> None:
    reply = api.call("GET", path, step=step, expect=(403,), token=token)
    body = reply.json()
    out.detail(f"refused: HTTP {reply.status_code} {body['code']}: {body['message']}")


def _describe(resource: dict[str, Any]) -> str:
    code = resource.get("code", {})
    name = code.get("text") or _display(code) or "?"
    parts = [resource, *resource.get("component", [])]
    values = [_quantity(p["valueQuantity"]) for p in parts if p.get("valueQuantity")]
    concept = resource.get("valueCodeableConcept") or {}
    values += [concept.get("text") or _display(concept)] if concept else []
    values += [resource["valueString"]] if resource.get("valueString") else []
    shown = " / ".join(v for v in values if v) or "(no value)"
    when = resource.get("effectiveDateTime", "")
    name = name if len(name) <= 50 else name[:47] + "..."
    return f"{resource.get('resourceType')}: {name} = {shown} {when}".strip()


def _quantity(q: dict[str, Any]) -> str:
    return f"{q.get('value')} {q.get('unit', '')}".strip()


def _display(concept: dict[str, Any]) -> str:
    return next((str(c["display"]) for c in concept.get("coding", []) if c.get("display")), "")
