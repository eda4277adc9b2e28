import hashlib
import hmac
import logging
import os

import pytest

from node.privacy.errors import PrivacyError
from node.privacy.subject_id import (
    SubjectIdHasher,
    check_character,
    load_consortium_secret,
    normalise_id_number,
    write_consortium_secret,
)

# The sample number from GB 11643-1999; its check character is X.
SAMPLE = "11010519491231002X"

NORMALISATION_TABLE = [
    ("11010519491231002X", SAMPLE),
    ("11010519491231002x", SAMPLE),
    (" 110105 19491231 002X ", SAMPLE),
    ("110105-19491231-002X", SAMPLE),
    ("110105.19491231.002x", SAMPLE),
    ("110105_1949/1231\\002X", SAMPLE),
    ("１１０１０５１９４９１２３１００２Ｘ", SAMPLE),
    ("１１０１０５　１９４９１２３１　００２ｘ", SAMPLE),
    ("110105－19491231－002X", SAMPLE),
    ("110105—19491231·002X", SAMPLE),
    ("\t11010519491231002X\n", SAMPLE),
    # 15-digit first-generation number of the same person: century 19 added, check computed.
    ("110105491231002", SAMPLE),
    ("110105 491231 002", SAMPLE),
    ("440524188001010014", "440524188001010014"),
]

INVALID_TABLE = [
    ("", "length"),
    ("11010519491231002", "17 characters"),
    ("110105194912310021X", "19 characters"),
    ("11010519491231002Y", "bad check letter"),
    ("110105194912310021", "wrong check digit"),
    ("1101051949123100XX", "letter inside digits"),
    ("11010519491331002X", "month 13 in birth date"),
    ("110105190002290011", "29 February 1900"),
    ("11010549123100A", "letter in 15-digit number"),
    ("110105491331002", "15-digit with month 13"),
    ("١١٠١٠٥١٩٤٩١٢٣١٠٠٢X", "Arabic-Indic digits"),
    ("1" * 100, "far too long"),
]


@pytest.mark.parametrize("raw, expected", NORMALISATION_TABLE)
def test_normalise_valid_numbers(raw, expected):
    assert normalise_id_number(raw) == expected


@pytest.mark.parametrize("raw, case", INVALID_TABLE)
def test_normalise_rejects_invalid(raw, case):
    with pytest.raises(PrivacyError) as raised:
        normalise_id_number(raw)
    assert raised.value.code == "invalid_id_number", case


def test_invalid_number_not_in_error():
    with pytest.raises(PrivacyError) as raised:
        normalise_id_number("110105194912310021")
    assert "110105194912310021" not in repr(raised.value.details)
    assert "110105194912310021" not in str(raised.value)


def test_check_character_every_remainder():
    # Vary the last digit to reach each of the 11 remainders at least once.
    seen = {check_character("1101051949123100" + str(digit)) for digit in range(10)}
    seen |= {check_character("1101051949123101" + str(digit)) for digit in range(10)}
    assert seen == set("0123456789X")


def test_subject_id_is_hmac_of_normalised():
    secret = bytes(range(32))
    hasher = SubjectIdHasher(secret)
    expected = hmac.new(secret, SAMPLE.encode(), hashlib.sha256).hexdigest()
    assert hasher.subject_id("110105 19491231 002x") == expected
    assert hasher.subject_id("110105491231002") == expected
    assert len(expected) == 64
    assert expected == expected.lower()


def test_subject_id_depends_on_secret():
    first = SubjectIdHasher(b"\x01" * 32).subject_id(SAMPLE)
    second = SubjectIdHasher(b"\x02" * 32).subject_id(SAMPLE)
    assert first != second


def test_short_secret_rejected(tmp_path):
    with pytest.raises(ValueError):
        SubjectIdHasher(b"\x01" * 31)
    path = tmp_path / "secret.hex"
    path.write_text("ab" * 31)
    with pytest.raises(ValueError, match="needs at least 32"):
        load_consortium_secret(path)


def test_secret_file_not_hex_rejected(tmp_path):
    path = tmp_path / "secret.hex"
    path.write_text("zz" * 32)
    with pytest.raises(ValueError) as raised:
        load_consortium_secret(path)
    assert "zz" not in str(raised.value)


def test_write_secret_file_mode_0600(tmp_path):
    path = tmp_path / "secret.hex"
    write_consortium_secret(path)
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert len(bytes.fromhex(path.read_text().strip())) == 32
    with pytest.raises(FileExistsError):
        write_consortium_secret(path)


def test_secret_and_id_never_logged(tmp_path, caplog):
    path = tmp_path / "secret.hex"
    write_consortium_secret(path)
    os.chmod(path, 0o644)  # also triggers the permission warning
    secret_hex = path.read_text().strip()

    caplog.set_level(logging.DEBUG)
    hasher = load_consortium_secret(path)
    subject_id = hasher.subject_id(SAMPLE)
    with pytest.raises(PrivacyError):
        hasher.subject_id("110105194912310021")
    logging.getLogger("test").info("hasher %r", hasher)

    assert any("accessible by group" in record.getMessage() for record in caplog.records)
    text = caplog.text + repr(hasher)
    assert secret_hex not in text
    assert secret_hex[:16] not in text
    assert SAMPLE not in text
    assert "110105194912310021" not in text
    assert len(subject_id) == 64
