import shutil

import pytest

from node.demo.homecredit import (
    INSTALMENTS_FILE,
    TERMS_FILE,
    DemoDataError,
    default_data_dir,
    load_book,
    to_fen,
)

DATA_DIR = default_data_dir()


@pytest.fixture(scope="module")
def book():
    return load_book()


def test_default_data_dir_exists():
    assert (DATA_DIR / INSTALMENTS_FILE).is_file()
    assert (DATA_DIR / TERMS_FILE).is_file()


def test_load_book_counts(book):
    assert len(book.rows) == 7347
    assert len(book.terms) == 1772
    assert len({row.loan_id for row in book.rows}) == 1772
    assert len({row.client_id for row in book.rows}) == 887


def test_load_book_reads_first_row_after_bom(book):
    # The file starts with a UTF-8 BOM; the first data row must still parse by column name.
    first = book.rows[0]
    assert first.line == 2
    assert (first.loan_id, first.client_id, first.version, first.number) == (2105136, 100605, 1, 9)
    assert (first.due_day, first.paid_day) == (-65, -80)
    assert (first.due_fen, first.paid_fen) == (767943, 767943)


def test_load_book_terms_fields(book):
    terms = book.terms[1038818]
    assert terms.client_id == 100002
    assert terms.portfolio == "POS"
    assert terms.yield_group == "low_normal"
    assert terms.decision_day == -606
    assert terms.payment_count == 24
    assert terms.annuity_fen == 925178  # 9251.775 rounds half-up
    assert list(book.terms) == sorted(book.terms)


def test_load_book_placeholder_first_due_is_none(book):
    placeholders = [terms for terms in book.terms.values() if terms.first_due_day is None]
    assert len(placeholders) == 2


def _copy_data(tmp_path, names):
    for name in names:
        shutil.copy(DATA_DIR / name, tmp_path / name)
    return tmp_path


def test_missing_file_error_names_files_and_dir(tmp_path):
    _copy_data(tmp_path, [TERMS_FILE])
    with pytest.raises(DemoDataError) as info:
        load_book(tmp_path)
    error = info.value
    assert error.code == "data_file_missing"
    assert INSTALMENTS_FILE in error.message_en
    assert TERMS_FILE in error.message_en
    assert str(tmp_path) in error.message_en
    assert "缺少文件" in error.message_zh
    assert str(tmp_path) in error.message_zh
    assert error.message_zh in str(error)
    assert error.message_en in str(error)


def test_missing_directory_error(tmp_path):
    with pytest.raises(DemoDataError) as info:
        load_book(tmp_path / "absent")
    assert info.value.code == "data_file_missing"


def test_missing_column_error(tmp_path):
    _copy_data(tmp_path, [INSTALMENTS_FILE])
    lines = (DATA_DIR / TERMS_FILE).read_text(encoding="utf-8").splitlines()
    header = lines[0].replace("NAME_YIELD_GROUP", "YIELD")
    (tmp_path / TERMS_FILE).write_text("\n".join([header, *lines[1:]]) + "\n", encoding="utf-8")
    with pytest.raises(DemoDataError) as info:
        load_book(tmp_path)
    assert info.value.code == "data_column_missing"
    assert "NAME_YIELD_GROUP" in info.value.message_en
    assert "NAME_YIELD_GROUP" in info.value.message_zh


def test_malformed_cell_error_names_line(tmp_path):
    _copy_data(tmp_path, [TERMS_FILE])
    text = (DATA_DIR / INSTALMENTS_FILE).read_bytes().decode("utf-8")
    lines = text.split("\r\n")
    lines[3] = lines[3].replace(",-387,", ",-38.7,", 1)
    (tmp_path / INSTALMENTS_FILE).write_bytes("\r\n".join(lines).encode("utf-8"))
    with pytest.raises(DemoDataError) as info:
        load_book(tmp_path)
    assert info.value.code == "data_cell_invalid"
    assert "line 4" in info.value.message_en
    assert "DAYS_INSTALMENT" in info.value.message_en


def test_non_utf8_file_error(tmp_path):
    _copy_data(tmp_path, [TERMS_FILE])
    (tmp_path / INSTALMENTS_FILE).write_bytes(b"SK_ID_PREV,\xff\xfe\n")
    with pytest.raises(DemoDataError) as info:
        load_book(tmp_path)
    assert info.value.code == "data_file_invalid"
    assert INSTALMENTS_FILE in info.value.message_en


def test_short_row_error(tmp_path):
    _copy_data(tmp_path, [INSTALMENTS_FILE])
    lines = (DATA_DIR / TERMS_FILE).read_text(encoding="utf-8").splitlines()
    lines[2] = lines[2].rsplit(",", 1)[0]
    (tmp_path / TERMS_FILE).write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(DemoDataError) as info:
        load_book(tmp_path)
    assert info.value.code == "data_row_invalid"
    assert "line 3" in info.value.message_en


def test_loan_without_terms_rejected(tmp_path):
    _copy_data(tmp_path, [INSTALMENTS_FILE])
    lines = (DATA_DIR / TERMS_FILE).read_text(encoding="utf-8").splitlines()
    lines_without_loan = [line for line in lines if not line.startswith("2105136,")]
    (tmp_path / TERMS_FILE).write_text("\n".join(lines_without_loan) + "\n", encoding="utf-8")
    with pytest.raises(DemoDataError) as info:
        load_book(tmp_path)
    assert "2105136" in info.value.message_en


@pytest.mark.parametrize(
    ("text", "fen"),
    [
        ("0", 0),
        ("0.004", 0),
        ("0.005", 1),
        ("0.045", 5),
        ("1.115", 112),
        ("1.125", 113),  # half-up, not half-even
        ("2.675", 268),  # float arithmetic gives 267
        ("1.0049", 100),
        ("15737.985", 1573799),
        ("9251.775", 925178),
        ("100", 10000),
        ("7679.43", 767943),
    ],
)
def test_to_fen_rounds_half_up(text, fen):
    assert to_fen(text) == fen


@pytest.mark.parametrize("text", ["", "-1", "1e3", "1.", ".5", "NaN", " 1", "1,5"])
def test_to_fen_rejects_malformed(text):
    with pytest.raises(ValueError):
        to_fen(text)
