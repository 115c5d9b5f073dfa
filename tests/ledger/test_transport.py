"""Transient connection failures between the client and a real anvil node."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from urllib.parse import urlparse

import pytest

from gridledger.errors import ChainUnavailable
from tests.ledger.conftest import deploy
from tests.support.services import Service


class FlakyProxy:
    """A TCP proxy in front of the node that resets the next `drops` requests it sees."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.drops = 0
        self.dropped = 0
        self._lock = threading.Lock()
        self._server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._server.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._server.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _take_drop(self) -> bool:
        with self._lock:
            if self.drops <= 0:
                return False
            self.drops -= 1
            self.dropped += 1
            return True

    def _serve(self, client: socket.socket) -> None:
        upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
        threading.Thread(target=_pipe, args=(upstream, client), daemon=True).start()
        while chunk := _recv(client):
            if self._take_drop():
                # SO_LINGER 0: close with a TCP reset, as a crashed load balancer would.
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
                break
            upstream.sendall(chunk)
        client.close()
        upstream.close()


def _recv(sock: socket.socket) -> bytes:
    try:
        return sock.recv(65536)
    except OSError:
        return b""


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    while chunk := _recv(source):
        try:
            sink.sendall(chunk)
        except OSError:
            return


@pytest.fixture
def proxy(anvil_server: Service) -> Iterator[FlakyProxy]:
    port = urlparse(anvil_server.url).port
    assert port is not None
    flaky = FlakyProxy(port)
    yield flaky
    flaky.close()


@pytest.mark.anvil
def test_reads_and_sends_survive_a_few_connection_resets(proxy: FlakyProxy) -> None:
    ledger = deploy(proxy.url)
    proxy.drops = 2
    ledger.commit_interval(1_700_000_100, b"\1" * 32, b"\2" * 32, b"\3" * 32, 1, 1)
    proxy.drops = 2
    assert ledger.interval(1_700_000_100).committed
    assert proxy.dropped == 4
    assert ledger.stats.by_function["commitInterval"][0] == 1  # sent once, not twice


@pytest.mark.anvil
def test_a_node_that_keeps_failing_is_unavailable(proxy: FlakyProxy) -> None:
    ledger = deploy(proxy.url)
    proxy.drops = 1_000
    with pytest.raises(ChainUnavailable, match=proxy.url.removeprefix("http://")):
        ledger.escrow_of(ledger.deployment.grid_operator)
    assert 1 < proxy.dropped < 10  # bounded retries, not a loop


@pytest.mark.anvil
def test_confirmations_wait_for_later_blocks(anvil_server: Service) -> None:
    """With confirmations=2 a transaction returns only once two more blocks are mined."""
    import requests

    stop = threading.Event()

    def mine() -> None:
        while not stop.wait(0.02):
            requests.post(anvil_server.url, json={"jsonrpc": "2.0", "id": 1, "method": "evm_mine"})

    miner = threading.Thread(target=mine, daemon=True)
    miner.start()
    try:
        ledger = deploy(anvil_server.url, confirmations=2)
        result = ledger.commit_interval(1_700_000_100, b"\1" * 32, b"\2" * 32, b"\3" * 32, 1, 1)
        assert ledger.block_number >= result.block_number + 2
    finally:
        stop.set()
        miner.join()
