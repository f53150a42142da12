"""The `scripted` probe: ordered HTTP steps sharing the agent's client, values extracted from one
response carried as `${name}` into later requests (log in, then search with the token).

Everything that does not change between runs is worked out once per probe: each step's request
arguments, which of its fields mention a variable (the others are passed through untouched), its
extract rules. A run only fills in variables and checks responses.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from probes.config.models import (
    NAME_PATTERN,
    Expect,
    ProbeBase,
    RequestFields,
    Strict,
    TlsConfig,
    check_jsonpath,
    check_regex,
)
from probes.errors import ProbeFailed
from probes.fingerprint import answer_details, fingerprint_sample, total_value
from probes.jsonpaths import compile_path, find
from probes.probers._http.certs import not_after
from probes.probers._http.client import HttpClient, HttpResponse
from probes.probers._http.exchange import build_exchange
from probes.probers._http.expect import ResponseView, check_latency, check_response
from probes.probers.base import Prober, RunContext
from probes.probers.http import request_arguments
from probes.redaction import redact_text, redact_url, register_secret
from probes.regexes import BoundedRegex, RegexTimeout, compile_bounded
from probes.result import Exchange, ProbeResult, StepResult


class ExtractRule(Strict):
    json_path: str | None = Field(default=None, alias="json")
    regex: str | None = None
    group: int = 1
    header: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> ExtractRule:
        given = [k for k in ("json_path", "regex", "header") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of json, regex, header")
        if self.json_path is not None:
            check_jsonpath(self.json_path)
        if self.regex is not None:
            check_regex(self.regex)
        return self


def _extract_shorthand(value: Any) -> Any:
    # `token: "$.access_token"` is the common case: a bare string is a JSONPath.
    if isinstance(value, dict):
        return {k: {"json": v} if isinstance(v, str) else v for k, v in value.items()}
    return value


class StepRequest(RequestFields):
    pass


def _also_true(schema: dict[str, Any]) -> None:
    """`fingerprint: true` is valid: say so in the JSON Schema editors use."""
    schema["anyOf"] = [{"type": "boolean"}, *schema.get("anyOf", [])]


class StepFingerprint(Strict):
    """Where a scripted step's search answer is, for probe_search_result_fingerprint{step}."""

    hits_path: str = "$.hits"
    id_field: str = "id"
    total_path: str = "$.total"
    top_k: int = Field(default=10, ge=1)
    total: bool = False

    _paths = field_validator("hits_path", "total_path")(check_jsonpath)


class Step(Strict):
    name: str = Field(pattern=NAME_PATTERN)
    request: StepRequest
    extract: Annotated[dict[str, ExtractRule], Field(default_factory=dict)]
    expect: Expect = Field(default_factory=Expect)
    optional: bool = False
    always_run: bool = False
    fingerprint: StepFingerprint | None = Field(default=None, json_schema_extra=_also_true)
    """`true` (hits at $.hits, ids in `id`) or a mapping: export this step's answer fingerprint."""

    # The schema shows the shorthand too (`token: "$.access_token"`), or editors would flag the README's example.
    @field_validator("extract", mode="before", json_schema_input_type=dict[str, ExtractRule | str])
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return _extract_shorthand(value)

    @field_validator("fingerprint", mode="before")
    @classmethod
    def _fingerprint_shorthand(cls, value: Any) -> Any:
        # A union with bool would word a mistake in the mapping twice, once per member: map bools here.
        if value is True:
            return {}
        return None if value is False else value


class ScriptedProbeConfig(ProbeBase):
    type: Literal["scripted"]
    tls: TlsConfig | None = None
    steps: list[Step] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_steps(self) -> ScriptedProbeConfig:
        names = [s.name for s in self.steps]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"step names must be unique: {', '.join(dupes)}")
        return self

    @classmethod
    def keeps_variable(cls, raw: dict[str, Any], loc: tuple[str | int, ...], name: str) -> bool:
        # `${token}` in step N is a value that an earlier step extracts, filled in at run time.
        if len(loc) < 2 or loc[0] != "steps" or not isinstance(loc[1], int):
            return False
        steps = raw.get("steps")
        if not isinstance(steps, list):
            return False
        return any(isinstance(s, dict) and isinstance(s.get("extract"), dict) and name in s["extract"]
                   for s in steps[: loc[1]])

    def requests(self) -> list[RequestFields]:
        return [step.request for step in self.steps]

    def target(self) -> str:
        return redact_url(self.steps[0].request.url)


