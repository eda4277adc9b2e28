"""TxVerifier.verify_many: batch verification through a process pool, recorded in the signature cache."""

from __future__ import annotations

import concurrent.futures
import multiprocessing

import pytest

from node.tx import TxError, TxVerifier, compute_tx_id
from tests.node.helpers import CHAIN_ID, GENESIS_TIME_MS, make_envelope


@pytest.fixture(scope="module")
def pool() -> concurrent.futures.ProcessPoolExecutor:
    with concurrent.futures.ProcessPoolExecutor(max_workers=2, mp_context=multiprocessing.get_context("forkserver")) as executor:
        yield executor


def batch(count: int) -> list[dict]:
    return [make_envelope(seed_number=1 + index % 3, nonce=str(index)) for index in range(count)]


def test_pool_results_enter_cache(pool: concurrent.futures.ProcessPoolExecutor) -> None:
    verifier = TxVerifier(CHAIN_ID)
    envelopes = batch(20)
    envelopes[5] = dict(envelopes[5], signature="00" * 64)

    results = verifier.verify_many(envelopes, pool=pool, pool_threshold=10)
    checks_after_batch = verifier.signature_checks
    again = verifier.verify(envelopes[0])

    assert isinstance(results[5], TxError)
    assert results[5].code == "invalid_signature"
    assert [result.tx_id for index, result in enumerate(results) if index != 5] == [compute_tx_id(e) for index, e in enumerate(envelopes) if index != 5]
    assert checks_after_batch == 20
    # verify() after the batch is answered from the cache.
    assert verifier.signature_checks == 20
    assert again.tx_id == results[0].tx_id


def test_cached_signatures_skipped(pool: concurrent.futures.ProcessPoolExecutor) -> None:
    verifier = TxVerifier(CHAIN_ID)
    envelopes = batch(12)
    for envelope in envelopes[:4]:
        verifier.verify(envelope)

    verifier.verify_many(envelopes, pool=pool, pool_threshold=1)

    assert verifier.signature_checks == 12


def test_small_batch_verified_inline() -> None:
    verifier = TxVerifier(CHAIN_ID)

    results = verifier.verify_many(batch(3) + [make_envelope(nonce="x", chain_id="other")], pool=None)

    assert verifier.signature_checks == 3
    assert isinstance(results[3], TxError)
    assert results[3].code == "wrong_chain"


def test_duplicates_in_batch_checked_once(pool: concurrent.futures.ProcessPoolExecutor) -> None:
    verifier = TxVerifier(CHAIN_ID)
    envelope = make_envelope(nonce="same")

    results = verifier.verify_many([envelope] * 8, pool=pool, pool_threshold=1)

    assert verifier.signature_checks == 1
    assert len({result.tx_id for result in results}) == 1


async def test_async_batch_checks_expiry(pool: concurrent.futures.ProcessPoolExecutor) -> None:
    verifier = TxVerifier(CHAIN_ID)
    envelopes = batch(6)
    envelopes.append(make_envelope(nonce="late", expires_at=GENESIS_TIME_MS + 2 * 3_600_000))

    results = await verifier.verify_many_async(envelopes, now_ms=GENESIS_TIME_MS, pool=pool, pool_threshold=2)

    assert verifier.signature_checks == 6
    assert isinstance(results[6], TxError)
    assert results[6].code == "expiry_too_far"
    assert all(not isinstance(result, TxError) for result in results[:6])
