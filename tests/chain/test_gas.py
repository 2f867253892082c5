"""Gas the operator pays per registry operation (receipts on Anvil), with budgets.

Receipt gas includes the 21 000 base cost and calldata, unlike ``forge test --gas-report``.
Run with ``-s`` to print the table recorded in docs/contract.md.
"""

from __future__ import annotations

import secrets

from eth_account import Account
from eth_account.signers.local import LocalAccount

from vault.chain.codes import ALL_SCOPES, new_reason_salt, purpose_id, reason_hash, scope_id
from vault.chain.registry import ConsentRegistryClient

# Budgets leave ~20 % headroom over the measured figures; a regression fails loudly.
BUDGETS = {
    "register provider": 60_000,
    "register patient": 110_000,
    "grant consent (new terms)": 120_000,
    "grant consent (renewal)": 80_000,
    "revoke consent": 70_000,
    "rotate controller": 120_000,
    "open emergency access (by signature)": 120_000,
    "anchor audit root (first)": 150_000,
    "anchor audit root (next)": 110_000,
}


def new_key() -> LocalAccount:
    account: LocalAccount = Account.from_key(secrets.token_bytes(32))
    return account


def test_gas_per_operation(client: ConsentRegistryClient) -> None:
    used: dict[str, int] = {}
    treat, obs = purpose_id("TREAT"), scope_id("Observation")

    provider = new_key()
    used["register provider"] = client.register_provider(provider.address).gas_used
    client.grant_role("EMERGENCY_ROLE", provider.address)

    patient_id, key = secrets.token_bytes(32), new_key()
    signed_registration = client.sign_registration(key, patient_id=patient_id)
    used["register patient"] = client.register_patient(signed_registration).gas_used

    def grant(expires_in: int) -> int:
        signed = client.sign_grant(
            key,
            patient_id=patient_id,
            provider=provider.address,
            scope=obs,
            purpose=treat,
            expires_at=client.chain_time() + expires_in,
        )
        return client.grant_consent(signed).gas_used

    used["grant consent (new terms)"] = grant(3600)
    used["grant consent (renewal)"] = grant(7200)
    revocation = client.sign_revocation(
        key, patient_id=patient_id, provider=provider.address, scope=obs, purpose=treat
    )
    used["revoke consent"] = client.revoke_consent(revocation).gas_used
    new = new_key()
    rotation = client.sign_rotation(patient_id=patient_id, current=key, new=new)
    used["rotate controller"] = client.rotate_controller(rotation).gas_used
    emergency = client.sign_emergency(
        provider,
        patient_id=patient_id,
        scope=ALL_SCOPES,
        reason_hash=reason_hash("unconscious on arrival", new_reason_salt()),
        duration=3600,
    )
    used["open emergency access (by signature)"] = client.open_emergency_access(emergency).gas_used

    assert client.relayer is not None
    first = client.contract.functions.anchorAuditRoot(b"\x01" * 32, 1, 100)
    used["anchor audit root (first)"] = client.relayer.send(first, context="anchor").gas_used
    nxt = client.contract.functions.anchorAuditRoot(b"\x02" * 32, 101, 200)
    used["anchor audit root (next)"] = client.relayer.send(nxt, context="anchor").gas_used

    print("\noperation | gas used (receipt)")
    for name, gas in used.items():
        print(f"{name} | {gas}")
    for name, gas in used.items():
        assert gas <= BUDGETS[name], f"{name} used {gas} gas, budget {BUDGETS[name]}"