# The same variable syntax as the environment interpolation in probes.config.yamlfile.
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
PHASES = ("resolve", "connect", "tls", "processing", "transfer")

Render = Callable[[Mapping[str, Any]], Any]


class _Unset(Exception):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def _lookup(variables: Mapping[str, Any], name: str) -> Any:
    try:
        return variables[name]
    except KeyError:
        raise _Unset(name) from None


def as_text(value: Any) -> str:
    """How an extracted value reads inside a string: strings as they are, anything else as JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"))


def compile_template(value: Any, names: frozenset[str], *, keep_type: bool = False) -> Render | None:
    """A function filling `${name}` (for `names` only) into `value`, or None when `value` has none.

    `keep_type`: a string that is exactly one `${name}` becomes the extracted value itself (a JSON
    body keeps a number a number); everywhere else values are rendered as text. Names outside `names`
    stay literal: after load only a `$${X}` escape can produce such a `${X}`.
    """
    if isinstance(value, str):
        parts = _VAR.split(value)  # literal, name, literal, name, ..., literal
        if not any(name in names for name in parts[1::2]):
            return None
        if keep_type and len(parts) == 3 and parts[0] == parts[2] == "":
            only = parts[1]
            return lambda variables: _lookup(variables, only)
        pieces: list[tuple[bool, str]] = []
        for index, part in enumerate(parts):
            is_var = index % 2 == 1 and part in names
            text = part if index % 2 == 0 or is_var else "${" + part + "}"
            if text or is_var:
                pieces.append((is_var, text))

        def render_text(variables: Mapping[str, Any]) -> str:
            return "".join(as_text(_lookup(variables, p)) if is_var else p for is_var, p in pieces)

        return render_text
    if isinstance(value, dict):
        renders = {k: compile_template(v, names, keep_type=keep_type) for k, v in value.items()}
        if all(r is None for r in renders.values()):
            return None
        items = [(k, renders[k], v) for k, v in value.items()]
        return lambda variables: {k: v if r is None else r(variables) for k, r, v in items}
    if isinstance(value, list):
        elements = [(compile_template(v, names, keep_type=keep_type), v) for v in value]
        if all(r is None for r, _ in elements):
            return None
        return lambda variables: [v if r is None else r(variables) for r, v in elements]
    return None


@dataclass(slots=True)
class _Extractor:
    variable: str
    rule: ExtractRule
    path: Any = None
    pattern: BoundedRegex | None = None

    async def extract(self, view: ResponseView) -> Any:
        rule = self.rule
        if self.path is not None:
            try:
                document = view.json()
            except ProbeFailed as exc:
                raise ProbeFailed("extract", f"extract {self.variable}: {exc.message}") from None
            matches = self.path.find(document)
            if not matches:
                raise ProbeFailed("extract", f"extract {self.variable}: {rule.json_path} matched nothing")
            return matches[0].value
        if self.pattern is not None:
            try:
                match = await self.pattern.search_async(view.text)
            except RegexTimeout as exc:
                raise ProbeFailed("extract", f"extract {self.variable}: {exc}") from None
            if match is None:
                raise ProbeFailed("extract", f"extract {self.variable}: /{rule.regex}/ matched nothing")
            try:
                return match.group(rule.group)
            except IndexError:
                raise ProbeFailed("extract", f"extract {self.variable}: /{rule.regex}/ has no group "
                                        f"{rule.group}") from None
        assert rule.header is not None
        value = view.response.headers.get(rule.header)
        if value is None:
            raise ProbeFailed("extract", f"extract {self.variable}: header {rule.header} missing")
        return value


def _extractor(variable: str, rule: ExtractRule) -> _Extractor:
    if rule.json_path is not None:
        return _Extractor(variable, rule, path=compile_path(rule.json_path))
    if rule.regex is not None:
        # DOTALL|MULTILINE would surprise people used to grep; a plain search like body_matches.
        return _Extractor(variable, rule, pattern=compile_bounded(rule.regex))
    return _Extractor(variable, rule)


class _PreparedStep:
    """One step with everything that does not depend on the run worked out at build time."""

    def __init__(self, step: Step, names: frozenset[str], producers: dict[str, str]) -> None:
        req = step.request
        self.config = step
        self.name = step.name
        self.method = req.method
        self.url = req.url
        self.args = request_arguments(req)
        self.renders: dict[str, Render] = {}
        self.url_render = compile_template(req.url, names)
        for key in ("params", "headers"):
            render = compile_template(self.args[key], names)
            if render is not None:
                self.renders[key] = render
        if req.json_body is not None:
            render = compile_template(req.json_body, names, keep_type=True)
            if render is not None:
                self.renders["json"] = render
        elif req.form is not None:
            render = compile_template(dict(req.form), names)
            if render is not None:
                self.renders["data"] = render
        elif req.body is not None:
            body_render = compile_template(req.body, names)
            if body_render is not None:
                self.renders["data"] = lambda variables: str(body_render(variables)).encode()
        self.extractors = [_extractor(name, rule) for name, rule in step.extract.items()]
        self.fingerprint = step.fingerprint
        # Which earlier step sets each variable this step might use: for a helpful message.
        self.producers = producers

    def request_for(self, variables: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        """URL and request arguments for this run; raises _Unset for a variable not extracted."""
        url = self.url if self.url_render is None else self.url_render(variables)
        if not self.renders:
            return url, self.args
        args = dict(self.args)
        for key, render in self.renders.items():
            args[key] = render(variables)
        return url, args

    def unset_message(self, name: str) -> str:
        producer = self.producers.get(name)
        if producer is None:
            return f"${{{name}}} is not extracted by any earlier step"
        return f"${{{name}}} is not set: step {producer}, which extracts it, did not succeed"


@dataclass(slots=True)
class _Outcome:
    result: StepResult
    response: HttpResponse | None = None
    exchange: Exchange | None = None
    answer: dict[str, Any] | None = None
    """The step's search answer (fingerprint, top ids, total) when it opted in with `fingerprint:`."""


