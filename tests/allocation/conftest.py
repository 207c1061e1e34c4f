"""The allocation service with the walkthrough directory projected from access.events."""

from __future__ import annotations

import pytest

from tests.allocation.helpers import publish_directory, walkthrough_events
from tests.conftest import RunningService
from tests.support.client import CommandClient


@pytest.fixture(scope="session")
async def directory(allocation: RunningService, commands: CommandClient) -> RunningService:
    """The walkthrough directory, published as the access service would and projected."""
    await publish_directory(commands, allocation, walkthrough_events())
    return allocation
