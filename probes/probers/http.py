"""The `http` probe: one request, checked against `expect:` (blackbox_exporter's http prober)."""

from __future__ import annotations

import time
from typing import Any, Literal

from pydantic import Field

from probes.config.models import Expect, ProbeBase, RequestFields, TlsConfig
from probes.errors import ProbeFailed
from probes.probers._http.auth import Auth
from probes.probers._http.certs import not_after
from probes.probers._http.client import ResponseFailed
from probes.probers._http.exchange import build_exchange
from probes.probers._http.expect import RegexMismatch, ResponseView, check_latency, check_response
from probes.probers._http.facts import response_samples
from probes.probers.base import Prober, RunContext
from probes.redaction import redact_text, redact_url
from probes.result import ProbeResult, Sample


class HttpRequestConfig(ProbeBase, RequestFields):
    """What the http and search types share: one request, its TLS settings and expectations."""

    tls: TlsConfig | None = None
    expect: Expect = Field(default_factory=Expect)

    def requests(self) -> list[RequestFields]:
        return [self]

    def target(self) -> str:
        return redact_url(self.url)


class HttpProbeConfig(HttpRequestConfig):
    type: Literal["http"]


def query_value(value: str | int | float | bool) -> str:
    """YAML gives `true` and `10`; a query string wants `true` and `10`, which aiohttp won't do for bools."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def request_arguments(cfg: RequestFields) -> dict[str, Any]:
    """What HttpClient.request needs from a request block, computed once per probe."""
    args: dict[str, Any] = {
        "params": {k: query_value(v) for k, v in cfg.params.items()} or None,
        "headers": dict(cfg.headers) or None,
        "follow_redirects": cfg.follow_redirects,
        "max_redirects": cfg.max_redirects,
        "reuse_connections": cfg.reuse_connections,
        "max_body_bytes": cfg.max_body_bytes or 4 * 1024 * 1024,
        "compression": cfg.compression,
        "proxy_url": cfg.proxy_url,
        "auth": Auth(cfg.basic_auth, cfg.bearer_token, cfg.bearer_token_file, cfg.oauth2),
        "ip_protocol": cfg.ip_protocol,
        "ip_protocol_fallback": cfg.ip_protocol_fallback,
        "http_version": cfg.http_version,
    }
    if cfg.json_body is not None:
        args["json"] = cfg.json_body
    elif cfg.form is not None:
        args["data"] = dict(cfg.form)
    elif cfg.body is not None:
        args["data"] = cfg.body.encode()
    return args


class HttpProber(Prober):
    summary = (
        "one HTTP request checked against `expect:` (status, latency, body, headers, JSON, schema, "
        "certificate), like blackbox_exporter's http prober"
    )
    config_model = HttpProbeConfig
    config: HttpRequestConfig

    def __init__(self, config: HttpRequestConfig) -> None:
        super().__init__(config)
        self._args = request_arguments(config)
        self._target = config.target()

    def params_for(self, ctx: RunContext) -> dict[str, Any] | None:
        params: dict[str, Any] | None = self._args["params"]
        return params

    def inspect(self, view: ResponseView, details: dict[str, Any]) -> tuple[list[Sample], ProbeFailed | None]:
        """Type-specific checks after the common ones; samples are exported even on failure.

        `details` is the result's: facts about the answer to keep with it (see ProbeResult.details)."""
        return [], None

    async def run(self, ctx: RunContext) -> ProbeResult:
        cfg = self.config
        start = time.perf_counter()
        args = {**self._args, "params": self.params_for(ctx)}
        secret = getattr(cfg, "secret_headers", ())
        try:
            resp = await ctx.http.request(cfg.method, cfg.url, timeout=ctx.timeout, tls=cfg.tls, **args)
        except ResponseFailed as exc:
            # The answer came but its body could not be taken: its status and facts are still the run's.
            answer = exc.response
            return self.failure(exc.reason, exc.message, answer.elapsed, target=cfg.url,
                                status_code=answer.status, phases=answer.phases,
                                cert_expiry=not_after(answer.cert_der) if answer.cert_der else None,
                                samples=response_samples(answer, regex_failed=False))
        except ProbeFailed as exc:
            exchange = build_exchange(cfg.method, cfg.url, args, None, error=exc.message, secret_headers=secret)
            return self.failure(exc.reason, exc.message, time.perf_counter() - start, target=self._target,
                                exchanges=[exchange])
        view = ResponseView(resp)
        samples: list[Sample] = response_samples(resp, regex_failed=False)
        exchange = build_exchange(cfg.method, cfg.url, args, resp, secret_headers=secret)
        result = ProbeResult(
            probe=cfg.name, type=cfg.type, success=True, duration_seconds=resp.elapsed,
            status_code=resp.status, phases=resp.phases, target=self._target, samples=samples,
            cert_expiry=not_after(resp.cert_der) if resp.cert_der else None, exchanges=[exchange],
        )
        try:
            await check_response(cfg.expect, view)
            found, failed = self.inspect(view, result.details)
            samples.extend(found)
            if failed is not None:
                raise failed
        except ProbeFailed as failed:
            result.success, result.reason, result.message = False, failed.reason, redact_text(failed.message)
            if resp.redirect_limit and failed.reason == "status":
                result.reason, result.message = "redirect", f"too many redirects ({resp.redirects})"
            exchange.error = result.message
            if isinstance(failed, RegexMismatch):
                for sample in samples:
                    if sample.name == "probe_failed_due_to_regex":
                        sample.value = 1.0
            return result
        verdict = check_latency(cfg.expect, resp.elapsed)
        result.success, result.reason, result.message, result.degraded = (
            verdict.success, verdict.reason, verdict.message, verdict.degraded)
        if not result.message:
            result.message = f"{resp.status} in {resp.elapsed * 1000:.1f}ms"
        return result
