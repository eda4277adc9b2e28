"""Prometheus text rendering of node and HTTP metrics."""

from __future__ import annotations

import re

from node.metrics import LABEL_SETS_MAX, HttpMetrics, MetricFamily, NodeMetrics, node_families, render_prometheus

SAMPLE_LINE = re.compile(
    r'^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?P<labels>\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*",?)*\})? (?P<value>-?[0-9]+)$'
)


def parse_prometheus(text: str) -> dict[str, dict[str, int]]:
    """Parse exposition text strictly enough to catch format errors: name -> labels text -> value."""
    assert text.endswith("\n")
    declared: dict[str, str] = {}
    samples: dict[str, dict[str, int]] = {}
    for line in text.splitlines():
        if line.startswith("# HELP "):
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert kind in ("counter", "gauge"), line
            assert name not in declared, f"duplicate TYPE for {name}"
            declared[name] = kind
            continue
        match = SAMPLE_LINE.match(line)
        assert match, f"not a valid sample line: {line!r}"
        name = match.group("name")
        assert name in declared, f"sample {name} before its TYPE line"
        samples.setdefault(name, {})[match.group("labels") or ""] = int(match.group("value"))
    return samples


def test_render_node_metrics() -> None:
    snapshot = NodeMetrics(
        height=12, view=3, mempool_size=5, peers_connected=2, tx_admitted_total=40, tx_rejected_total={"invalid_signature": 4, "expired": 1}
    )
    samples = parse_prometheus(render_prometheus(node_families(snapshot)))
    assert samples["xinlian_block_height"] == {"": 12}
    assert samples["xinlian_consensus_view"] == {"": 3}
    assert samples["xinlian_mempool_size"] == {"": 5}
    assert samples["xinlian_peers_connected"] == {"": 2}
    assert samples["xinlian_tx_admitted_total"] == {"": 40}
    assert samples["xinlian_tx_rejected_total"] == {'{code="expired"}': 1, '{code="invalid_signature"}': 4}


def test_label_values_escaped() -> None:
    family = MetricFamily("x_total", "counter", "help with \\ backslash", {(("code", 'a"b\\c\nd'),): 1})
    text = render_prometheus([family])
    assert 'x_total{code="a\\"b\\\\c\\nd"} 1' in text
    parse_prometheus(text)


def test_http_metrics_bounded() -> None:
    metrics = HttpMetrics()
    metrics.count_request("GET", 200)
    metrics.count_request("GET", 200)
    metrics.count_request("BREW", 418)
    samples = parse_prometheus(render_prometheus([metrics.family()]))["xinlian_http_requests_total"]
    assert samples['{method="GET",status="200"}'] == 2
    assert samples['{method="OTHER",status="418"}'] == 1
    for status in range(LABEL_SETS_MAX + 10):
        metrics.count_request("POST", 1000 + status)
    assert len(metrics.family().samples) == LABEL_SETS_MAX
    assert metrics.overflow_total > 0
