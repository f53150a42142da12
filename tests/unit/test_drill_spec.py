"""The drill file: strict models, ${VAR} interpolation, `FILE:LINE: field.path: message` errors."""

from __future__ import annotations

import pytest

from probes.drills import spec
from probes.drills.spec import CommandFault, FaultApiFault, ToxiproxyFault
from probes.errors import ConfigError

VALID = """\
prometheus: http://127.0.0.1:9090
alertmanager: http://127.0.0.1:9093/
receiver: {listen: 127.0.0.1:9099}
drills:
  - name: search-errors-page-oncall
    fault:
      injector: target
      control: http://127.0.0.1:8000
      token: ${FAULT_TOKEN}
      spec: {type: error, status: 503, probability: 1.0, match: {path: "^/api/search"}}
      ttl: 3m
    expect:
      - alert: SearchProbeFailing
        labels: {severity: critical}
        within: 60s
        notified: true
    resolve_within: 60s
  - name: toxic
    fault:
      injector: toxiproxy
      spec: {proxy: search-api, type: latency, attributes: {latency: 1000}}
    expect: [{alert: HighResponseTime}]
  - name: scale-to-zero
    fault:
      injector: command
      inject: kubectl scale deploy/search --replicas=0
      revert: kubectl scale deploy/search --replicas=2
      timeout: 30s
      ttl: 10m
    expect: [{alert: ServiceDown, within: 2m}]
"""


def _errors(text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        spec.parse(text, "drills.yaml", env=env if env is not None else {"FAULT_TOKEN": "t"})
    return info.value.messages


def test_the_design_example_loads() -> None:
    loaded = spec.parse(VALID, "drills.yaml", env={"FAULT_TOKEN": "secret"})
    first, toxic, command = loaded.spec.drills
    assert loaded.spec.alertmanager == "http://127.0.0.1:9093"
    assert isinstance(first.fault, FaultApiFault)
    assert first.fault.token == "secret" and first.fault.ttl == 180
    assert first.fault.spec.status == 503 and first.fault.spec.match.path == "^/api/search"
    assert first.expect[0].within == 60 and first.expect[0].notified
    assert isinstance(toxic.fault, ToxiproxyFault) and toxic.fault.control == "http://127.0.0.1:8474"
    assert isinstance(command.fault, CommandFault) and command.fault.timeout == 30


def test_unset_variable_names_file_line_and_field() -> None:
    assert _errors(VALID, env={}) == [
        "drills.yaml:9: drills[0].fault.token: environment variable FAULT_TOKEN is not set"]


def test_unknown_injector_lists_the_known_ones() -> None:
    [message] = _errors(VALID.replace("injector: target", "injector: chaos"))
    assert message == ("drills.yaml:7: drills[0].fault.injector: unknown injector 'chaos'; "
                       "known: target, proxy, toxiproxy, command")


def test_missing_token_and_unknown_fields() -> None:
    text = VALID.replace("      token: ${FAULT_TOKEN}\n", "").replace("ttl: 3m", "ttl: 3m\n      colour: red")
    assert _errors(text) == [
        "drills.yaml:6: drills[0].fault.token: Field required",
        "drills.yaml:11: drills[0].fault.colour: unknown field",
    ]


def test_fault_spec_uses_the_shared_fault_model() -> None:
    [message] = _errors(VALID.replace("type: error, status: 503", "type: flood, status: 503"))
    assert message.startswith("drills.yaml:10: drills[0].fault.spec.type: Input should be")
    [message] = _errors(VALID.replace("probability: 1.0,", "probability: 1.0, ttl: 5s,"))
    assert "give `ttl` on the fault" in message


def test_ttl_is_bounded_and_notified_needs_a_receiver() -> None:
    [message] = _errors(VALID.replace("ttl: 3m", "ttl: 2h"))
    assert message.startswith("drills.yaml:11: drills[0].fault.ttl:")
    [message] = _errors(VALID.replace("receiver: {listen: 127.0.0.1:9099}\n", ""))
    assert "needs a `receiver`" in message


def test_duplicate_names_bad_urls_and_durations() -> None:
    text = VALID.replace("name: toxic", "name: search-errors-page-oncall")
    assert "drill names must be unique" in _errors(text)[0]
    assert _errors(VALID.replace("prometheus: http://127.0.0.1:9090", "prometheus: 127.0.0.1:9090"))[0] == (
        "drills.yaml:1: prometheus: '127.0.0.1:9090' is not an http:// or https:// URL")
    assert "invalid duration" in _errors(VALID.replace("within: 60s", "within: soon"))[0]


def test_receiver_listen_is_checked_at_load() -> None:
    [message] = _errors(VALID.replace("listen: 127.0.0.1:9099", "listen: nowhere"))
    assert message.startswith("drills.yaml:3: receiver.listen: invalid listen address 'nowhere'")


def test_not_a_mapping_and_bad_yaml() -> None:
    assert "a drill file is a mapping" in _errors("- 1\n")[0]
    assert _errors("drills: [\n")[0].startswith("drills.yaml:")


def test_missing_file_is_a_config_error(tmp_path: object) -> None:
    with pytest.raises(ConfigError) as info:
        spec.load("/nonexistent/drills.yaml")
    assert info.value.messages[0].startswith("/nonexistent/drills.yaml: cannot read")
