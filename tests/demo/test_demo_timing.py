"""Contact-time choice of the demo's collector, and the driver's data-directory error."""

from __future__ import annotations

import datetime as dt

import pytest

from node.demo.collector import CALL_MARGIN_MINUTES, MINUTE_MS, ContactHours, call_time_ms
from node.demo.driver import main, resolve_data_dir
from node.demo.homecredit import INSTALMENTS_FILE, TERMS_FILE, DemoDataError

ZONE = dt.timezone(dt.timedelta(hours=8))
HOURS = ContactHours(start_minute=8 * 60, end_minute=22 * 60, utc_offset_minutes=8 * 60)


def at(text: str) -> int:
    """Chain milliseconds of a local +08:00 time 'YYYY-MM-DD HH:MM'."""
    return int(dt.datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=ZONE).timestamp() * 1000)


def local(time_ms: int) -> str:
    return dt.datetime.fromtimestamp(time_ms / 1000, tz=ZONE).strftime("%Y-%m-%d %H:%M")


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        ("2017-03-04 00:00", "2017-03-04 08:10"),  # before the hours: wait for the opening plus the margin
        ("2017-03-04 08:05", "2017-03-04 08:10"),  # inside the hours, but a call 10 minutes earlier would not be
        ("2017-03-04 08:10", "2017-03-04 08:10"),
        ("2017-03-04 15:37", "2017-03-04 15:37"),
        ("2017-03-04 21:59", "2017-03-04 21:59"),
        ("2017-03-04 22:00", "2017-03-05 08:10"),  # after the hours: the next morning
        ("2017-03-04 23:59", "2017-03-05 08:10"),
    ],
)
def test_next_call_time(now: str, expected: str) -> None:
    assert local(HOURS.next_call_time_ms(at(now))) == expected


def test_call_inside_hours_from_any_minute() -> None:
    day = at("2017-03-04 00:00")
    for minute in range(0, 24 * 60, 7):
        now_ms = HOURS.next_call_time_ms(day + minute * MINUTE_MS + 12_345)
        call_ms = call_time_ms(now_ms)
        call_minute = (call_ms - at(local(call_ms)[:10] + " 00:00")) // MINUTE_MS
        assert HOURS.start_minute <= call_minute < HOURS.end_minute, local(call_ms)
        assert 0 < now_ms - call_ms <= (CALL_MARGIN_MINUTES + 1) * MINUTE_MS
        assert call_ms % MINUTE_MS == 0


def test_missing_data_dir_message(tmp_path) -> None:
    with pytest.raises(DemoDataError) as caught:
        resolve_data_dir(str(tmp_path / "absent"))
    assert "does not exist" in caught.value.message_en
    assert "不存在" in caught.value.message_zh
    for message in (caught.value.message_en, caught.value.message_zh):
        assert INSTALMENTS_FILE in message
        assert TERMS_FILE in message
        assert "--data-dir" in message


def test_missing_file_names_it(tmp_path) -> None:
    (tmp_path / INSTALMENTS_FILE).write_text("x\n", encoding="utf-8")
    with pytest.raises(DemoDataError) as caught:
        resolve_data_dir(str(tmp_path))
    assert f"is missing {TERMS_FILE}" in caught.value.message_en
    assert f"缺少 {TERMS_FILE}" in caught.value.message_zh


def test_main_exits_2_without_data(tmp_path, capsys) -> None:
    assert main(["--data-dir", str(tmp_path), "--work-dir", str(tmp_path / "work")]) == 2
    error = capsys.readouterr().err
    assert "Demo data not found" in error
    assert "找不到演示数据" in error
    assert not (tmp_path / "work").exists()
