from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.hostile import HostileServer, hostile_server


@pytest.fixture(scope="session")
def hostile() -> Iterator[HostileServer]:
    with hostile_server() as server:
        yield server
