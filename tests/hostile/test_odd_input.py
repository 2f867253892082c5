"""Odd input answers 4xx with a code, never 500: the cases an attack run found, then
Hypothesis strategies for deep, odd-text and huge-number JSON on every JSON body.

Each found case answered 500 before the API boundary checked JSON bodies
(``vault/api/json_body.py``) and bounded its integers: a lone surrogate in a FHIR string
or element name, a version beyond 64 bits, an emergency nonce of 2^256, 150 nested
extensions, an element nested hundreds of arrays deep; a chunked upload over the size
limit answered 400 instead of 413.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.api.support import ADMIN_TOKEN, bearer
from tests.hostile.conftest import FUZZ_LONG, Actors
from vault.api.json_body import MAX_JSON_DEPTH, MAX_JSON_INT

FUZZ_EXAMPLES = 600 if FUZZ_LONG else 60
LIMIT = 2_000_000  # room for an enrollment's three photos, small enough to pass quickly


@pytest.fixture(scope="module")
def vault_overrides() -> dict[str, object]:
    return {"max_request_bytes": LIMIT}


def _observation(**extra: Any) -> dict[str, Any]:
    return {"resourceType": "Observation", "status": "final", "code": {"text": "pulse"}, **extra}


def _nested_extensions(levels: int) -> dict[str, Any]:
    extension: dict[str, Any] = {"url": "http://example.org/leaf", "valueString": "x"}
    for _ in range(levels):
        extension = {"url": "http://example.org/nest", "extension": [extension]}
    return _observation(extension=[extension])


def _raw(text: str) -> bytes:
    """JSON text as sent by a client that writes ``\\ud800`` escapes (json.dumps does)."""
    return text.encode()


def _post_json(actors: Actors, path: str, body: bytes, token: str, method: str = "POST") -> Any:
    return actors.client.request(
        method,
        path,
        content=body,
        headers={**bearer(token), "content-type": "application/json"},
    )


def _assert_refused(reply: Any, status: int = 422) -> dict[str, Any]:
    assert reply.status_code == status, reply.text
    body: dict[str, Any] = reply.json()
    assert set(body) == {"code", "message", "details"}, body
    return body


def _json_bodies(actors: Actors) -> Iterator[tuple[str, str, str]]:
    """(method, path, token) of every operation that takes a JSON body."""
    schema = actors.client.get("/openapi.json").json()
    real = {"{handle}": actors.handle, "{record_id}": actors.record_id}
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            content = operation.get("requestBody", {}).get("content", {})
            if "application/json" not in content:
                continue
            concrete = path
            for name, value in real.items():
                concrete = concrete.replace(name, value)
            concrete = concrete.replace("{address}", actors.provider.address)
            token = ""
            if path.startswith("/patient/"):
                token = actors.patient_token
            elif path.startswith("/provider/"):
                token = actors.provider_token
            elif path.startswith("/admin"):
                token = ADMIN_TOKEN
            yield method.upper(), concrete, token


# --- the cases found ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        '{"resourceType":"Observation","status":"final","code":{"text":"\\ud800"}}',
        '{"resourceType":"Observation","status":"final","code":{"text":"pulse"},"\\udfff":1}',
        '{"resourceType":"Observation","status":"final","code":{"text":"a\\udc00b"}}',
    ],
    ids=["string", "element-name", "low-surrogate"],
)
def test_a_lone_surrogate_in_a_fhir_body_is_refused(actors: Actors, text: str) -> None:
    token = actors.patient_token
    for method, path in (
        ("POST", "/patient/records"),
        ("PUT", f"/patient/records/{actors.record_id}"),
    ):
        body = _assert_refused(_post_json(actors, path, _raw(text), token, method))
        assert body["code"] == "invalid_request"
    bundle = (
        '{"resourceType":"Bundle","type":"transaction","entry":[{"resource":'
        + text
        + ',"request":{"method":"POST","url":"Observation"}}]}'
    )
    _assert_refused(_post_json(actors, "/patient/records/bundles", _raw(bundle), token))
    # Raw surrogate bytes (not UTF-8, but Python's JSON decoder lets them through).
    raw = b'{"resourceType":"Observation","status":"final","code":{"text":"\xed\xa0\x80"}}'
    assert _post_json(actors, "/patient/records", raw, token).status_code in (400, 422)


def test_a_paired_surrogate_is_ordinary_text(actors: Actors) -> None:
    text = '{"resourceType":"Observation","status":"final","code":{"text":"\\ud83d\\ude00"}}'
    reply = _post_json(actors, "/patient/records", _raw(text), actors.patient_token)
    assert reply.status_code == 201, reply.text


@pytest.mark.parametrize("value", [2**63, 2**64, 10**30])
def test_an_integer_beyond_the_database_in_a_query_is_refused(actors: Actors, value: int) -> None:
    headers = bearer(actors.patient_token)
    path = f"/patient/records/{actors.record_id}"
    _assert_refused(actors.client.get(f"{path}?version={value}", headers=headers))
    reply = actors.client.put(
        f"{path}?expected_version={value}", json=_observation(), headers=headers
    )
    _assert_refused(reply)
    _assert_refused(actors.client.get(f"/patient/access-log?after={value}", headers=headers))


@pytest.mark.parametrize("field", ["nonce", "deadline"])
@pytest.mark.parametrize("value", [2**256, 2**300, -(2**256)])
def test_emergency_integers_beyond_uint256_are_refused(
    actors: Actors, field: str, value: int
) -> None:
    body = {
        "scope": "Observation",
        "reason": "unconscious in the emergency room",
        "duration_seconds": 3600,
        "reason_salt": "0x" + "00" * 16,
        "nonce": 0,
        "deadline": 0,
        "signature": "0x" + "00" * 65,
        field: value,
    }
    reply = actors.client.post(
        f"/provider/patients/{actors.handle}/emergency",
        content=json.dumps(body).encode(),
        headers={**bearer(actors.provider_token), "content-type": "application/json"},
    )
    _assert_refused(reply)


def test_150_nested_extensions_are_refused(actors: Actors) -> None:
    body = json.dumps(_nested_extensions(150)).encode()
    refused = _assert_refused(_post_json(actors, "/patient/records", body, actors.patient_token))
    assert refused["details"]["errors"][0]["msg"] == f"nested deeper than {MAX_JSON_DEPTH} levels"


def test_nesting_just_within_the_bound_is_validated_not_refused(actors: Actors) -> None:
    # Observation > extension[] > (extension > extension[]) * n > leaf: 2n + 3 levels.
    levels = (MAX_JSON_DEPTH - 3) // 2
    body = json.dumps(_nested_extensions(levels)).encode()
    reply = _post_json(actors, "/patient/records", body, actors.patient_token)
    assert reply.status_code == 201, reply.text


@pytest.mark.parametrize("depth", [300, 5_000, 200_000])
def test_an_unknown_element_nested_deep_in_arrays_is_refused(actors: Actors, depth: int) -> None:
    text = json.dumps(_observation())[:-1] + ',"x":' + "[" * depth + "]" * depth + "}"
    _assert_refused(_post_json(actors, "/patient/records", _raw(text), actors.patient_token))


@pytest.mark.parametrize("number", ["1e400", "-1e400", "NaN", "Infinity", "1" + "0" * 100])
def test_numbers_out_of_range_are_refused(actors: Actors, number: str) -> None:
    text = json.dumps(_observation())[:-1] + ',"valueInteger":' + number + "}"
    reply = _post_json(actors, "/patient/records", _raw(text), actors.patient_token)
    _assert_refused(reply)


def test_a_chunked_upload_over_the_limit_answers_413(actors: Actors) -> None:
    boundary = "fuzzboundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.pdf"\r\n'
        "Content-Type: application/pdf\r\n\r\n%PDF-"
    ).encode()

    def chunks() -> Iterator[bytes]:  # no Content-Length: the body streams
        yield head
        for _ in range(LIMIT // 65536 + 2):
            yield b"0" * 65536
        yield f"\r\n--{boundary}--\r\n".encode()

    reply = actors.client.post(
        "/patient/records/documents",
        content=chunks(),
        headers={
            **bearer(actors.patient_token),
            "content-type": f"multipart/form-data; boundary={boundary}",
        },
    )
    assert _assert_refused(reply, 413)["code"] == "payload_too_large"


def test_the_document_upload_names_only_accepted_types(actors: Actors) -> None:
    schema = actors.client.get("/openapi.json").json()
    upload = schema["paths"]["/patient/records/documents"]["post"]["requestBody"]
    reference = upload["content"]["multipart/form-data"]["schema"]["$ref"]
    form = schema["components"]["schemas"][reference.rsplit("/", 1)[-1]]
    assert form["properties"]["file"]["description"] == "PDF, PNG, JPEG or TIFF"


# --- generated hostile JSON on every JSON body -------------------------------------------

_LONE_SURROGATES = st.integers(0xD800, 0xDFFF).map(chr)
#: Text with a lone surrogate, as JSON (``json.dumps`` escapes it as ``\\udxxx``, as a
#: client's encoder would).
_ODD_TEXT = st.tuples(st.text(max_size=5), _LONE_SURROGATES, st.text(max_size=5)).map(
    lambda parts: json.dumps("".join(parts))
)
_HUGE = st.one_of(
    st.integers(min_value=MAX_JSON_INT + 1, max_value=10**200),
    st.integers(max_value=-(MAX_JSON_INT + 1), min_value=-(10**200)),
).map(str)


def _deep(depth: int, leaf: str, arrays: bool) -> str:
    """JSON text nested ``depth`` levels (written out: ``json.dumps`` would recurse)."""
    if arrays:
        return "[" * depth + leaf + "]" * depth
    return '{"x":' * depth + leaf + "}" * depth


_DEEP = st.builds(
    _deep,
    st.integers(MAX_JSON_DEPTH + 1, 3_000),
    st.sampled_from(["0", '"x"', "null"]),
    st.booleans(),
)
_BASES = [
    _observation(),
    {"scope": "Observation", "reason": "why not", "duration_seconds": 3600},
    {"patient": "p", "scope": "all", "purpose": "TREAT", "duration_seconds": 3600},
    {"address": "0x" + "ab" * 20},
    {"message": "m", "signature": "0x00"},
]


@st.composite
def hostile_body(draw: st.DrawFn) -> bytes:
    """A JSON object with one hostile value or key (deep, odd text, huge number) in it."""
    base = dict(draw(st.sampled_from(_BASES)))
    kind = draw(st.sampled_from(["text", "key", "number", "deep"]))
    if kind == "key":
        member = f"{draw(_ODD_TEXT)}:1"
    else:
        value = draw({"text": _ODD_TEXT, "number": _HUGE, "deep": _DEEP}[kind])
        key = draw(st.sampled_from([*base, "extra"]))
        base.pop(key, None)
        member = f"{json.dumps(key)}:{value}"
    text = json.dumps(base)
    return (text[:-1] + ("," if base else "") + member + "}").encode()


@settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    database=None,
    derandomize=not FUZZ_LONG,
    suppress_health_check=list(HealthCheck),
)
@given(data=st.data())
def test_hostile_json_on_every_body_is_refused_with_a_code(actors: Actors, data: Any) -> None:
    operations = list(_json_bodies(actors))
    assert len(operations) >= 8
    method, path, token = data.draw(st.sampled_from(operations))
    body = data.draw(hostile_body())
    reply = _post_json(actors, path, body, token, method)
    assert reply.status_code == 422, (method, path, reply.text)
    assert reply.json()["code"] == "invalid_request", reply.text


def test_a_code_outside_its_required_value_set_is_not_stored(actors: Actors) -> None:
    reply = actors.client.post(
        "/patient/records", json=_observation(status="maybe"), headers=bearer(actors.patient_token)
    )
    refused = _assert_refused(reply)
    assert refused["code"] == "invalid_record"
    assert refused["details"]["errors"][0]["field"] == "status"


@pytest.mark.parametrize("scope", ["Coding", "HumanName"])
def test_a_datatype_is_no_consent_scope(actors: Actors, scope: str) -> None:
    reply = actors.client.post(
        "/provider/requests",
        json={
            "patient": actors.handle,
            "scope": scope,
            "purpose": "TREAT",
            "duration_seconds": 3600,
        },
        headers=bearer(actors.provider_token),
    )
    assert _assert_refused(reply)["code"] == "invalid_input"


def test_an_oversized_sign_in_message_is_refused_at_once(actors: Actors) -> None:
    reply = actors.client.post(
        "/provider/sessions", json={"message": "a " * 2000, "signature": "0x00"}
    )
    assert _assert_refused(reply)["code"] == "invalid_request"


def test_odd_bytes_in_a_form_field_are_not_a_500(actors: Actors) -> None:
    boundary = "oddboundary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="title"\r\n\r\n'.encode()
        + b"\xed\xa0\x80 report \xff"
        + f'\r\n--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.pdf"'
        "\r\nContent-Type: application/pdf\r\n\r\n%PDF-1.4 x\r\n".encode()
        + f"--{boundary}--\r\n".encode()
    )
    reply = actors.client.post(
        "/patient/records/documents",
        content=body,
        headers={
            **bearer(actors.patient_token),
            "content-type": f"multipart/form-data; boundary={boundary}",
        },
    )
    assert reply.status_code < 500, reply.text


def test_a_streamed_json_body_over_the_limit_answers_413(actors: Actors) -> None:
    def chunks() -> Iterator[bytes]:  # no Content-Length: the JSON check buffers it
        yield b'{"resourceType":"Observation","status":"final","code":{"text":"'
        for _ in range(LIMIT // 65536 + 2):
            yield b"a" * 65536
        yield b'"}}'

    reply = actors.client.post(
        "/patient/records",
        content=chunks(),
        headers={**bearer(actors.patient_token), "content-type": "application/json"},
    )
    assert _assert_refused(reply, 413)["code"] == "payload_too_large"
