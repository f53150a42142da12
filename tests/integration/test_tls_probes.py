"""HTTPS probes against real local TLS servers with certificates made at test time: verification on by
default, ca_file, insecure_skip_verify, server_name, client certificates, certificate expiry checks and
probe_ssl_earliest_cert_expiry, and the tls phase."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiohttp import web

from tests.support.httpserver import run_agent, serve_aiohttp
from tests.support.processes import once_results, run_cli
from tests.support.tls import ServerCert, issue


async def _hello(request: web.Request) -> web.Response:
    return web.json_response({"status": "healthy"})


def _app() -> web.Application:
    app = web.Application()
    app.router.add_get("/", _hello)
    return app


@dataclass(frozen=True)
class Servers:
    good: str
    soon: str
    named: str
    mtls: str
    good_cert: ServerCert
    soon_cert: ServerCert
    named_cert: ServerCert
    client_cert: ServerCert


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    directory = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    good = issue(directory, ca=ca, prefix="good")
    soon = issue(directory, ca=ca, prefix="soon", valid_days=5)
    named = issue(directory, "search.internal", ca=ca, prefix="named")
    client = issue(directory, "probe-client", prefix="client")  # another CA: the server trusts it for clients
    with serve_aiohttp(_app(), ssl_context=good.server_context()) as good_url, \
            serve_aiohttp(_app(), ssl_context=soon.server_context()) as soon_url, \
            serve_aiohttp(_app(), ssl_context=named.server_context()) as named_url, \
            serve_aiohttp(_app(), ssl_context=good.server_context(client_ca=client.ca_file)) as mtls_url:
        yield Servers(good_url, soon_url, named_url, mtls_url, good, soon, named, client)


PROBES = """
defaults: {{interval: 30s, timeout: 3s}}
probes:
  - {{name: trusted, type: http, url: "{s.good}/", tls: {{ca_file: "{s.good_cert.ca_file}"}}}}
  - {{name: untrusted, type: http, url: "{s.good}/"}}
  - {{name: insecure, type: http, url: "{s.good}/", tls: {{insecure_skip_verify: true}}}}
  - name: server-name
    type: http
    url: "{s.named}/"
    tls: {{ca_file: "{s.named_cert.ca_file}", server_name: search.internal}}
  - {{name: server-name-missing, type: http, url: "{s.named}/", tls: {{ca_file: "{s.named_cert.ca_file}"}}}}
  - name: expiring
    type: http
    url: "{s.soon}/"
    tls: {{ca_file: "{s.soon_cert.ca_file}"}}
    expect: {{cert_expires_after: 14d}}
  - name: expiring-within-limit
    type: http
    url: "{s.soon}/"
    tls: {{ca_file: "{s.soon_cert.ca_file}"}}
    expect: {{cert_expires_after: 2d}}
  - name: expiring-kept-alive
    type: http
    url: "{s.soon}/"
    reuse_connections: true
    tls: {{ca_file: "{s.soon_cert.ca_file}"}}
    expect: {{cert_expires_after: 14d}}
  - name: client-cert
    type: http
    url: "{s.mtls}/"
    tls: {{ca_file: "{s.good_cert.ca_file}", cert_file: "{s.client_cert.cert_file}",
           key_file: "{s.client_cert.key_file}"}}
  - {{name: client-cert-missing, type: http, url: "{s.mtls}/", tls: {{ca_file: "{s.good_cert.ca_file}"}}}}
  - {{name: ca-file-garbage, type: http, url: "{s.good}/", tls: {{ca_file: "{garbage}"}}}}
  - name: scripted-https
    type: scripted
    tls: {{ca_file: "{s.good_cert.ca_file}"}}
    steps:
      - name: first
        request: {{url: "{s.good}/"}}
        extract: {{status: "$.status"}}
      - name: second
        request: {{url: "{s.good}/?seen=${{status}}"}}
        expect: {{cert_expires_after: 14d}}
