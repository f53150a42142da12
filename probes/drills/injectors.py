"""Fault injectors: one tiny interface, `check()` before anything runs, `inject(fault)`, `revert()`.

Every injected fault must go away by itself if the drill dies: our fault API takes a TTL; for
Toxiproxy and shell commands, which have no expiry, a detached watchdog process reverts at the TTL
unless the drill reverted first (see `watchdog.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable
from typing import Any, Protocol

import httpx

from probes.drills.spec import CommandFault, FaultApiFault, ToxiproxyFault
from probes.durations import format_duration
from probes.errors import CannotRun, UsageError

AnyFault = FaultApiFault | ToxiproxyFault | CommandFault


class InjectError(Exception):
    """Injecting or reverting failed; the drill fails, the TTL still covers the fault."""


class Injector(Protocol):
    async def check(self) -> None:
        """Before anything is injected: CannotRun when unreachable, UsageError when refused/misconfigured."""

    async def inject(self, fault: Any) -> str:
        """Inject; returns a short description of what was created (an id)."""

    async def revert(self) -> None:
        """Remove what `inject` created; a no-op when nothing was injected or it already expired."""


def _unreachable(what: str, url: str, exc: Exception) -> CannotRun:
    return CannotRun(f"{what} at {url} is unreachable: {exc.__class__.__name__}: {exc}")


class FaultApiInjector:
    """Our fault API, on the demo target or the proxy's control port."""

    def __init__(self, fault: FaultApiFault, client: httpx.AsyncClient) -> None:
        self.fault = fault
        self.client = client
        self.fault_id: str | None = None
        self._headers = {"Authorization": f"Bearer {fault.token}"}

    def _url(self, suffix: str = "") -> str:
        return f"{self.fault.control}/-/faults{suffix}"

    async def check(self) -> None:
        try:
            response = await self.client.get(self._url(), headers=self._headers)
        except httpx.HTTPError as exc:
            raise _unreachable("the fault API", self._url(), exc) from None
        if response.status_code in (401, 403):
            raise UsageError(f"the fault API at {self._url()} rejected the token ({response.status_code})")
        if response.status_code == 404:
            raise UsageError(f"no fault API at {self._url()} (404: is an admin token configured there?)")
        if response.status_code != 200:
            raise CannotRun(f"the fault API at {self._url()} answered {response.status_code}")

    async def inject(self, fault: Any = None) -> str:
        fault = fault or self.fault
        body = fault.spec.model_dump(mode="json", exclude_none=True)
        body["ttl"] = format_duration(fault.ttl)
        try:
            response = await self.client.post(self._url(), headers=self._headers, json=body)
        except httpx.HTTPError as exc:
            raise InjectError(f"POST {self._url()}: {exc.__class__.__name__}: {exc}") from None
        if response.status_code not in (200, 201):
            raise InjectError(f"POST {self._url()} answered {response.status_code}: {response.text[:300]}")
        try:
            self.fault_id = str(response.json()["id"])
        except (ValueError, KeyError, TypeError):
            raise InjectError(f"POST {self._url()} returned no fault id: {response.text[:300]}") from None
        return self.fault_id

    async def revert(self) -> None:
        if self.fault_id is None:
            return
        url = self._url(f"/{self.fault_id}")
        try:
            response = await self.client.delete(url, headers=self._headers)
        except httpx.HTTPError as exc:
            raise InjectError(f"DELETE {url}: {exc.__class__.__name__}: {exc}") from None
        # 404: it expired by its TTL already, which is the same outcome.
        if response.status_code not in (200, 202, 204, 404):
            raise InjectError(f"DELETE {url} answered {response.status_code}: {response.text[:300]}")
        self.fault_id = None


