"""The raw JSON-RPC callers of the read path: answers from the real node, and failing
closed on every way a connection can go wrong.

The failure cases use a tiny local HTTP server that misbehaves on purpose (closes the
connection, answers 500, never answers, sends garbage): a real node cannot be made to do
each of these on demand. Success is checked against the real Anvil node.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

import pytest
import uvloop

from vault.chain.jsonrpc import AsyncJsonRpc
from vault.chain.node import AnvilProcess
from vault.errors import ChainUnavailable

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@asynccontextmanager
async def _server(handler: Handler) -> AsyncIterator[str]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()


async def _read_request(reader: asyncio.StreamReader) -> dict[str, object]:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    decoded: dict[str, object] = json.loads(await reader.readexactly(length))
    return decoded


def _answer(request: dict[str, object], *, status: int = 200, close: bool = False) -> bytes:
    body = json.dumps({"jsonrpc": "2.0", "id": request["id"], "result": "0x1"}).encode()
    connection = b"close" if close else b"keep-alive"
    return (
        f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n".encode()
        + b"Connection: "
        + connection
        + f"\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        + body
    )


@pytest.mark.parametrize("run", [asyncio.run, uvloop.run], ids=["asyncio", "uvloop"])
def test_calls_the_real_node_over_one_kept_alive_connection(
    anvil: AnvilProcess, run: Callable[[Coroutine[Any, Any, list[str]]], list[str]]
) -> None:
    async def main() -> list[str]:
        rpc = AsyncJsonRpc(anvil.url)
        replies = [await rpc.call("eth_chainId", []) for _ in range(3)]
        block = await rpc.call("eth_getBlockByNumber", ["latest", False])
        assert len(rpc._idle[asyncio.get_running_loop()]) == 1  # reused, not reopened
        await rpc.aclose()
        return [str(r["result"]) for r in replies] + [str(block["result"]["hash"])[:2]]

    assert run(main()) == ["0x7a69", "0x7a69", "0x7a69", "0x"]


def test_concurrent_calls_each_get_their_own_reply(anvil: AnvilProcess) -> None:
    async def main() -> set[str]:
        rpc = AsyncJsonRpc(anvil.url)
        replies = await asyncio.gather(*(rpc.call("eth_chainId", []) for _ in range(8)))
        await rpc.aclose()
        return {str(r["result"]) for r in replies}

    assert asyncio.run(main()) == {"0x7a69"}


def test_a_connection_the_node_closed_is_retried_on_a_fresh_one() -> None:
    connections = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        writer.write(_answer(await _read_request(reader)))
        await writer.drain()
        writer.close()  # says keep-alive, then goes away (a node restart)

    async def main() -> None:
        async with _server(handler) as url:
            rpc = AsyncJsonRpc(url)
            assert (await rpc.call("eth_blockNumber", []))["result"] == "0x1"
            await asyncio.sleep(0.05)
            assert (await rpc.call("eth_blockNumber", []))["result"] == "0x1"

    asyncio.run(main())
    assert connections == 2


@pytest.mark.parametrize(
    ("respond", "message"),
    [
        (lambda request: _answer(request, status=500), "HTTP 500"),
        (lambda request: b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nnot{j", "invalid JSON"),
        (lambda request: b"SMTP ready\r\n\r\n", "unreachable"),
    ],
    ids=["http-500", "not-json", "not-http"],
)
def test_a_bad_answer_fails_closed(
    respond: Callable[[dict[str, object]], bytes], message: str
) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(respond(await _read_request(reader)))
        await writer.drain()
        await asyncio.sleep(0.2)
        writer.close()

    async def main() -> None:
        async with _server(handler) as url:
            with pytest.raises(ChainUnavailable, match=message):
                await AsyncJsonRpc(url).call("eth_blockNumber", [])

    asyncio.run(main())


def test_a_node_that_never_answers_times_out() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        await asyncio.sleep(5)
        writer.close()

    async def main() -> None:
        async with _server(handler) as url:
            with pytest.raises(ChainUnavailable, match="TimeoutError"):
                await AsyncJsonRpc(url, timeout=0.2).call("eth_blockNumber", [])

    asyncio.run(main())


def test_nothing_listening_is_unavailable() -> None:
    async def main() -> None:
        async with _server(lambda r, w: asyncio.sleep(0)) as url:
            pass  # the port is free again
        with pytest.raises(ChainUnavailable, match="unreachable"):
            await AsyncJsonRpc(url).call("eth_blockNumber", [])

    asyncio.run(main())
