"""Drop-in mode: `GET /probe?module=M&target=T[&debug=true]` answered the way blackbox_exporter answers it,
so a Prometheus job with the usual `__param_target` relabelling works unchanged.

The answer holds only what blackbox's http prober would register (its names, no probe/region labels): the
probe runs through the same http prober as agent.yaml probes, with the module converted by `convert`.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from urllib.parse import urlsplit

import yaml
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from probes.blackbox.config import BlackboxConfig, Module
from probes.blackbox.convert import module_to_probe
from probes.probers._http.client import HttpClient
from probes.probers._http.facts import HELP, address_samples
from probes.probers.base import RunContext
from probes.probers.http import HttpProbeConfig, HttpProber
from probes.result import ProbeResult, Sample

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
TIMEOUT_OFFSET = 0.5  # blackbox's --timeout-offset default
DEFAULT_SCRAPE_TIMEOUT = 120.0
_CACHE = 1000

_ALWAYS = ("probe_http_content_length", "probe_http_uncompressed_body_length", "probe_http_redirects",
           "probe_http_ssl", "probe_http_version", "probe_failed_due_to_regex")
_HELP = {
    **HELP,
    "probe_success": "Displays whether or not the probe was a success",
    "probe_duration_seconds": "Returns how long the probe took to complete in seconds",
    "probe_http_duration_seconds": "Duration of http request by phase, summed over all redirects",
    "probe_http_status_code": "Response HTTP status code",
    "probe_ssl_earliest_cert_expiry": "Returns last SSL chain expiry in unixtime",
}


def timeout_for(module: Module, header: str | None) -> float:
    """blackbox's getTimeout: the scrape's timeout less the offset, or the module's if that is shorter."""
    scrape = float(header) if header else 0.0
    scrape = scrape or DEFAULT_SCRAPE_TIMEOUT
    most = scrape - TIMEOUT_OFFSET
    if (0 < module.timeout < most) or most < 0:
        return module.timeout
    return most


def _num(value: float) -> str:
    return repr(float(value)) if value != int(value) or abs(value) >= 1e15 else str(int(value))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def exposition(result: ProbeResult, *, resolved: bool, target_host: str) -> str:
    """The metrics blackbox would return for this run, sorted by name as its registry gathers them."""
    samples: dict[str, list[Sample]] = {}
    for sample in result.samples:
        samples.setdefault(sample.name, []).append(sample)
    for name in _ALWAYS:
        samples.setdefault(name, [Sample(name, 0.0)])
    if resolved and "probe_ip_protocol" not in samples:
        # No connection was made (refused, timed out): blackbox had resolved the target already.
        for sample in address_samples(target_host, 0.0) or [Sample("probe_ip_protocol", 0.0),
                                                           Sample("probe_ip_addr_hash", 0.0),
                                                           Sample("probe_dns_lookup_time_seconds", 0.0)]:
            samples.setdefault(sample.name, [sample])
    phases = result.phases or {}
    samples["probe_http_duration_seconds"] = [
        Sample("probe_http_duration_seconds", phases.get(p, 0.0), (("phase", p),))
        for p in ("connect", "processing", "resolve", "tls", "transfer")]
    samples["probe_http_status_code"] = [Sample("probe_http_status_code", float(result.status_code))]
    if result.cert_expiry is not None:
        samples["probe_ssl_earliest_cert_expiry"] = [Sample("probe_ssl_earliest_cert_expiry", result.cert_expiry)]
    samples["probe_success"] = [Sample("probe_success", 1.0 if result.success else 0.0)]
    samples["probe_duration_seconds"] = [Sample("probe_duration_seconds", result.duration_seconds)]
    out: list[str] = []
    for name in sorted(samples):
        out.append(f"# HELP {name} {_HELP.get(name, name)}\n# TYPE {name} gauge\n")
        for sample in samples[name]:
            labels = ",".join(f'{k}="{_escape(v)}"' for k, v in sample.labels)
            out.append(f"{name}{{{labels}}} {_num(sample.value)}\n" if labels else f"{name} {_num(sample.value)}\n")
    return "".join(out)


