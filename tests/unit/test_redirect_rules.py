"""The next request of a redirect, by Go's client rules (what blackbox_exporter does), and the run's cookies."""

from __future__ import annotations

import asyncio

from probes.probers._http.redirects import HopRequest, RunCookies, next_request, with_cookies


def _post() -> HopRequest:
    return HopRequest("POST", "http://a.test:8080/form?x=1", {"Authorization": "Bearer t", "Host": "vhost.test",
                                                                "Content-Type": "text/plain"},
                      data=b"ping", server_hostname="vhost.test")


def test_303_and_302_turn_a_post_into_a_get_without_body() -> None:
    for status in (301, 302, 303):
        nxt = next_request(_post(), status, "/done")
        assert nxt is not None
        assert (nxt.method, nxt.url, nxt.data) == ("GET", "http://a.test:8080/done", None)
        assert "Content-Type" not in nxt.headers


def test_307_and_308_keep_method_and_body() -> None:
    for status in (307, 308):
        nxt = next_request(_post(), status, "/again")
        assert nxt is not None and (nxt.method, nxt.data) == ("POST", b"ping")


def test_credentials_and_host_stay_with_the_original_host() -> None:
    same = next_request(_post(), 302, "/relative")
    assert same is not None
    assert same.headers["Authorization"] == "Bearer t" and same.headers["Host"] == "vhost.test"
    assert same.server_hostname == "vhost.test"
    other = next_request(_post(), 302, "http://b.test/elsewhere")
    assert other is not None
    assert "Authorization" not in other.headers and "Host" not in other.headers
    assert other.server_hostname is None


def test_not_a_redirect_without_location_or_with_another_status() -> None:
    assert next_request(_post(), 302, None) is None
    assert next_request(_post(), 300, "/x") is None
    assert next_request(_post(), 304, "/x") is None


def test_cookies_go_to_the_next_request_of_the_same_host_only() -> None:
    async def jar() -> RunCookies:  # aiohttp's jar is made inside the running loop, as in a probe run
        return RunCookies()

    cookies = asyncio.run(jar())
    cookies.store(["session=abc; Path=/", "other=1; Path=/private"], "http://127.0.0.1:8080/login")
    req = with_cookies(HopRequest("GET", "http://127.0.0.1:8080/home", {"Cookie": "mine=1"}), cookies)
    assert req.headers["Cookie"] == "mine=1; session=abc"
    elsewhere = with_cookies(HopRequest("GET", "http://127.0.0.2:8080/home"), cookies)
    assert "Cookie" not in elsewhere.headers
