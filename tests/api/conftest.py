"""Fixtures: an API server on 127.0.0.1 backed by a real LevelDB ledger in tmp_path."""

from __future__ import annotations

from typing import AsyncIterator

import pytest

from node.events import EventBus
from tests.api.ledger import ApiNode, start_api_node, stop_api_node


@pytest.fixture
async def api_node(tmp_path) -> AsyncIterator[ApiNode]:
    node, runner = await start_api_node(str(tmp_path / "db"))
    try:
        yield node
    finally:
        await stop_api_node(node, runner)


@pytest.fixture
async def slow_api_node(tmp_path) -> AsyncIterator[ApiNode]:
    """A node whose event subscribers hold at most 4 queued events."""
    node, runner = await start_api_node(str(tmp_path / "db"), bus=EventBus(queue_size_max=4))
    try:
        yield node
    finally:
        await stop_api_node(node, runner)
