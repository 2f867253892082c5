"""Two `vault serve` processes on one database and one chain agree, on each backend.

A patient and a provider use both processes in turn, as behind a load balancer. Asserted
directly, not through a benchmark's checker: the same records through both; a consent
granted through one is honoured by the other and a revoke through one refuses reads
through the other at once; the audit log holds each access exactly once, whichever
process served it, and its hash chain verifies (`vault audit verify`) and its proofs
reach the root anchored on chain.
"""

from __future__ import annotations

import secrets
from collections import Counter
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3

from tests.api.support import FACES, OBAMA_ENROLL, OBAMA_PROBE
from tests.served import run_vault, served_vault, vault_env
from vault.chain.compiler import ContractArtifact
from vault.chain.node import AnvilProcess, free_port
from vault.chain.registry import ConsentRegistryClient
from vault.demo.client import VaultApi
from vault.demo.proofs import verify_history

SCOPE, PURPOSE = "Observation", "TREAT"
RECORDS_PER_PROCESS = 2
ACCESS_ACTIONS = {"read", "list", "emergency_read", "grant", "deny", "revoke"}


def observation(value: int) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "Heart rate"},
        "valueQuantity": {"value": value, "unit": "beats/minute"},
    }


def provider_read(api: VaultApi, token: str, handle: str, record_id: str, expect: int) -> Any:
    reply = api.call(
        "GET",
        f"/provider/patients/{handle}/records/{record_id}",
        step=f"provider read through {api.base_url}",
        expect=(expect,),
        token=token,
        params={"purpose": PURPOSE},
    )
    return reply.json()


def test_two_processes_on_one_database_and_one_chain_agree(
    tmp_path: Path,
    database_url: str,
    anvil: AnvilProcess,
    w3: Web3,
    registry_artifact: ContractArtifact,
) -> None:
    admin = "admin-" + secrets.token_hex(8)
    # One data dir (secrets: keyring, pepper, token key, operator key) as the operator
    # shares it between processes; one SIWE domain, as behind one load balancer.
    env = vault_env(
        tmp_path / "data",
        VAULT_DATABASE_URL=database_url,
        VAULT_CHAIN_RPC_URL=anvil.url,
        VAULT_ADMIN_TOKEN=admin,
        VAULT_SIWE_DOMAIN="vault.example",
        VAULT_ANCHOR_INTERVAL_SECONDS="0",  # anchored on demand below, through one process
    )
    with (
        served_vault(env) as url_a,
        served_vault(dict(env, VAULT_PORT=str(free_port()))) as url_b,
        VaultApi(url_a) as a,
        VaultApi(url_b) as b,
    ):
        # The second process found the first's registry instead of deploying its own.
        assert a.health()["chain"]["contract_address"] == b.health()["chain"]["contract_address"]
        handle = a.enroll([FACES / name for name in OBAMA_ENROLL])["handle"]
        patient = b.patient_session(handle, FACES / OBAMA_PROBE)  # a token of A's enrollee
        record_ids = [
            api.json(
                "POST",
                "/patient/records",
                step="store a record",
                expect=(201,),
                token=patient,
                json=observation(60 + n),
            )["record_id"]
            for n, api in enumerate([a, b] * RECORDS_PER_PROCESS)
        ]

        # Records: the same list and the same content through both.
        listed = [api.json("GET", "/patient/records", step="list", token=patient) for api in (a, b)]
        assert listed[0] == listed[1]
        assert sorted(r["record_id"] for r in listed[0]) == sorted(record_ids)
        contents = {
            record_id: [
                api.json("GET", f"/patient/records/{record_id}", step="read", token=patient)
                for api in (a, b)
            ]
            for record_id in record_ids
        }
        for n, record_id in enumerate(record_ids):
            through_a, through_b = contents[record_id]
            assert through_a == through_b
            assert through_a["resource"]["valueQuantity"]["value"] == 60 + n

        # A provider registered through A, signed in through B; no consent yet: refused.
        account: LocalAccount = Account.from_key(secrets.token_bytes(32))
        a.register_provider(admin, account.address)
        provider, _ = b.sign_in_provider(account)
        expected: Counter[tuple[str, str, str]] = Counter()
        provider_read(a, provider, handle, record_ids[0], 403)
        expected["read", "denied", record_ids[0]] += 1

        # Requested through B, approved through A: both processes honour the grant.
        request = b.request_access(
            provider, patient=handle, scope=SCOPE, purpose=PURPOSE, duration_seconds=3600
        )
        pending = a.json(
            "GET", "/patient/requests", step="pending", token=patient, params={"pending_only": True}
        )
        assert [r["request_id"] for r in pending] == [request["request_id"]]
        approved = a.approve(patient, request["request_id"], FACES / OBAMA_PROBE)
        assert approved["status"] == "granted", approved
        expected["grant", "allowed", account.address.lower()] += 1
        for record_id in record_ids:
            reads = [provider_read(api, provider, handle, record_id, 200) for api in (b, a)]
            expected["read", "allowed", record_id] += 2
            assert reads[0] == reads[1]
            assert reads[0]["resource"] == contents[record_id][0]["resource"]
        consents = [
            api.json("GET", "/patient/consents", step="consents", token=patient) for api in (a, b)
        ]
        assert consents[0] == consents[1]
        assert [(c["provider"], c["scope"], c["purpose"]) for c in consents[0]] == [
            (account.address, SCOPE, PURPOSE)
        ]

        # Revoked through B: refused through A from the next read, and through B.
        b.revoke(
            patient, FACES / OBAMA_PROBE, provider=account.address, scope=SCOPE, purpose=PURPOSE
        )
        expected["revoke", "allowed", account.address.lower()] += 1
        for api, record_id in ((a, record_ids[1]), (b, record_ids[2])):
            refused = provider_read(api, provider, handle, record_id, 403)
            assert refused["code"] == "access_denied", refused
            expected["read", "denied", record_id] += 1
        assert all(
            api.json("GET", "/patient/consents", step="consents", token=patient) == []
            for api in (a, b)
        )

        # The audit log: each access exactly once, whichever process appended it.
        a.call("POST", "/admin/audit/anchor", step="anchor", token=admin)
        histories = [
            api.json("GET", "/patient/access-log", step="access log", token=patient)
            for api in (a, b)
        ]
        assert histories[0]["entries"] == histories[1]["entries"]
        entries = [item["entry"] for item in histories[0]["entries"]]
        seqs = [entry["seq"] for entry in entries]
        assert seqs == sorted(set(seqs))  # one chain, no sequence number used twice
        # Provider accesses name the record, consent changes the provider.
        logged = Counter(
            (entry["action"], entry["outcome"], entry["record_id"].lower())
            for entry in entries
            if entry["action"] in ACCESS_ACTIONS
        )
        assert logged == expected
        registry = ConsentRegistryClient.connect(
            w3=w3, address=histories[1]["registry"], artifact=registry_artifact
        )
        verified = verify_history(histories[1], patient_handle=handle, registry=registry)
        assert [v.seq for v in verified] == seqs

    verified_log = run_vault(["audit", "verify"], env)
    assert verified_log.returncode == 0, verified_log.stdout + verified_log.stderr
    assert "intact" in verified_log.stdout, verified_log.stdout
    assert int(verified_log.stdout.split()[-2]) >= len(entries)
