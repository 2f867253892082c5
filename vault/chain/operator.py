"""The operator's relayer account: pays gas, holds the operator role.

Its key is a secret file under ``data_dir/secrets`` (mode 0600). On the embedded Anvil
chain the account is funded with ``anvil_setBalance``, so no well-known dev key is used.
"""

from __future__ import annotations

from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3

from vault.crypto.secret_files import load_or_create_secret

DEV_BALANCE_WEI = 10**24


def load_operator(key_file: Path) -> LocalAccount:
    account: LocalAccount = Account.from_key(load_or_create_secret(key_file, nbytes=32))
    return account


def fund_on_anvil(w3: Web3, address: str, *, wei: int = DEV_BALANCE_WEI) -> None:
    """Give the operator gas money on a development chain (Anvil only)."""
    if w3.eth.get_balance(Web3.to_checksum_address(address)) < wei // 2:
        w3.provider.make_request("anvil_setBalance", [address, hex(wei)])  # type: ignore[arg-type]
