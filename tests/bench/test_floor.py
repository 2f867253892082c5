"""The floor at concurrency 1 (`vault.bench.floor`): its arithmetic, its parts, its failure."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from vault.bench.api import Cell, Row, _floor_lines
from vault.bench.floor import Floor, audit_commits, floor_lines, head_request
from vault.errors import InvalidInput


def test_the_ceiling_is_the_bare_request_over_the_least_an_enforced_read_takes() -> None:
    floor = Floor(node_round_trip_ms=0.15, audit_commit_ms=0.05, round_trips=500, commits=500)
    assert floor.read_ms(0.2) == pytest.approx(0.4)
    assert floor.ceiling(0.2) == pytest.approx(0.5)
    lines = "\n".join(floor_lines(floor, bare_ms=0.2, enforced_ms=0.6))
    assert re.search(r"= at least +0\.400 ms per enforced read", lines)
    assert "can reach at most 0.50 at concurrency 1" in lines
    assert re.search(r"took +0\.600 ms: 0\.200 ms above the floor", lines)


def test_the_head_request_is_the_json_rpc_call_the_read_path_makes() -> None:
    host, port, request = head_request("http://127.0.0.1:8545")
    head, _, body = request.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert (host, port) == ("127.0.0.1", 8545)
    assert lines[0] == "POST / HTTP/1.1"
    assert f"Content-Length: {len(body)}" in lines
    call = json.loads(body)
    assert (call["method"], call["params"]) == ("eth_getBlockByNumber", ["latest", False])
    # A node behind a path (a hosted RPC endpoint) is asked on that path.
    assert head_request("https://rpc.example/v2/key")[2].startswith(b"POST /v2/key HTTP/1.1")
    assert head_request("https://rpc.example/v2/key")[1] == 443
    for wrong in ("http://[::1", "ftp://node:8545", "node:8545", ""):
        with pytest.raises(InvalidInput, match="node URL"):
            head_request(wrong)


def test_audit_commits_are_timed_on_a_scratch_log_that_is_gone_afterwards(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    took = audit_commits(samples=25, seconds=5.0)
    assert len(took) == 25 and all(t > 0 for t in took)
    assert list(tmp_path.iterdir()) == []


def test_a_node_that_does_not_answer_leaves_the_floor_unmeasured_not_the_run_failed() -> None:
    alone = Row(*(Cell(label, 1, latencies=[0.001] * 10, elapsed=0.01) for label in "abc"))
    lines = _floor_lines("http://127.0.0.1:1", alone, seconds=1.0)
    assert len(lines) == 2 and lines[1].startswith("floor at concurrency 1: not measured (")
    assert "127.0.0.1:1" in lines[1]


def test_a_cell_that_answered_nothing_leaves_the_floor_unmeasured() -> None:
    answered = Cell("enforced", 1, latencies=[0.001] * 10, elapsed=0.01)
    silent = Cell("bare", 1, failures=10, elapsed=0.01)
    lines = _floor_lines("http://127.0.0.1:1", Row(answered, silent, answered), seconds=1.0)
    assert lines == ["", "floor at concurrency 1: not measured (a cell answered no request)"]
