"""The operator's relayer: submits registry transactions and pays their gas.

Nonce safety, for several threads (and the occasional other writer on the same key):

* Gas is estimated *before* a nonce is taken, so a call that would revert raises its
  decoded custom error and consumes nothing.
* Allocating the nonce, signing and ``eth_sendRawTransaction`` happen under one lock, so
  transactions reach the node in nonce order and a failed send never leaves a gap that
  would strand every later transaction in the node's queue.
* Any send failure, or a receipt that does not arrive in time, drops the cached nonce;
  the next allocation re-reads the account's *pending* transaction count from the node.
  A "nonce too low" answer (someone else used the key) is retried after that resync.
* Waiting for the receipt happens outside the lock, so threads confirm in parallel.

A mined transaction with status 0 is replayed with ``eth_call`` at its parent block to
recover the revert data, then raised as the matching vault exception.
"""

from __future__ import annotations

import logging
import threading
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress
from hexbytes import HexBytes
from web3 import Web3
from web3.contract.contract import ContractFunction
from web3.exceptions import ContractLogicError, TimeExhausted, Web3RPCError

from vault.chain.nonce_guard import NonceGuard
from vault.chain.reverts import RevertDecoder
from vault.errors import ChainUnavailable, TransactionFailed, TransactionNotConfirmed, VaultError

log = logging.getLogger("vault.chain.relayer")

GAS_HEADROOM = 1.25
GAS_EXTRA = 10_000
SEND_ATTEMPTS = 3
_NONCE_RACE_MARKERS = ("nonce too low", "already known", "replacement transaction underpriced")


@dataclass(frozen=True)
class TxOutcome:
    """A mined, successful transaction."""

    tx_hash: str
    block_number: int
    gas_used: int
    nonce: int


