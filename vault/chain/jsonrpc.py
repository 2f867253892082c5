"""A lean JSON-RPC caller for the consent check on every provider read.

web3's provider spends about 1 ms per call in its own machinery; a kept-alive
``http.client`` connection per thread answers the same ``eth_call`` in about 0.15 ms
(measured on Anvil here). Only the hot path uses it; everything else goes through web3.
Any transport failure raises :class:`ChainUnavailable`: the caller fails closed.
"""

from __future__ import annotations

import http.client
import itertools
import json
import threading
from typing import Any
from urllib.parse import urlsplit

from vault.errors import ChainUnavailable


class JsonRpc:
    def __init__(self, url: str, *, timeout: float = 5.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) JSON-RPC URL: {url}")
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._path = parts.path or "/"
        self._timeout = timeout
        self._local = threading.local()
        self._ids = itertools.count(1)

    def _connection(self) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is None:
            cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            conn = cls(self._host, self._port, timeout=self._timeout)
            self._local.conn = conn
        return conn

    def _drop(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
        self._local.conn = None

    def call(self, method: str, params: list[Any]) -> dict[str, Any]:
        """The decoded JSON-RPC reply (with ``result`` or ``error``)."""
        reply = self._post(
            {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params}
        )
        if not isinstance(reply, dict):
            raise ChainUnavailable("chain RPC answered a single call with a batch")
        return reply

    def batch(self, calls: list[tuple[str, list[Any]]]) -> list[dict[str, Any]]:
        """Several calls in one round trip; the replies in the order of ``calls``."""
        ids = [next(self._ids) for _ in calls]
        reply = self._post(
            [
                {"jsonrpc": "2.0", "id": i, "method": method, "params": params}
                for i, (method, params) in zip(ids, calls, strict=True)
            ]
        )
        by_id = (
            {r.get("id"): r for r in reply if isinstance(r, dict)}
            if isinstance(reply, list)
            else {}
        )
        if set(by_id) != set(ids):
            raise ChainUnavailable("chain RPC answered a batch incompletely")
        return [by_id[i] for i in ids]

    def _post(self, payload: object) -> Any:
        body = json.dumps(payload).encode()
        # One retry on a fresh connection: a kept-alive socket may have been closed by the
        # node (e.g. it restarted) since the last call.
        for attempt in (0, 1):
            try:
                conn = self._connection()
                conn.request("POST", self._path, body, {"Content-Type": "application/json"})
                response = conn.getresponse()
                payload_bytes = response.read()
                if response.status != 200:
                    raise ChainUnavailable(f"chain RPC answered HTTP {response.status}")
                return json.loads(payload_bytes)
            except ChainUnavailable:
                self._drop()
                raise
            except (OSError, http.client.HTTPException, ValueError) as exc:
                self._drop()
                if attempt:
                    raise ChainUnavailable(f"chain RPC unreachable: {type(exc).__name__}") from exc
        raise AssertionError("unreachable")
