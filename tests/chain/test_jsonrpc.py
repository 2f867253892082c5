"""The JSON-RPC client of the read path: answers from the real node, and failing closed
on every way a connection can go wrong.

The failure cases use a tiny local HTTP server that misbehaves on purpose (closes the
connection, answers 500, never answers, sends garbage): a real node cannot be made to do
each of these on demand. Success is checked against the real Anvil node.
"""

from __future__ import annotations

import json
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import pytest

from vault.chain.jsonrpc import JsonRpcClient
from vault.chain.node import AnvilProcess
from vault.errors import ChainUnavailable

#: What the misbehaving server does with one decoded request: the bytes to send back
#: (None: send nothing) and whether to close the connection afterwards.
Respond = Callable[[object], tuple[bytes | None, bool]]


class _Node(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, respond: Respond) -> None:
        super().__init__(("127.0.0.1", 0), _Connection)
        self.respond = respond
        self.connections = 0


class _Connection(socketserver.StreamRequestHandler):
    server: _Node

    def handle(self) -> None:
        self.server.connections += 1
        while True:  # one kept-alive connection, several requests
            head = b""
            while not head.endswith(b"\r\n\r\n"):
                line = self.rfile.readline()
                if not line:
                    return
                head += line
            length = next(
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            answer, close = self.server.respond(json.loads(self.rfile.read(length)))
            if answer is not None:
                self.wfile.write(answer)
                self.wfile.flush()
            if close:
                return


@contextmanager
def _serving(respond: Respond) -> Iterator[tuple[str, _Node]]:
    node = _Node(respond)
    thread = threading.Thread(target=node.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{node.server_address[1]}", node
    finally:
        node.shutdown()
        node.server_close()


def _http(body: bytes, *, status: int = 200) -> bytes:
    return (
        f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def _result(request: object, result: object = "0x1") -> bytes:
    assert isinstance(request, dict)
    return json.dumps({"jsonrpc": "2.0", "id": request["id"], "result": result}).encode()


def test_calls_and_batches_the_real_node(anvil: AnvilProcess) -> None:
    rpc = JsonRpcClient(anvil.url)
    try:
        assert rpc.call("eth_chainId", [])["result"] == "0x7a69"
        block = rpc.call("eth_getBlockByNumber", ["latest", False])["result"]
        chain_id, number = rpc.batch([("eth_chainId", []), ("eth_blockNumber", [])])
        assert chain_id["result"] == "0x7a69"
        assert int(number["result"], 16) >= int(block["number"], 16)
        refused = rpc.call("eth_noSuchMethod", [])
        assert "error" in refused  # the node's refusal is the caller's to judge
    finally:
        rpc.close()


def test_threads_share_one_client_and_each_gets_its_own_reply(anvil: AnvilProcess) -> None:
    rpc = JsonRpcClient(anvil.url)
    with ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(lambda _: rpc.call("eth_chainId", [])["result"], range(64)))
    rpc.close()
    assert set(replies) == {"0x7a69"}


def test_calls_reuse_one_kept_alive_connection() -> None:
    with _serving(lambda request: (_http(_result(request)), False)) as (url, node):
        rpc = JsonRpcClient(url)
        for _ in range(3):
            assert rpc.call("eth_blockNumber", [])["result"] == "0x1"
        rpc.close()
    assert node.connections == 1


def test_a_connection_the_node_closed_is_replaced() -> None:
    # Says nothing of closing, then goes away (a node restart): the next call reconnects.
    with _serving(lambda request: (_http(_result(request)), True)) as (url, node):
        rpc = JsonRpcClient(url)
        assert rpc.call("eth_blockNumber", [])["result"] == "0x1"
        time.sleep(0.05)
        assert rpc.call("eth_blockNumber", [])["result"] == "0x1"
        rpc.close()
    assert node.connections == 2


def test_a_batch_answered_incompletely_fails_closed() -> None:
    def first_only(request: object) -> tuple[bytes, bool]:
        assert isinstance(request, list)
        return _http(b"[" + _result(request[0]) + b"]"), False

    with _serving(first_only) as (url, _node), pytest.raises(ChainUnavailable, match="batch"):
        JsonRpcClient(url).batch([("eth_blockNumber", []), ("eth_chainId", [])])


@pytest.mark.parametrize(
    ("respond", "message"),
    [
        (lambda request: (_http(_result(request), status=500), False), "HTTP 500"),
        (lambda request: (_http(b"not{j"), False), "invalid JSON"),
        (lambda request: (_http(b"[" + _result(request) + b"]"), False), "batch"),
        (lambda request: (b"SMTP ready\r\n\r\n", True), "unreachable"),
        (lambda request: (None, True), "unreachable"),
    ],
    ids=["http-500", "not-json", "batch-for-a-call", "not-http", "hangs-up"],
)
def test_a_bad_answer_fails_closed(respond: Respond, message: str) -> None:
    with _serving(respond) as (url, _node), pytest.raises(ChainUnavailable, match=message):
        JsonRpcClient(url).call("eth_blockNumber", [])


def test_a_node_that_never_answers_times_out() -> None:
    def silent(_request: object) -> tuple[None, bool]:
        time.sleep(2)
        return None, True

    with _serving(silent) as (url, _node):
        started = time.monotonic()
        with pytest.raises(ChainUnavailable, match="Timeout"):
            JsonRpcClient(url, timeout=0.2).call("eth_blockNumber", [])
        assert time.monotonic() - started < 1.5


def test_nothing_listening_is_unavailable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # free again once closed
    with pytest.raises(ChainUnavailable, match="unreachable"):
        JsonRpcClient(f"http://127.0.0.1:{port}").call("eth_blockNumber", [])


def test_only_http_urls_are_accepted() -> None:
    for url in ("ws://127.0.0.1:8545", "/tmp/anvil.ipc", "http://"):
        with pytest.raises(ValueError, match="JSON-RPC URL"):
            JsonRpcClient(url)
