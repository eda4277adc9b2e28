"""Strict loader for the Home Credit instalment subset used by the real-data demo.

The data directory contains two CSV files: `installments_payments.csv` (one row per
payment against one scheduled instalment, with a UTF-8 byte-order mark) and
`previous_application_terms.csv` (the terms of each loan). Every cell is parsed
strictly: integers must be integers, amounts must be non-negative decimals, and
a missing file, column or malformed cell raises `DemoDataError` with a message
in zh-CN and English. Amounts become integer fen here, half-up, via Decimal.
"""

from __future__ import annotations

import csv
import logging
import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

logger = logging.getLogger("xinlian.demo.homecredit")

INSTALMENTS_FILE = "installments_payments.csv"
TERMS_FILE = "previous_application_terms.csv"
DATA_DIR_NAME = "home-credit-installments-subset"

# Home Credit's placeholder for "not applicable / not yet" in DAYS_* columns.
DAYS_PLACEHOLDER = 365243

INSTALMENT_COLUMNS = (
    "SK_ID_PREV",
    "SK_ID_CURR",
    "NUM_INSTALMENT_VERSION",
    "NUM_INSTALMENT_NUMBER",
    "DAYS_INSTALMENT",
    "DAYS_ENTRY_PAYMENT",
    "AMT_INSTALMENT",
    "AMT_PAYMENT",
)
TERMS_COLUMNS = (
    "SK_ID_PREV",
    "SK_ID_CURR",
    "NAME_CONTRACT_TYPE",
    "AMT_ANNUITY",
    "AMT_CREDIT",
    "NAME_CONTRACT_STATUS",
    "DAYS_DECISION",
    "NAME_PORTFOLIO",
    "CNT_PAYMENT",
    "NAME_YIELD_GROUP",
    "DAYS_FIRST_DUE",
)

_INTEGER = re.compile(r"-?[0-9]+")
_AMOUNT = re.compile(r"[0-9]+(\.[0-9]+)?")


class DemoDataError(ValueError):
    """The demo data is missing or malformed. The message is in zh-CN, then English."""

    def __init__(self, code: str, message_zh: str, message_en: str) -> None:
        super().__init__(f"{message_zh}\n{message_en}")
        self.code = code
        self.message_zh = message_zh
        self.message_en = message_en


@dataclass(frozen=True)
class InstalmentRow:
    """One row of installments_payments.csv: one payment against one instalment version."""

    line: int  # line number in the file, the header being line 1
    loan_id: int  # SK_ID_PREV
    client_id: int  # SK_ID_CURR
    version: int  # NUM_INSTALMENT_VERSION; 0 marks a credit card
    number: int  # NUM_INSTALMENT_NUMBER
    due_day: int  # DAYS_INSTALMENT, relative to the client's current application
    paid_day: int  # DAYS_ENTRY_PAYMENT, same scale
    due_fen: int  # AMT_INSTALMENT
    paid_fen: int  # AMT_PAYMENT


@dataclass(frozen=True)
class LoanTerms:
    """The columns of previous_application_terms.csv that the mapping uses, for one loan."""

    line: int
    loan_id: int
    client_id: int
    contract_type: str  # NAME_CONTRACT_TYPE
    portfolio: str  # NAME_PORTFOLIO: POS, Cash, Cards or Cars
    yield_group: str  # NAME_YIELD_GROUP
    status: str  # NAME_CONTRACT_STATUS
    decision_day: int  # DAYS_DECISION
    first_due_day: int | None  # DAYS_FIRST_DUE; None where the file has the placeholder
    credit_fen: int  # AMT_CREDIT
    annuity_fen: int  # AMT_ANNUITY
    payment_count: int  # CNT_PAYMENT, the term in instalments


@dataclass(frozen=True)
class Book:
    """Both files, parsed. Rows keep file order; terms are keyed by loan id."""

    data_dir: Path
    rows: tuple[InstalmentRow, ...]
    terms: dict[int, LoanTerms]


