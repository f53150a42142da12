"""Locust-side half of `probe-agent load`: imported ONLY inside the Locust subprocess.

Hooks Locust's events to
- pace every user to a share of `--rate` (all roles; the rate reaches workers in the spawn message),
- serve live Prometheus metrics from the master (`--metrics-listen`),
- stop early when an error-rate threshold stays breached longer than a grace period (`--abort-on-fail`),
- dump the master's aggregated stats, histogram included, to a JSON file when Locust quits, for the
  `probe-agent` process to judge thresholds and write reports.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Callable
from typing import Any

import gevent
from gevent.pywsgi import WSGIServer
from locust.runners import MasterRunner, WorkerRunner
from prometheus_client import CollectorRegistry, make_wsgi_app

from probes.load.locust_metrics import LoadCollector
from probes.load.plugin_config import USER_RATE_ARG, USER_RATE_DEST, PluginConfig
from probes.load.thresholds import Observation, Threshold, evaluate_all, parse_thresholds

logger = logging.getLogger("probe-agent")

ABORT_CHECK_INTERVAL = 0.5


class RunState:
    """What the master remembers about the run beyond Locust's own stats."""

    def __init__(self, config: PluginConfig | None) -> None:
        self.config = config
        self.test_start: float | None = None
        self.test_stop: float | None = None
        self.aborted: str | None = None
        self.worker_requests: dict[str, int] = {}
        self.metrics_server: WSGIServer | None = None
        self.abort_greenlet: gevent.Greenlet | None = None


_state = RunState(None)


def install(events: Any) -> None:
    events.init_command_line_parser.add_listener(_add_arguments)
    events.init.add_listener(_on_init)
    events.test_start.add_listener(_on_test_start)
    events.test_stop.add_listener(_on_test_stop)
    events.worker_report.add_listener(_on_worker_report)
    events.quitting.add_listener(_on_quitting)


def _add_arguments(parser: Any, **_kwargs: Any) -> None:
    parser.add_argument(
        USER_RATE_ARG,
        type=float,
        default=None,
        include_in_web_ui=False,
        help="probe-agent: task runs per second per user (set by `probe-agent load --rate`)",
    )


def _paced(original: Callable[[Any], float]) -> Callable[[Any], float]:
    """The scenario's own wait_time, or constant throughput when a rate was asked for.

    The rate is read at every call, because a worker learns it from the master's spawn message only
    after its user classes were set up. Same arithmetic as Locust's constant_pacing.
    """

    def wait_time(user: Any) -> float:
        options = user.environment.parsed_options
        per_user = getattr(options, USER_RATE_DEST, None) if options is not None else None
        if not per_user:
            return original(user)
        interval = 1.0 / per_user
        now = time.perf_counter()
        last_run = getattr(user, "_pa_last_run", None)
        last_wait = getattr(user, "_pa_last_wait", 0.0)
        run_time = now - last_run - last_wait if last_run is not None else 0.0
        wait = max(0.0, interval - run_time)
        user._pa_last_run = now
        user._pa_last_wait = wait
        return wait

    return wait_time


def _on_init(environment: Any, runner: Any = None, **_kwargs: Any) -> None:
    global _state
    # libev caches "now" and hasn't run a loop iteration since before the scenario imports; Locust
    # arms its --run-time timer right after this event, which would otherwise end the run up to a
    # second early.
    gevent.get_hub().loop.update_now()
    for user_class in environment.user_classes:
        user_class.wait_time = _paced(user_class.wait_time)
    if isinstance(runner, WorkerRunner):
        return
    _state = RunState(PluginConfig.from_env())
    config = _state.config
    if config is not None and config.metrics_port is not None:
        _serve_metrics(environment, config)


def _serve_metrics(environment: Any, config: PluginConfig) -> None:
    registry = CollectorRegistry()
    registry.register(LoadCollector(lambda: environment.runner, config.scenario, config.region or ""))
    host = config.metrics_host or "127.0.0.1"
    server = WSGIServer((host, config.metrics_port or 0), make_wsgi_app(registry), log=None)
    try:
        server.start()
    except OSError as exc:
        sys.stderr.write(f"probe-agent: cannot listen on {host}:{config.metrics_port} for metrics: {exc}\n")
        sys.stderr.flush()
        raise
    _state.metrics_server = server
    shown = f"[{host}]" if ":" in host else host
    # Tests and scripts find the port from this line; flush, Locust's stdout may be a pipe.
    print(f"probe-agent: load metrics listening on http://{shown}:{server.server_port}", flush=True)