"""


@pytest.fixture(scope="module")
def config(servers: Servers, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tls-config") / "agent.yaml"
    garbage = path.parent / "garbage-ca.pem"  # readable at load, not a certificate: fails at run time
    garbage.write_text("not a certificate\n")
    path.write_text(PROBES.format(s=servers, garbage=garbage))
    return path


@pytest.fixture(scope="module")
def results(config: Path) -> dict[str, dict[str, Any]]:
    return once_results(config, expect_code=1)


def test_a_certificate_from_the_configured_ca_is_trusted(results: dict[str, dict[str, Any]],
                                                         servers: Servers) -> None:
    trusted = results["trusted"]
    assert trusted["success"] is True, trusted["message"]
    assert trusted["cert_expiry"] == servers.good_cert.not_after
    assert trusted["phases"]["tls"] > 0


def test_verification_is_on_by_default(results: dict[str, dict[str, Any]]) -> None:
    untrusted = results["untrusted"]
    assert (untrusted["success"], untrusted["reason"]) == (False, "tls")
    assert "certificate verify failed" in untrusted["message"]


def test_insecure_skip_verify_accepts_it_and_still_reads_the_expiry(results: dict[str, dict[str, Any]],
                                                                    servers: Servers) -> None:
    insecure = results["insecure"]
    assert insecure["success"] is True, insecure["message"]
    assert insecure["cert_expiry"] == servers.good_cert.not_after


def test_server_name_is_the_name_verified(results: dict[str, dict[str, Any]]) -> None:
    assert results["server-name"]["success"] is True, results["server-name"]["message"]
    missing = results["server-name-missing"]
    assert (missing["success"], missing["reason"]) == (False, "tls")
    assert "127.0.0.1" in missing["message"]


def test_a_certificate_about_to_expire_fails_cert_expires_after(results: dict[str, dict[str, Any]],
                                                                servers: Servers) -> None:
    expiring = results["expiring"]
    assert (expiring["success"], expiring["reason"]) == (False, "tls")
    assert re.fullmatch(r"certificate expires in (4\.9|5\.0) days, less than 14 days", expiring["message"])
    assert expiring["cert_expiry"] == servers.soon_cert.not_after
    assert results["expiring-within-limit"]["success"] is True


def test_a_client_certificate_is_presented(results: dict[str, dict[str, Any]]) -> None:
    assert results["client-cert"]["success"] is True, results["client-cert"]["message"]
    assert results["client-cert-missing"]["success"] is False


def test_a_ca_file_that_is_no_certificate_fails_with_tls(results: dict[str, dict[str, Any]]) -> None:
    garbage = results["ca-file-garbage"]
    assert (garbage["success"], garbage["reason"]) == (False, "tls")
    assert "cannot load the TLS files" in garbage["message"]


def test_a_missing_ca_file_is_a_config_error_naming_it(tmp_path: Path, servers: Servers) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text(f'probes:\n  - {{name: x, type: http, url: "{servers.good}/",\n'
                    '       tls: {ca_file: /nonexistent/ca.pem}}\n')
    proc = run_cli("once", "--config", str(path))
    assert proc.returncode == 2
    assert proc.stderr.strip() == (f"{path}:3: probes[0].tls.ca_file: cannot read /nonexistent/ca.pem: "
                                   "No such file or directory")


def test_scripted_steps_use_the_probe_tls_settings(results: dict[str, dict[str, Any]]) -> None:
    scripted = results["scripted-https"]
    assert scripted["success"] is True, scripted["message"]
    assert [s["success"] for s in scripted["steps"]] == [True, True]
    assert scripted["phases"]["tls"] > 0


def test_expiry_metric_matches_the_certificate_and_phases_add_up(config: Path, servers: Servers) -> None:
    (results,), metrics = run_agent(str(config))
    by_name = {r.probe: r for r in results}
    for name in ("trusted", "insecure", "server-name", "expiring"):
        result = by_name[name]
        assert sum(result.phases.values()) == pytest.approx(result.duration_seconds, abs=0.002)
        assert result.phases["tls"] > 0
    expiry = dict(re.findall(r'probe_ssl_earliest_cert_expiry\{probe="([^"]+)",[^}]*\} (\S+)', metrics))
    assert float(expiry["trusted"]) == servers.good_cert.not_after
    assert float(expiry["expiring"]) == servers.soon_cert.not_after
    assert float(expiry["scripted-https"]) == servers.good_cert.not_after
    assert "untrusted" not in expiry
    assert re.search(r'probe_failures_total\{probe="expiring",[^}]*reason="tls"\} 1\n', metrics)


def test_a_kept_alive_connection_still_has_its_certificate_checked(config: Path, servers: Servers) -> None:
    rounds, metrics = run_agent(str(config), times=3)
    kept = [r for results in rounds for r in results if r.probe == "expiring-kept-alive"]
    assert [r.reason for r in kept] == ["tls", "tls", "tls"]
    assert kept[1].phases["connect"] == 0  # the connection was reused: no handshake in this run
    assert all(r.cert_expiry == servers.soon_cert.not_after for r in kept)
    assert re.search(r'probe_ssl_earliest_cert_expiry\{probe="expiring-kept-alive",[^}]*\} ', metrics)
