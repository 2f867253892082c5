"""The vault's view of its chain: which node, which contract, and whether both answer."""

from __future__ import annotations

from dataclasses import dataclass

from web3 import Web3

from vault.chain.deployment import Deployment, verify_deployment
from vault.chain.rpc import check_chain_id
from vault.errors import ChainUnavailable


@dataclass(frozen=True)
class ChainStatus:
    chain_id: int
    block_number: int
    contract_address: str


class ChainGateway:
    """A web3 connection bound to one expected chain id and one registry deployment."""

    def __init__(self, *, w3: Web3, chain_id: int, deployment: Deployment) -> None:
        self.w3 = w3
        self.chain_id = chain_id
        self.deployment = deployment

    def status(self) -> ChainStatus:
        """Check the node and the contract now; raise a ``ChainUnavailable`` subclass if not.

        Never cached: a node restarted without its state, or swapped for another chain,
        must be noticed on the next call.
        """
        check_chain_id(self.w3, self.chain_id)
        try:
            block = self.w3.eth.block_number
        except Exception as exc:
            raise ChainUnavailable(f"chain RPC unreachable: {type(exc).__name__}") from exc
        verify_deployment(self.w3, self.deployment)
        return ChainStatus(self.chain_id, int(block), self.deployment.address)
