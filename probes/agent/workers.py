"""The worker side of `run --processes N`: which worker runs which probe, the worker's agent, and one worker
process as the agent process sees it (started, watched, stopped; see supervisor for the rest).

Each worker is `probe-agent run` with the user's own arguments plus `--worker I/N --listen 127.0.0.1:0`:
it loads the same config and runs the probes whose stable hash of the name modulo N is I (blake2b with
its own key, independent of `--shard`, so the two split the probes in different ways).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import math
import os
import re
import signal
import sys
import time
from collections.abc import Sequence

from probes.agent.agent import Agent, Overrides
from probes.agent.config_file import AgentConfig
from probes.errors import CannotRun
from probes.stop_signals import die_with_parent

log = logging.getLogger(__name__)

LISTENING = re.compile(rb"listening on (\S+)")
START_TIMEOUT = 120.0
"""Seconds a worker may take to load the config and listen (10,000 probes take a few)."""
STOP_GRACE = 10.0


def worker_index(name: str, count: int) -> int:
    """Which of `count` workers runs the probe `name`: the same on every start, machine and version
    (Python's hash() is salted per process, so it cannot be used)."""
    digest = hashlib.blake2b(name.encode(), digest_size=8, person=b"probe-workers").digest()
    return int.from_bytes(digest, "big") % count


def parse_worker(text: str) -> tuple[int, int]:
    index, _, count = text.partition("/")
    return int(index), int(count)


PARENT_ENV = "PROBE_AGENT_SUPERVISOR_PID"


def become_worker() -> None:
    """In a worker, before anything else: die with the agent process (SIGTERM when it dies, even by SIGKILL),
    and exit at once if it died before this line ran."""
    die_with_parent()
    parent = os.environ.get(PARENT_ENV)
    if parent is not None and os.getppid() != int(parent):
        raise SystemExit(0)


class WorkerAgent(Agent):
    """An agent that runs only its share of the probes; reloads select the share again."""

    def __init__(self, config_path: str, config: AgentConfig, overrides: Overrides, index: int, count: int) -> None:
        self.worker = (index, count)
        super().__init__(config_path, self._share(config), overrides)

    def _share(self, config: AgentConfig) -> AgentConfig:
        index, count = self.worker
        agent = config.agent.model_copy(update={
            # max_concurrency caps the whole agent: each worker gets its part.
            "max_concurrency": max(1, math.ceil(config.agent.max_concurrency / count))})
        probes = [p for p in config.probes if worker_index(p.name, count) == index]
        return config.model_copy(update={"agent": agent, "probes": probes})

    async def _apply(self, config: AgentConfig, first: bool = False, sinks: bool = True) -> None:
        await super()._apply(self._share(config), first=first, sinks=sinks)


def worker_argv(argv: Sequence[str], index: int, count: int) -> list[str]:
    """The user's `run` arguments for one worker: later flags win in argparse, so appending overrides."""
    return [sys.executable, "-m", "probes", *argv, "--listen", "127.0.0.1:0", "--processes", "1",
            "--worker", f"{index}/{count}"]


class WorkerProcess:
    """One worker child: started, watched, restarted when it exits, stopped with the agent."""

    def __init__(self, index: int, argv: list[str]) -> None:
        self.index = index
        self.argv = argv
        self.proc: asyncio.subprocess.Process | None = None
        self.url: str | None = None
        self.started_at = 0.0
        self._drain: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.url = None
        # No preexec_fn: running Python between fork and exec in a process with threads can deadlock.
        # The worker asks for PR_SET_PDEATHSIG itself, first thing (see become_worker).
        proc = await asyncio.create_subprocess_exec(
            *self.argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            env={**os.environ, PARENT_ENV: str(os.getpid())})
        self.proc = proc
        assert proc.stdout is not None
        try:
            async with asyncio.timeout(START_TIMEOUT):
                while True:
                    line = await proc.stdout.readline()
                    if not line:
                        raise CannotRun(f"worker {self.index} exited while starting (exit code {await proc.wait()})")
                    found = LISTENING.search(line)
                    if found:
                        self.url = found.group(1).decode().rstrip("/")
                        break
        except TimeoutError:
            await self.kill()
            raise CannotRun(f"worker {self.index} did not start within {START_TIMEOUT:g}s") from None
        self.started_at = time.monotonic()
        # Keep reading its stdout, or a chatty worker would block on a full pipe.
        self._drain = asyncio.create_task(_discard(proc.stdout))

    async def wait(self) -> int:
        assert self.proc is not None
        return await self.proc.wait()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    async def stop(self, grace: float = STOP_GRACE) -> None:
        if self.alive():
            assert self.proc is not None
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), grace)
            except TimeoutError:
                await self.kill()
        if self._drain is not None:
            self._drain.cancel()

    async def kill(self) -> None:
        if self.alive():
            assert self.proc is not None
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            await self.proc.wait()


async def _discard(stream: asyncio.StreamReader) -> None:
    while await stream.read(65536):
        pass