class BlackboxEndpoint:
    """A WebPlugin: /probe over the modules of one blackbox.yml."""

    def __init__(self, config: BlackboxConfig) -> None:
        self.config = config
        self._http: HttpClient | None = None
        self._probers: OrderedDict[tuple[str, str, str], HttpProber] = OrderedDict()

    def routes(self) -> list[BaseRoute]:
        return [Route("/probe", self.probe)]

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()

    def _prober(self, name: str, module: Module, target: str, hostname: str) -> HttpProber:
        key = (name, target, hostname)
        prober = self._probers.get(key)
        if prober is None:
            if hostname:
                module = module.model_copy(deep=True)
                module.http.headers = {**{k: v for k, v in module.http.headers.items() if k.lower() != "host"},
                                       "Host": hostname}
            raw = module_to_probe("probe", module, target)
            raw.pop("interval", None)
            raw.pop("timeout", None)
            prober = HttpProber(HttpProbeConfig.model_validate(raw))
            self._probers[key] = prober
            if len(self._probers) > _CACHE:
                self._probers.popitem(last=False)
        else:
            self._probers.move_to_end(key)
        return prober

    async def probe(self, request: Request) -> Response:
        params = request.query_params
        name = params.get("module") or "http_2xx"
        module = self.config.modules.get(name)
        if module is None:
            return PlainTextResponse(f"Unknown module {name!r}\n", status_code=400)
        target = params.get("target", "")
        if not target:
            return PlainTextResponse("Target parameter is missing\n", status_code=400)
        hostname = params.get("hostname", "")
        configured_host = next((v for k, v in module.http.headers.items() if k.lower() == "host"), None)
        if hostname and configured_host is not None and configured_host != hostname:
            return PlainTextResponse(f"host header defined both in module configuration ({configured_host}) "
                                     f"and with URL-parameter 'hostname' ({hostname})\n", status_code=400)
        try:
            timeout = timeout_for(module, request.headers.get("X-Prometheus-Scrape-Timeout-Seconds"))
        except ValueError as exc:
            return PlainTextResponse(f"Failed to parse timeout from Prometheus header: {exc}\n", status_code=500)
        try:
            prober = self._prober(name, module, target, hostname)
        except (ValueError, ValidationError) as exc:
            return PlainTextResponse(f"module {name!r} cannot probe {target!r}: {exc}\n", status_code=400)
        if self._http is None:
            self._http = HttpClient()
        started = time.perf_counter()
        try:
            async with asyncio.timeout(timeout + TIMEOUT_OFFSET):
                result = await prober.run(RunContext(run=0, timeout=max(timeout, 0.001), http=self._http))
        except TimeoutError:
            result = prober.failure("timeout", f"timed out after {timeout:g}s", time.perf_counter() - started)
        result.duration_seconds = time.perf_counter() - started
        resolved = not (module.http.skip_resolve_phase_with_proxy and module.http.proxy_url)
        host = urlsplit(prober.config.url).hostname or ""
        body = exposition(result, resolved=resolved, target_host=host)
        if params.get("debug") == "true":
            return PlainTextResponse(_debug(name, module, target, result, body))
        return Response(body, media_type=CONTENT_TYPE)


def _debug(name: str, module: Module, target: str, result: ProbeResult, metrics: str) -> str:
    outcome = "Probe succeeded" if result.success else "Probe failed"
    logs = (f'module={name} target={target} msg="{outcome}" reason={result.reason or "none"} '
            f'message="{_escape(result.message)}" duration_seconds={result.duration_seconds:.6f}\n')
    config = yaml.safe_dump(module.model_dump(exclude_defaults=True), sort_keys=False)
    return (f"Logs for the probe:\n{logs}\n\n\nMetrics that would have been returned:\n{metrics}"
            f"\n\n\nModule configuration:\n{config}")
