"""blackbox_exporter's preferred_ip_protocol / ip_protocol_fallback over a name's addresses."""

from __future__ import annotations

import socket
from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")


def preferred(found: Sequence[T], family_of: Callable[[T], int], protocol: str | None, fallback: bool) -> list[T]:
    """The addresses of the preferred family; the others only with the fallback. Raises OSError if none."""
    if protocol is None:
        return list(found)
    family = socket.AF_INET6 if protocol == "ip6" else socket.AF_INET
    wanted = [item for item in found if family_of(item) == family]
    if wanted:
        return wanted
    if fallback and found:
        return list(found)
    raise OSError(f"no {protocol} address" + ("" if fallback else " (ip_protocol_fallback is off)"))
