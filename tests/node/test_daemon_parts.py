"""The daemon's parts: Node is assembled from one mixin per concept, and uses only the replica's public interface."""

from __future__ import annotations

import inspect
import pathlib
import re

from node.block_commit import BlockCommitMixin
from node.catchup import CatchUpMixin
from node.consensus_driver import ConsensusDriverMixin
from node.daemon import Node
from node.proposer import ProposerMixin

NODE_DIR = pathlib.Path(__file__).resolve().parents[2] / "node"
PARTS = (ConsensusDriverMixin, ProposerMixin, BlockCommitMixin, CatchUpMixin)
# A private attribute read on a replica object, such as replica._proposal_seq().
PRIVATE_REPLICA_ACCESS = re.compile(r"\breplica\._[a-z]\w*")


def _own_methods(cls: type) -> set[str]:
    return {name for name, value in vars(cls).items() if inspect.isfunction(value)}


def test_node_uses_public_replica_interface() -> None:
    offenders = {}
    for path in sorted(NODE_DIR.rglob("*.py")):
        found = PRIVATE_REPLICA_ACCESS.findall(path.read_text(encoding="utf-8"))
        if found:
            offenders[str(path.relative_to(NODE_DIR.parent))] = found
    assert offenders == {}


def test_each_method_defined_once() -> None:
    owners: dict[str, list[str]] = {}
    for cls in (Node, *PARTS):
        for name in _own_methods(cls):
            owners.setdefault(name, []).append(cls.__name__)
    duplicated = {name: classes for name, classes in owners.items() if len(classes) > 1 and name != "__init__"}
    assert duplicated == {}


def test_node_has_every_part() -> None:
    assert Node.__mro__[1 : 1 + len(PARTS)] == PARTS
    for part in PARTS:
        for name in _own_methods(part):
            assert getattr(Node, name) is getattr(part, name), (part.__name__, name)
    for name in ("_perform", "_maybe_propose", "_validate_payload", "_commit_to_chain", "catch_up", "_tick_loop"):
        assert hasattr(Node, name), name