class _Watchdog:
    """A detached process that reverts at the TTL if this process dies without reverting."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, ttl: float, args: list[str]) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "probes.drills.watchdog",
                "--after",
                str(ttl),
                *args,
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # survives a SIGINT/SIGKILL of our process group
        )

    def cancel(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(5)
        self.proc = None


class ToxiproxyInjector:
    """A client of Toxiproxy's HTTP API: a toxic created on a proxy, deleted on revert."""

    def __init__(self, fault: ToxiproxyFault, client: httpx.AsyncClient) -> None:
        self.fault = fault
        self.client = client
        self.toxic: str | None = None
        self._watchdog = _Watchdog()

    def _proxy_url(self) -> str:
        return f"{self.fault.control}/proxies/{self.fault.spec.proxy}"

    async def check(self) -> None:
        try:
            response = await self.client.get(self._proxy_url())
        except httpx.HTTPError as exc:
            raise _unreachable("Toxiproxy", self.fault.control, exc) from None
        if response.status_code == 404:
            raise UsageError(f"Toxiproxy at {self.fault.control} has no proxy {self.fault.spec.proxy!r}")
        if response.status_code != 200:
            raise CannotRun(f"Toxiproxy at {self._proxy_url()} answered {response.status_code}")

    async def inject(self, fault: Any = None) -> str:
        spec = (fault or self.fault).spec
        name = spec.name or f"probe-agent-drill-{uuid.uuid4().hex[:8]}"
        body = {
            "name": name,
            "type": spec.type,
            "stream": spec.stream,
            "toxicity": spec.toxicity,
            "attributes": spec.attributes,
        }
        url = f"{self._proxy_url()}/toxics"
        try:
            response = await self.client.post(url, json=body)
        except httpx.HTTPError as exc:
            raise InjectError(f"POST {url}: {exc.__class__.__name__}: {exc}") from None
        if response.status_code not in (200, 201):
            raise InjectError(f"POST {url} answered {response.status_code}: {response.text[:300]}")
        self.toxic = name
        self._watchdog.start(self.fault.ttl, ["--delete", f"{url}/{name}"])
        return name

    async def revert(self) -> None:
        if self.toxic is None:
            return
        url = f"{self._proxy_url()}/toxics/{self.toxic}"
        try:
            response = await self.client.delete(url)
        except httpx.HTTPError as exc:
            raise InjectError(f"DELETE {url}: {exc.__class__.__name__}: {exc}") from None
        if response.status_code not in (200, 204, 404):
            raise InjectError(f"DELETE {url} answered {response.status_code}: {response.text[:300]}")
        self.toxic = None
        self._watchdog.cancel()


async def run_shell(command: str, timeout: float, env: dict[str, str]) -> tuple[int, str]:
    """Run `command` with sh; (exit status, last output). A command over its timeout is killed."""
    proc = await asyncio.create_subprocess_shell(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, **env},
        start_new_session=True,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except (TimeoutError, asyncio.CancelledError):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()
        raise
    return proc.returncode or 0, out.decode(errors="replace").strip()[-500:]


class CommandInjector:
    """Inject and revert shell commands (scale a deployment to zero and back, stop a container)."""

    def __init__(self, fault: CommandFault) -> None:
        self.fault = fault
        self.injected = False
        self._watchdog = _Watchdog()

    async def check(self) -> None:
        return None

    async def _run(self, what: str, command: str) -> None:
        env = {"FAULT_TTL_SECONDS": f"{self.fault.ttl:g}"}
        try:
            status, output = await run_shell(command, self.fault.timeout, env)
        except TimeoutError:
            raise InjectError(
                f"{what} command timed out after {format_duration(self.fault.timeout)}"
            ) from None
        if status != 0:
            raise InjectError(f"{what} command exited {status}: {output}")

    async def inject(self, fault: Any = None) -> str:
        # Counted as injected before it runs: a half-done inject command still gets its revert.
        self.injected = True
        self._watchdog.start(
            self.fault.ttl, ["--command", self.fault.revert, "--timeout", str(self.fault.timeout)]
        )
        await self._run("inject", self.fault.inject)
        return "command"

    async def revert(self) -> None:
        if not self.injected:
            return
        await self._run("revert", self.fault.revert)
        self.injected = False
        self._watchdog.cancel()


def _command(fault: Any, client: httpx.AsyncClient) -> Injector:
    return CommandInjector(fault)


# How each kind of fault in a drill file (spec.FAULT_KINDS) is injected; the names are the kinds' own.
INJECTORS: dict[type, Callable[[Any, httpx.AsyncClient], Injector]] = {
    FaultApiFault: FaultApiInjector,
    ToxiproxyFault: ToxiproxyInjector,
    CommandFault: _command,
}


def build(fault: AnyFault, client: httpx.AsyncClient) -> Injector:
    return INJECTORS[type(fault)](fault, client)


def describe(fault: AnyFault) -> dict[str, Any]:
    """The fault as the report shows it: everything but the token."""
    described = fault.model_dump(mode="json", exclude={"token"}, exclude_none=True)
    if isinstance(described.get("spec"), dict):
        described["spec"].pop("ttl", None)  # the shared model's default; the fault's own ttl is what is sent
    return described
