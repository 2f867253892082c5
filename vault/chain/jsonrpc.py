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
        body = json.dumps(
            {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params}
        ).encode()
        # One retry on a fresh connection: a kept-alive socket may have been closed by the
        # node (e.g. it restarted) since the last call.
        for attempt in (0, 1):
            try:
                conn = self._connection()
                conn.request("POST", self._path, body, {"Content-Type": "application/json"})
                response = conn.getresponse()
                payload = response.read()
                if response.status != 200:
                    raise ChainUnavailable(f"chain RPC answered HTTP {response.status}")
                reply: dict[str, Any] = json.loads(payload)
                return reply
            except ChainUnavailable:
                self._drop()
                raise
            except (OSError, http.client.HTTPException, ValueError) as exc:
                self._drop()
                if attempt:
                    raise ChainUnavailable(
                        f"chain RPC unreachable: {type(exc).__name__}"
                    ) from exc
        raise AssertionError("unreachable")
