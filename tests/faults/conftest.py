"""Fault-injection fixtures: the API tests' real vault (each database backend, Anvil, faces),
reused."""

from __future__ import annotations

from tests.api.conftest import api_settings, client, new_provider, vault

__all__ = ["api_settings", "client", "new_provider", "vault"]
