"""An oversized body over a real socket: urllib, which sends the whole body before it reads (and asks for
`Connection: close`, so the server closes right after its answer), gets the 413 and its JSON, not a reset.

The app is the real one (every middleware) with a pipeline that never loads, so no model is needed: the size
limit answers before any route would.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator

import pytest
import uvicorn

import service.middleware
from qa.pipeline import QAPipeline
from service.app import create_app
from service.settings import ServiceSettings

LIMIT = 256 * 1024
BODY_BYTES = 5 * 1024 * 1024


class NeverLoaded(QAPipeline):
    """/ask would say 503; the size limit must answer first."""

    def warm_up(self, build_if_missing: bool | str = False, say: Callable[[str], None] = lambda _m: None) -> None:
        raise RuntimeError("no models in this test")


@pytest.fixture(scope="module")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    settings = ServiceSettings(
        index_dir=tmp_path_factory.mktemp("no-index"),
        max_body_bytes=LIMIT,
        warm_up_in_background=True,
        api_key=None,
        admin_api_key=None,
        cors_origins=[],
        _env_file=None,
    )
    app = create_app(settings, pipeline=NeverLoaded(settings))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="critical", access_log=False, lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


def chunked(body: bytes, size: int = 64 * 1024) -> Iterator[bytes]:
    for i in range(0, len(body), size):
        yield body[i : i + size]


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_urllib_reads_the_413_of_a_5_mb_body(server_url: str, framing: str) -> None:
    body = b'{"question": "' + b"a" * BODY_BYTES + b'"}'
    data = body if framing == "content-length" else chunked(body)  # an iterable: urllib sends it chunked
    request = urllib.request.Request(
        server_url + "/ask", data=data, headers={"Content-Type": "application/json"}, method="POST"
    )
    t0 = time.monotonic()
    with pytest.raises(urllib.error.HTTPError) as caught:  # a reset connection is a URLError, not an HTTPError
        urllib.request.urlopen(request, timeout=30)
    assert caught.value.code == 413
    assert json.loads(caught.value.read()) == {"detail": f"request body is larger than the limit of {LIMIT} bytes"}
    assert time.monotonic() - t0 < 20


def test_the_connection_is_usable_after_a_drained_413(server_url: str) -> None:
    """Draining keeps a keep-alive connection usable: the next request goes over the same socket."""
    host, port = server_url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request("POST", "/ask", body=b"x" * (LIMIT + 1), headers={"Content-Type": "application/json"})
        first = conn.getresponse()
        assert first.status == 413
        assert not first.will_close  # kept alive: nothing of the body is left unread
        first.read()
        sock = conn.sock
        conn.request("GET", "/health")
        assert conn.getresponse().status == 200
        assert conn.sock is sock
    finally:
        conn.close()


def raw_reply(server_url: str, head: bytes) -> bytes:
    """Send request headers only, no body, and return the first bytes the server answers."""
    with socket.create_connection(("127.0.0.1", int(server_url.rsplit(":", 1)[1])), timeout=30) as s:
        s.sendall(head)
        return s.recv(65536)


def test_a_body_over_the_drain_bound_is_not_waited_for(server_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past DRAIN_MAX_BYTES the 413 goes out at once by Content-Length: nothing waits for gigabytes to arrive."""
    monkeypatch.setattr(service.middleware, "DRAIN_MAX_BYTES", LIMIT * 2)
    head = f"POST /ask HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {LIMIT * 4}\r\n\r\n"
    assert raw_reply(server_url, head.encode()).startswith(b"HTTP/1.1 413")


def test_a_client_expecting_100_continue_is_refused_before_it_sends(server_url: str) -> None:
    """Reading the body would make the server say 100 Continue and invite 5 MB only to discard them."""
    head = (
        "POST /ask HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nExpect: 100-continue\r\n"
        f"Content-Length: {BODY_BYTES}\r\n\r\n"
    )
    assert raw_reply(server_url, head.encode()).startswith(b"HTTP/1.1 413")