def _answer(view: ResponseView, options: StepFingerprint) -> dict[str, Any]:
    document = view.json()
    found = find(options.hits_path, document)
    if not found or not isinstance(found[0], list):
        raise ProbeFailed("assertion", f"fingerprint: no list of hits at {options.hits_path} in the response")
    totals = find(options.total_path, document)
    return answer_details(found[0], total_value(totals[0]) if totals else None, id_field=options.id_field,
                          top_k=options.top_k, with_total=options.total)


class ScriptedProber(Prober):
    summary = (
        "ordered HTTP steps; values extracted from one response (`extract:`) fill `${name}` in later requests"
    )
    config_model = ScriptedProbeConfig
    has_steps = True
    config: ScriptedProbeConfig

    def __init__(self, config: ScriptedProbeConfig) -> None:
        super().__init__(config)
        names = frozenset(name for step in config.steps for name in step.extract)
        self._steps: list[_PreparedStep] = []
        producers: dict[str, str] = {}
        for step in config.steps:
            self._steps.append(_PreparedStep(step, names, dict(producers)))
            for name in step.extract:
                producers[name] = step.name
        self._target = config.target()

    async def run(self, ctx: RunContext) -> ProbeResult:
        cfg = self.config
        start = time.perf_counter()
        # One deadline for the whole script: each step gets what the earlier ones left.
        deadline = start + ctx.timeout
        variables: dict[str, Any] = {}
        steps: list[StepResult] = []
        exchanges: list[Exchange] = []
        phases = dict.fromkeys(PHASES, 0.0)
        cert_expiry: float | None = None
        status_code = 0
        failed: StepResult | None = None
        answers: dict[str, dict[str, Any]] = {}
        for step in self._steps:
            if failed is not None and not step.config.always_run:
                steps.append(StepResult(step.name, False, 0.0, "skipped",
                                        f"skipped: step {failed.step} failed", optional=step.config.optional))
                continue
            outcome = await self._run_step(step, ctx.http, variables, deadline, ctx.timeout)
            steps.append(outcome.result)
            if outcome.answer is not None:
                answers[step.name] = outcome.answer
            if outcome.exchange is not None:
                exchanges.append(outcome.exchange)
            resp = outcome.response
            if resp is not None:
                for phase, seconds in resp.phases.items():
                    phases[phase] = phases.get(phase, 0.0) + seconds
                if resp.cert_der is not None:
                    expiry = not_after(resp.cert_der)
                    cert_expiry = expiry if cert_expiry is None else min(cert_expiry, expiry)
                if failed is None:
                    status_code = resp.status
            if not outcome.result.success and not step.config.optional and failed is None:
                failed = outcome.result
                status_code = outcome.result.status_code
        # Like the http probe's duration: time spent on requests, not on our own checks between them,
        # so that the phases add up to it.
        duration = sum(s.duration_seconds for s in steps)
        result = ProbeResult(
            probe=cfg.name, type=cfg.type, success=failed is None, duration_seconds=duration,
            status_code=status_code, phases=phases, cert_expiry=cert_expiry, steps=steps, target=self._target,
            exchanges=exchanges,
        )
        if answers:
            result.details["steps"] = answers
            result.samples = [fingerprint_sample(answer, (("step", name),))
                              for name, answer in answers.items()]
        if failed is not None:
            result.reason = failed.reason
            result.message = f"step {failed.step}: {failed.message}"
            return result
        # What made it degraded leads, as in the http probe's message.
        notes = [f"step {s.step} {s.message}" for s in steps if s.success and s.degraded][:1]
        result.degraded = bool(notes)
        notes.append(f"{len(steps)} steps in {duration * 1000:.1f}ms")
        notes += [f"optional step {s.step} failed: {s.message}" for s in steps if not s.success]
        result.message = "; ".join(notes)
        return result

    async def _run_step(self, step: _PreparedStep, http: HttpClient, variables: dict[str, Any],
                        deadline: float, timeout: float) -> _Outcome:
        cfg = step.config
        started = time.perf_counter()
        try:
            url, args = step.request_for(variables)
        except _Unset as unset:
            return _Outcome(StepResult(step.name, False, 0.0, "extract", step.unset_message(unset.name),
                                       optional=cfg.optional))
        left = deadline - started
        if left <= 0:
            return _Outcome(StepResult(step.name, False, 0.0, "timeout",
                                       f"not started: the probe's {timeout:g}s timeout was used up",
                                       optional=cfg.optional))
        secret = getattr(self.config, "secret_headers", ())
        try:
            resp = await http.request(step.method, url, timeout=left, tls=self.config.tls, **args)
        except ProbeFailed as exc:
            message = exc.message
            if exc.reason == "timeout":
                message = f"{message} (the probe's {timeout:g}s timeout covers all steps)"
            exchange = build_exchange(step.method, url, args, None, step=step.name, error=message,
                                      secret_headers=secret, hide=variables.values())
            return _Outcome(StepResult(step.name, False, time.perf_counter() - started, exc.reason,
                                       redact_text(message), optional=cfg.optional), exchange=exchange)
        result = StepResult(step.name, True, resp.elapsed, status_code=resp.status, optional=cfg.optional)
        view = ResponseView(resp)
        # Extracted values are secrets (tokens, session ids) before any check can quote them: a JSON
        # check on `$.access_token` must not print the token it just saw.
        extracted, extract_failure = await self._extract(step, view)
        answer = None
        try:
            await check_response(cfg.expect, view)
            if extract_failure is not None:
                raise extract_failure
            if step.fingerprint is not None:
                answer = _answer(view, step.fingerprint)
        except ProbeFailed as failure:
            result.success, result.reason, result.message = False, failure.reason, redact_text(failure.message)
            return _Outcome(result, resp, build_exchange(step.method, url, args, resp, step=step.name,
                                                         error=result.message, secret_headers=secret,
                                                         hide=[*variables.values(), *extracted.values()]))
        variables.update(extracted)
        verdict = check_latency(cfg.expect, resp.elapsed)
        result.success, result.reason, result.degraded = verdict.success, verdict.reason, verdict.degraded
        result.message = verdict.message or f"{resp.status} in {resp.elapsed * 1000:.1f}ms"
        # Built after the extractors ran: a token extracted from this response is redacted in its body.
        return _Outcome(result, resp, build_exchange(step.method, url, args, resp, step=step.name,
                                                     secret_headers=secret, hide=variables.values()), answer)

    @staticmethod
    async def _extract(step: _PreparedStep, view: ResponseView) -> tuple[dict[str, Any], ProbeFailed | None]:
        values: dict[str, Any] = {}
        first_failure: ProbeFailed | None = None
        for extractor in step.extractors:
            try:
                value = await extractor.extract(view)
            except ProbeFailed as failure:
                first_failure = first_failure or failure
                continue
            values[extractor.variable] = value
            if isinstance(value, str):  # numbers and booleans are ids and flags, not credentials
                register_secret(value, transient=True)
        return values, first_failure
