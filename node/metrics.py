"""Node metrics in the Prometheus text exposition format (version 0.0.4).

The node reports its own numbers as a `NodeMetrics` snapshot; the HTTP layer
counts requests in `HttpMetrics`. `render_prometheus` writes both as the text
that `GET /metrics` returns.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable, Mapping

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Bounds the label sets of the request counter, because status codes and
# error codes arrive from a finite catalogue but a bug could grow them.
LABEL_SETS_MAX = 512


@dataclass(frozen=True)
class MetricFamily:
    """One metric with its samples; `samples` maps sorted (label, value) pairs to the number."""

    name: str
    kind: str  # "counter" or "gauge"
    help: str
    samples: Mapping[tuple[tuple[str, str], ...], int]


@dataclass
class NodeMetrics:
    """The numbers a node reports about itself at one moment."""

    height: int
    view: int
    mempool_size: int
    peers_connected: int
    tx_admitted_total: int
    tx_rejected_total: Mapping[str, int] = field(default_factory=dict)  # error code -> count
    event_subscribers: int = 0
    extra: list[MetricFamily] = field(default_factory=list)  # further families the node adds


class HttpMetrics:
    """Counters of HTTP requests by method and status, with a bound on distinct label sets."""

    def __init__(self) -> None:
        self._requests: Counter[tuple[str, str]] = Counter()
        self.overflow_total = 0

    def count_request(self, method: str, status: int) -> None:
        key = (method if method in _KNOWN_METHODS else "OTHER", str(status))
        if key not in self._requests and len(self._requests) >= LABEL_SETS_MAX:
            self.overflow_total += 1
            return
        self._requests[key] += 1

    def family(self) -> MetricFamily:
        samples = {(("method", method), ("status", status)): count for (method, status), count in self._requests.items()}
        return MetricFamily("xinlian_http_requests_total", "counter", "HTTP requests answered, by method and status.", samples)


_KNOWN_METHODS = frozenset({"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"})


def node_families(snapshot: NodeMetrics) -> list[MetricFamily]:
    """Turn a node snapshot into metric families."""
    rejected = {(("code", code),): count for code, count in snapshot.tx_rejected_total.items()}
    return [
        MetricFamily("xinlian_block_height", "gauge", "Height of the last committed block.", {(): snapshot.height}),
        MetricFamily("xinlian_consensus_view", "gauge", "Current consensus view number.", {(): snapshot.view}),
        MetricFamily("xinlian_mempool_size", "gauge", "Transactions waiting in the mempool.", {(): snapshot.mempool_size}),
        MetricFamily("xinlian_peers_connected", "gauge", "Peers with an open connection.", {(): snapshot.peers_connected}),
        MetricFamily(
            "xinlian_tx_admitted_total", "counter", "Transactions admitted to the mempool.", {(): snapshot.tx_admitted_total}
        ),
        MetricFamily("xinlian_tx_rejected_total", "counter", "Transactions rejected at admission, by error code.", rejected),
        MetricFamily(
            "xinlian_event_subscribers", "gauge", "Open event-stream subscriptions.", {(): snapshot.event_subscribers}
        ),
    ]


def render_prometheus(families: Iterable[MetricFamily]) -> str:
    """Write metric families as Prometheus text, samples sorted by labels so output is stable."""
    lines: list[str] = []
    for family in families:
        lines.append(f"# HELP {family.name} {_escape_help(family.help)}")
        lines.append(f"# TYPE {family.name} {family.kind}")
        for labels, value in sorted(family.samples.items()):
            lines.append(f"{family.name}{_format_labels(labels)} {int(value)}")
    return "\n".join(lines) + "\n"


def _format_labels(labels: tuple[tuple[str, str], ...]) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{name}="{_escape_label(value)}"' for name, value in labels)
    return "{" + inner + "}"


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")
