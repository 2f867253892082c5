"""JSON-RPC over HTTP to the chain node for the consent check of every provider read.

One urllib3 connection pool per registry client (urllib3 is the HTTP stack under web3's
own provider): kept-alive connections, shared by threads. The rest of the chain code goes
through web3.py; these few calls (the head, the consent view, a batch of two views pinned
to one block) are sent raw because they are made on every provider read. CPU per
``eth_getBlockByNumber`` against the same Anvil node (2,000 calls in one process, a loaded
machine): web3's provider about 0.6 ms, ``httpx.Client`` 0.42 ms, ``httpx.AsyncClient``
0.96 ms, aiohttp 0.14 ms (but a session per event loop to open and close), this pool
0.18 ms. The calls block: the consent gate runs them in worker threads. Any transport
failure, timeout, HTTP error or malformed reply raises :class:`ChainUnavailable`: the
caller fails closed.
"""

from __future__ import annotations

import itertools
import json
from typing import Any
from urllib.parse import urlsplit

import urllib3
from urllib3.exceptions import HTTPError

from vault.chain.rpc import RPC_TIMEOUT_SECONDS
from vault.errors import ChainUnavailable

Reply = dict[str, Any]  # one decoded JSON-RPC reply, with ``result`` or ``error``

#: Kept-alive connections per pool: the API's worker threads share them, and one more
#: is opened (and not kept) when all are busy.
POOL_CONNECTIONS = 16


class JsonRpcClient:
    """Calls and batches to one JSON-RPC endpoint. Thread-safe."""

    def __init__(self, url: str, *, timeout: float = RPC_TIMEOUT_SECONDS) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) JSON-RPC URL: {url!r}")
        self._path = parts.path or "/"
        # No retries: an unreachable node must fail the read at once, not after a backoff.
        # (A kept-alive connection the node has closed is noticed before reuse.)
        self._pool = urllib3.connection_from_url(
            url, maxsize=POOL_CONNECTIONS, timeout=timeout, retries=False
        )
        self._ids = itertools.count(1)

    def call(self, method: str, params: list[Any]) -> Reply:
        """The node's reply to one call. Raises :class:`ChainUnavailable`."""
        reply = self._post(_request(next(self._ids), method, params))
        if not isinstance(reply, dict):
            raise ChainUnavailable("chain RPC answered a single call with a batch")
        return reply

    def batch(self, calls: list[tuple[str, list[Any]]]) -> list[Reply]:
        """Several calls in one round trip; the replies in the order of ``calls``."""
        ids = [next(self._ids) for _ in calls]
        reply = self._post(
            [_request(i, method, params) for i, (method, params) in zip(ids, calls, strict=True)]
        )
        by_id = (
            {r.get("id"): r for r in reply if isinstance(r, dict)}
            if isinstance(reply, list)
            else {}
        )
        if set(by_id) != set(ids):
            raise ChainUnavailable("chain RPC answered a batch incompletely")
        return [by_id[i] for i in ids]

    def close(self) -> None:
        self._pool.close()

    def _post(self, payload: object) -> object:
        try:
            response = self._pool.urlopen(
                "POST",
                self._path,
                body=json.dumps(payload).encode(),
                headers={"Content-Type": "application/json"},
            )
        except (HTTPError, OSError) as exc:  # connect, read, timeout, protocol: unreachable
            raise ChainUnavailable(f"chain RPC unreachable: {type(exc).__name__}") from exc
        if response.status != 200:
            raise ChainUnavailable(f"chain RPC answered HTTP {response.status}")
        try:
            decoded: object = json.loads(response.data)
        except ValueError as exc:
            raise ChainUnavailable("chain RPC answered with invalid JSON") from exc
        return decoded


def _request(call_id: int, method: str, params: list[Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": call_id, "method": method, "params": params}
