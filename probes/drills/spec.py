"""The drill file: strict pydantic models, ${VAR} interpolation, `FILE:LINE: path: msg`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from probes.config import yamlfile
from probes.durations import Duration
from probes.errors import ConfigError, UsageError
from probes.faults.model import MAX_TTL
from probes.faults.model import Fault as FaultModel


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _url(value: str) -> str:
    if not value.startswith(("http://", "https://")) or len(value.split("://", 1)[1]) == 0:
        raise ValueError(f"{value!r} is not an http:// or https:// URL")
    return value.rstrip("/")


class FaultSpec(FaultModel):
    """The fault as sent to a fault API; its TTL is the drill's `fault.ttl`."""

    @model_validator(mode="before")
    @classmethod
    def _no_ttl(cls, data: Any) -> Any:
        if isinstance(data, dict) and "ttl" in data:
            raise ValueError("give `ttl` on the fault (fault.ttl), not inside spec")
        return data


class _FaultBase(Strict):
    ttl: Duration = Field(default=300.0, gt=0, le=MAX_TTL)
    """How long the fault lives if the drill cannot revert it (killed with SIGKILL)."""


class FaultApiFault(_FaultBase):
    """Our fault API: the demo target's admin port or the proxy's control port."""

    injector: Literal["target", "proxy"]
    control: str
    token: str = Field(min_length=1)
    spec: FaultSpec

    _check_control = field_validator("control")(_url)


class ToxicSpec(Strict):
    proxy: str = Field(min_length=1)
    type: str = Field(min_length=1)
    """latency, bandwidth, slow_close, timeout, reset_peer, slicer, limit_data."""
    stream: Literal["upstream", "downstream"] = "downstream"
    toxicity: float = Field(default=1.0, ge=0.0, le=1.0)
    attributes: dict[str, int | float | str] = Field(default_factory=dict)
    name: str | None = None


class ToxiproxyFault(_FaultBase):
    injector: Literal["toxiproxy"]
    control: str = "http://127.0.0.1:8474"
    spec: ToxicSpec

    _check_control = field_validator("control")(_url)


class CommandFault(_FaultBase):
    """Shell commands; `$FAULT_TTL_SECONDS` is set so an inject command can arrange its own expiry."""

    injector: Literal["command"]
    inject: str = Field(min_length=1)
    revert: str = Field(min_length=1)
    timeout: Duration = Field(default=60.0, gt=0)


FAULT_KINDS: tuple[type[_FaultBase], ...] = (FaultApiFault, ToxiproxyFault, CommandFault)
"""How a drill breaks things: each kind's `injector:` names; probes/drills/injectors.py says how each is done."""
INJECTORS: tuple[str, ...] = tuple(name for kind in FAULT_KINDS
                                   for name in get_args(kind.model_fields["injector"].annotation))

Fault = Annotated[FaultApiFault | ToxiproxyFault | CommandFault, Field(discriminator="injector")]


class ExpectedAlert(Strict):
    alert: str = Field(pattern=r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
    labels: dict[str, str] = Field(default_factory=dict)
    within: Duration = Field(default=300.0, gt=0)
    """From injection to firing."""
    notified: bool = False
    """The firing (and later the resolved) notification must reach the receiver."""
    notified_within: Duration | None = Field(default=None, gt=0)
    """From injection to the firing notification; default `within` plus Alertmanager's group_wait + 5s."""


class Drill(Strict):
    name: str = Field(pattern=r"^[a-zA-Z0-9_.-]+$")
    fault: Fault
    expect: list[ExpectedAlert] = Field(min_length=1)
    resolve_within: Duration = Field(default=300.0, gt=0)
    agent_config: str | None = None
    """The probe-agent config whose probes the black-box rules watch (default: the file's `agent_config`)."""


class Receiver(Strict):
    listen: str = "127.0.0.1:9099"

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        from probes.asgi_server import split_host_port

        try:
            split_host_port(value)
        except UsageError as exc:
            raise ValueError(str(exc)) from None
        return value


class DrillFile(Strict):
    prometheus: str
    alertmanager: str | None = None
    receiver: Receiver | None = None
    poll_interval: Duration = Field(default=0.25, gt=0, le=10)
    agent_config: str | None = None
    """The probe-agent config file: probe intervals, timeouts and retries for black-box bounds."""
    wait_for_series: Duration = Field(default=30.0, ge=0, le=600)
    """How long to wait for fresh samples of each rule's input series before injecting."""
    drills: list[Drill] = Field(min_length=1)

    _check_prometheus = field_validator("prometheus")(_url)

    @field_validator("alertmanager")
    @classmethod
    def _am(cls, value: str | None) -> str | None:
        return None if value is None else _url(value)

    @model_validator(mode="after")
    def _consistent(self) -> DrillFile:
        names = [d.name for d in self.drills]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"drill names must be unique: {', '.join(duplicates)}")
        if self.receiver is None and any(e.notified for d in self.drills for e in d.expect):
            raise ValueError("`notified: true` needs a `receiver` (the webhook Alertmanager notifies)")
        return self


