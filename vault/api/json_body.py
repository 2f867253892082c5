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

A refused body gets 422 ``invalid_request`` with ``details.errors`` naming where, in the
shape FastAPI's own validation errors have. A body that is not JSON at all passes
through: the route's own parsing refuses it. The body is decoded twice (here, then by
FastAPI); only request bodies pay, never a read.
"""

from __future__ import annotations

import json
import math
from email.message import Message as ContentType
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_JSON_DEPTH = 64
MAX_JSON_INT = 2**256 - 1
_BODY_HEADERS = (b"content-length", b"transfer-encoding")


class JsonBodyRefused(ValueError):
    """Where (a path of keys and indexes) and why a body is refused."""

    def __init__(self, path: list[str | int], why: str) -> None:
        super().__init__(why)
        self.path = path
        self.why = why


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

    Not JSON at all is not refused here (the route's parser answers it).
    """
    if not body.strip():
        return
    try:
        value = json.loads(body, parse_constant=_no_constant)
    except RecursionError:
        raise JsonBodyRefused([], f"nested deeper than {MAX_JSON_DEPTH} levels") from None
    except JsonBodyRefused:
        raise
    except ValueError:  # not JSON, not UTF-8, or an integer of over 4,300 digits
        return
    _check_value(value)


def _check_value(root: Any) -> None:
    """Walk ``root`` without recursion: depth, text and numbers."""
    stack: list[tuple[Any, list[str | int]]] = [(root, [])]
    while stack:
        value, path = stack.pop()
        if isinstance(value, dict | list):
            if len(path) >= MAX_JSON_DEPTH:
                raise JsonBodyRefused(path, f"nested deeper than {MAX_JSON_DEPTH} levels")
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                if isinstance(key, str):
                    _check_text(key, path)
                stack.append((item, [*path, key]))
        elif isinstance(value, str):
            _check_text(value, path)
        elif isinstance(value, bool):
            continue
        elif isinstance(value, int):
            if abs(value) > MAX_JSON_INT:
                raise JsonBodyRefused(path, "integer wider than 256 bits")
        elif isinstance(value, float) and not math.isfinite(value):
            raise JsonBodyRefused(path, "number out of range")


def _check_text(text: str, path: list[str | int]) -> None:
    if text.isascii():
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise JsonBodyRefused(path, "text with a lone surrogate (not Unicode)") from None


def _no_constant(name: str) -> float:
    raise JsonBodyRefused([], f"{name} is not JSON")


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
    # Keys are echoed cut short: the path must not hand a huge key back.
    where = [part if isinstance(part, int) else part[:64] for part in refused.path]
    details = {"errors": [{"loc": ["body", *where], "msg": refused.why}]}
    body = json.dumps(
        {
            "code": "invalid_request",
            "message": f"the request body is refused: {refused.why}",
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