def to_fen(text: str) -> int:
    """Convert a non-negative decimal amount in yuan to integer fen, rounding half-up."""
    if not _AMOUNT.fullmatch(text):
        raise ValueError(f"amount {text!r} is not a non-negative decimal number")
    return int((Decimal(text) * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def repository_root() -> Path:
    return Path(__file__).resolve().parent.parent.parent


def default_data_dir() -> Path:
    """Return ../shared/data/home-credit-installments-subset relative to the repository root."""
    return repository_root().parent / "shared" / "data" / DATA_DIR_NAME


def load_book(data_dir: str | Path | None = None) -> Book:
    """Parse both CSV files of `data_dir` (default: `default_data_dir()`) strictly."""
    directory = Path(data_dir) if data_dir is not None else default_data_dir()
    _require_files(directory)
    rows = tuple(_parse_instalment_row(line, cells) for line, cells in _read_csv(directory, INSTALMENTS_FILE, INSTALMENT_COLUMNS))
    terms: dict[int, LoanTerms] = {}
    for line, cells in _read_csv(directory, TERMS_FILE, TERMS_COLUMNS):
        loan_terms = _parse_terms_row(line, cells)
        if loan_terms.loan_id in terms:
            raise _cell_error(TERMS_FILE, line, "SK_ID_PREV", str(loan_terms.loan_id), "duplicate loan id / 贷款编号重复")
        terms[loan_terms.loan_id] = loan_terms
    _check_rows_have_terms(rows, terms)
    logger.info("loaded %d instalment rows and %d loan terms from %s", len(rows), len(terms), directory)
    return Book(data_dir=directory, rows=rows, terms=dict(sorted(terms.items())))


def _require_files(directory: Path) -> None:
    missing = [name for name in (INSTALMENTS_FILE, TERMS_FILE) if not (directory / name).is_file()]
    if missing:
        names = ", ".join(missing)
        raise DemoDataError(
            "data_file_missing",
            f"演示数据目录 {directory} 缺少文件：{names}。该目录须包含 {INSTALMENTS_FILE} 和 {TERMS_FILE}；"
            "请用 data_dir 参数指定正确的目录。",
            f"Demo data directory {directory} is missing: {names}. It must contain {INSTALMENTS_FILE} "
            f"and {TERMS_FILE}; pass the right directory as data_dir.",
        )


def _read_csv(directory: Path, name: str, columns: tuple[str, ...]) -> list[tuple[int, dict[str, str]]]:
    path = directory / name
    try:
        return _read_rows(path, columns)
    except (csv.Error, UnicodeDecodeError) as exc:
        raise DemoDataError(
            "data_file_invalid",
            f"无法解析文件 {path}：{exc}。请确认它是 UTF-8 编码的 CSV 文件。",
            f"Cannot parse file {path}: {exc}. Check that it is a UTF-8 CSV file.",
        ) from None


def _read_rows(path: Path, columns: tuple[str, ...]) -> list[tuple[int, dict[str, str]]]:
    # utf-8-sig drops the byte-order mark that installments_payments.csv starts with.
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle, strict=True)
        header = next(reader, None)
        if header is None:
            raise DemoDataError("data_file_empty", f"文件 {path} 为空。", f"File {path} is empty.")
        absent = [column for column in columns if column not in header]
        if absent:
            raise DemoDataError(
                "data_column_missing",
                f"文件 {path} 缺少列：{', '.join(absent)}。",
                f"File {path} is missing the column(s): {', '.join(absent)}.",
            )
        result = []
        for cells in reader:
            line = reader.line_num
            if len(cells) != len(header):
                raise DemoDataError(
                    "data_row_invalid",
                    f"文件 {path} 第 {line} 行有 {len(cells)} 个字段，表头有 {len(header)} 个。",
                    f"File {path} line {line} has {len(cells)} fields, the header has {len(header)}.",
                )
            result.append((line, dict(zip(header, cells))))
    return result


def _cell_error(file_name: str, line: int, column: str, value: str, reason: str) -> DemoDataError:
    return DemoDataError(
        "data_cell_invalid",
        f"文件 {file_name} 第 {line} 行 {column} 列的值 {value!r} 无效：{reason}",
        f"File {file_name} line {line} column {column}: invalid value {value!r}: {reason}",
    )


def _integer(file_name: str, line: int, cells: dict[str, str], column: str) -> int:
    value = cells[column]
    if not _INTEGER.fullmatch(value):
        raise _cell_error(file_name, line, column, value, "expected an integer / 应为整数")
    return int(value)


def _fen(file_name: str, line: int, cells: dict[str, str], column: str) -> int:
    value = cells[column]
    try:
        return to_fen(value)
    except ValueError:
        raise _cell_error(file_name, line, column, value, "expected a non-negative amount / 应为非负金额") from None


def _parse_instalment_row(line: int, cells: dict[str, str]) -> InstalmentRow:
    name = INSTALMENTS_FILE
    return InstalmentRow(
        line=line,
        loan_id=_integer(name, line, cells, "SK_ID_PREV"),
        client_id=_integer(name, line, cells, "SK_ID_CURR"),
        version=_integer(name, line, cells, "NUM_INSTALMENT_VERSION"),
        number=_integer(name, line, cells, "NUM_INSTALMENT_NUMBER"),
        due_day=_integer(name, line, cells, "DAYS_INSTALMENT"),
        paid_day=_integer(name, line, cells, "DAYS_ENTRY_PAYMENT"),
        due_fen=_fen(name, line, cells, "AMT_INSTALMENT"),
        paid_fen=_fen(name, line, cells, "AMT_PAYMENT"),
    )


def _parse_terms_row(line: int, cells: dict[str, str]) -> LoanTerms:
    name = TERMS_FILE
    first_due_day = _integer(name, line, cells, "DAYS_FIRST_DUE")
    return LoanTerms(
        line=line,
        loan_id=_integer(name, line, cells, "SK_ID_PREV"),
        client_id=_integer(name, line, cells, "SK_ID_CURR"),
        contract_type=cells["NAME_CONTRACT_TYPE"],
        portfolio=cells["NAME_PORTFOLIO"],
        yield_group=cells["NAME_YIELD_GROUP"],
        status=cells["NAME_CONTRACT_STATUS"],
        decision_day=_integer(name, line, cells, "DAYS_DECISION"),
        first_due_day=None if first_due_day == DAYS_PLACEHOLDER else first_due_day,
        credit_fen=_fen(name, line, cells, "AMT_CREDIT"),
        annuity_fen=_fen(name, line, cells, "AMT_ANNUITY"),
        payment_count=_integer(name, line, cells, "CNT_PAYMENT"),
    )


def _check_rows_have_terms(rows: tuple[InstalmentRow, ...], terms: dict[int, LoanTerms]) -> None:
    for row in rows:
        loan_terms = terms.get(row.loan_id)
        if loan_terms is None:
            raise _cell_error(INSTALMENTS_FILE, row.line, "SK_ID_PREV", str(row.loan_id), f"no row in {TERMS_FILE} / {TERMS_FILE} 中无此贷款")
        if loan_terms.client_id != row.client_id:
            raise _cell_error(
                INSTALMENTS_FILE, row.line, "SK_ID_CURR", str(row.client_id), f"differs from {TERMS_FILE} / 与 {TERMS_FILE} 不一致"
            )
