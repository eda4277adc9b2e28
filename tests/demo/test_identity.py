import pytest

from node.demo.homecredit import load_book
from node.demo.identity import client_id_of, stand_in_id_number
from node.privacy.subject_id import normalise_id_number

# GB 11643-1999 weights and check characters, written out here so the test does
# not reuse the code under test.
WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK = "10X98765432"


def expected_check(first_17):
    return CHECK[sum(int(digit) * weight for digit, weight in zip(first_17, WEIGHTS)) % 11]


def test_stand_in_layout():
    number = stand_in_id_number(100002)
    assert number[:17] == "99010019000101002"
    assert number[17] == expected_check(number[:17])


def test_stand_in_check_digits_valid_for_all_clients():
    client_ids = sorted({row.client_id for row in load_book().rows})
    numbers = [stand_in_id_number(client_id) for client_id in client_ids]
    assert len(set(numbers)) == len(client_ids)
    for number in numbers:
        assert number[17] == expected_check(number[:17])
        assert normalise_id_number(number) == number


def test_stand_in_is_obviously_synthetic():
    number = stand_in_id_number(101156)
    assert number.startswith("99")  # no province has code 99
    assert number[6:14] == "19000101"


def test_stand_in_round_trip():
    for client_id in (0, 1, 999, 1000, 100001, 456255, 999999):
        assert client_id_of(stand_in_id_number(client_id)) == client_id


@pytest.mark.parametrize("client_id", [-1, 1_000_000])
def test_stand_in_rejects_out_of_range(client_id):
    with pytest.raises(ValueError):
        stand_in_id_number(client_id)


def test_client_id_of_rejects_real_looking_number():
    with pytest.raises(ValueError):
        client_id_of("11010519491231002X")
