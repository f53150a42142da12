"""One standalone Locust run as a child of an asyncio event loop (the agent's scheduled load probes).

The same command line as `probe-agent load` (launcher.leader_argv), so a scheduled burst and a CI stage
measure the same thing. Bounded in every case: killed at its deadline, killed when the run is cancelled,
and asked by the kernel to die with its parent (PR_SET_PDEATHSIG), so an agent killed with SIGKILL
leaves no load generator behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from collections import deque
from dataclasses import dataclass

from probes.load.launcher import LocustRun, child_env, die_with_parent, leader_argv

STDERR_TAIL_BYTES = 4096
TERM_GRACE = 2.0


@dataclass(slots=True)
class ChildOutcome:
    returncode: int | None
    timed_out: bool
    stderr_tail: str


async def _tail(stream: asyncio.StreamReader, keep: deque[bytes]) -> None:
    # Locust logs every spawn and stats line to stderr: keep only the end, which says why it stopped.
    size = 0
    while chunk := await stream.read(4096):
        keep.append(chunk)
        size += len(chunk)
        while size - len(keep[0]) >= STDERR_TAIL_BYTES:
            size -= len(keep.popleft())


async def _stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.terminate()
    try:
        await asyncio.wait_for(proc.wait(), TERM_GRACE)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()


async def run_locust(run: LocustRun, deadline: float) -> ChildOutcome:
    """Run Locust standalone for `run.run_time`; stop it after `deadline` seconds whatever it does."""
    preexec = die_with_parent if sys.platform.startswith("linux") else None
    proc = await asyncio.create_subprocess_exec(
        *leader_argv(run), env=child_env(run), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, preexec_fn=preexec)
    assert proc.stderr is not None
    tail: deque[bytes] = deque()
    reader = asyncio.ensure_future(_tail(proc.stderr, tail))
    timed_out = False
    try:
        async with asyncio.timeout(deadline):
            await proc.wait()
    except TimeoutError:
        timed_out = True
    finally:
        # Also on cancellation (agent shutdown, a reload removing the probe): never leave it running.
        await asyncio.shield(_stop(proc))
        with contextlib.suppress(Exception):
            await asyncio.wait_for(reader, 1.0)
        reader.cancel()
    text = b"".join(tail)[-STDERR_TAIL_BYTES:].decode("utf-8", errors="replace")
    return ChildOutcome(proc.returncode, timed_out, text)
