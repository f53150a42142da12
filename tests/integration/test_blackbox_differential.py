"""probe-agent against the real blackbox_exporter 0.23, side by side on the same local servers: for a table
of http module options, the same verdict (success) and status code, from `import-blackbox` + `once` and from
the drop-in `/probe` endpoint, whose metric names and label keys must also be blackbox's."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trustme
import yaml

from probes.ports import free_port
from tests.support import blackbox_target as target
from tests.support.httpserver import serve_aiohttp
from tests.support.metrics import all_samples
from tests.support.processes import cli, run_cli, started, stop
from tests.support.tls import issue

# tests/run.sh installs Debian's prometheus-blackbox-exporter when it is missing: no skipping here.
BLACKBOX = os.environ.get("BLACKBOX_EXPORTER_BIN") or shutil.which("prometheus-blackbox-exporter") \
    or "/usr/bin/prometheus-blackbox-exporter"


@dataclass(frozen=True)
class Case:
    module: str
    http: dict[str, Any]
    server: str  # which server: http, https, vhost, h2, localhost, h2-localhost
    path: str
    success: bool
    status: int


def _localhost_has_ipv6() -> bool:
    return any(family == socket.AF_INET6 for family, *_ in socket.getaddrinfo("localhost", 80))


def cases(files: dict[str, str]) -> list[Case]:
    ca = {"tls_config": {"ca_file": files["ca"]}}
    proxy = files["proxy"]
    return [
        Case("status_200", {}, "http", "/ok", True, 200),
        Case("status_404", {}, "http", "/status/404", False, 404),
        Case("status_404_valid", {"valid_status_codes": [404]}, "http", "/status/404", True, 404),
        Case("redirects_3", {}, "http", "/redirect/3", True, 200),
        Case("redirects_10", {}, "http", "/redirect/10", True, 200),
        Case("redirects_11", {}, "http", "/redirect/11", False, 302),
        Case("no_follow", {"follow_redirects": False}, "http", "/redirect/1", False, 302),
        Case("no_follow_old_key", {"no_follow_redirects": True, "valid_status_codes": [302]}, "http",
             "/redirect/1", True, 302),
        Case("cookie_on_redirect", {}, "http", "/cookie/set", True, 200),
        Case("repeated_header_any_value", {"fail_if_header_not_matches": [{"header": "X-Multi", "regexp": "^two$"}]},
             "http", "/repeated", True, 200),
        Case("repeated_header_every_value", {"fail_if_header_matches": [{"header": "X-Multi", "regexp": "^two$"}]},
             "http", "/repeated", False, 200),
        Case("header_missing", {"fail_if_header_matches": [{"header": "X-Absent", "regexp": "x"}]},
             "http", "/ok", False, 200),
        Case("header_missing_allowed",
             {"fail_if_header_matches": [{"header": "X-Absent", "regexp": "x", "allow_missing": True}]},
             "http", "/ok", True, 200),
        Case("header_not_matches_missing_allowed",
             {"fail_if_header_not_matches": [{"header": "X-Absent", "regexp": "x", "allow_missing": True}]},
             "http", "/ok", True, 200),
        Case("body_regex_list", {"fail_if_body_not_matches_regexp": ["ok body", "decoded"]}, "http", "/ok", True, 200),
        Case("body_regex_list_one_missing", {"fail_if_body_not_matches_regexp": ["ok body", "absent"]},
             "http", "/ok", False, 200),
        Case("body_matches_fails", {"fail_if_body_matches_regexp": ["nothing", "decoded"]}, "http", "/ok", False, 200),
        Case("gzip", {"compression": "gzip", "headers": {"Accept-Encoding": "gzip"},
                      "fail_if_body_not_matches_regexp": ["decoded-text"]}, "http", "/encoded/gzip", True, 200),
        Case("gzip_not_encoded", {"compression": "gzip"}, "http", "/encoded/plain", False, 200),
        Case("br", {"compression": "br", "fail_if_body_not_matches_regexp": ["decoded-text"]},
             "http", "/encoded/br", True, 200),
        Case("deflate", {"compression": "deflate", "fail_if_body_not_matches_regexp": ["decoded-text"]},
             "http", "/encoded/deflate", True, 200),
        Case("not_decoded_without_compression", {"fail_if_body_not_matches_regexp": ["decoded-text"]},
             "http", "/encoded/gzip", False, 200),
        Case("size_within_limit", {"body_size_limit": "2KB"}, "http", "/big?size=2000", True, 200),
        Case("size_over_limit", {"body_size_limit": "1KB"}, "http", "/big?size=5000", False, 200),
        Case("size_limit_after_decoding", {"body_size_limit": "100B", "compression": "gzip"},
             "http", "/encoded/gzip", False, 200),
        Case("basic_auth", {"basic_auth": {"username": target.USER, "password": target.PASSWORD}},
             "http", "/basic", True, 200),
        Case("basic_auth_file", {"basic_auth": {"username": target.USER, "password_file": files["password"]}},
             "http", "/basic", True, 200),
        Case("basic_auth_wrong", {"basic_auth": {"username": target.USER, "password": "nope"}},
             "http", "/basic", False, 401),
        Case("bearer_token", {"bearer_token": target.TOKEN}, "http", "/bearer", True, 200),
        Case("bearer_token_file", {"bearer_token_file": files["token"]}, "http", "/bearer", True, 200),
        Case("authorization_bearer", {"authorization": {"type": "Bearer", "credentials": target.TOKEN}},
             "http", "/bearer", True, 200),
        Case("no_auth", {}, "http", "/bearer", False, 401),
        Case("oauth2", {"oauth2": {"client_id": target.CLIENT_ID, "client_secret": target.CLIENT_SECRET,
                                   "token_url": files["token_url"], "scopes": ["probe"]}},
             "http", "/bearer", True, 200),
        Case("oauth2_wrong_secret", {"oauth2": {"client_id": target.CLIENT_ID, "client_secret": "nope",
                                                "token_url": files["token_url"]}}, "http", "/bearer", False, 0),
        Case("post_body", {"method": "POST", "body": "ping"}, "http", "/post", True, 200),
        Case("get_not_post", {}, "http", "/post", False, 405),
        Case("http_1_1", {"valid_http_versions": ["HTTP/1.1"]}, "http", "/ok", True, 200),
        Case("http_2_wanted_on_1_1", {"valid_http_versions": ["HTTP/2.0"]}, "http", "/ok", False, 200),
        Case("ip4_preferred", {"preferred_ip_protocol": "ip4", "ip_protocol_fallback": False}, "http", "/ok",
             True, 200),
        # The servers listen on 127.0.0.1 only: where localhost has an IPv6 address too, ip6 is refused.
        Case("name_ip6_preferred", {"preferred_ip_protocol": "ip6"}, "localhost", "/ok",
             *((False, 0) if _localhost_has_ipv6() else (True, 200))),
        Case("name_ip4_preferred", {"preferred_ip_protocol": "ip4"}, "localhost", "/ok", True, 200),
        Case("name_ip6_only", {"preferred_ip_protocol": "ip6", "ip_protocol_fallback": False}, "localhost", "/ok",
             False, 0),
        Case("fail_if_not_ssl_plain", {"fail_if_not_ssl": True}, "http", "/ok", False, 200),
        Case("tls_ok", {**ca}, "https", "/ok", True, 200),
        Case("tls_untrusted", {}, "https", "/ok", False, 0),
        Case("tls_insecure", {"tls_config": {"insecure_skip_verify": True}}, "https", "/ok", True, 200),
        Case("fail_if_ssl", {**ca, "fail_if_ssl": True}, "https", "/ok", False, 200),
        Case("fail_if_not_ssl_tls", {**ca, "fail_if_not_ssl": True}, "https", "/ok", True, 200),
        Case("tls_min_version", {"tls_config": {"ca_file": files["ca"], "min_version": "TLS12"}}, "https", "/ok",
             True, 200),
        Case("host_header_is_server_name", {**ca, "headers": {"Host": target.VHOST}}, "vhost", "/host", True, 200),
        Case("ip_is_not_the_server_name", {**ca}, "vhost", "/host", False, 0),
        Case("server_name", {"tls_config": {"ca_file": files["ca"], "server_name": target.VHOST},
                             "headers": {"Host": target.VHOST}}, "vhost", "/host", True, 200),
        Case("http2", {**ca, "valid_http_versions": ["HTTP/2.0"]}, "h2", "/ok", True, 200),
        Case("http2_not_1_1", {**ca, "valid_http_versions": ["HTTP/1.1"]}, "h2", "/ok", False, 200),
        Case("http2_by_name", {**ca, "valid_http_versions": ["HTTP/2.0"]}, "h2-localhost", "/ok",
             *((False, 0) if _localhost_has_ipv6() else (True, 200))),
        Case("http2_off", {**ca, "enable_http2": False, "valid_http_versions": ["HTTP/1.1"]}, "h2", "/ok", True, 200),
        Case("proxy", {"proxy_url": proxy}, "http", "/via-proxy", True, 200),
        Case("no_proxy", {}, "http", "/via-proxy", False, 403),
        Case("proxy_connect_tls", {**ca, "proxy_url": proxy}, "https", "/ok", True, 200),
    ]


@dataclass
class Env:
    cases: list[Case]
    urls: dict[str, str]
    config: Path
    blackbox: str
    proxy: target.ForwardProxy

    def target(self, case: Case) -> str:
        return self.urls[case.server] + case.path


def _start_blackbox(config: Path) -> tuple[subprocess.Popen[bytes], str]:
    """blackbox_exporter cannot listen on port 0: a free port, and another one if it was taken meanwhile."""
    log = config.with_suffix(".log")
    for _ in range(5):
        port = free_port()
        with log.open("wb") as out:
            proc = subprocess.Popen([BLACKBOX, f"--config.file={config}", f"--web.listen-address=127.0.0.1:{port}"],
                                    stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"{url}/-/healthy", timeout=2):
                    return proc, url
            except OSError:
                time.sleep(0.1)
        stop(proc)
    raise RuntimeError(f"blackbox_exporter did not start:\n{log.read_text()}")


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    directory = tmp_path_factory.mktemp("blackbox")
    ca = trustme.CA()
    ip_cert = issue(directory, "127.0.0.1", "localhost", ca=ca, prefix="ip")
    vhost_cert = issue(directory, target.VHOST, ca=ca, prefix="vhost")
    (directory / "token").write_text(target.TOKEN + "\n")
    (directory / "password").write_text(target.PASSWORD)
    with serve_aiohttp(target.app()) as http_url, \
            serve_aiohttp(target.app(), ssl_context=ip_cert.server_context()) as https_url, \
            serve_aiohttp(target.app(), ssl_context=vhost_cert.server_context()) as vhost_url, \
            target.serve_http2(ip_cert.cert_file, ip_cert.key_file) as h2_url, \
            target.serve_proxy() as (proxy_url, proxy):
        files = {"ca": ip_cert.ca_file, "token": str(directory / "token"), "password": str(directory / "password"),
                 "proxy": proxy_url, "token_url": f"{http_url}/token"}
        table = cases(files)
        config = directory / "blackbox.yml"
        config.write_text(yaml.safe_dump(
            {"modules": {c.module: {"prober": "http", "timeout": "5s", "http": c.http} for c in table}}))
        proc, blackbox_url = _start_blackbox(config)
        try:
            localhost = http_url.replace("127.0.0.1", "localhost")
            yield Env(table, {"http": http_url, "https": https_url, "vhost": vhost_url, "h2": h2_url,
                              "localhost": localhost, "h2-localhost": h2_url.replace("127.0.0.1", "localhost")},
                      config, blackbox_url, proxy)
        finally:
            stop(proc)


def probe(base: str, module: str, url: str) -> str:
    query = urllib.parse.urlencode({"module": module, "target": url})
    with urllib.request.urlopen(f"{base}/probe?{query}", timeout=20) as resp:
        return str(resp.read().decode())


def facts(text: str) -> tuple[bool, int, dict[str, frozenset[str]]]:
    """probe_success, probe_http_status_code, and each metric's label keys."""
    values: dict[str, float] = {}
    keys: dict[str, frozenset[str]] = {}
    for name, labels, value in all_samples(text):
        values.setdefault(name, value)
        keys[name] = keys.get(name, frozenset()) | frozenset(labels)
    return values["probe_success"] == 1, int(values["probe_http_status_code"]), keys


