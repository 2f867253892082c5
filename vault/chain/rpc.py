"""A web3 connection tuned for a consent check on every provider read.

Caching ``eth_chainId`` removes two round trips per call (TOOLCHAIN.md); retries are
off so an unreachable chain fails fast and the caller fails closed.
"""

from __future__ import annotations

from web3 import Web3
from web3.providers.rpc import HTTPProvider

from vault.errors import ChainUnavailable, WrongChain

RPC_TIMEOUT_SECONDS = 5.0


def connect(url: str, *, timeout: float = RPC_TIMEOUT_SECONDS) -> Web3:
    provider = HTTPProvider(
        url,
        request_kwargs={"timeout": timeout},
        exception_retry_configuration=None,
        cache_allowed_requests=True,
    )
    return Web3(provider)


def check_chain_id(w3: Web3, expected: int) -> int:
    """Return the chain id, raising if unreachable or not the expected one.

    Asks the node directly (never a cached value): a restarted or swapped node must be
    noticed.
    """
    try:
        reply = w3.provider.make_request("eth_chainId", [])  # type: ignore[arg-type]
        chain_id = int(reply["result"], 16)
    except Exception as exc:  # any transport failure means: unreachable
        raise ChainUnavailable(f"chain RPC unreachable: {type(exc).__name__}") from exc
    if chain_id != expected:
        raise WrongChain(
            f"chain id {chain_id} is not the configured {expected}",
            details={"chain_id": chain_id, "expected": expected},
        )
    return chain_id
