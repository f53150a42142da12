"""The fault proxy with no fault active: a faithful, streaming reverse proxy."""

from __future__ import annotations

import hashlib
import socket
import threading
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from tests.support.faults import Proxy, Upstream, big_body, running_proxy, running_upstream
from tests.support.metrics import exact


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    with running_upstream() as running:
        yield running


@pytest.fixture(scope="module")
def proxy(upstream: Upstream) -> Iterator[Proxy]:
    with running_proxy(upstream.url) as running:
        yield running


def test_forwards_method_path_query_body_and_headers(proxy: Proxy, upstream: Upstream) -> None:
    response = proxy.http.post(
        "/echo/a%2Fb?q=laptop&x=1&x=2",
        content=b"hello",
        headers={"X-Request-Id": "r-1", "Connection": "keep-alive, X-Private", "X-Private": "hop", "Keep-Alive": "5"},
    )
    assert response.status_code == 200
    seen = response.json()
    assert (seen["method"], seen["path_qs"]) == ("POST", "/echo/a%2Fb?q=laptop&x=1&x=2")
    assert seen["body_sha256"] == hashlib.sha256(b"hello").hexdigest()
    assert seen["headers"]["x-request-id"] == "r-1"
    assert seen["headers"]["host"] == upstream.url.removeprefix("http://")
    assert seen["headers"]["x-forwarded-host"] == proxy.url.removeprefix("http://")
    assert seen["headers"]["x-forwarded-for"] == "127.0.0.1"
    assert "x-private" not in seen["headers"] and "keep-alive" not in seen["headers"]


def test_returns_upstream_status_and_headers(proxy: Proxy) -> None:
    response = proxy.http.get("/echo?status=404")
    assert response.status_code == 404
    assert response.headers["x-upstream"] == "yes"
    assert response.headers.get_list("set-cookie") == ["a=1", "b=2"]


def test_streams_a_response_before_the_upstream_has_finished_it(proxy: Proxy, upstream: Upstream) -> None:
    upstream.gate.clear()
    with proxy.http.stream("GET", "/gated") as response:
        chunks = response.iter_raw()
        assert next(chunks) == b"first chunk\n"  # arrived while the upstream still holds the rest
        upstream.gate.set()
        assert b"".join(chunks) == b"second chunk\n"


def test_streams_a_request_body_before_the_client_has_finished_it(proxy: Proxy, upstream: Upstream) -> None:
    upstream.upload_seen.clear()

    def body() -> Iterator[bytes]:
        yield b"part one;"
        # Without streaming the upstream would see nothing until the whole body was sent.
        assert upstream.upload_seen.wait(5), "the proxy buffered the request body"
        yield b"part two"

    response = proxy.http.post("/upload-gated", content=body())
    assert response.json() == {"first": "part one;", "total": 17}


def test_a_large_body_arrives_intact(proxy: Proxy) -> None:
    size = 48 * 1024 * 1024
    digest = hashlib.sha256()
    received = 0
    with proxy.http.stream("GET", f"/big?bytes={size}") as response:
        assert response.headers["content-length"] == str(size)
        for chunk in response.iter_raw():
            digest.update(chunk)
            received += len(chunk)
    assert received == size
    assert digest.hexdigest() == hashlib.sha256(big_body(size)).hexdigest()


def test_a_large_upload_arrives_intact(proxy: Proxy) -> None:
    data = big_body(16 * 1024 * 1024)
    seen = proxy.http.put("/echo", content=data).json()
    assert (seen["body_length"], seen["body_sha256"]) == (len(data), hashlib.sha256(data).hexdigest())


def test_an_upstream_dying_mid_body_is_not_passed_off_as_complete(proxy: Proxy) -> None:
    with pytest.raises(httpx.TransportError):
        proxy.http.get("/broken")


def test_unreachable_upstream_is_a_502_and_is_counted() -> None:
    with running_proxy("http://127.0.0.1:1") as proxy:
        response = proxy.http.get("/api/search")
        assert response.status_code == 502
        assert response.json()["error"] == "upstream unreachable"
        metrics = httpx.get(f"{proxy.control_url}/metrics").text
        assert exact(metrics, "probe_proxy_requests_total", {"outcome": "upstream_error"}) == 1


def test_concurrent_requests_are_all_forwarded(proxy: Proxy) -> None:
    results: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        with httpx.Client(base_url=proxy.url) as client:
            for _ in range(20):
                status = client.get("/api/search").status_code
                with lock:
                    results.append(status)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert results == [200] * 160
    assert time.perf_counter() - start < 20


def test_expect_100_continue_is_answered_without_a_stall(proxy: Proxy) -> None:
    parts = urlsplit(proxy.url)
    assert parts.hostname and parts.port
    with socket.create_connection((parts.hostname, parts.port), timeout=0.5) as sock:
        sock.sendall(f"POST /echo HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Length: 5\r\n"
                     "Expect: 100-continue\r\nConnection: close\r\n\r\n".encode())
        assert sock.recv(100).startswith(b"HTTP/1.1 100 Continue")  # well within the 0.5 s timeout
        sock.sendall(b"hello")
        sock.settimeout(5)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200")
    assert b'"expect"' not in answer  # the upstream never saw the Expect header


def test_an_upstream_path_prefix_is_kept(upstream: Upstream) -> None:
    with running_proxy(f"{upstream.url}/echo/base/") as prefixed:
        assert prefixed.http.get("/x?y=1").json()["path_qs"] == "/echo/base/x?y=1"