class LoadedDrills:
    """A validated drill file and where each field came from, for later `FILE:LINE:` messages."""

    def __init__(self, spec: DrillFile, doc: yamlfile.Document | None) -> None:
        self.spec = spec
        self.doc = doc

    def agent_config_path(self, drill: Drill) -> Path | None:
        """The drill's agent config, relative to the drill file's directory."""
        value = drill.agent_config or self.spec.agent_config
        if value is None:
            return None
        path = Path(value)
        if not path.is_absolute() and self.doc is not None:
            path = Path(self.doc.path).parent / path
        return path

    def error(self, loc: yamlfile.Loc, message: str) -> str:
        if self.doc is None:
            return f"{yamlfile.format_loc(loc)}: {message}"
        return self.doc.error(loc, message)


def _strip_tags(data: Any, loc: tuple[str | int, ...]) -> tuple[str | int, ...]:
    # pydantic puts the discriminator value into the location (fault.target.control); the file has none.
    out: list[str | int] = []
    node = data
    for part in loc:
        if isinstance(node, dict) and part not in node and node.get("injector") == part:
            continue
        out.append(part)
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            node = None
    return tuple(out)


def _messages(doc: yamlfile.Document, exc: ValidationError) -> list[str]:
    messages = []
    for err in exc.errors(include_url=False):
        loc = _strip_tags(doc.data, tuple(err["loc"]))
        msg = err["msg"]
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
        elif err["type"] == "union_tag_invalid":
            msg = f"unknown injector {err.get('ctx', {}).get('tag')!r}; known: {', '.join(INJECTORS)}"
            loc = (*loc, "injector")
        elif err["type"] == "union_tag_not_found":
            msg = f"`injector` is required; known: {', '.join(INJECTORS)}"
        messages.append(doc.error(loc, msg))
    return messages


def _unselected(data: Any, select: list[str] | None) -> set[int]:
    """Indexes of drills that `--drill` did not select: their ${VAR}s need not be set."""
    if not select or not isinstance(data, dict) or not isinstance(data.get("drills"), list):
        return set()
    return {
        i for i, d in enumerate(data["drills"])
        if isinstance(d, dict) and d.get("name") not in select
    }


def parse(text: str, path: str, env: dict[str, str] | None = None, select: list[str] | None = None
          ) -> LoadedDrills:
    return _validated(yamlfile.parse(text, path), env, select)


def load(path: str | Path, env: dict[str, str] | None = None, select: list[str] | None = None
         ) -> LoadedDrills:
    return _validated(yamlfile.read(path), env, select)


def _validated(doc: yamlfile.Document, env: dict[str, str] | None, select: list[str] | None) -> LoadedDrills:
    skip = _unselected(doc.data, select)
    errors = yamlfile.interpolate(
        doc, env, keep=lambda loc, name: len(loc) >= 2 and loc[0] == "drills" and loc[1] in skip
    )
    if errors:
        raise ConfigError(errors)
    if not isinstance(doc.data, dict):
        raise ConfigError([doc.error((), "a drill file is a mapping with `prometheus` and `drills`")])
    try:
        spec = DrillFile.model_validate(doc.data)
    except ValidationError as exc:
        raise ConfigError(_messages(doc, exc)) from None
    return LoadedDrills(spec, doc)
