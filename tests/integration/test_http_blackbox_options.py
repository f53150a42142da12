"""The http prober's blackbox_exporter options from agent.yaml, against a real local server: redirects
counted like blackbox (N followed, the N+1th fails), a cookie jar per run, the real status of a body over the
limit, blackbox's metric names on /metrics, the new keys validated at load, and `import-blackbox`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import blackbox_target as target
from tests.support.httpserver import run_agent, serve_aiohttp
from tests.support.metrics import samples, value
from tests.support.processes import run_cli


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with serve_aiohttp(target.app()) as base:
        yield base


def _config(tmp_path: Path, probes: str) -> str:
    path = tmp_path / "agent.yaml"
    path.write_text("defaults: {interval: 30s, timeout: 5s}\nprobes:\n" + probes)
    return str(path)


def test_max_redirects_follows_n_and_fails_at_n_plus_one(url: str, tmp_path: Path) -> None:
    config = _config(tmp_path, f"""
  - {{name: two-of-two, type: http, url: "{url}/redirect/2", max_redirects: 2}}
  - {{name: three-of-two, type: http, url: "{url}/redirect/3", max_redirects: 2}}
  - {{name: none-allowed, type: http, url: "{url}/redirect/1", max_redirects: 0}}
  - {{name: loop-default, type: http, url: "{url}/redirect/50"}}
""")
    (results,), metrics = run_agent(config)
    by_name = {r.probe: r for r in results}
    assert by_name["two-of-two"].success and by_name["two-of-two"].status_code == 200
    for name, redirects in (("three-of-two", 3), ("none-allowed", 1), ("loop-default", 11)):
        result = by_name[name]
        assert (result.success, result.reason, result.status_code) == (False, "redirect", 302), result
        assert value(metrics, "probe_http_redirects", probe=name) == redirects
    assert value(metrics, "probe_http_redirects", probe="two-of-two") == 2


def test_a_cookie_set_on_a_redirect_reaches_its_target_but_never_the_next_run(url: str, tmp_path: Path) -> None:
    config = _config(tmp_path, f"""
  - {{name: login-redirect, type: http, url: "{url}/cookie/set"}}
  - {{name: needs-cookie, type: http, url: "{url}/cookie/check", expect: {{status: [400]}}}}
""")
    rounds, _ = run_agent(config, times=2)
    for results in rounds:
        by_name = {r.probe: r for r in results}
        assert by_name["login-redirect"].success, by_name["login-redirect"].message
        assert by_name["needs-cookie"].success  # 400: no cookie carried over from a run before
        assert by_name["needs-cookie"].status_code == 400


def test_body_over_the_limit_keeps_the_real_status(url: str, tmp_path: Path) -> None:
    config = _config(tmp_path, f"""
  - {{name: big, type: http, url: "{url}/big?size=5000", max_body_bytes: 1000}}
""")
    (results,), metrics = run_agent(config)
    assert (results[0].success, results[0].reason, results[0].status_code) == (False, "body_too_large", 200)
    assert value(metrics, "probe_http_status_code", probe="big") == 200


def test_blackbox_metric_names_are_exported_per_probe(url: str, tmp_path: Path) -> None:
    config = _config(tmp_path, f"""
  - name: gzip
    type: http
    url: "{url}/encoded/gzip"
    compression: gzip
    headers: {{Accept-Encoding: gzip}}
    expect: {{body_matches: [decoded-text, "ok body"], headers: {{x-multi: {{regex: never, allow_missing: true}}}}}}
  - {{name: regex-fails, type: http, url: "{url}/ok", expect: {{body_not_matches: [absent, decoded]}}}}
  - {{name: repeated, type: http, url: "{url}/repeated", expect: {{headers: {{x-multi: "^two$"}}}}}}
