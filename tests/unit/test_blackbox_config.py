"""blackbox.yml: strict loading with FILE:LINE errors, unsupported probers named, and each http module option
converted into the agent.yaml key the README's table gives (validated by the http probe model itself)."""

from __future__ import annotations

import pytest

from probes.blackbox.config import parse_blackbox, parse_size
from probes.blackbox.convert import module_to_probe, probe_name
from probes.config.models import accepts
from probes.errors import ConfigError
from probes.probers.http import HttpProbeConfig

FULL = """\
modules:
  full:
    prober: http
    timeout: 5s
    http:
      valid_status_codes: [200, 204]
      valid_http_versions: [HTTP/1.1, HTTP/2.0]
      preferred_ip_protocol: ip4
      ip_protocol_fallback: false
      method: POST
      headers: {Host: vhost.test, Accept-Encoding: "br, gzip;q=0.9"}
      body: ping
      fail_if_ssl: false
      fail_if_not_ssl: true
      fail_if_body_matches_regexp: [error, fatal]
      fail_if_body_not_matches_regexp: [ok]
      fail_if_header_matches:
        - {header: X-Debug, regexp: ".+", allow_missing: true}
      fail_if_header_not_matches:
        - {header: Content-Type, regexp: "^text/"}
      compression: gzip
      body_size_limit: 64KB
      basic_auth: {username: probe, password_file: /etc/pw}
      proxy_url: http://127.0.0.1:3128
      tls_config: {ca_file: /etc/ca.pem, server_name: vhost.test, min_version: TLS12}
      follow_redirects: false
"""


def test_every_http_option_becomes_an_agent_yaml_key() -> None:
    module = parse_blackbox(FULL, "blackbox.yml").modules["full"]
    probe = module_to_probe("full", module, "https://127.0.0.1:8443/health")
    assert probe == {
        "name": "full", "type": "http", "url": "https://127.0.0.1:8443/health", "timeout": "5s",
        "method": "POST", "headers": {"Host": "vhost.test", "Accept-Encoding": "br, gzip;q=0.9"}, "body": "ping",
        "follow_redirects": False, "max_body_bytes": 65536, "compression": "gzip", "http_version": "2",
        "proxy_url": "http://127.0.0.1:3128", "ip_protocol": "ip4", "ip_protocol_fallback": False,
        "basic_auth": {"username": "probe", "password_file": "/etc/pw"},
        "tls": {"ca_file": "/etc/ca.pem", "server_name": "vhost.test", "min_version": "TLS12"},
        "expect": {"status": [200, 204], "http_versions": ["HTTP/1.1", "HTTP/2.0"], "ssl": True,
                   "body_matches": ["ok"], "body_not_matches": ["error", "fatal"],
                   "headers": {"content-type": "^text/"},
                   "headers_not_matching": {"x-debug": {"regex": ".+", "allow_missing": True}}},
    }
    HttpProbeConfig.model_validate(probe)


def test_targets_without_a_scheme_are_http_and_names_are_label_safe() -> None:
    module = parse_blackbox("modules: {http_2xx: {prober: http}}", "b.yml").modules["http_2xx"]
    probe = module_to_probe(probe_name("http_2xx", "example.org:8080"), module, "example.org:8080")
    assert probe["url"] == "http://example.org:8080"
    assert probe["name"] == "http_2xx-example.org_8080"
    assert "http_version" not in probe  # HTTP/2 is only offered over TLS, as Go's client does


@pytest.mark.parametrize(("text", "line", "fragment"), [
    ("modules:\n  ping:\n    prober: icmp\n", 3, "modules.ping.prober: unsupported prober 'icmp'"),
    ("modules:\n  a:\n    prober: http\n    http:\n      colour: blue\n", 5, "modules.a.http.colour"),
    ("modules:\n  a:\n    prober: http\n    http:\n      body_size_limit: 100\n", 5, "a number with a unit"),
    ("modules:\n  a:\n    prober: http\n    http:\n      compression: zip\n", 5, "modules.a.http.compression"),
    ("modules:\n  a:\n    prober: http\n    http:\n      oauth2: {client_id: x}\n", 5, "oauth2.token_url"),
    ("modules:\n  a:\n    prober: http\n    http:\n      fail_if_body_matches_regexp: ['(']\n", 5,
     "invalid regular expression"),
])
def test_bad_blackbox_files_name_the_line_and_field(text: str, line: int, fragment: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_blackbox(text, "blackbox.yml")
    message = str(caught.value)
    assert message.startswith(f"blackbox.yml:{line}: "), message
    assert fragment in message


def test_sizes_are_powers_of_1024_like_go_units() -> None:
    assert [parse_size(v) for v in ("512B", "1KB", "1KiB", "10MB")] == [512, 1024, 1024, 10 * 1024 ** 2]


@pytest.mark.parametrize(("header", "algorithm", "ok"), [
    ("gzip", "gzip", True), ("br, gzip;q=0.9", "gzip", True), ("gzip;q=0", "gzip", False),
    ("br", "gzip", False), ("*", "deflate", True), ("*;q=0, gzip", "gzip", True), ("", "br", True),
])
def test_accept_encoding_must_admit_the_compression(header: str, algorithm: str, ok: bool) -> None:
    assert accepts(header, algorithm) is ok


def test_the_shipped_example_blackbox_yml_converts() -> None:
    from pathlib import Path

    from probes.blackbox.config import load_blackbox

    config = load_blackbox(str(Path(__file__).resolve().parents[2] / "deploy/examples/blackbox.yml"))
    for name, module in config.modules.items():
        HttpProbeConfig.model_validate(module_to_probe(name, module, "https://shop.example.org/health"))
