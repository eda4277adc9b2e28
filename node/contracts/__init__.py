"""The built-in contracts of Xinlian: registry, loans, collection, credit data, disputes, governance."""

from node.contracts.executor import XinlianExecutor

__all__ = ["XinlianExecutor"]
