"""Run drills: preflight, inject, watch pending -> firing -> notified, revert in every case, watch resolution.

Nothing is injected until every check passed for every selected drill (Prometheus reachable, each expected
alert is a rule there, each injector reachable and accepting its token). SIGINT and SIGTERM stop the
watching; the revert runs in `finally`, so the fault goes away before the process exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TextIO

import httpx

from probes.asgi_server import AsgiServer, bind_socket, split_host_port
from probes.drills import bounds, injectors, preflight
from probes.drills.alertmanager import AlertmanagerClient, route_timing
from probes.drills.prometheus import (
    ActiveAlert,
    AlertRule,
    PrometheusClient,
    RecordingRule,
    ScrapeTiming,
    WatchError,
    matches,
)
from probes.drills.receiver import Inbox, create_app
from probes.drills.results import AlertResult, DrillResult, Report
from probes.drills.spec import CommandFault, Drill, ExpectedAlert, FaultApiFault, LoadedDrills, ToxiproxyFault
from probes.errors import CannotRun, ConfigError

NOTIFY_SLACK = 5.0  # a notification may take a moment past group_wait (webhook call, flush tick)


@dataclass
class _Env:
    prometheus: PrometheusClient
    alertmanager: AlertmanagerClient | None
    am_config: dict[str, object] | None
    timing: ScrapeTiming
    rules: list[AlertRule]
    inbox: Inbox | None
    poll: float
    out: TextIO
    recording: dict[str, RecordingRule] = field(default_factory=dict)
    probes: dict[str, tuple[list[bounds.ProbeTiming], str] | None] = field(default_factory=dict)
    series: preflight.Preflight | None = None
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    stop_reason: str | None = None


def _candidate_rules(rules: list[AlertRule], expected: ExpectedAlert) -> list[AlertRule]:
    """Rules that can produce this alert: the name matches and no static label contradicts `labels`."""
    return [
        r
        for r in rules
        if r.name == expected.alert and all(r.labels.get(k, v) == v for k, v in expected.labels.items())
    ]


def check_rules(loaded: LoadedDrills, drills: list[Drill], rules: list[AlertRule]) -> None:
    """Every expected alert must be an alerting rule in Prometheus; otherwise exit 2 before injecting."""
    errors = []
    names = sorted({r.name for r in rules})
    for index, drill in enumerate(loaded.spec.drills):
        if drill not in drills:
            continue
        for j, expected in enumerate(drill.expect):
            loc = ("drills", index, "expect", j)
            if expected.alert not in names:
                known = ", ".join(names) if names else "none"
                errors.append(
                    loaded.error(
                        (*loc, "alert"), f"no alerting rule {expected.alert!r} in Prometheus (known: {known})"
                    )
                )
            elif not _candidate_rules(rules, expected):
                statics = "; ".join(str(r.labels) for r in rules if r.name == expected.alert)
                errors.append(
                    loaded.error(
                        (*loc, "labels"),
                        f"no rule {expected.alert!r} has these labels (rule labels: {statics})",
                    )
                )
    if errors:
        raise ConfigError(errors)


def intensity(drill: Drill) -> bounds.Intensity:
    """How much traffic the drill's fault hits, as far as the drill file says."""
    fault = drill.fault
    if isinstance(fault, FaultApiFault):
        return bounds.Intensity(fault.spec.probability, fault.spec.type, fault.spec.latency)
    if isinstance(fault, ToxiproxyFault):
        latency = fault.spec.attributes.get("latency") if fault.spec.type == "latency" else None
        seconds = float(latency) / 1000 if isinstance(latency, int | float) else None
        return bounds.Intensity(fault.spec.toxicity, fault.spec.type, seconds)
    assert isinstance(fault, CommandFault)
    return bounds.Intensity()


def probe_timings(loaded: LoadedDrills, drill: Drill) -> tuple[list[bounds.ProbeTiming], str] | None:
    """The probes of the drill's agent config (intervals, timeouts, retries); invalid config: exit 2."""
    path = loaded.agent_config_path(drill)
    if path is None:
        return None
    from probes.agent.config_file import load_config

    config = load_config(str(path))
    timings = [
        bounds.ProbeTiming(p.name, p.interval, p.timeout, p.retries, p.retry_delay) for p in config.probes
    ]
    return timings, f"agent config {path.name}"