""")
    (results,), metrics = run_agent(config)
    by_name = {r.probe: r for r in results}
    assert by_name["gzip"].success, by_name["gzip"].message
    assert by_name["repeated"].success, by_name["repeated"].message  # the second value matches
    assert not by_name["regex-fails"].success
    assert value(metrics, "probe_failed_due_to_regex", probe="regex-fails") == 1
    assert value(metrics, "probe_failed_due_to_regex", probe="gzip") == 0
    assert value(metrics, "probe_http_uncompressed_body_length", probe="gzip") == len(target.TEXT)
    assert 0 < value(metrics, "probe_http_content_length", probe="gzip") < len(target.TEXT)  # type: ignore[operator]
    assert value(metrics, "probe_http_version", probe="gzip") == 1.1
    assert value(metrics, "probe_http_ssl", probe="gzip") == 0
    assert value(metrics, "probe_ip_protocol", probe="gzip") == 4
    assert value(metrics, "probe_http_last_modified_timestamp_seconds", probe="regex-fails") == 1445412480
    labels = {k for labels, _ in samples(metrics, "probe_http_redirects") for k in labels}
    assert labels == {"probe", "type", "region", "agent"}


@pytest.mark.parametrize(("probe", "field", "fragment"), [
    ("compression: zip", "probes[0].compression", "should be"),
    ("basic_auth: {username: a, password: b}\n    bearer_token: t", "probes[0]", "give only one of basic_auth, "
                                                                                  "bearer_token"),
    ("compression: gzip\n    headers: {Accept-Encoding: br}", "probes[0]", "not acceptable"),
    ("expect: {http_versions: [HTTP/3]}", "probes[0].expect.http_versions[0]", "should be"),
    ("expect: {headers_not_matching: {x-a: '('}}", "probes[0].expect.headers_not_matching", "invalid regular"),
    ("proxy_url: socks5://127.0.0.1:1080", "probes[0].proxy_url", "not an http:// or https:// URL"),
    ("tls: {min_version: TLS9}", "probes[0].tls.min_version", "should be"),
])
def test_new_keys_are_checked_at_load(tmp_path: Path, probe: str, field: str, fragment: str) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text(f"probes:\n  - name: p\n    type: http\n    url: http://127.0.0.1:1/\n    {probe}\n")
    proc = run_cli("check-config", str(path))
    assert proc.returncode == 2, proc.stdout
    assert "Traceback" not in proc.stderr
    assert f"{path}:" in proc.stderr and f" {field}: " in proc.stderr and fragment in proc.stderr, proc.stderr


def test_import_blackbox_prints_a_loadable_config_and_refuses_other_probers(tmp_path: Path) -> None:
    blackbox = tmp_path / "blackbox.yml"
    blackbox.write_text("modules:\n  http_2xx: {prober: http, http: {valid_status_codes: [200]}}\n"
                        "  ping: {prober: icmp}\n")
    proc = run_cli("import-blackbox", str(blackbox), "--target", "http_2xx=example.org")
    assert proc.returncode == 2 and "unsupported prober 'icmp'" in proc.stderr, proc.stderr
    blackbox.write_text("modules:\n  http_2xx: {prober: http, http: {valid_status_codes: [200]}}\n")
    proc = run_cli("import-blackbox", str(blackbox), "--target", "http_2xx=example.org",
                   "--target", "http_2xx=https://example.org/health")
    assert proc.returncode == 0, proc.stderr
    agent_yaml = tmp_path / "agent.yaml"
    agent_yaml.write_text(proc.stdout)
    checked = run_cli("check-config", str(agent_yaml))
    assert checked.returncode == 0 and "OK (2 probes)" in checked.stdout, checked.stderr
    unknown = run_cli("import-blackbox", str(blackbox), "--target", "tcp_connect=example.org:22")
    assert unknown.returncode == 2 and "no module 'tcp_connect'" in unknown.stderr
    proc = run_cli("run", "--config", str(agent_yaml), "--blackbox-config", str(tmp_path / "missing.yml"))
    assert proc.returncode == 2 and "cannot read" in proc.stderr, proc.stderr
    blackbox.write_text("modules:\n  http_2xx: {prober: http}\n  dns_udp: {prober: dns}\n")
    proc = run_cli("run", "--config", str(agent_yaml), "--blackbox-config", str(blackbox))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert f"{blackbox}:3: modules.dns_udp.prober: unsupported prober 'dns'" in proc.stderr


def test_the_relabelling_example_is_a_valid_prometheus_config() -> None:
    import shutil
    import subprocess

    promtool = shutil.which("promtool") or "/usr/bin/promtool"
    example = Path(__file__).resolve().parents[2] / "deploy/examples/prometheus-blackbox-dropin.yml"
    proc = subprocess.run([promtool, "check", "config", "--syntax-only", str(example)], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_scripted_steps_take_the_same_options(url: str, tmp_path: Path) -> None:
    config = _config(tmp_path, f"""
  - name: steps
    type: scripted
    steps:
      - name: auth
        request: {{url: "{url}/basic", basic_auth: {{username: {target.USER}, password: {target.PASSWORD}}}}}
      - name: br
        request: {{url: "{url}/encoded/br", compression: br}}
        expect: {{body_matches: [decoded-text]}}
      - name: cookie
        request: {{url: "{url}/cookie/set", max_redirects: 1}}
""")
    (results,), _ = run_agent(config)
    assert results[0].success, results[0].message
    assert [s.step for s in results[0].steps or [] if s.success] == ["auth", "br", "cookie"]
