"""Catch-up: serving committed blocks to peers and fetching the blocks this node is missing.

Two request topics on the peer links:

- `sync.height` {} -> {"height": h}: the peer's committed height.
- `sync.blocks` {"from": a, "to": b} -> {"height": h, "blocks": [certified block wire, ...]}:
  committed blocks a..b in order, at most `blocks_per_response_max` of them and
  at most `response_bytes_max` of payload, so a response fits in one peer message.

Fetched blocks are only decoded here. The caller verifies each commit
certificate against the validator set in force at that height before it
commits or hands the block to the replica.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

from consensus import CertifiedBlock, CommitCertificate, ConsensusDecodeError
from node.chain import Chain, StoredBlock
from node.p2p import P2PNetwork, PeerError

TOPIC_HEIGHT = "sync.height"
TOPIC_BLOCKS = "sync.blocks"

log = logging.getLogger("xinlian.sync")


def stored_to_wire(block: StoredBlock) -> dict[str, Any]:
    return {"seq": block.seq, "view": block.view, "digest": block.digest, "payload": block.payload.hex(), "certificate": block.certificate}


class BlockServer:
    """Serve peers' catch-up requests from the local chain."""

    def __init__(self, chain: Callable[[], Chain], blocks_per_response_max: int, response_bytes_max: int) -> None:
        self._chain = chain
        self.blocks_per_response_max = blocks_per_response_max
        self.response_bytes_max = response_bytes_max

    def register(self, network: P2PNetwork) -> None:
        network.on_request(TOPIC_HEIGHT, self.serve_height)
        network.on_request(TOPIC_BLOCKS, self.serve_blocks)

    async def serve_height(self, peer: str, body: Any) -> dict[str, Any]:
        return {"height": self._chain().height}

    async def serve_blocks(self, peer: str, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict) or type(body.get("from")) is not int or type(body.get("to")) is not int:
            raise PeerError("invalid_request: expected {\"from\": int, \"to\": int}")
        first, last = body["from"], body["to"]
        if first < 1 or last < first:
            raise PeerError(f"invalid_request: range {first}..{last} is empty or below 1")
        chain = self._chain()
        wires = []
        payload_bytes = 0
        for block in chain.blocks_range(first, last, self.blocks_per_response_max):
            # Hex doubles the payload size; always send at least one block so the requester progresses.
            payload_bytes += 2 * len(block.payload)
            if wires and payload_bytes > self.response_bytes_max:
                break
            wires.append(stored_to_wire(block))
        return {"height": chain.height, "blocks": wires}


async def fetch_height(network: P2PNetwork, peer: str, timeout_s: float) -> int | None:
    try:
        response = await network.request(peer, TOPIC_HEIGHT, {}, timeout_s)
    except PeerError as exc:
        log.debug("height request failed", extra={"fields": {"peer": peer, "error": str(exc)}})
        return None
    height = response.get("height") if isinstance(response, dict) else None
    return height if type(height) is int and height >= 0 else None


async def fetch_blocks(network: P2PNetwork, peer: str, first: int, last: int, timeout_s: float) -> tuple[int | None, list[CertifiedBlock]]:
    """Request blocks first..last from one peer; return (peer height, decoded blocks in ascending order).

    Blocks that fail to decode, or break the ascending run from `first`, end the list.
    """
    try:
        response = await network.request(peer, TOPIC_BLOCKS, {"from": first, "to": last}, timeout_s)
    except PeerError as exc:
        log.info("block request failed", extra={"fields": {"peer": peer, "from": first, "to": last, "error": str(exc)}})
        return None, []
    if not isinstance(response, dict) or not isinstance(response.get("blocks"), list):
        log.warning("invalid block response", extra={"fields": {"peer": peer}})
        return None, []
    height = response.get("height") if type(response.get("height")) is int else None
    blocks: list[CertifiedBlock] = []
    for wire in response["blocks"]:
        try:
            block = CertifiedBlock.from_wire(wire)
        except ConsensusDecodeError as exc:
            log.warning("peer sent an undecodable block", extra={"fields": {"peer": peer, "error": str(exc)}})
            break
        if block.seq != first + len(blocks):
            log.warning("peer sent blocks out of order", extra={"fields": {"peer": peer, "expected": first + len(blocks), "got": block.seq}})
            break
        blocks.append(block)
    return height, blocks


def certificate_wire(block: CertifiedBlock) -> dict[str, Any]:
    certificate: CommitCertificate = block.certificate
    return certificate.to_wire()
