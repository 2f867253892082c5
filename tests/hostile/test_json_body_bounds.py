"""The JSON body check's bounds, exactly at and past each one (no server needed)."""

from __future__ import annotations

import json

import pytest

from vault.api.json_body import MAX_JSON_DEPTH, MAX_JSON_INT, JsonBodyRefused, check_json_body


def _arrays(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def _objects(depth: int) -> bytes:
    return b'{"a":' * depth + b"0" + b"}" * depth


@pytest.mark.parametrize(
    "body",
    [
        _arrays(MAX_JSON_DEPTH),
        _objects(MAX_JSON_DEPTH),
        b'{"a":"\\ud83d\\ude00","\\ud83d\\ude00":1}',  # a valid pair, escaped
        '{"a":"\U0001f600"}'.encode(),
        json.dumps({"n": MAX_JSON_INT, "m": -MAX_JSON_INT, "f": 1e308}).encode(),
        b'["[[[[' + b"[" * 200 + b'"]',  # brackets in a string are text
        b"not json at all",  # the route's own parser answers it
        b"",
    ],
    ids=[
        "arrays-64",
        "objects-64",
        "pair",
        "raw-emoji",
        "widest-numbers",
        "string",
        "junk",
        "empty",
    ],
)
def test_bodies_within_the_bounds_pass(body: bytes) -> None:
    check_json_body(body)


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (_arrays(MAX_JSON_DEPTH + 1), "nested deeper"),
        (_objects(MAX_JSON_DEPTH + 1), "nested deeper"),
        (b"[[]," + _arrays(MAX_JSON_DEPTH) + b"]", "nested deeper"),
        (_arrays(100_000), "nested deeper"),
        (b'{"a":"\\ud800"}', "lone surrogate"),
        (b'{"\\udfff":1}', "lone surrogate"),
        (b'{"a":"\\uDC00\\uD800"}', "lone surrogate"),  # reversed: no pair
        (b'{"a":"\xed\xa0\x80"}', "not UTF-8"),
        (json.dumps({"n": MAX_JSON_INT + 1}).encode(), "256 bits"),
        (json.dumps({"n": -MAX_JSON_INT - 1}).encode(), "256 bits"),
        (b'{"f":1e309}', "out of range"),
        (b'{"f":NaN}', "not JSON"),
        (b'{"f":-Infinity}', "not JSON"),
    ],
    ids=[
        "arrays-65", "objects-65", "one-deep-branch", "arrays-100000", "lone-high", "lone-key",
        "reversed-pair", "raw-surrogate-bytes", "int-over", "int-under", "float-inf", "nan",
        "infinity",
    ],
)  # fmt: skip
def test_bodies_past_a_bound_are_refused(body: bytes, why: str) -> None:
    with pytest.raises(JsonBodyRefused, match=why):
        check_json_body(body)
