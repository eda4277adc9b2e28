"""Quorum sizes for any number of validators."""

import pytest

from consensus import max_faulty, quorum_size, weak_quorum_size


@pytest.mark.parametrize("validator_count", range(1, 21))
def test_two_quorums_share_a_correct_validator(validator_count):
    quorum = quorum_size(validator_count)
    faulty = max_faulty(validator_count)
    assert 2 * quorum - validator_count >= faulty + 1


@pytest.mark.parametrize("validator_count", range(1, 21))
def test_quorum_reachable_without_faulty(validator_count):
    assert quorum_size(validator_count) <= validator_count - max_faulty(validator_count)


@pytest.mark.parametrize(
    ("validator_count", "faulty", "quorum"),
    [(1, 0, 1), (2, 0, 2), (3, 0, 2), (4, 1, 3), (5, 1, 4), (6, 1, 4), (7, 2, 5), (10, 3, 7)],
)
def test_known_sizes(validator_count, faulty, quorum):
    assert max_faulty(validator_count) == faulty
    assert quorum_size(validator_count) == quorum
    assert weak_quorum_size(validator_count) == faulty + 1


def test_empty_set_is_invalid():
    with pytest.raises(ValueError):
        quorum_size(0)
