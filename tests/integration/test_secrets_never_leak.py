"""Secrets planted in every place a user puts one (URL userinfo, `?api_key=`, a `${VAR}` header, a
`${file:}` secret, a `secret_headers` value, Elasticsearch host and sink passwords, a token a scripted step
extracts), then every output grepped for them: `once` (table, json, junit), a running agent's
/api/results, status page, /metrics and log (text and json), and the documents of the Elasticsearch sink.

Each probe is made to fail in a way whose message quotes the secret, so a test that finds nothing has
really looked: the outputs must show `<redacted>` where the secret was.
"""

from __future__ import annotations

import json
import re
import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.es_server import FakeElasticsearch
from tests.support.processes import Started, cli, run_cli, started, wait_until

USERINFO_PW = "userinfo-pw-7731"
QUERY_KEY = "query-key-5520"
ENV_TOKEN = "env-token-9902"
FILE_SECRET = "file-secret-4410"
HEADER_VALUE = "hdr-value-3381"
ES_PASSWORD = "es-pass-6604"
SECRETS = (USERINFO_PW, QUERY_KEY, ENV_TOKEN, FILE_SECRET, HEADER_VALUE, ES_PASSWORD)
# Tokens of the demo API: "demo-" and 32 URL-safe characters, a new one per login.
DEMO_TOKEN = re.compile(r"demo-[A-Za-z0-9_-]{20,}")

CONFIG = """
agent: {{region: eu-west-1, id: agent-sec}}
defaults: {{interval: 1s, timeout: 900ms}}
probes:
  - name: userinfo
    type: http
    url: "http://probe:{userinfo_pw}@{target_hostport}/health"
    expect: {{json: [{{path: "$.status", equals: sick}}]}}
  - name: bad-url
    type: http
    url: "http://probe:{userinfo_pw}@127.0.0.1:9/health"
  - name: query-key
    type: http
    url: "{target}/api/search?q=laptop&api_key={query_key}"
    expect: {{status: [418]}}
  - name: env-header
    type: http
    url: "{target}/health"
    headers: {{Authorization: "Bearer ${{API_TOKEN}}"}}
    expect: {{json: [{{path: "$.status", equals: "${{API_TOKEN}}"}}]}}
  - name: file-secret
    type: search
    url: "{target}/api/search?q=${{file:secret.txt}}"
    expect: {{min_hits: 1000000}}
  - name: secret-header
    type: http
    url: "{target}/health"
    headers: {{X-My-Token: {header_value}}}
    secret_headers: [X-My-Token]
    expect: {{json: [{{path: "$.status", equals: {header_value}}}]}}
  - name: login
    type: scripted
    steps:
      - name: token
        request: {{method: POST, url: "{target}/auth/token", json: {{user: probe}}}}
        extract: {{token: "$.access_token"}}
        expect: {{json: [{{path: "$.access_token", matches: "^nope"}}]}}
  - name: login-then-search
    type: scripted
    steps:
      - name: token
        request: {{method: POST, url: "{target}/auth/token", json: {{user: probe}}}}
        extract: {{token: "$.access_token"}}
      - name: search
        request:
          url: "{target}/api/search?q=phone&session=${{token}}"
          headers: {{Authorization: "Bearer ${{token}}"}}
        expect: {{status: [418]}}
  - name: es-health
    type: elasticsearch
    hosts: ["http://elastic:{es_password}@{es_hostport}"]
  - name: es-down
    type: elasticsearch
    hosts: ["http://elastic:{es_password}@127.0.0.1:{closed_port}"]
{sinks}"""

SINKS = """sinks:
  elasticsearch:
    hosts: ["{es}"]
    username: elastic
    password: {es_password}
    index: probe-results
    flush_interval: 200ms
"""


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def target() -> Iterator[str]:
    with started(cli("target", "--listen", "127.0.0.1:0"), expect=["target"]) as proc:
        yield proc.urls["target"]


def _write_config(directory: Path, target: str, es_url: str, *, sinks: bool) -> Path:
    (directory / "secret.txt").write_text(FILE_SECRET + "\n")
    path = directory / "agent.yaml"
    path.write_text(CONFIG.format(
        target=target, target_hostport=target.split("://")[1], userinfo_pw=USERINFO_PW, query_key=QUERY_KEY,
        header_value=HEADER_VALUE, es_password=ES_PASSWORD, es_hostport=es_url.split("://")[1],
        closed_port=_closed_port(),
        sinks=SINKS.format(es=es_url, es_password=ES_PASSWORD) if sinks else ""))
    return path


