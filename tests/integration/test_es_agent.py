"""A real `probe-agent run` with an http probe, an elasticsearch probe and the Elasticsearch sink, all
pointing at local servers; Elasticsearch (the fake one) goes away for a while and comes back."""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.es_server import FakeElasticsearch
from tests.support.hostile import HostileServer
from tests.support.metrics import samples, scrape, value
from tests.support.processes import cli, started, wait_until

CONFIG = """
agent: {{region: eu-west-1, id: agent-es}}
defaults: {{interval: 500ms, timeout: 400ms}}
probes:
  - {{name: web, type: http, url: "{web}/ok"}}
  - {{name: es-health, type: elasticsearch, hosts: ["{es}"], check: cluster_health}}
sinks:
  elasticsearch:
    hosts: ["{es}"]
    index: probe-results
    flush_interval: 200ms
    retry_backoff: 100ms
    max_backoff: 500ms
    timeout: 1s
    queue_size: 1000
"""


@pytest.fixture
def es() -> Iterator[FakeElasticsearch]:
    with FakeElasticsearch() as server:
        yield server


def _runs(url: str, probe: str) -> float:
    return sum(v for _, v in samples(scrape(url + "/metrics"), "probe_runs_total", probe=probe))


def _docs(es: FakeElasticsearch, probe: str) -> list[dict[str, object]]:
    return [d for d in es.docs("probe-results-*") if d["monitor"]["name"] == probe]  # type: ignore[index]


def test_agent_keeps_its_schedule_while_elasticsearch_is_away(tmp_path: Path, es: FakeElasticsearch,
                                                              hostile: HostileServer) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text(CONFIG.format(web=hostile.url, es=es.url))
    with started(cli("run", "--config", str(path), "--listen", "127.0.0.1:0"), expect=["agent"]) as agent:
        url = agent.urls["agent"]
        wait_until(lambda: len(_docs(es, "web")) >= 2 and len(_docs(es, "es-health")) >= 2, 15,
                   what="results of both probes in Elasticsearch")
        text = scrape(url + "/metrics")
        assert value(text, "probe_success", probe="es-health") == 1
        assert value(text, "probe_elasticsearch_cluster_status", probe="es-health", color="green") == 1
        assert value(text, "probe_elasticsearch_nodes", probe="es-health") == 3
        assert "probe-results" in es.templates
        [web_doc, *_] = _docs(es, "web")
        assert web_doc["observer"] == {"name": "agent-es", "geo": {"name": "eu-west-1"}}
        assert web_doc["monitor"]["status"] == "up"  # type: ignore[index]

        es.go_away()
        away_at = time.time()
        runs_before = _runs(url, "web")
        time.sleep(3)
        back_at = time.time()
        # The http probe kept its schedule (every 500ms) and the agent is up and healthy.
        assert _runs(url, "web") >= runs_before + 4
        assert agent.proc.poll() is None
        with urllib.request.urlopen(url + "/-/healthy", timeout=5) as resp:
            assert resp.status == 200
        text = scrape(url + "/metrics")
        assert value(text, "probe_success", probe="web") == 1
        assert (value(text, "probe_failures_total", probe="es-health", reason="connection") or 0) >= 1
        assert (value(text, "probe_agent_sink_queue_size", sink="elasticsearch") or 0) >= 4

        es.come_back()

        def outage_results_arrived() -> bool:
            stamps = [_epoch(str(d["@timestamp"])) for d in _docs(es, "web")]
            return sum(away_at + 0.5 < t < back_at - 0.5 for t in stamps) >= 3

        wait_until(outage_results_arrived, 15, what="results from the outage in Elasticsearch")
        wait_until(lambda: value(scrape(url + "/metrics"), "probe_agent_sink_queue_size",
                                 sink="elasticsearch") == 0, 10, what="an empty sink queue")
        text = scrape(url + "/metrics")
        assert (value(text, "probe_agent_sink_dropped_total", sink="elasticsearch") or 0) == 0
        wait_until(lambda: value(scrape(url + "/metrics"), "probe_success", probe="es-health") == 1, 5,
                   what="the elasticsearch probe to succeed again")
        assert agent.proc.poll() is None
    assert "Traceback" not in agent.text(), agent.text()


def _epoch(stamp: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
