"""Schemathesis against the vault's own OpenAPI schema: every operation, authenticated.

Each operation gets generated cases that fit the schema (positive) and cases that do not
(negative), sent in-process through the ASGI app with the right bearer token for its
prefix (patient, provider, admin), sometimes with the real ids of the shared vault's
patient, record and provider in the path so handlers get past the lookups. Every
response must be no 5xx (503 only while the chain is down, which it never is here) and
conform to the schema: declared status code, content type, body and headers.

``VAULT_FUZZ_EXAMPLES`` sets the examples per operation and mode (default 25, enough for
integers past 64 bits in parameters, which 12 missed); ``VAULT_FUZZ_LONG=1`` is the long
mode outside the test command: unseeded, 250 examples (about 10 minutes). The test
prints the counts that docs/security-tests.md reports. Odd text and deep JSON, which
schemathesis does not generate, are ``tests/hostile/test_odd_input.py``'s.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Ok
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.api.support import ADMIN_TOKEN
from tests.hostile.conftest import FUZZ_LONG, Actors

EXAMPLES = int(os.environ.get("VAULT_FUZZ_EXAMPLES", "250" if FUZZ_LONG else "25"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]


def _token_for(path: str, actors: Actors) -> str | None:
    if path.startswith("/admin"):
        return ADMIN_TOKEN
    if path.startswith("/patient/"):
        return actors.patient_token
    if path.startswith("/provider/"):
        return actors.provider_token
    return None


def _real_ids(path: str, method: str, actors: Actors) -> dict[str, Any]:
    ids: dict[str, Any] = {}
    if "{handle}" in path:
        ids["handle"] = actors.handle
    if "{record_id}" in path:
        ids["record_id"] = actors.record_id
    if "{address}" in path and method != "delete":
        # Never the real provider on DELETE: deactivating it would end the provider's runs.
        ids["address"] = actors.provider.address
    return ids


@dataclass
class Tally:
    statuses: Counter[int] = field(default_factory=Counter)
    cases: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)


def _fuzz(
    operation: Any,
    mode: GenerationMode,
    headers: dict[str, str],
    real: dict[str, Any],
    tally: Tally,
) -> None:
    strategies = [operation.as_strategy(generation_mode=mode)]
    if real:
        strategies.append(operation.as_strategy(generation_mode=mode, path_parameters=real))

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=not FUZZ_LONG,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=st.one_of(strategies), with_token=st.sampled_from([True, True, False]))
    def run(case: Any, with_token: bool) -> None:
        sent = headers if with_token else {}
        response = case.call(headers=sent)
        tally.cases[operation.label] += 1
        tally.statuses[response.status_code] += 1
        try:
            case.validate_response(response, checks=CHECKS, headers=sent)
        except FailureGroup as exc:  # collect every operation's failures, then report
            tally.failures.append(f"{operation.label} [{mode.value}]: {exc}"[:1500])

    try:
        run()
    except Unsatisfiable:
        # Nothing in this operation can be made invalid (e.g. no parameters).
        assert mode is GenerationMode.NEGATIVE, operation.label


def test_schema_holds_under_generated_input(actors: Actors) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", actors.client.app)
    tally = Tally()
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result  # the vault's own schema must load whole
        operations.append(result.ok())
    for operation in operations:
        token = _token_for(operation.path, actors)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        real = _real_ids(operation.path, operation.method.lower(), actors)
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            _fuzz(operation, mode, headers, real, tally)
    print(
        f"\nschemathesis: {len(operations)} operations, {sum(tally.cases.values())} cases,"
        f" statuses {dict(sorted(tally.statuses.items()))}"
    )
    for failure in tally.failures:
        print(failure, end="\n\n")
    assert len(operations) >= 30
    assert not tally.failures, "\n\n".join(tally.failures)
    assert not [s for s in tally.statuses if s >= 500]