class Runner:
    def __init__(self, loaded: LoadedDrills, out: TextIO | None = None, *,
                 wait_for_series: float | None = None, also_check: Sequence[LoadedDrills] = (),
                 intensity: dict[str, float] | None = None) -> None:
        self.loaded = loaded
        # A sweep's other steps: their `within` is checked against their bounds before the first injection.
        self.also_check = list(also_check)
        self.intensity = intensity
        self.out = out or sys.stderr
        self.wait_for_series = loaded.spec.wait_for_series if wait_for_series is None else wait_for_series
        self._last_warning = ""
        self._first_wait = 0.0
        # Measured during each drill: how late the runner can see a state change beyond its poll interval.
        self._max_rtt = 0.0
        self._inject_rtt = 0.0

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    async def run(self, names: list[str] | None = None) -> Report:
        spec = self.loaded.spec
        drills = [d for d in spec.drills if not names or d.name in names]
        if spec.receiver is not None and split_host_port(spec.receiver.listen)[1] != 0:
            # A taken port is known now, not after Prometheus and the injectors have been asked.
            bind_socket(*split_host_port(spec.receiver.listen)).close()
        async with httpx.AsyncClient(timeout=httpx.Timeout(10.0, connect=5.0)) as client:
            prometheus = PrometheusClient(spec.prometheus, client)
            await prometheus.check()
            try:
                rules = await prometheus.alerting_rules()
                timing = await prometheus.timing()
            except WatchError as exc:
                from probes.errors import CannotRun

                raise CannotRun(f"Prometheus at {spec.prometheus}: {exc}") from None
            check_rules(self.loaded, drills, rules)
            try:
                recording = await prometheus.recording_rules()
            except WatchError as exc:
                raise CannotRun(f"Prometheus at {spec.prometheus}: {exc}") from None
            alertmanager = AlertmanagerClient(spec.alertmanager, client) if spec.alertmanager else None
            am_config = await alertmanager.config() if alertmanager else None
            await self._wiring_warnings(prometheus, am_config)
            probes = {d.name: probe_timings(self.loaded, d) for d in drills}
            checked = _Env(prometheus, alertmanager, am_config, timing, rules, None, spec.poll_interval,
                           self.out, recording, probes)
            # Before anything is injected anywhere: every rule's inputs are scraped, every `within` is
            # at least the computed bound, every injector answers.
            checked.series = await self._wait_for_series(checked, drills)
            self._first_wait = checked.series.waited
            self.check_within(checked, drills)
            for variant in self.also_check:
                Runner(variant, self.out).check_within(checked, [d for d in variant.spec.drills
                                                                 if d.name in {x.name for x in drills}])
            built = [(d, injectors.build(d.fault, client)) for d in drills]
            for _, injector in built:
                await injector.check()

            inbox: Inbox | None = None
            receiver: AsgiServer | None = None
            if spec.receiver is not None:
                inbox = Inbox()
                host, port = split_host_port(spec.receiver.listen)
                receiver = AsgiServer(create_app(inbox), host, port)
                await receiver.start()
                self.say(f"probe-agent: receiver listening on {receiver.url}")
            env = _Env(
                prometheus, alertmanager, am_config, timing, rules, inbox, spec.poll_interval, self.out,
                recording, probes, checked.series,
            )
            report = Report()
            with self._signals(env):
                try:
                    for drill, injector in built:
                        if env.stop.is_set():
                            break
                        report.drills.append(await self._drill(env, drill, injector))
                finally:
                    if receiver is not None:
                        await receiver.stop()
            report.interrupted = env.stop_reason
            return report

    def _needs(self, env: _Env, drills: list[Drill]) -> list[preflight.Need]:
        wanted: list[preflight.Need] = []
        for drill in drills:
            for expected in drill.expect:
                for rule in _candidate_rules(env.rules, expected):
                    wanted += preflight.needs(rule, {"alertname": expected.alert, **expected.labels},
                                              env.recording)
        return wanted

    async def _wait_for_series(self, env: _Env, drills: list[Drill]) -> preflight.Preflight:
        paths = {d.fault.spec.match.path for d in drills if isinstance(d.fault, FaultApiFault)}
        # The share of traffic a fault hits is per drill: only measured when the drills agree on a path.
        path = next(iter(paths)) if len(paths) == 1 else None
        return await preflight.wait_for_series(
            env.prometheus, self._needs(env, drills), env.timing.scrape_interval, self.wait_for_series, self.say,
            fault_path=path,
        )

    def bound_for(self, env: _Env, drill: Drill, expected: ExpectedAlert, labels: dict[str, str],
                  checked: preflight.Preflight | None) -> bounds.Bound | None:
        """The tightest bound among the rules that can produce this alert."""
        probes = env.probes.get(drill.name)
        inputs = bounds.Inputs(
            timing=env.timing,
            recording=env.recording,
            probes=probes[0] if probes else None,
            probes_source=probes[1] if probes else "agent config",
            intensity=intensity(drill),
            created=checked.created if checked else set(),
            request_gap=checked.request_gap if checked else None,
            fault_share=checked.fault_share if checked else None,
            poll=env.poll,
            query_rtt=self._max_rtt,
            inject_rtt=self._inject_rtt,
        )
        group_wait = self._group_wait(env, labels)
        computed = [bounds.compute(rule, inputs, labels, group_wait)
                    for rule in _candidate_rules(env.rules, expected)]
        if not computed:
            return None
        return min(computed, key=lambda b: b.firing)

    def check_within(self, env: _Env, drills: list[Drill]) -> None:
        """A `within` shorter than the computed bound cannot be met reliably: exit 2 before injecting."""
        errors = []
        for index, drill in enumerate(self.loaded.spec.drills):
            if drill not in drills:
                continue
            for j, expected in enumerate(drill.expect):
                labels = {"alertname": expected.alert, **expected.labels}
                bound = self.bound_for(env, drill, expected, labels, env.series)
                if bound is None or not bound.reachable or bound.firing <= expected.within:
                    continue
                errors.append(self.loaded.error(
                    ("drills", index, "expect", j, "within"),
                    f"within {expected.within:g}s is shorter than the computed bound for {expected.alert}: "
                    f"{bound.explain()}",
                ))
        if errors:
            raise ConfigError(errors)

    async def _wiring_warnings(self, prometheus: PrometheusClient, am_config: dict[str, object] | None) -> None:
        """Hints for the usual reasons a notification never arrives; the drill still runs and reports."""
        spec = self.loaded.spec
        if spec.alertmanager is not None:
            with contextlib.suppress(WatchError):
                if not await prometheus.alertmanagers():
                    self.say("drill: warning: Prometheus sends alerts to no Alertmanager (alerting.alertmanagers)")
        if spec.receiver is not None and am_config is not None:
            port = split_host_port(spec.receiver.listen)[1]
            receivers = am_config.get("receivers")
            urls = [str(hook.get("url", "")) for r in receivers if isinstance(r, dict)
                    for hook in r.get("webhook_configs") or [] if isinstance(hook, dict)] \
                if isinstance(receivers, list) else []
            if port and not any(f":{port}/" in f"{url}/" for url in urls):
                self.say(f"drill: warning: no webhook_configs url in Alertmanager's config points at the "
                         f"receiver's port {port}; notifications will not arrive")

    @contextlib.contextmanager
    def _signals(self, env: _Env) -> Iterator[None]:
        loop = asyncio.get_running_loop()
        installed = []

        def stop(signame: str) -> None:
            if env.stop_reason is None:
                env.stop_reason = signame
                self.say(f"drill: {signame} received: reverting the fault, then exiting")
            env.stop.set()

        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, stop, sig.name)
                installed.append(sig)
            except (NotImplementedError, RuntimeError):  # not the main thread
                pass
        try:
            yield None
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)

    async def _sleep(self, env: _Env) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(env.stop.wait(), env.poll)

    async def _active(self, env: _Env, label: str) -> list[ActiveAlert] | None:
        try:
            asked = time.monotonic()
            alerts = await env.prometheus.alerts()
            self._max_rtt = max(self._max_rtt, time.monotonic() - asked)
            return alerts
        except WatchError as exc:
            # Once per distinct problem, not once per poll.
            if str(exc) != self._last_warning:
                self._last_warning = str(exc)
                self.say(f"[{label}] warning: {exc}")
            return None

    @staticmethod
    async def _am_alerts(env: _Env) -> list[dict[str, str]]:
        if env.alertmanager is None:
            return []
        try:
            return await env.alertmanager.alerts()
        except WatchError:
            return []

    async def _drill(self, env: _Env, drill: Drill, injector: injectors.Injector) -> DrillResult:
        result = DrillResult(
            name=drill.name,
            fault=injectors.describe(drill.fault),
            alerts=[
                AlertResult(
                    alert=e.alert,
                    labels=dict(e.labels),
                    within=e.within,
                    notify=e.notified,
                    resolve_within=drill.resolve_within,
                )
                for e in drill.expect
            ],
            started_at=datetime.now(UTC).isoformat(timespec="seconds"),
            intensity=self.intensity,
        )
        tag = drill.name
        self.say(f"[{tag}] baseline: checking that no expected alert is already active")
        baseline = await self._active(env, tag)
        if baseline is None:
            result.error = "could not read the baseline alerts from Prometheus; nothing injected"
            result.judge()
            return result
        busy = [
            f"{a.name} ({a.state})"
            for e in drill.expect
            for a in baseline
            if a.name == e.alert and matches(a.labels, e.labels)
        ]
        if busy:
            result.error = f"already active before injection: {', '.join(busy)}; nothing injected"
            self.say(f"[{tag}] {result.error}")
            result.judge()
            return result

        try:
            result.preflight = await self._wait_for_series(env, [drill])
        except CannotRun as exc:
            result.error = f"{exc}; nothing injected"
            result.judge()
            return result
        result.preflight.waited += self._first_wait
        self._first_wait = 0.0
        env.series = result.preflight
        started = time.monotonic()
        result.injected_at = time.time()
        try:
            self.say(f"[{tag}] injecting {drill.fault.injector} fault (ttl {drill.fault.ttl:g}s)")
            result.injected = True
            self._max_rtt = 0.0
            try:
                result.fault_ref = await injector.inject(drill.fault)
                self._inject_rtt = time.monotonic() - started
            except injectors.InjectError as exc:
                result.error = f"inject failed: {exc}"
                self.say(f"[{tag}] {result.error}")
            else:
                await self._watch_firing(env, drill, result, started)
        finally:
            # Shielded: a second signal must not interrupt the revert.
            try:
                await asyncio.shield(injector.revert())
                result.reverted = time.monotonic() - started
                self.say(f"[{tag}] +{result.reverted:5.1f}s fault reverted")
            except injectors.InjectError as exc:
                message = f"revert failed: {exc}; the fault expires by its TTL ({drill.fault.ttl:g}s)"
                result.error = f"{result.error}; {message}" if result.error else message
                self.say(f"[{tag}] {message}")
        if result.reverted is not None and not env.stop.is_set():
            await self._watch_resolution(env, drill, result, started + result.reverted)
        if env.stop_reason and result.error is None:
            result.error = f"interrupted by {env.stop_reason}; the fault was reverted"
        self._set_bounds(env, drill, result)
        result.judge()
        verdict = "PASSED" if result.passed else "FAILED"
        self.say(
            f"[{tag}] {verdict}" + "".join(f"; {a.alert}: {a.message}" for a in result.alerts if a.message)
        )
        return result

    def _group_wait(self, env: _Env, labels: dict[str, str]) -> float | None:
        if env.am_config is None:
            return None
        return route_timing(env.am_config, labels).group_wait

    def _notify_limit(self, env: _Env, expected: ExpectedAlert, labels: dict[str, str]) -> float:
        if expected.notified_within is not None:
            return expected.notified_within
        wait = self._group_wait(env, labels)
        return expected.within + (wait if wait is not None else 30.0) + NOTIFY_SLACK

    async def _watch_firing(self, env: _Env, drill: Drill, result: DrillResult, started: float) -> None:
        tag = drill.name
        for alert, expected in zip(result.alerts, drill.expect, strict=True):
            alert.notify_within = self._notify_limit(
                env, expected, {"alertname": expected.alert, **expected.labels}
            )
        last_progress = started
        while not env.stop.is_set():
            now = time.monotonic() - started
            # Both at once: a slow answer from one must not delay what we see of the other.
            active, am_alerts = await asyncio.gather(self._active(env, tag), self._am_alerts(env))
            for alert in result.alerts:
                self._observe(env, tag, alert, active or [], am_alerts, started, now)
            if all(self._firing_done(a, now) for a in result.alerts):
                return
            if time.monotonic() - last_progress >= 5:
                last_progress = time.monotonic()
                waiting = [a.alert for a in result.alerts if not self._firing_done(a, now)]
                self.say(f"[{tag}] +{now:5.1f}s waiting for {', '.join(waiting)}")
            await self._sleep(env)

    def _observe(
        self,
        env: _Env,
        tag: str,
        alert: AlertResult,
        active: list[ActiveAlert],
        am_alerts: list[dict[str, str]],
        started: float,
        now: float,
    ) -> None:
        mine = [a for a in active if a.name == alert.alert and matches(a.labels, alert.labels)]
        for state in ("pending", "firing"):
            if any(a.state == state for a in mine) and getattr(alert, state) is None:
                setattr(alert, state, now)
                alert.seen_labels = next(a.labels for a in mine if a.state == state)
                if state == "firing":
                    alert.firing_labels = [a.labels for a in mine if a.state == "firing"]
                self.say(f"[{tag}] +{now:5.1f}s {alert.alert} {state}")
        if alert.firing is not None and alert.pending is None:
            alert.pending = alert.firing  # `for: 0`, or pending between two polls
        if alert.alertmanager is None and any(
            a.get("alertname") == alert.alert and matches(a, alert.labels) for a in am_alerts
        ):
            alert.alertmanager = now
            self.say(f"[{tag}] +{now:5.1f}s {alert.alert} in Alertmanager")
        if alert.notify and alert.notified is None and env.inbox is not None:
            received = env.inbox.first("firing", alert.alert, alert.labels, started)
            if received is not None:
                alert.notified = received - started
                self.say(f"[{tag}] +{alert.notified:5.1f}s {alert.alert} notified (firing)")

    @staticmethod
    def _firing_done(alert: AlertResult, now: float) -> bool:
        fired = alert.firing is not None or now > alert.within
        notified = not alert.notify or alert.notified is not None or now > (alert.notify_within or 0)
        return fired and notified

    async def _watch_resolution(self, env: _Env, drill: Drill, result: DrillResult, reverted: float) -> None:
        tag = drill.name
        started = reverted - (result.reverted or 0.0)
        waiting = [a for a in result.alerts if a.was_active]
        if not waiting:
            return
        self.say(f"[{tag}] waiting up to {drill.resolve_within:g}s for resolution")
        while not env.stop.is_set():
            now = time.monotonic() - reverted
            active = await self._active(env, tag)
            for alert in waiting:
                if (
                    active is not None
                    and alert.resolved is None
                    and not any(a.name == alert.alert and matches(a.labels, alert.labels) for a in active)
                ):
                    alert.resolved = now
                    self.say(f"[{tag}] +{now:5.1f}s after revert: {alert.alert} resolved")
                if (
                    alert.notify
                    and alert.notified is not None
                    and alert.resolved_notified is None
                    and env.inbox is not None
                ):
                    received = env.inbox.first("resolved", alert.alert, alert.labels, reverted)
                    if received is not None:
                        alert.resolved_notified = received - reverted
                        self.say(
                            f"[{tag}] +{alert.resolved_notified:5.1f}s after revert: "
                            f"{alert.alert} notified (resolved)"
                        )
            if all(self._resolution_done(a) for a in waiting) or now > drill.resolve_within:
                return
            # A late firing notification still counts as seen for the report.
            if env.inbox is not None:
                for alert in waiting:
                    if alert.notify and alert.notified is None:
                        received = env.inbox.first("firing", alert.alert, alert.labels, started)
                        if received is not None:
                            alert.notified = received - started
            await self._sleep(env)

    @staticmethod
    def _resolution_done(alert: AlertResult) -> bool:
        if alert.resolved is None:
            return False
        return not (alert.notify and alert.notified is not None and alert.resolved_notified is None)

    def _set_bounds(self, env: _Env, drill: Drill, result: DrillResult) -> None:
        for alert, expected in zip(result.alerts, drill.expect, strict=True):
            labels = alert.seen_labels or {"alertname": expected.alert, **expected.labels}
            alert.bound = self.bound_for(env, drill, expected, labels, result.preflight)
