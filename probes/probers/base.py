"""The prober extension point: one run of one probe, returning a ProbeResult."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, get_args

from probes.config.models import AgentSection, ProbeBase
from probes.redaction import redact_text, redact_url
from probes.result import ProbeResult

if TYPE_CHECKING:
    from probes.probers._http.client import HttpClient


@dataclass(slots=True)
class RunContext:
    run: int
    """How many runs of this probe came before this one (rotates `queries:`)."""
    timeout: float
    """Seconds this run may take; the scheduler cancels it shortly after."""
    http: HttpClient
    """The agent's one shared HTTP client: never build a client per run."""


class Prober(ABC):
    """A probe type is one module: its config model (a ProbeBase whose `type` is `Literal["NAME"]`) and a
    Prober subclass naming it in `config_model`, registered with one line in `probes.probers`."""

    config_model: ClassVar[type[ProbeBase]]
    summary: ClassVar[str] = ""
    """One line for people: what a probe of this type checks (`probe-agent types`, the README)."""
    speaks_http: ClassVar[bool] = True
    """Its results carry a status code and phases (probe_http_* series)."""
    has_steps: ClassVar[bool] = False
    """Its results carry steps (probe_step_* series, `steps` in JSON)."""

    def __init__(self, config: Any) -> None:
        self.config = config

    @classmethod
    def configure(cls, agent: AgentSection) -> None:
        """Settings of the `agent:` section this type uses (e.g. how many may run at once); called at
        every load and reload, before the type's probes run."""

    @classmethod
    def type_name(cls) -> str:
        """The `type:` key of agent.yaml, read from the config model's `type: Literal["NAME"]`."""
        (name,) = get_args(cls.config_model.model_fields["type"].annotation)
        return str(name)

    @property
    def name(self) -> str:
        return str(self.config.name)

    def failure(self, reason: str, message: str, duration: float, **kwargs: Any) -> ProbeResult:
        """A failed result shaped like this type's results."""
        kwargs.setdefault("phases", {} if self.speaks_http else None)
        kwargs.setdefault("steps", [] if self.has_steps else None)
        # Client exceptions quote the URL they were given, credentials included.
        kwargs["target"] = redact_url(kwargs.get("target") or self.config.target())
        return ProbeResult(probe=self.name, type=self.config.type, success=False, duration_seconds=duration,
                           reason=reason, message=redact_text(message), **kwargs)

    @abstractmethod
    async def run(self, ctx: RunContext) -> ProbeResult:
        """One run. Must not raise for target misbehaviour: return a failed result with a reason."""

    async def aclose(self) -> None:
        """Release per-probe resources (e.g. an Elasticsearch client); most probers hold none."""
