"""A small in-memory implementation of node.execution.State for contract tests.

`MemoryState` is a dict overlay: a child records puts and deletes over its
parent and applies them on `merge()`. Values are deep-copied through JSON on
the way in and out, so a handler that mutates a value it read cannot change
state without a put, as with the real store.
"""

from __future__ import annotations

import json
from typing import Any, Iterator

_DELETED = object()


def _copy(value: Any) -> Any:
    return json.loads(json.dumps(value))


class MemoryState:
    def __init__(self, parent: "MemoryState | None" = None) -> None:
        self._parent = parent
        self._changes: dict[str, Any] = {}

    def get(self, key: str) -> Any | None:
        if key in self._changes:
            value = self._changes[key]
            return None if value is _DELETED else _copy(value)
        if self._parent is not None:
            return self._parent.get(key)
        return None

    def put(self, key: str, value: Any) -> None:
        if value is None:
            raise ValueError("None is not a storable value; use delete")
        self._changes[key] = _copy(value)

    def delete(self, key: str) -> None:
        self._changes[key] = _DELETED

    def _keys(self) -> set[str]:
        keys = set(self._parent._keys()) if self._parent is not None else set()
        for key, value in self._changes.items():
            if value is _DELETED:
                keys.discard(key)
            else:
                keys.add(key)
        return keys

    def scan(self, prefix: str, start: str | None = None, end: str | None = None) -> Iterator[tuple[str, Any]]:
        for key in sorted(self._keys()):
            if not key.startswith(prefix):
                continue
            if start is not None and key < start:
                continue
            if end is not None and key >= end:
                continue
            yield key, self.get(key)

    def child(self) -> "MemoryState":
        return MemoryState(parent=self)

    def merge(self) -> None:
        if self._parent is None:
            raise RuntimeError("merge() on a root state")
        self._parent._changes.update(self._changes)
        self._changes = {}

    def snapshot(self) -> dict[str, Any]:
        """Return every key and value, sorted by key."""
        return {key: self.get(key) for key in sorted(self._keys())}
