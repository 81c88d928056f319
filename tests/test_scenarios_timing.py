"""The transport times an answer to its arrival, not to when the busy loop read it: a server
in another process answers in 20 ms, and this process's loop is blocked for 0.1 s meanwhile."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator

import gevent
import pytest

from tests.locust_inprocess import Events
from velro_perf.scenarios.http import Transport

SERVER = """
import socket, sys, time
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen()
print(srv.getsockname()[1], flush=True)
conn, _ = srv.accept()
while True:
    data = b""
    while b"\\r\\n\\r\\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            sys.exit(0)
        data += chunk
    time.sleep(0.02)  # the client's greenlet waits for the answer
    conn.sendall(b"HTTP/1.1 200 OK\\r\\ncontent-length: 2\\r\\n\\r\\nok")
"""


@pytest.fixture
def base() -> Iterator[str]:
    with subprocess.Popen(
        [sys.executable, "-c", SERVER], stdout=subprocess.PIPE, text=True
    ) as server:
        assert server.stdout is not None
        yield f"http://127.0.0.1:{server.stdout.readline().strip()}"
        server.kill()


def test_an_answer_that_waited_for_a_blocked_loop_is_timed_to_its_arrival(base: str) -> None:
    transport = Transport(base, Events().request)
    assert transport.send("GET", "/warm", None, {}).status == 200  # the connection is open

    # starts once the request is out and its greenlet waits: the whole loop stops for 0.1 s,
    # as a long check or a file write stops it, while the answer comes
    blocker = gevent.spawn(time.sleep, 0.1)
    began = time.perf_counter()
    answer = transport.send("GET", "/", None, {})
    wall_ms = (time.perf_counter() - began) * 1000
    blocker.join()
    transport.close()
    assert (answer.status, answer.content) == (200, b"ok")
    assert wall_ms > 100  # the greenlet read it after the block
    assert 15 < answer.elapsed_ms < 60, answer.elapsed_ms  # the kernel saw it arrive at ~20 ms
    assert abs(answer.started - time.time()) < 1