def assert_clean(what: str, text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{secret!r} leaked into {what}:\n{text}"
    leaked = DEMO_TOKEN.findall(text)
    assert not leaked, f"extracted token {leaked[0]!r} leaked into {what}:\n{text}"


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return str(resp.read().decode())


def test_once_output_in_every_format_shows_no_secret(tmp_path: Path, target: str) -> None:
    with FakeElasticsearch() as es:
        path = _write_config(tmp_path, target, es.url, sinks=False)
        outputs = {fmt: run_cli("once", "--config", str(path), "--format", fmt, env={"API_TOKEN": ENV_TOKEN})
                   for fmt in ("table", "json", "junit")}
    for fmt, proc in outputs.items():
        assert proc.returncode == 1, proc.stderr
        assert "Traceback" not in proc.stderr
        assert_clean(f"once --format {fmt}", proc.stdout + proc.stderr)
    results = {r["probe"]: r for r in json.loads(outputs["json"].stdout)}
    # Where each secret was, the outputs say <redacted>: the probes really quoted them.
    assert results["userinfo"]["target"].startswith("http://<redacted>@127.0.0.1:")
    assert results["bad-url"]["target"] == "http://<redacted>@127.0.0.1:9/health"
    assert results["query-key"]["target"].endswith("api_key=<redacted>")
    assert results["env-header"]["message"] == '$.status is "healthy", expected "<redacted>"'
    assert "q=<redacted>" in results["file-secret"]["target"]
    assert results["secret-header"]["message"] == '$.status is "healthy", expected "<redacted>"'
    assert results["login"]["steps"][0]["message"] == '$.access_token ("<redacted>") does not match /^nope/'
    assert results["es-health"]["success"] is True
    assert results["es-down"]["reason"] == "connection"
    assert "&lt;redacted&gt;" in outputs["junit"].stdout


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_a_running_agent_shows_no_secret_in_pages_api_metrics_log_or_elasticsearch(
        tmp_path: Path, target: str, log_format: str) -> None:
    with FakeElasticsearch() as es:
        path = _write_config(tmp_path, target, es.url, sinks=True)
        cmd = cli("run", "--config", str(path), "--listen", "127.0.0.1:0", "--log-format", log_format,
                  "--log-level", "debug")
        with started(cmd, expect=["agent"], env={"API_TOKEN": ENV_TOKEN}) as agent:
            url = agent.urls["agent"]

            def every_probe_reported() -> bool:
                results = json.loads(_get(url + "/api/results"))
                done = {r["probe"] for r in results}
                return len(done) == 10 and len({d["monitor"]["name"] for d in es.docs("probe-results-*")}) == 10

            wait_until(every_probe_reported, 30, what="a result of every probe, here and in Elasticsearch")
            _assert_agent_clean(agent, url, es)


def _assert_agent_clean(agent: Started, url: str, es: FakeElasticsearch) -> None:
    api = _get(url + "/api/results")
    assert_clean("/api/results", api)
    assert "<redacted>" in api
    page = _get(url + "/")
    assert_clean("the status page", page)
    assert "http://&lt;redacted&gt;@127.0.0.1" in page
    assert_clean("/metrics", _get(url + "/metrics"))
    documents = json.dumps(es.docs("probe-results-*"))
    assert_clean("Elasticsearch documents", documents)
    assert "http://<redacted>@127.0.0.1" in documents
    agent.proc.terminate()
    agent.proc.wait(15)
    log = agent.text()
    assert_clean("the agent's log", log)
    assert "probe login is down" in log or '"probe": "login"' in log


def test_a_rotated_file_secret_is_read_again_on_reload_and_stays_hidden(tmp_path: Path, target: str) -> None:
    (tmp_path / "token").write_text("rotated-secret-one\n")
    path = tmp_path / "agent.yaml"
    path.write_text(f"""
defaults: {{interval: 300ms, timeout: 250ms}}
probes:
  - name: rotated
    type: http
    url: "{target}/health"
    expect: {{json: [{{path: "$.status", equals: "${{file:token}}"}}]}}
""")
    with started(cli("run", "--config", str(path), "--listen", "127.0.0.1:0"), expect=["agent"]) as agent:
        url = agent.urls["agent"]

        def message() -> str:
            results = json.loads(_get(url + "/api/results"))
            return str(results[0]["message"]) if results else ""

        wait_until(lambda: message() == '$.status is "healthy", expected "<redacted>"', 15, what="a first result")
        # The rotated value is what the check now expects: the probe passes once the file is read again.
        (tmp_path / "token").write_text("healthy\n")
        request = urllib.request.Request(url + "/-/reload", method="POST")
        with urllib.request.urlopen(request, timeout=10) as resp:
            assert json.loads(resp.read())["status"] == "success"
        wait_until(lambda: json.loads(_get(url + "/api/results"))[0]["success"] is True, 15,
                   what="the probe passing with the rotated value")
        agent.proc.terminate()
        agent.proc.wait(15)
        assert "rotated-secret-one" not in agent.text()


def test_a_url_refused_at_load_is_quoted_without_its_password(tmp_path: Path) -> None:
    # "invalid URL: http://user:pw@..." used to carry the password into every output; such a URL is now a
    # load error, and the error quotes it redacted.
    path = tmp_path / "agent.yaml"
    path.write_text(f'probes:\n  - {{name: bad, type: http, url: "http://probe:{USERINFO_PW}@127.0.0.1:99999/"}}\n')
    proc = run_cli("check-config", str(path))
    assert proc.returncode == 2 and "probes[0].url" in proc.stderr
    assert USERINFO_PW not in proc.stderr + proc.stdout
