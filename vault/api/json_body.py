"""Refuse JSON request bodies no handler could store or answer about, before routing.

Every JSON body (``application/json``, ``application/*+json``, or no content type, which
FastAPI reads as JSON) passes here once, whatever route it is for:

- **Depth** at most :data:`MAX_JSON_DEPTH` nested objects and arrays. Deeper input ends in
  a ``RecursionError`` somewhere (Python's JSON decoder at about 1,000 levels; FHIR
  validation much earlier: an Observation with 150 nested extensions), i.e. a 500.
  Realistic FHIR (a Bundle of resources with contained resources and nested extensions)
  stays under 20.
- **Text**: no lone UTF-16 surrogate (``"\\ud800"``, or the raw bytes the decoder lets
  through) in any key or string; such a string cannot be encoded as UTF-8 to be stored.
- **Numbers**: integers of at most 256 bits (the widest the vault knows: EIP-712's
  ``uint256``), finite floats only (``1e400`` decodes to infinity, ``NaN`` is no JSON).

A refused body gets 422 ``invalid_request`` with ``details.errors`` saying why, in the
shape FastAPI's own validation errors have. A body that is not JSON at all passes
through: the route's own parsing refuses it. The body is decoded twice (here, then by
FastAPI); only request bodies pay, never a read.
"""

from __future__ import annotations

import json
import math
import re
from email.message import Message as ContentType
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_JSON_DEPTH = 64
MAX_JSON_INT = 2**256 - 1
_BODY_HEADERS = (b"content-length", b"transfer-encoding")


class JsonBodyRefused(ValueError):
    """Why a body is refused."""


class StrictJsonBody:
    """Pure ASGI middleware: buffer a JSON body, check it, hand the same bytes on.

    Install it inside the request size limit, so the body it buffers is bounded.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _has_json_body(scope):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                await self.app(scope, _replay([], message, receive), send)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        try:
            check_json_body(body)
        except JsonBodyRefused as refused:
            await _refuse(send, refused)
            return
        await self.app(scope, _replay([body], None, receive), send)


def check_json_body(body: bytes) -> None:
    """Raise :class:`JsonBodyRefused` if ``body`` is JSON the vault must not take in.

    Not JSON at all is not refused here (the route's parser answers it), except a body
    that is not UTF-8, which JSON must be (RFC 8259) and whose raw surrogate bytes
    Python's decoder would otherwise pass on.

    Cost: the decode FastAPI does anyway, once more, plus a walk of the containers; text
    and numbers are looked at only if the bytes could hold an offender (a surrogate
    escape; 78 digits in a row or a three-digit exponent). Measured on 16 MiB bodies on
    2 busy cores: 8 million numbers in one array, decode 0.7-1.0 s, walk 0.7-1.2 s;
    5.6 million empty arrays, decode 5-7 s (mostly the garbage collector), walk 1.0-1.5
    s; 266,000 arrays 63 deep, decode 8.5 s, walk 10 s. Only the request size limit
    bounds that, for this check and for FastAPI's own decode alike.
    """
    if not body.strip():
        return
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise JsonBodyRefused("the body is not UTF-8") from None
    numbers = _MAYBE_HUGE.search(body) is not None
    try:
        value = json.loads(
            text,
            parse_constant=_no_constant,
            parse_int=_checked_int if numbers else None,
            parse_float=_checked_float if numbers else None,
        )
    except JsonBodyRefused:
        raise
    except RecursionError:  # about 1,000 levels
        raise JsonBodyRefused(_TOO_DEEP) from None
    except ValueError:  # not JSON, or an integer of over 4,300 digits
        return
    _check_depth(value)
    if _SURROGATE_ESCAPE.search(body) is not None:
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise JsonBodyRefused("text with a lone surrogate (not Unicode)") from None


_TOO_DEEP = f"nested deeper than {MAX_JSON_DEPTH} levels"
#: Raw bytes that may stand for a surrogate (``\ud800``-``\udfff``; a valid pair too).
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
#: Raw bytes that may be an integer past 256 bits (78 digits) or a float past 1e308.
_MAYBE_HUGE = re.compile(rb"[0-9]{78}|[eE][+-]?[0-9]{3}")


def _check_depth(root: Any) -> None:
    """Walk ``root``'s containers level by level, without recursion."""
    level = [root] if type(root) in _CONTAINERS else []
    for _ in range(MAX_JSON_DEPTH):
        below: list[Any] = []
        for container in level:
            if container:  # an empty one has nothing below (most of a wide body)
                members = container.values() if type(container) is dict else container
                below += [member for member in members if type(member) in _CONTAINERS]
        if not below:
            return
        level = below
    raise JsonBodyRefused(_TOO_DEEP)


_CONTAINERS = (dict, list)


def _checked_int(digits: str) -> int:
    number = int(digits)
    if abs(number) > MAX_JSON_INT:
        raise JsonBodyRefused("integer wider than 256 bits")
    return number


def _checked_float(digits: str) -> float:
    number = float(digits)
    if not math.isfinite(number):
        raise JsonBodyRefused("number out of range")
    return number


def _no_constant(name: str) -> float:
    raise JsonBodyRefused(f"{name} is not JSON")


def _has_json_body(scope: Scope) -> bool:
    content_type = None
    has_body = False
    for name, value in scope.get("headers", ()):
        if name == b"content-type":
            content_type = value.decode("latin-1")
        elif name in _BODY_HEADERS:
            has_body = has_body or value.strip() not in (b"0", b"")
    if not has_body:
        return False
    if content_type is None:
        return True
    parsed = ContentType()
    parsed["content-type"] = content_type
    subtype = parsed.get_content_subtype()
    return parsed.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )


def _replay(chunks: list[bytes], last: Message | None, receive: Receive) -> Receive:
    """A ``receive`` that hands on what was read, then asks the client again."""
    pending: list[Message] = [{"type": "http.request", "body": b"".join(chunks)}] if chunks else []
    if last is not None:
        pending.append(last)

    async def replayed() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replayed


async def _refuse(send: Send, refused: JsonBodyRefused) -> None:
    details = {"errors": [{"loc": ["body"], "msg": str(refused)}]}
    body = json.dumps(
        {
            "code": "invalid_request",
            "message": f"the request body is refused: {refused}",
            "details": details,
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 422,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
