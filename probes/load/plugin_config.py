"""What `probe-agent load` tells the Locust master it starts (and what the master's plugin reads).

Travels as JSON in one environment variable: the master's plugin needs it before Locust parses its
own arguments. Workers don't need it: what they need (the per-user request rate) reaches them inside
Locust's spawn message as a custom argument, which also works for workers on other machines.
"""

from __future__ import annotations

import os

from pydantic import BaseModel, ConfigDict

ENV_VAR = "PROBE_AGENT_LOAD_PLUGIN"
# Custom Locust argument; Locust forwards custom arguments from the master to every worker.
USER_RATE_ARG = "--probe-agent-user-rate"
USER_RATE_DEST = "probe_agent_user_rate"


class PluginConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scenario: str
    host: str | None = None
    region: str | None = None
    users: int = 0
    stats_path: str | None = None
    metrics_host: str | None = None
    metrics_port: int | None = None
    abort_thresholds: list[str] = []
    abort_grace_seconds: float = 5.0

    def to_env(self) -> dict[str, str]:
        return {ENV_VAR: self.model_dump_json()}

    @classmethod
    def from_env(cls) -> PluginConfig | None:
        text = os.environ.get(ENV_VAR)
        return cls.model_validate_json(text) if text else None