class Relayer:
    """Signs and sends transactions from one account; safe to share between threads."""

    def __init__(
        self,
        *,
        w3: Web3,
        account: LocalAccount,
        decoder: RevertDecoder,
        chain_id: int | None = None,
        receipt_timeout: float = 60.0,
        poll_latency: float = 0.05,
        nonce_guard: NonceGuard | None = None,
    ) -> None:
        self._w3 = w3
        self._account = account
        self._decoder = decoder
        self._chain_id = chain_id
        self._receipt_timeout = receipt_timeout
        self._poll_latency = poll_latency
        self._lock = threading.Lock()
        self._next_nonce: int | None = None
        # Shared with other processes using this key (vault.chain.nonce_guard); with one,
        # the nonce is always read from the node inside the guard, never from the cache.
        self._nonce_guard = nonce_guard

    @property
    def address(self) -> ChecksumAddress:
        return Web3.to_checksum_address(self._account.address)

    def send(self, call: ContractFunction, *, context: str) -> TxOutcome:
        """Estimate, sign, send ``call`` and wait for its receipt.

        Raises the decoded ``ConsentRejected`` subclass if the registry refuses (before
        or after mining), :class:`TransactionNotConfirmed` if the transaction could not be
        sent or confirmed in time (retryable), :class:`ChainUnavailable` if the node cannot
        be reached, :class:`TransactionFailed` for an unrecognized revert.
        """
        gas = self._estimate(call, context=context)
        tx = self._build(call, gas=gas, context=context)
        tx_hash, nonce = self._sign_and_send(tx, context=context)
        receipt = self._wait(tx_hash, nonce=nonce, context=context)
        if receipt["status"] != 1:
            raise self._explain_failure(tx, receipt, context=context)
        return TxOutcome(
            tx_hash=tx_hash,
            block_number=int(receipt["blockNumber"]),
            gas_used=int(receipt["gasUsed"]),
            nonce=nonce,
        )

    def resync(self) -> None:
        """Forget the cached nonce; the next send reads the pending count from the node."""
        with self._lock:
            self._next_nonce = None

    # ------------------------------------------------------------------ steps

    def _estimate(self, call: ContractFunction, *, context: str) -> int:
        try:
            estimate = call.estimate_gas({"from": self.address})
        except ContractLogicError as exc:
            raise self._decoder.from_web3(exc, context=context) from exc
        except Exception as exc:
            raise _rpc_failure(exc, context) from exc
        return int(estimate * GAS_HEADROOM) + GAS_EXTRA

    def _build(self, call: ContractFunction, *, gas: int, context: str) -> dict[str, Any]:
        params: dict[str, Any] = {"from": self.address, "gas": gas}
        if self._chain_id is not None:
            params["chainId"] = self._chain_id
        try:
            # Fees and chain id are filled here, outside the nonce lock.
            return dict(call.build_transaction(params))  # type: ignore[arg-type]
        except Exception as exc:
            raise _rpc_failure(exc, context) from exc

    def _sign_and_send(self, tx: dict[str, Any], *, context: str) -> tuple[str, int]:
        for attempt in range(1, SEND_ATTEMPTS + 1):
            guard = self._nonce_guard() if self._nonce_guard is not None else nullcontext()
            with self._lock, guard:
                if self._nonce_guard is not None:
                    self._next_nonce = None
                try:
                    nonce = self._allocate()
                    signed = self._account.sign_transaction({**tx, "nonce": nonce})
                    tx_hash = self._w3.eth.send_raw_transaction(signed.raw_transaction)
                except Exception as exc:
                    self._next_nonce = None
                    if attempt < SEND_ATTEMPTS and _is_nonce_race(exc):
                        log.warning("relayer nonce race (%s); resynced, retrying", exc)
                        continue
                    raise TransactionNotConfirmed(
                        f"{context}: could not send the transaction ({type(exc).__name__})",
                        details={"context": context},
                    ) from exc
                self._next_nonce = nonce + 1
                return HexBytes(tx_hash).to_0x_hex(), nonce
        raise AssertionError("unreachable")  # pragma: no cover

    def _allocate(self) -> int:
        if self._next_nonce is None:
            self._next_nonce = int(self._w3.eth.get_transaction_count(self.address, "pending"))
        return self._next_nonce

    def _wait(self, tx_hash: str, *, nonce: int, context: str) -> Any:
        try:
            return self._w3.eth.wait_for_transaction_receipt(
                HexBytes(tx_hash), timeout=self._receipt_timeout, poll_latency=self._poll_latency
            )
        except TimeExhausted as exc:
            self.resync()
            raise TransactionNotConfirmed(
                f"{context}: no receipt within {self._receipt_timeout:.0f}s",
                details={"context": context, "tx_hash": tx_hash, "nonce": nonce},
            ) from exc
        except Exception as exc:
            self.resync()
            raise TransactionNotConfirmed(
                f"{context}: lost the node while waiting for the receipt",
                details={"context": context, "tx_hash": tx_hash, "nonce": nonce},
            ) from exc

    def _explain_failure(self, tx: dict[str, Any], receipt: Any, *, context: str) -> VaultError:
        tx_hash = HexBytes(receipt["transactionHash"]).to_0x_hex()
        replay: dict[str, Any] = {k: tx[k] for k in ("from", "to", "data", "value") if k in tx}
        replay["gas"] = tx["gas"]
        try:
            self._w3.eth.call(replay, int(receipt["blockNumber"]) - 1)  # type: ignore[arg-type]
        except ContractLogicError as exc:
            data = exc.data if isinstance(exc.data, str) else None
            return self._decoder.exception(data, context=context, tx_hash=tx_hash)
        except Exception as exc:
            log.warning("could not replay failed transaction %s: %s", tx_hash, exc)
        if int(receipt["gasUsed"]) >= int(tx["gas"]):
            return TransactionFailed(
                f"{context}: ran out of gas", details={"context": context, "tx_hash": tx_hash}
            )
        return TransactionFailed(
            f"{context}: reverted on chain", details={"context": context, "tx_hash": tx_hash}
        )


def _is_nonce_race(exc: Exception) -> bool:
    text = str(exc).lower()
    racy = any(marker in text for marker in _NONCE_RACE_MARKERS)
    return racy and isinstance(exc, Web3RPCError | ValueError)


def _rpc_failure(exc: Exception, context: str) -> VaultError:
    """The node answered with an error (e.g. insufficient funds), or did not answer at all."""
    if isinstance(exc, Web3RPCError):
        return TransactionFailed(
            f"{context}: the node refused the transaction: {exc}", details={"context": context}
        )
    return ChainUnavailable(
        f"{context}: chain RPC failed ({type(exc).__name__})", details={"context": context}
    )
