"""Process lifecycle shared by the long-running commands of this package (`target`, `proxy`)."""

from __future__ import annotations

import asyncio
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
