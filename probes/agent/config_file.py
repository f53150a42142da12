"""agent.yaml: the document model, composed from the registered probe types and sinks, and how it loads.

Defaults are applied while decoding (as blackbox_exporter does), so a validated probe always has its
interval, timeout, headers and body limit; checks that need the whole file (unique names, a timeout that
fits its interval, files a probe reads) follow. Every error reaches the user as `FILE:LINE: field.path:
message`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, Union

from pydantic import Field, create_model, model_validator

from probes.config import yamlfile
from probes.config.loader import load_model
from probes.config.models import AgentSection, Defaults, ProbeBase, Strict, TlsConfig, register_header_secrets
from probes.config.slo import SloConfig, check_slos
from probes.durations import coerce_duration
from probes.probers import PROBERS_BY_TYPE
from probes.sinks import SINKS

PROBE_TYPES = tuple(PROBERS_BY_TYPE)

if TYPE_CHECKING:
    ProbeConfig = ProbeBase
    Sinks = Strict
else:
    ProbeConfig = Annotated[Union[tuple(p.config_model for p in PROBERS_BY_TYPE.values())],  # noqa: UP007
                            Field(discriminator="type")]
    Sinks = create_model("Sinks", __base__=Strict,
                         **{sink.name: (sink.config_model | None, None) for sink in SINKS})


def _seconds(value: Any) -> float | None:
    """A duration as written in the raw document, or None if it is not one (validation will say why)."""
    try:
        return coerce_duration(value)
    except ValueError:
        return None


class AgentConfig(Strict):
    agent: AgentSection = Field(default_factory=AgentSection)
    defaults: Defaults = Field(default_factory=Defaults)
    probes: list[ProbeConfig] = Field(default_factory=list)
    sinks: Sinks = Field(default_factory=Sinks)
    slos: list[SloConfig] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _inherit_schedule(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not isinstance(data.get("probes"), list):
            return data
        raw_defaults = data.get("defaults")
        defaults: dict[str, Any] = raw_defaults if isinstance(raw_defaults, dict) else {}
        interval = _seconds(defaults.get("interval", Defaults().interval))
        timeout = _seconds(defaults.get("timeout", Defaults().timeout))
        probes = []
        for probe in data["probes"]:
            if isinstance(probe, dict):
                probe = dict(probe)
                if "interval" not in probe and interval is not None:
                    probe["interval"] = interval
                own_interval = _seconds(probe.get("interval"))
                if "timeout" not in probe and timeout is not None:
                    # An inherited timeout shrinks to fit a shorter interval; one the probe sets must fit.
                    probe["timeout"] = timeout if own_interval is None else min(timeout, own_interval)
            probes.append(probe)
        return {**data, "probes": probes}

    @model_validator(mode="after")
    def _inherit_requests(self) -> AgentConfig:
        for probe in self.probes:
            for request in probe.requests():
                for key, value in self.defaults.headers.items():
                    request.headers.setdefault(key, value)
                for name in self.defaults.secret_headers:
                    if name.lower() not in {n.lower() for n in request.secret_headers}:
                        request.secret_headers.append(name)
                register_header_secrets(request.headers, request.secret_headers)
                if "max_body_bytes" not in request.model_fields_set:
                    request.max_body_bytes = self.defaults.max_body_bytes
        return self


def _runtime_variable(data: Any) -> Any:
    """Which `${name}` a probe type fills at run time (e.g. a value an earlier scripted step extracts)."""

    def keep(loc: yamlfile.Loc, name: str) -> bool:
        if len(loc) < 3 or loc[0] != "probes" or not isinstance(loc[1], int):
            return False
        try:
            raw = data["probes"][loc[1]]
            prober = PROBERS_BY_TYPE[raw["type"]]
        except (KeyError, IndexError, TypeError):
            return False
        return prober.config_model.keeps_variable(raw, loc[2:], name)

    return keep


def _probe_types(doc: yamlfile.Document) -> list[str]:
    """Errors pydantic would word poorly: a missing or unknown probe type."""
    if not isinstance(doc.data, dict):
        return [doc.error((), "the file must be a mapping with agent, defaults, probes, sinks")]
    errors = []
    known = ", ".join(PROBE_TYPES)
    probes = doc.data.get("probes")
    for index, probe in enumerate(probes if isinstance(probes, list) else []):
        if not isinstance(probe, dict):
            continue
        kind = probe.get("type")
        if kind is None:
            errors.append(doc.error(("probes", index), f"missing field type (one of {known})"))
        elif kind not in PROBE_TYPES:
            errors.append(doc.error(("probes", index, "type"), f"unknown probe type {kind!r}; known types: {known}"))
    return errors


def _schedule_checks(config: AgentConfig, doc: yamlfile.Document) -> list[str]:
    errors = []
    if config.defaults.timeout > config.defaults.interval:
        errors.append(doc.error(("defaults", "timeout"),
                                f"timeout ({config.defaults.timeout:g}s) is longer than the interval "
                                f"({config.defaults.interval:g}s): runs would overlap"))
    seen: dict[str, int] = {}
    for index, probe in enumerate(config.probes):
        if probe.name in seen:
            errors.append(doc.error(("probes", index, "name"),
                                    f"duplicate probe name {probe.name!r} (also probes[{seen[probe.name]}])"))
        seen.setdefault(probe.name, index)
        if probe.interval <= 0:
            errors.append(doc.error(("probes", index, "interval"), "interval must be greater than 0"))
        if probe.timeout <= 0:
            errors.append(doc.error(("probes", index, "timeout"), "timeout must be greater than 0"))
        elif probe.timeout > probe.interval:
            errors.append(doc.error(("probes", index, "timeout"),
                                    f"timeout ({probe.timeout:g}s) is longer than the interval "
                                    f"({probe.interval:g}s): runs would overlap"))
        if probe.retries and probe.retry_delay > probe.interval:
            errors.append(doc.error(("probes", index, "retry_delay"),
                                    f"retry_delay ({probe.retry_delay:g}s) is longer than the interval "
                                    f"({probe.interval:g}s): a retry would never run before the next run"))
    return errors


def _slo_checks(config: AgentConfig, doc: yamlfile.Document) -> list[str]:
    return check_slos(config.slos, [p.name for p in config.probes], doc.error)


def _type_checks(config_dir: str) -> Callable[[AgentConfig, yamlfile.Document], list[str]]:
    def check(config: AgentConfig, doc: yamlfile.Document) -> list[str]:
        return [doc.error(("probes", index, *loc), message)
                for index, probe in enumerate(config.probes)
                for loc, message in probe.load_checks(config_dir)]

    return check


def _tls_files(config: AgentConfig, doc: yamlfile.Document) -> list[str]:
    """A CA or client certificate that is not there fails at load, naming the file, not at the first run."""
    owners: list[tuple[tuple[str | int, ...], Any]] = [(("probes", i), p) for i, p in enumerate(config.probes)]
    owners += [(("sinks", name), cfg) for name, cfg in config.sinks if cfg is not None]
    return [doc.error((*loc, "tls", *key), message)
            for loc, owner in owners
            if isinstance(tls := getattr(owner, "tls", None), TlsConfig)
            for key, message in tls.file_errors()]


def _not_empty(doc: yamlfile.Document) -> list[str]:
    if doc.data == {}:
        return [doc.error((), "the file is empty: expected at least a `probes:` list (see `probe-agent schema`)")]
    return []


def _load(doc: yamlfile.Document, env: dict[str, str] | None, base_dir: str | None = None) -> AgentConfig:
    config_dir = base_dir or os.path.dirname(os.path.abspath(doc.path))
    return load_model(doc, AgentConfig, env=env, keep=_runtime_variable(doc.data), prechecks=[_not_empty, _probe_types],
                      checks=[_schedule_checks, _type_checks(config_dir), _slo_checks, _tls_files])


def parse_config(text: str, path: str, env: dict[str, str] | None = None,
                 base_dir: str | None = None) -> AgentConfig:
    """`path` names the text in errors; relative paths in it resolve against `base_dir` (default: its directory)."""
    return _load(yamlfile.parse(text, path), env, base_dir)


def load_config(path: str, env: dict[str, str] | None = None) -> AgentConfig:
    return _load(yamlfile.read(path), env)


def json_schema() -> dict[str, Any]:
    schema = AgentConfig.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "probe-agent agent.yaml"
    return schema
