"""The Prometheus exporter as a sink: latest results rendered straight into the text format.

prometheus-client's generic collectors render every sample on every scrape; with 1,000 probes that is
tens of thousands of label sets. Here each write re-renders only that probe's lines, and a scrape joins
cached strings, so a scrape stays cheap however many probes there are.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from probes.identity import AgentIdentity
from probes.result import ProbeResult
from probes.sinks.base import Sink, SinkMetrics

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def bucket_label(bound: float) -> str:
    """The `le` value of a bucket, as written here and as Prometheus writes bounds itself ("0.5", "1.0")."""
    return repr(float(bound))


# name -> (type, help); the order here is the order on /metrics.
FAMILIES: dict[str, tuple[str, str]] = {
    "probe_success": ("gauge", "1 if the last run of the probe succeeded."),
    "probe_duration_seconds": ("gauge", "Duration of the last run of the probe."),
    "probe_degraded": ("gauge", "1 if the last run succeeded but was degraded (slower than degraded_latency)."),
    "probe_http_status_code": ("gauge", "HTTP status code of the last response (0 if none)."),
    "probe_http_duration_seconds": ("gauge", "Duration of the last HTTP request by phase."),
    "probe_ssl_earliest_cert_expiry": ("gauge", "Expiry of the server certificate, as a unix timestamp."),
    "probe_latency_seconds": ("histogram", "Duration of every run of the probe."),
    "probe_runs_total": ("counter", "Runs of the probe by result."),
    "probe_failures_total": ("counter", "Failed runs of the probe by reason."),
    "probe_attempts_total": ("counter", "Attempts, retries included."),
    "probe_last_run_timestamp_seconds": ("gauge", "When the last run of the probe started, as a unix timestamp."),
    "probe_step_success": ("gauge", "1 if the step succeeded in the last run of a scripted probe."),
    "probe_step_duration_seconds": ("gauge", "Duration of the step in the last run of a scripted probe."),
}
PHASES = ("resolve", "connect", "tls", "processing", "transfer")


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _num(value: float) -> str:
    return repr(float(value))


@dataclass(slots=True)
class _ProbeState:
    labels: str
    buckets: list[int]
    count: int = 0
    total: float = 0.0
    runs: dict[str, int] = field(default_factory=lambda: {"success": 0, "failure": 0})
    failures: dict[str, int] = field(default_factory=dict)
    attempts: int = 0
    lines: dict[str, str] = field(default_factory=dict)
    """Family name -> this probe's lines as of its last rendering. Replaced by a new dict, never edited in
    place, so a scrape that holds the old dict sees one whole run of the probe."""
    bucket_prefixes: tuple[str, ...] = ()
    last: ProbeResult | None = None
    """The run not rendered yet (None: `lines` is current)."""


# A scrape renders and joins at most this many probes per piece: with 10,000 probes, doing a whole family
# at once would hold the event loop for tens of milliseconds; a piece takes a few.
CHUNK_PROBES = 250


class PrometheusSink(Sink):
    name = "prometheus"

    def __init__(self, buckets: Iterable[float] | None, identity: AgentIdentity, metrics: SinkMetrics) -> None:
        """`buckets` (its config): the bounds of probe_latency_seconds, default LATENCY_BUCKETS; an SLO's
        latency threshold must be one of them."""
        super().__init__(buckets, identity, metrics)
        self._bounds = tuple(sorted({float(b) for b in (LATENCY_BUCKETS if buckets is None else buckets)}))
        self._bucket_labels = [bucket_label(b) for b in self._bounds]
        self._probes: dict[str, _ProbeState] = {}
        self._sample_help: dict[str, str] = {}

    def _state(self, probe: str, type_: str) -> _ProbeState:
        state = self._probes.get(probe)
        if state is None:
            labels = (f'probe="{_escape(probe)}",type="{_escape(type_)}",'
                      f'region="{_escape(self.identity.region)}",agent="{_escape(self.identity.agent)}"')
            state = self._probes[probe] = _ProbeState(labels, [0] * len(self._bounds))
            # The label set is fixed per probe: format it into the bucket lines once, not on every run.
            state.bucket_prefixes = (
                *(f'probe_latency_seconds_bucket{{{labels},le="{b}"}} ' for b in self._bucket_labels),
                f'probe_latency_seconds_bucket{{{labels},le="+Inf"}} ')
            self._render_counters(state, state.lines)
        return state

    def add_probe(self, probe: str, type_: str) -> None:
        """Export zeroed run counters before the first run, so rate() has a start."""
        self._state(probe, type_)

    def forget(self, probe: str) -> None:
        self._probes.pop(probe, None)

    def write(self, result: ProbeResult) -> None:
        state = self._state(result.probe, result.type)
        duration = result.duration_seconds
        buckets = state.buckets
        # Cumulative buckets: a run counts in every bucket from the first one it fits.
        for index in range(bisect_left(self._bounds, duration), len(buckets)):
            buckets[index] += 1
        state.count += 1
        state.total += duration
        state.runs["success" if result.success else "failure"] += 1
        if not result.success:
            reason = result.reason or "error"
            state.failures[reason] = state.failures.get(reason, 0) + 1
        state.attempts += result.attempts
        # Rendered when scraped, not here: a probe that runs every second between two scrapes 15 s apart
        # is formatted once instead of 15 times, and the run's own cost stays a few additions.
        state.last = result

    @staticmethod
    def _render_counters(state: _ProbeState, lines: dict[str, str]) -> None:
        lab = state.labels
        runs = state.runs
        lines["probe_runs_total"] = (f'probe_runs_total{{{lab},result="success"}} {runs["success"]}\n'
                                     f'probe_runs_total{{{lab},result="failure"}} {runs["failure"]}\n')
        if state.failures:
            lines["probe_failures_total"] = "".join(
                f'probe_failures_total{{{lab},reason="{_escape(r)}"}} {n}\n' for r, n in state.failures.items())
        lines["probe_attempts_total"] = f"probe_attempts_total{{{lab}}} {state.attempts}\n"

    def _render(self, state: _ProbeState) -> None:
        r = state.last
        if r is None:
            return
        state.last = None
        lab = state.labels
        old = state.lines
        lines: dict[str, str] = {}
        lines["probe_success"] = f"probe_success{{{lab}}} {1 if r.success else 0}\n"
        lines["probe_duration_seconds"] = f"probe_duration_seconds{{{lab}}} {_num(r.duration_seconds)}\n"
        lines["probe_degraded"] = f"probe_degraded{{{lab}}} {1 if r.degraded else 0}\n"
        phases = r.phases
        if phases is not None:
            lines["probe_http_status_code"] = f"probe_http_status_code{{{lab}}} {r.status_code}\n"
            get = phases.get
            lines["probe_http_duration_seconds"] = (
                f'probe_http_duration_seconds{{{lab},phase="resolve"}} {_num(get("resolve", 0.0))}\n'
                f'probe_http_duration_seconds{{{lab},phase="connect"}} {_num(get("connect", 0.0))}\n'
                f'probe_http_duration_seconds{{{lab},phase="tls"}} {_num(get("tls", 0.0))}\n'
                f'probe_http_duration_seconds{{{lab},phase="processing"}} {_num(get("processing", 0.0))}\n'
                f'probe_http_duration_seconds{{{lab},phase="transfer"}} {_num(get("transfer", 0.0))}\n')
        if r.cert_expiry is not None:
            lines["probe_ssl_earliest_cert_expiry"] = f"probe_ssl_earliest_cert_expiry{{{lab}}} {_num(r.cert_expiry)}\n"
        else:
            lines.pop("probe_ssl_earliest_cert_expiry", None)
        counts = [*state.buckets, state.count]
        lines["probe_latency_seconds"] = "".join(
            [f"{prefix}{count}\n" for prefix, count in zip(state.bucket_prefixes, counts, strict=True)]
            + [f"probe_latency_seconds_sum{{{lab}}} {_num(state.total)}\n",
               f"probe_latency_seconds_count{{{lab}}} {state.count}\n"])
        self._render_counters(state, lines)
        lines["probe_last_run_timestamp_seconds"] = f"probe_last_run_timestamp_seconds{{{lab}}} {_num(r.started_at)}\n"
        if r.steps:
            lines["probe_step_success"] = "".join(
                f'probe_step_success{{{lab},step="{_escape(s.step)}"}} {1 if s.success else 0}\n' for s in r.steps)
            lines["probe_step_duration_seconds"] = "".join(
                f'probe_step_duration_seconds{{{lab},step="{_escape(s.step)}"}} {_num(s.duration_seconds)}\n'
                for s in r.steps)
        elif "probe_step_success" in old:
            # A run that ended before its first step (a timeout) leaves the last steps' series standing.
            lines["probe_step_success"] = old["probe_step_success"]
            lines["probe_step_duration_seconds"] = old["probe_step_duration_seconds"]
        # Samples replace the previous run's: a gauge the last run did not report is gone.
        for sample in r.samples:
            extra = "".join(f',{k}="{_escape(v)}"' for k, v in sample.labels)
            lines[sample.name] = lines.get(sample.name, "") + f"{sample.name}{{{lab}{extra}}} {_num(sample.value)}\n"
            if sample.name not in self._sample_help:
                self._sample_help[sample.name] = sample.help or sample.name.replace("_", " ")
        state.lines = lines

    def chunks(self, per_chunk: int = CHUNK_PROBES) -> Iterator[str]:
        """The exposition in pieces, each family whole and in one place; a caller in an event loop yields
        to it between pieces (some are empty: pauses while probes that ran since the last scrape are
        rendered). The probes' line dicts are taken once rendered, so every probe shows one whole run
        even while runs keep landing."""
        stale = [s for s in self._probes.values() if s.last is not None]
        for begin in range(0, len(stale), per_chunk):
            for state in stale[begin:begin + per_chunk]:
                self._render(state)
            yield ""  # a pause for the caller's event loop, nothing to send
        snapshot = [s.lines for s in self._probes.values()]
        names = list(FAMILIES) + sorted(self._sample_help)
        for name in names:
            header_sent = False
            for begin in range(0, len(snapshot), per_chunk):
                chunk = "".join([lines[name] for lines in snapshot[begin:begin + per_chunk] if name in lines])
                if not chunk:
                    continue
                if not header_sent:
                    kind, help_text = FAMILIES.get(name, ("gauge", self._sample_help.get(name, name)))
                    chunk = f"# HELP {name} {help_text}\n# TYPE {name} {kind}\n{chunk}"
                    header_sent = True
                yield chunk

    def render(self) -> str:
        return "".join(self.chunks())
