"""Deploy the consent contract and remember (and re-check) where it lives."""

from __future__ import annotations

from dataclasses import dataclass

from eth_account.signers.local import LocalAccount
from sqlalchemy.orm import Session, sessionmaker
from web3 import Web3

from vault.chain.compiler import ContractArtifact
from vault.errors import ChainUnavailable, ContractMissing
from vault.store.database import transaction
from vault.store.models import ChainDeployment


@dataclass(frozen=True)
class Deployment:
    chain_id: int
    address: str
    block_number: int
    code_hash: str


def deploy_registry(w3: Web3, operator: LocalAccount, artifact: ContractArtifact) -> Deployment:
    """Deploy ``artifact`` with the operator as admin; wait for the receipt."""
    contract = w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
    tx = contract.constructor(operator.address).build_transaction(
        {
            "from": operator.address,
            "nonce": w3.eth.get_transaction_count(operator.address, "pending"),
            "chainId": w3.eth.chain_id,
        }
    )
    signed = operator.sign_transaction(tx)
    tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=60)
    if receipt["status"] != 1 or not receipt["contractAddress"]:
        raise ChainUnavailable("contract deployment transaction failed")
    address = Web3.to_checksum_address(receipt["contractAddress"])
    code = w3.eth.get_code(address)
    return Deployment(
        chain_id=w3.eth.chain_id,
        address=address,
        block_number=int(receipt["blockNumber"]),
        code_hash=Web3.to_hex(Web3.keccak(code)),
    )


def recorded_deployment(factory: sessionmaker[Session], chain_id: int) -> Deployment | None:
    with factory() as session:
        row = session.get(ChainDeployment, chain_id)
        if row is None:
            return None
        return Deployment(row.chain_id, row.address, row.block_number, row.code_hash)


def record_deployment(factory: sessionmaker[Session], deployment: Deployment) -> None:
    with transaction(factory) as session:
        session.merge(
            ChainDeployment(
                chain_id=deployment.chain_id,
                address=deployment.address,
                block_number=deployment.block_number,
                code_hash=deployment.code_hash,
            )
        )


def verify_deployment(w3: Web3, deployment: Deployment) -> None:
    """Raise :class:`ContractMissing` unless the recorded code is at the recorded address.

    A chain reset (fresh Anvil without its state) leaves no code there; a different
    contract at that address has another code hash. Either way the vault must not trust it.
    """
    try:
        code = w3.eth.get_code(Web3.to_checksum_address(deployment.address))
    except Exception as exc:
        raise ChainUnavailable(f"chain RPC unreachable: {type(exc).__name__}") from exc
    if not code:
        raise ContractMissing(
            f"no contract code at {deployment.address} on chain {deployment.chain_id}; "
            "the chain was reset. Run `vault chain deploy` to deploy a new registry.",
            details={"address": deployment.address},
        )
    if Web3.to_hex(Web3.keccak(code)) != deployment.code_hash:
        raise ContractMissing(
            f"the code at {deployment.address} is not the consent registry the vault deployed",
            details={"address": deployment.address},
        )
