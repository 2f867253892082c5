"""Parse an EIP-4361 (Sign-In with Ethereum) message in time linear in its length.

Why not ``SiweMessage.from_message``: its default ABNF parser spends about 0.4 s of CPU on
250 characters of junk and 37 s on 4,000, and its regex parser (``abnf=False``)
backtracks exponentially: its URI pattern can match a resource's ``"\\n- "`` in several
ways, so ``"Resources:" + "\\n- a:" * n + " "`` takes 0.1 s at n = 16 and four times as long
for every two more. Both are reachable before any authentication.

This parser walks the message line by line in the order EIP-4361 lays it out (each line a
fixed label and a value), after refusing a message longer than :data:`MAX_MESSAGE_CHARS`
or with a line longer than :data:`MAX_LINE_CHARS`; no pattern spans lines. The fields
are then validated by ``siwe``'s own model (pydantic: EIP-55 address, RFC 3986 URIs,
ISO 8601 times), and the message must be exactly what that model serializes back, which
is the text ``SiweMessage.verify`` checks the signature against: what the provider signed
is what the vault read, with no second reading of the same bytes.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from siwe import SiweMessage

from vault.errors import InvalidInput

#: A realistic message (a host, an address, a one-line statement, a URI, five fixed
#: fields, a few resources) has 300-600 characters; wallets show the whole of it.
MAX_MESSAGE_CHARS = 1500
#: The longest single line: a statement or a URI of a realistic length.
MAX_LINE_CHARS = 512

_HEADER = " wants you to sign in with your Ethereum account:"
_REQUIRED = (
    ("URI: ", "uri"),
    ("Version: ", "version"),
    ("Chain ID: ", "chain_id"),
    ("Nonce: ", "nonce"),
    ("Issued At: ", "issued_at"),
)
_OPTIONAL = (
    ("Expiration Time: ", "expiration_time"),
    ("Not Before: ", "not_before"),
    ("Request ID: ", "request_id"),
)
_RESOURCES = "Resources:"
_RESOURCE = "- "


def parse_siwe_message(message: str) -> SiweMessage:
    """The EIP-4361 message ``message``, fields validated; nothing is verified yet.

    Raises :class:`InvalidInput` for a message too long, a line too long, anything out of
    EIP-4361's layout, an invalid field, or a text that is not the message's canonical
    form.
    """
    if len(message) > MAX_MESSAGE_CHARS:
        raise InvalidInput(
            f"sign-in message longer than {MAX_MESSAGE_CHARS} characters",
            details={"max_chars": MAX_MESSAGE_CHARS},
        )
    lines = message.split("\n")
    if max(len(line) for line in lines) > MAX_LINE_CHARS:
        raise InvalidInput(
            f"sign-in message has a line longer than {MAX_LINE_CHARS} characters",
            details={"max_line_chars": MAX_LINE_CHARS},
        )
    fields = _fields(lines)
    try:
        parsed = SiweMessage(**fields)
    except (ValidationError, ValueError) as exc:
        raise InvalidInput("not a valid EIP-4361 message: a field is invalid") from exc
    if parsed.prepare_message() != message:
        raise InvalidInput("not a valid EIP-4361 message: not in its canonical form")
    return parsed


def _fields(lines: list[str]) -> dict[str, Any]:
    """The message's fields by ``SiweMessage`` name, read in EIP-4361's order."""
    fields: dict[str, Any] = {}
    at = 0

    def line() -> str:
        nonlocal at
        if at >= len(lines):
            raise _malformed("it ends early")
        at += 1
        return lines[at - 1]

    header = line()
    if not header.endswith(_HEADER):
        raise _malformed("the first line is not a sign-in request")
    authority = header.removesuffix(_HEADER)
    scheme, separator, domain = authority.partition("://")
    fields["scheme"], fields["domain"] = (scheme, domain) if separator else (None, authority)
    fields["address"] = line()
    if line() != "":
        raise _malformed("no blank line after the address")
    statement = line()
    if statement:
        fields["statement"] = statement
        if line() != "":
            raise _malformed("no blank line after the statement")
    for label, name in _REQUIRED:
        fields[name] = _value(line(), label)
    for label, name in _OPTIONAL:
        if at < len(lines) and lines[at].startswith(label):
            fields[name] = _value(line(), label)
    if at < len(lines) and lines[at] == _RESOURCES:
        at += 1
        fields["resources"] = [_value(resource, _RESOURCE) for resource in lines[at:]]
        at = len(lines)
    if at != len(lines):
        raise _malformed(f"line {at + 1} is not an EIP-4361 field")
    return fields


def _value(line: str, label: str) -> str:
    if not line.startswith(label):
        raise _malformed(f"expected {label.strip()!r}")
    return line.removeprefix(label)


def _malformed(why: str) -> InvalidInput:
    return InvalidInput(f"not a valid EIP-4361 message: {why}")
