"""Routes a feature package adds to the agent's web server (e.g. blackbox_exporter's /probe), handed in by
the command that starts the agent: the web layer never imports the features above it."""

from __future__ import annotations

from typing import Protocol

from starlette.routing import BaseRoute


class WebPlugin(Protocol):
    def routes(self) -> list[BaseRoute]:
        """Mounted beside the agent's own routes."""
        ...

    async def aclose(self) -> None:
        """Called once the server stopped."""
        ...