def test_blackbox_exporter_itself_gives_the_expected_verdicts(env: Env) -> None:
    """The table's expectations are blackbox's answers (so a change in the reference shows up here first)."""
    got = {c.module: facts(probe(env.blackbox, c.module, env.target(c)))[:2] for c in env.cases}
    assert got == {c.module: (c.success, c.status) for c in env.cases}


def test_imported_probes_agree_with_blackbox(env: Env, tmp_path: Path) -> None:
    targets = [f"--target={c.module}={env.target(c)}" for c in env.cases]
    converted = run_cli("import-blackbox", str(env.config), *targets)
    assert converted.returncode == 0, converted.stderr
    agent_yaml = tmp_path / "agent.yaml"
    agent_yaml.write_text(converted.stdout)
    proc = run_cli("once", "--config", str(agent_yaml), "--format", "json", timeout=120)
    assert "Traceback" not in proc.stderr, proc.stderr
    probes = yaml.safe_load(converted.stdout)["probes"]
    results = {r["probe"]: r for r in json.loads(proc.stdout)}
    got = {c.module: (results[p["name"]]["success"], results[p["name"]]["status_code"])
           for c, p in zip(env.cases, probes, strict=True)}
    assert got == {c.module: (c.success, c.status) for c in env.cases}


def test_drop_in_probe_endpoint_answers_like_blackbox(env: Env, tmp_path: Path) -> None:
    agent_yaml = tmp_path / "agent.yaml"
    agent_yaml.write_text("probes: []\n")
    with started(cli("run", "--config", str(agent_yaml), "--blackbox-config", str(env.config),
                     "--listen", "127.0.0.1:0"), expect=["agent"]) as agent:
        base = agent.urls["agent"]
        differences = []
        for case in env.cases:
            url = env.target(case)
            ours_success, ours_status, ours_keys = facts(probe(base, case.module, url))
            theirs_success, theirs_status, theirs_keys = facts(probe(env.blackbox, case.module, url))
            if (ours_success, ours_status) != (theirs_success, theirs_status):
                differences.append(f"{case.module}: ours {ours_success, ours_status}, "
                                   f"blackbox {theirs_success, theirs_status}")
            if ours_keys != theirs_keys:
                differences.append(f"{case.module}: names/labels differ: "
                                   f"only ours {sorted(set(ours_keys.items()) - set(theirs_keys.items()))}, "
                                   f"only blackbox {sorted(set(theirs_keys.items()) - set(ours_keys.items()))}")
        assert not differences, "\n".join(differences)
        assert env.proxy.connects > 0 and env.proxy.forwarded > 0
        debug = urllib.request.urlopen(f"{base}/probe?module=status_200&target="
                                       f"{urllib.parse.quote(env.urls['http'] + '/ok')}&debug=true", timeout=20)
        text = debug.read().decode()
        assert "Metrics that would have been returned:" in text and "probe_success 1" in text
        with pytest.raises(urllib.error.HTTPError) as unknown:
            urllib.request.urlopen(f"{base}/probe?module=nope&target=x", timeout=20)
        assert unknown.value.code == 400
