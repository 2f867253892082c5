"""Fixtures for the registry client tests: a fresh registry, a relaying client, actors."""

from __future__ import annotations

import secrets
from typing import NamedTuple

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3

from vault.chain.compiler import ContractArtifact
from vault.chain.deployment import Deployment
from vault.chain.registry import ConsentRegistryClient


class Patient(NamedTuple):
    patient_id: bytes
    key: LocalAccount


def new_key() -> LocalAccount:
    """A fresh key with no funds: patients and providers never pay gas."""
    account: LocalAccount = Account.from_key(secrets.token_bytes(32))
    return account


@pytest.fixture
def client(
    w3: Web3, operator: LocalAccount, registry: Deployment, registry_artifact: ContractArtifact
) -> ConsentRegistryClient:
    """A client of a freshly deployed registry, relaying as the operator."""
    return ConsentRegistryClient.connect(
        w3=w3, address=registry.address, artifact=registry_artifact, operator=operator
    )


@pytest.fixture
def provider(client: ConsentRegistryClient) -> LocalAccount:
    """A registered, active provider."""
    account = new_key()
    client.register_provider(account.address)
    return account


@pytest.fixture
def patient(client: ConsentRegistryClient) -> Patient:
    """A patient registered with a signature by their own key."""
    patient_id, key = secrets.token_bytes(32), new_key()
    client.register_patient(client.sign_registration(key, patient_id=patient_id))
    return Patient(patient_id, key)
