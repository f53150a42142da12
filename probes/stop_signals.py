"""Process lifecycle shared by the long-running commands of this package (`target`, `proxy`)."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import signal


async def wait_for_stop_signal() -> signal.Signals:
    """Block until SIGINT or SIGTERM; the caller then shuts its servers down cleanly."""
    loop = asyncio.get_running_loop()
    received: asyncio.Future[signal.Signals] = loop.create_future()
    signals = (signal.SIGINT, signal.SIGTERM)

    def on_signal(sig: signal.Signals) -> None:
        if not received.done():
            received.set_result(sig)

    for sig in signals:
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        return await received
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)


def die_with_parent() -> None:
    """In a child, before exec (`preexec_fn`): SIGTERM when the parent dies (Linux's PR_SET_PDEATHSIG), so
    a crashed or SIGKILLed parent never leaves its workers running; best effort elsewhere."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
