"""Threshold expressions: parsing, units, and evaluation against observations."""

from __future__ import annotations

import pytest

from probes.load.thresholds import (
    Observation,
    ThresholdError,
    evaluate,
    evaluate_all,
    parse_threshold,
)


def obs(requests: int = 100, failures: int = 0, rps: float = 50.0, avg: float = 20.0,
        pct: float = 30.0, max_ms: float = 90.0) -> Observation:
    return Observation(requests=requests, failures=failures, rps=rps, avg_ms=avg, min_ms=1.0, max_ms=max_ms,
                       percentile_ms=lambda _p: pct)


@pytest.mark.parametrize(
    ("text", "name", "metric", "op", "limit"),
    [
        ("p95<500ms", None, "p95", "<", 500.0),
        ("p99<1s", None, "p99", "<", 1000.0),
        ("p50 < 250", None, "p50", "<", 250.0),
        ("p90<=1.5s", None, "p90", "<=", 1500.0),
        ("p99.9<2s", None, "p99.9", "<", 2000.0),
        ("avg<200ms", None, "avg", "<", 200.0),
        ("max<1m", None, "max", "<", 60000.0),
        ("error_rate<1%", None, "error_rate", "<", 0.01),
        ("error_rate<=0.5%", None, "error_rate", "<=", 0.005),
        ("rps>50", None, "rps", ">", 50.0),
        ("rps>=12.5", None, "rps", ">=", 12.5),
        ("search:p95<300ms", "search", "p95", "<", 300.0),
        ("search_filtered:error_rate<2%", "search_filtered", "error_rate", "<", 0.02),
        ("GET:/api/x:p95<1s", "GET:/api/x", "p95", "<", 1000.0),
        ("  item : rps > 5 ", "item", "rps", ">", 5.0),
    ],
)
def test_parse(text: str, name: str | None, metric: str, op: str, limit: float) -> None:
    threshold = parse_threshold(text)
    assert (threshold.name, threshold.metric, threshold.op) == (name, metric, op)
    assert threshold.limit == pytest.approx(limit)
    assert threshold.expr == text.strip()


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("p95", "p95<500ms"),
        ("p95<", "p95<500ms"),
        ("p95<fast", "takes a duration"),
        ("p95<-5ms", "takes a duration"),
        ("p0<1s", "percentile"),
        ("p101<1s", "percentile"),
        ("error_rate<1", "percentage"),
        ("error_rate<abc%", "percentage"),
        ("error_rate<150%", "100%"),
        ("rps>lots", "requests/s"),
        ("latency<1s", "p95<500ms"),
        (":p95<1s", "empty request name"),
        ("p95=1s", "p95<500ms"),
        ("", "p95<500ms"),
    ],
)
def test_malformed(text: str, hint: str) -> None:
    with pytest.raises(ThresholdError, match="invalid threshold") as info:
        parse_threshold(text)
    assert hint in str(info.value)


def test_evaluate_units_and_verdicts() -> None:
    data = obs(requests=200, failures=3, rps=80.0, avg=12.0, pct=40.0, max_ms=300.0)
    assert evaluate(parse_threshold("p95<50ms"), data).as_dict() == {
        "expr": "p95<50ms", "observed": 40.0, "passed": True}
    assert not evaluate(parse_threshold("p95<40ms"), data).passed  # strict
    assert evaluate(parse_threshold("p95<=40ms"), data).passed
    assert evaluate(parse_threshold("avg<10ms"), data).observed == 12.0
    assert not evaluate(parse_threshold("max<0.2s"), data).passed
    rate = evaluate(parse_threshold("error_rate<1%"), data)
    assert rate.observed == pytest.approx(1.5)  # percent, like the expression
    assert not rate.passed
    assert evaluate(parse_threshold("error_rate<2%"), data).passed
    assert evaluate(parse_threshold("rps>50"), data).passed
    assert not evaluate(parse_threshold("rps>100"), data).passed


def test_no_data_fails_instead_of_passing() -> None:
    result = evaluate(parse_threshold("p95<1s"), None)
    assert result.observed is None and not result.passed
    empty = obs(requests=0)
    assert not evaluate(parse_threshold("error_rate<1%"), empty).passed
    assert not evaluate(parse_threshold("p99<1s"), empty).passed


def test_evaluate_all_routes_names() -> None:
    thresholds = [parse_threshold(t) for t in ("p95<100ms", "search:p95<10ms", "missing:error_rate<1%")]
    results = evaluate_all(thresholds, obs(pct=50.0), {"search": obs(pct=5.0)})
    assert [r.passed for r in results] == [True, True, False]
    assert results[2].observed is None


@pytest.mark.parametrize("text", ["p95<" + "9" * 400, "rps>" + "9" * 400, "p" + "9" * 400 + "<1s",
                                  "avg<" + "9" * 400 + "d", "error_rate<" + "9" * 400 + "%"])
def test_a_limit_too_large_for_a_float_is_rejected_not_taken_as_infinity(text: str) -> None:
    with pytest.raises(ThresholdError):
        parse_threshold(text)
