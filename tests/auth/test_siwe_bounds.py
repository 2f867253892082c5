"""The sign-in parser's cost is bounded, and it reads what ``siwe`` writes.

Timings are the calling thread's CPU time (``time.thread_time``), so a busy machine does
not fail them; the bound, 50 ms, is about a thousand times what a valid message costs and
a hundredth of what ``siwe``'s own parsers spend on the inputs below.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from eth_account import Account
from hypothesis import given, settings
from hypothesis import strategies as st
from siwe import SiweMessage

from vault.auth.siwe_message import MAX_LINE_CHARS, MAX_MESSAGE_CHARS, parse_siwe_message
from vault.errors import InvalidInput

WORST_CASE_SECONDS = 0.05
ADDRESS = Account.from_key(b"\x01" * 32).address
NOW = datetime(2030, 1, 1, tzinfo=UTC)


def _message(**overrides: object) -> SiweMessage:
    fields: dict[str, object] = {
        "domain": "vault.example:8400",
        "address": ADDRESS,
        "uri": "https://vault.example:8400/provider/sessions",
        "version": "1",
        "chain_id": 31337,
        "issued_at": NOW.isoformat().replace("+00:00", "Z"),
        "nonce": "0123456789abcdef0123456789abcdef",
        "statement": "Sign in to the health data vault.",
    }
    fields.update(overrides)
    return SiweMessage(**fields)  # type: ignore[arg-type]


def _thread_seconds(call: Callable[[], object]) -> float:
    start = time.thread_time()
    with contextlib.suppress(InvalidInput):
        call()
    return time.thread_time() - start


VALID = [
    _message(),
    _message(statement=None),
    _message(scheme="https"),
    _message(
        expiration_time=(NOW + timedelta(minutes=5)).isoformat().replace("+00:00", "Z"),
        not_before=NOW.isoformat().replace("+00:00", "Z"),
        request_id="req-1",
        resources=[
            "https://vault.example/a",
            "ipfs://bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3",
        ],
    ),
]


@pytest.mark.parametrize("message", VALID, ids=["plain", "no-statement", "scheme", "all-fields"])
def test_reads_what_siwe_writes_as_siwe_reads_it(message: SiweMessage) -> None:
    text = message.prepare_message()
    parsed = parse_siwe_message(text)
    assert parsed == message == SiweMessage.from_message(text)
    assert parsed.prepare_message() == text


def _head(resources: str) -> str:
    return str(_message().prepare_message()) + "\nResources:" + resources


#: Inputs at the bound that cost siwe's parsers seconds to hours: exponential
#: backtracking in its regex (resources that are almost URIs), ABNF junk, long lines,
#: many lines, every label repeated.
ADVERSARIAL = {
    "regex-resources": _head("\n- a:" * 300 + " "),
    "regex-resources-slashes": _head("\n- a://" * 200 + " "),
    "abnf-junk": "a" * MAX_MESSAGE_CHARS,
    "junk-words": "wants you to sign in " * (MAX_MESSAGE_CHARS // 21),
    "longest-lines": ("x" * MAX_LINE_CHARS + "\n") * 2 + "x" * (MAX_MESSAGE_CHARS - 1026),
    "newlines": "\n" * MAX_MESSAGE_CHARS,
    "labels": _message().prepare_message() + "\nRequest ID: x" * 80,
    "resource-lines": _head("\n- https://a.example/" * 60),
}


@pytest.mark.parametrize("name", sorted(ADVERSARIAL))
def test_adversarial_messages_at_the_bound_are_read_or_refused_within_50ms(name: str) -> None:
    text = ADVERSARIAL[name][:MAX_MESSAGE_CHARS]
    assert len(text) >= MAX_MESSAGE_CHARS - 100
    assert _thread_seconds(lambda: parse_siwe_message(text)) < WORST_CASE_SECONDS


def test_the_regex_input_is_one_siwe_itself_cannot_parse_in_bounded_time() -> None:
    """The regex case above is a real one: at 12 resources siwe's regex parser already
    spends more than the bound (about 0.3 s here), and four times as long for every two
    more; at the bound it would not finish."""
    text = _head("\n- a:" * 12 + " ")
    assert _thread_seconds(lambda: _siwe_regex(text)) > WORST_CASE_SECONDS
    assert _thread_seconds(lambda: parse_siwe_message(text)) < WORST_CASE_SECONDS


def _siwe_regex(text: str) -> None:
    with contextlib.suppress(ValueError):
        SiweMessage.from_message(text, abnf=False)


def test_an_oversized_message_is_refused_before_it_is_read() -> None:
    text = _message(statement="s" * 400).prepare_message() + "\nRequest ID: " + "r" * 1200
    with pytest.raises(InvalidInput) as refused:
        parse_siwe_message(text)
    assert refused.value.details == {"max_chars": MAX_MESSAGE_CHARS}
    with pytest.raises(InvalidInput) as long_line:
        parse_siwe_message(_message(statement="s" * (MAX_LINE_CHARS + 1)).prepare_message())
    assert long_line.value.details == {"max_line_chars": MAX_LINE_CHARS}


def test_a_message_not_in_canonical_form_is_refused() -> None:
    text = _message().prepare_message()
    for variant in (
        text.replace("Chain ID: 31337", "Chain ID: 031337"),
        text + "\n",
        text.replace("\n\nURI", "\n\n\nURI"),
        text.replace("Version: 1", "Version: 2"),
        text.replace(ADDRESS, ADDRESS.lower()),
    ):
        with pytest.raises(InvalidInput):
            parse_siwe_message(variant)


_lines = st.lists(
    st.one_of(
        st.sampled_from(
            ["", "Resources:", "- a:", "- https://a.example", "URI: a:", "Version: 1", "x"]
        ),
        st.text(max_size=80),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.text(max_size=MAX_MESSAGE_CHARS),
        _lines.map("\n".join),
        _lines.map(lambda extra: "\n".join([_message().prepare_message(), *extra])),
    )
)
def test_any_text_is_parsed_or_refused_with_invalid_input_within_the_bound(text: str) -> None:
    assert _thread_seconds(lambda: parse_siwe_message(text)) < WORST_CASE_SECONDS
