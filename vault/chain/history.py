"""A patient's (or provider's) consent history, read from the registry's event logs.

Every event is indexed by patient id (topic 1); consent and emergency events also by
provider (topic 2). One ``eth_getLogs`` call with an OR over the event signatures fetches
the lot; block timestamps are read once per distinct block.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hexbytes import HexBytes
from web3 import Web3
from web3.contract import Contract

from vault.errors import ChainUnavailable, InvalidInput

PATIENT_EVENTS = ("PatientRegistered", "ControllerRotated")
CONSENT_EVENTS = ("ConsentGranted", "ConsentRevoked", "EmergencyAccessOpened")


@dataclass(frozen=True)
class RegistryEvent:
    """One state change in a patient's consent history.

    ``kind`` is ``patient_registered``, ``controller_rotated``, ``consent_granted``,
    ``consent_revoked`` or ``emergency_access_opened``; fields that an event does not carry
    are None.
    """

    kind: str
    patient_id: bytes
    block_number: int
    block_timestamp: int
    tx_hash: str
    log_index: int
    provider: str | None = None
    scope: bytes | None = None
    purpose: bytes | None = None
    expires_at: int | None = None
    reason_hash: bytes | None = None
    controller: str | None = None
    previous_controller: str | None = None


def _kind(event_name: str) -> str:
    out = [("_" + c.lower()) if c.isupper() else c for c in event_name]
    return "".join(out).lstrip("_")


class HistoryReader:
    """Reads and decodes the registry's events."""

    def __init__(self, *, w3: Web3, contract: Contract, abi: list[dict[str, Any]]) -> None:
        self._w3 = w3
        self._contract = contract
        self._topics: dict[bytes, str] = {}
        for item in abi:
            if item.get("type") == "event" and item["name"] in PATIENT_EVENTS + CONSENT_EVENTS:
                types = ",".join(i["type"] for i in item["inputs"])
                self._topics[bytes(Web3.keccak(text=f"{item['name']}({types})"))] = item["name"]

    def events(
        self,
        *,
        patient_id: bytes | None,
        provider: str | None,
        from_block: int,
        to_block: int | str,
    ) -> list[RegistryEvent]:
        if patient_id is None and provider is None:
            raise InvalidInput("history needs a patient id or a provider")
        names = CONSENT_EVENTS if provider is not None else PATIENT_EVENTS + CONSENT_EVENTS
        wanted = [HexBytes(t).to_0x_hex() for t, n in self._topics.items() if n in names]
        topics: list[Any] = [wanted, HexBytes(patient_id).to_0x_hex() if patient_id else None]
        if provider is not None:
            word = b"\x00" * 12 + bytes.fromhex(Web3.to_checksum_address(provider)[2:])
            topics.append(HexBytes(word).to_0x_hex())
        try:
            logs = self._w3.eth.get_logs(
                {
                    "address": self._contract.address,
                    "fromBlock": from_block,
                    "toBlock": to_block,  # type: ignore[typeddict-item]
                    "topics": topics,
                }
            )
            timestamps: dict[int, int] = {}
            out = []
            for log in sorted(logs, key=lambda lg: (lg["blockNumber"], lg["logIndex"])):
                block = int(log["blockNumber"])
                if block not in timestamps:
                    timestamps[block] = int(self._w3.eth.get_block(block)["timestamp"])
                out.append(self._decode(log, timestamps[block]))
            return out
        except InvalidInput:
            raise
        except Exception as exc:
            raise ChainUnavailable(f"could not read registry events: {type(exc).__name__}") from exc

    def _decode(self, log: Any, timestamp: int) -> RegistryEvent:
        name = self._topics[bytes(log["topics"][0])]
        args = self._contract.events[name]().process_log(log)["args"]
        common: dict[str, Any] = {
            "kind": _kind(name),
            "patient_id": bytes(args["patientId"]),
            "block_number": int(log["blockNumber"]),
            "block_timestamp": timestamp,
            "tx_hash": HexBytes(log["transactionHash"]).to_0x_hex(),
            "log_index": int(log["logIndex"]),
        }
        if name == "PatientRegistered":
            return RegistryEvent(**common, controller=args["controller"])
        if name == "ControllerRotated":
            return RegistryEvent(
                **common,
                controller=args["newController"],
                previous_controller=args["previousController"],
            )
        extra: dict[str, Any] = {"provider": args["provider"], "scope": bytes(args["scope"])}
        if name == "ConsentGranted":
            extra.update(purpose=bytes(args["purpose"]), expires_at=int(args["expiresAt"]))
        elif name == "ConsentRevoked":
            extra.update(purpose=bytes(args["purpose"]))
        else:
            extra.update(reason_hash=bytes(args["reasonHash"]), expires_at=int(args["expiresAt"]))
        return RegistryEvent(**common, **extra)