def _on_test_start(environment: Any, **_kwargs: Any) -> None:
    if isinstance(environment.runner, WorkerRunner):
        return
    if _state.test_start is None:
        _state.test_start = time.time()
    config = _state.config
    if config is not None and config.abort_thresholds and _state.abort_greenlet is None:
        thresholds = [t for t in parse_thresholds(config.abort_thresholds) if t.is_error_rate]
        if thresholds:
            _state.abort_greenlet = gevent.spawn(_watch_errors, environment, thresholds, config)


def _on_test_stop(environment: Any, **_kwargs: Any) -> None:
    if isinstance(environment.runner, WorkerRunner):
        return
    _state.test_stop = time.time()


def _on_worker_report(client_id: str, data: dict[str, Any], **_kwargs: Any) -> None:
    total = data.get("stats_total") or {}
    _state.worker_requests[client_id] = _state.worker_requests.get(client_id, 0) + int(
        total.get("num_requests", 0)
    )


def _error_observation(requests: int, failures: int) -> Observation:
    # --abort-on-fail judges error rates only; the other fields are never read.
    return Observation(
        requests=requests,
        failures=failures,
        rps=0.0,
        avg_ms=0.0,
        min_ms=0.0,
        max_ms=0.0,
        percentile_ms=lambda _percent: 0.0,
    )


def _error_observations(stats: Any) -> tuple[Observation, dict[str, Observation]]:
    """Running totals, per request name summed over methods as in the final report."""
    counts: dict[str, tuple[int, int]] = {}
    for entry in list(stats.entries.values()):
        requests, failures = counts.get(entry.name, (0, 0))
        counts[entry.name] = (requests + entry.num_requests, failures + entry.num_failures)
    by_name = {name: _error_observation(*pair) for name, pair in counts.items()}
    return _error_observation(stats.total.num_requests, stats.total.num_failures), by_name


def _watch_errors(environment: Any, thresholds: list[Threshold], config: PluginConfig) -> None:
    """Judge the running totals, the same way as the final verdict, twice a second."""
    breached_since: float | None = None
    while True:
        gevent.sleep(ABORT_CHECK_INTERVAL)
        runner = environment.runner
        total, by_name = _error_observations(runner.stats)
        results = evaluate_all(thresholds, total, by_name)
        # No data yet is not a breach: only an observed error rate above the limit counts.
        failing = [r for r in results if r.observed is not None and not r.passed]
        now = time.monotonic()
        if not failing:
            breached_since = None
            continue
        if breached_since is None:
            breached_since = now
            continue
        if now - breached_since >= config.abort_grace_seconds:
            worst = failing[0]
            _state.aborted = (
                f"{worst.expr} breached for {config.abort_grace_seconds:g}s (observed {worst.observed:g}%)"
            )
            logger.error("--abort-on-fail: %s, stopping the test", _state.aborted)
            runner.quit()
            return


def _entry_dict(entry: Any) -> dict[str, Any]:
    return {
        "name": entry.name,
        "method": entry.method or "",
        "num_requests": entry.num_requests,
        "num_none_requests": entry.num_none_requests,
        "num_failures": entry.num_failures,
        "total_response_time": entry.total_response_time,
        "min_response_time": entry.min_response_time,
        "max_response_time": entry.max_response_time,
        "response_times": {str(k): v for k, v in entry.response_times.items()},
    }


def _on_quitting(environment: Any, **_kwargs: Any) -> None:
    runner = environment.runner
    if isinstance(runner, WorkerRunner):
        return
    config = _state.config
    if _state.abort_greenlet is not None:
        _state.abort_greenlet.kill(block=False)
    if config is None or not config.stats_path:
        return
    stats = runner.stats
    workers = len(_state.worker_requests) if isinstance(runner, MasterRunner) else 0
    raw = {
        "scenario": config.scenario,
        "host": environment.host or config.host,
        "region": config.region,
        "users": config.users,
        "workers": workers,
        "worker_requests": _state.worker_requests,
        "test_start": _state.test_start,
        "test_stop": _state.test_stop or time.time(),
        "start_time": stats.start_time,
        "last_request_timestamp": stats.total.last_request_timestamp,
        "aborted": _state.aborted,
        "entries": [_entry_dict(entry) for entry in stats.entries.values()],
        "total": _entry_dict(stats.total),
        "errors": [
            {"name": e.name, "method": e.method or "", "error": str(e.error), "occurrences": e.occurrences}
            for e in stats.errors.values()
        ],
    }
    tmp = f"{config.stats_path}.tmp"
    with open(tmp, "w", encoding="utf-8") as file:
        json.dump(raw, file)
    os.replace(tmp, config.stats_path)
