"""The fault model: what a fault means, and the messages a user gets for a wrong one."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from probes.faults.model import Fault, describe_validation_error, is_health_path


def errors_of(data: object) -> list[str]:
    with pytest.raises(ValidationError) as info:
        Fault.model_validate(data)
    return describe_validation_error(info.value)


def test_a_minimal_fault_gets_safe_defaults() -> None:
    fault = Fault.model_validate({"type": "error"})
    assert (fault.status, fault.probability, fault.ttl) == (503, 1.0, 120.0)


def test_durations_are_written_as_users_write_them() -> None:
    fault = Fault.model_validate({"type": "latency", "latency": "300ms", "ttl": "5m"})
    assert (fault.latency, fault.ttl) == (0.3, 300.0)
    dumped = fault.model_dump(mode="json")
    assert (dumped["latency"], dumped["ttl"]) == ("300ms", "5m")
    assert Fault.model_validate(dumped) == fault


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"type": "slow"}, "type: Input should be 'latency', 'error', 'abort', 'timeout', 'unready' or 'rewrite'"),
        ({"type": "latency"}, "latency: a latency fault needs a positive latency, e.g. 300ms"),
        ({"type": "latency", "latency": "2m", "ttl": "1m"}, "latency: must not be longer than the fault's ttl"),
        ({"type": "error", "ttl": "2h"}, "ttl: must be at most 1h"),
        ({"type": "error", "ttl": "0s"}, "ttl: must be positive: every fault expires by itself"),
        ({"type": "error", "ttl": "soon"}, "ttl: invalid duration 'soon'"),
        ({"type": "error", "probability": 1.5}, "probability: Input should be less than or equal to 1"),
        ({"type": "error", "status": 700}, "status: Input should be less than or equal to 599"),
        ({"type": "error", "match": {"path": "(unclosed"}}, "match.path: invalid regular expression for path"),
        ({"type": "error", "match": {"method": "G E T"}}, "match.method: invalid HTTP method"),
        ({"type": "error", "match": {"headers": {"X-Canary": "["}}}, "match.headers: invalid regular expression"),
        ({"type": "error", "duration": "1m"}, "duration: Extra inputs are not permitted"),
        ({"type": "error", "match": {"url": "/x"}}, "match.url: Extra inputs are not permitted"),
    ],
)
def test_invalid_faults_name_the_field_and_the_problem(data: dict[str, object], message: str) -> None:
    assert any(line.startswith(message) for line in errors_of(data)), errors_of(data)


def test_match_by_path_method_and_header() -> None:
    fault = Fault.model_validate(
        {"type": "error", "match": {"path": "^/api/search", "method": "get", "headers": {"X-Canary": "^yes$"}}}
    )
    canary = {"x-canary": "yes"}
    assert fault.applies_to("GET", "/api/search", canary)
    assert not fault.applies_to("POST", "/api/search", canary)
    assert not fault.applies_to("GET", "/api/items/1", canary)
    assert not fault.applies_to("GET", "/api/search", {"x-canary": "no"})
    assert not fault.applies_to("GET", "/api/search", {})


def test_an_empty_match_applies_to_everything() -> None:
    fault = Fault.model_validate({"type": "abort"})
    assert fault.applies_to("DELETE", "/anything", {})


@pytest.mark.parametrize("path", ["/health", "/health/ready", "/readyz", "/-/ready", "/-/healthy", "/api/v1/health"])
def test_unready_answers_health_and_readiness_endpoints(path: str) -> None:
    assert is_health_path(path)
    assert Fault.model_validate({"type": "unready"}).applies_to("GET", path, {})


@pytest.mark.parametrize("path", ["/health/live", "/livez", "/api/search", "/healthcheck-docs", "/"])
def test_unready_leaves_liveness_and_other_endpoints_alone(path: str) -> None:
    assert not Fault.model_validate({"type": "unready"}).applies_to("GET", path, {})


def test_unready_with_an_explicit_path_answers_that_path() -> None:
    fault = Fault.model_validate({"type": "unready", "match": {"path": "^/status$"}})
    assert fault.applies_to("GET", "/status", {})
    assert not fault.applies_to("GET", "/health/ready", {})
