"""agent.yaml with Elasticsearch probes and the Elasticsearch sink: what validates, and how errors read."""

from __future__ import annotations

from pathlib import Path

import pytest

from probes.agent.config_file import parse_config
from probes.errors import ConfigError

VALID = """
agent: {region: eu-west-1, id: agent-1}
probes:
  - name: es-cluster
    type: elasticsearch
    hosts: [http://127.0.0.1:9200]
    check: cluster_health
    expect: {cluster_status: [green, yellow]}
  - name: es-search
    type: elasticsearch
    hosts: [http://127.0.0.1:9200]
    check: search
    index: products
    query: {match: {title: laptop}}
    expect: {min_hits: 1, max_took_ms: 200}
  - name: es-freshness
    type: elasticsearch
    hosts: [https://es.example.internal:9200]
    api_key: ${ES_API_KEY}
    tls: {ca_file: CA_FILE}
    check: freshness
    index: probe-canary
    timeout: 10s
    expect: {max_freshness: 5s}
sinks:
  elasticsearch:
    hosts: [http://127.0.0.1:9200]
    index: probe-results
    username: probe_writer
    password: ${ES_PASSWORD}
"""


def test_valid_agent_yaml(tmp_path: Path) -> None:
    ca = tmp_path / "es-ca.pem"  # read at load: a missing CA file is a config error naming it
    ca.write_text("not checked until the client starts\n")
    config = parse_config(VALID.replace("CA_FILE", str(ca)), "agent.yaml", env={"ES_API_KEY": "k", "ES_PASSWORD": "p"})
    assert [p.name for p in config.probes] == ["es-cluster", "es-search", "es-freshness"]
    cluster, search, fresh = config.probes
    assert cluster.expect.cluster_status == ["green", "yellow"]
    assert search.expect.min_hits == 1
    assert fresh.expect.max_freshness == 5.0 and fresh.api_key == "k"
    sink = config.sinks.elasticsearch
    assert sink is not None and sink.password == "p" and sink.index == "probe-results"
    assert sink.queue_size == 10_000


def test_default_cluster_status_accepts_green_and_yellow() -> None:
    config = parse_config("probes: [{name: c, type: elasticsearch, hosts: ['http://h:9200']}]", "a.yaml")
    assert config.probes[0].check == "cluster_health"
    assert config.probes[0].expect.cluster_status == ["green", "yellow"]


def errors_of(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "agent.yaml")
    return info.value.messages


def probe(**fields: str) -> str:
    body = ", ".join(f"{k}: {v}" for k, v in {"name": "p", "type": "elasticsearch",
                                                "hosts": "['http://h:9200']", **fields}.items())
    return f"probes:\n  - {{{body}}}\n"


@pytest.mark.parametrize(("fields", "expected"), [
    ({"hosts": "['h:9200']"}, "probes[0].hosts: 'h:9200' is not an http:// or https:// URL"),
    ({"hosts": "['http://a:9200', 'https://b:9200']"}, "mix http:// and https://"),
    ({"hosts": "[]"}, "probes[0].hosts: List should have at least 1 item"),
    ({"check": "bogus"}, "probes[0].check: should be 'cluster_health', 'search' or 'freshness', not the text 'bogus'"),
    ({"check": "freshness"}, "check: freshness needs index"),
    ({"check": "freshness", "index": "Canary"}, "not a valid index name"),
    ({"check": "cluster_health", "q": "x"}, "q only apply to check: search"),
    ({"check": "search", "expect": "{cluster_status: [red]}"}, "cluster_status only applies to"),
    ({"check": "search", "expect": "{max_freshness: 1s}"}, "only apply to check: freshness"),
    ({"check": "search", "q": "x", "query": "{match_all: {}}"}, "either query or q"),
    ({"expect": "{cluster_status: [blue]}"}, "probes[0].expect.cluster_status[0]: should be"),
    ({"username": "u"}, "give username and password together"),
    ({"api_key": "k", "username": "u", "password": "p"}, "either api_key or username/password"),
    ({"tls": "{server_name: x}"}, "tls.server_name is not supported"),
    ({"bogus": "1"}, "probes[0].bogus: unknown field"),
])
def test_probe_errors(fields: dict[str, str], expected: str) -> None:
    messages = errors_of(probe(**fields))
    assert any(expected in m for m in messages), messages
    assert all(m.startswith("agent.yaml:") for m in messages)


@pytest.mark.parametrize(("sink", "expected"), [
    ("{index: x}", "sinks.elasticsearch.hosts: Field required"),
    ("{hosts: ['http://h:9200'], index: Results}", "index: 'Results' is not a valid index"),
    ("{hosts: ['http://h:9200'], queue_size: 0}", "sinks.elasticsearch.queue_size"),
    ("{hosts: ['http://h:9200'], queue_size: 10, batch_size: 20}", "batch_size (20) is larger than queue"),
    ("{hosts: ['http://h:9200'], flush_interval: 0s}", "flush_interval must be greater than 0"),
    ("{hosts: ['http://h:9200'], nope: 1}", "sinks.elasticsearch.nope: unknown field"),
])
def test_sink_errors(sink: str, expected: str) -> None:
    messages = errors_of(f"sinks:\n  elasticsearch: {sink}\n")
    assert any(expected in m for m in messages), messages
