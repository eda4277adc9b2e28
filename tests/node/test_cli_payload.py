"""`xinlian tx submit --payload` rejects values a transaction cannot carry, with exit status 2 and no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from node.cli import main

REPOSITORY = Path(__file__).resolve().parents[2]
INVALID_PAYLOADS = [
    ('{"a":1.5}', "float"),
    ('{"a":NaN}', "NaN"),
    ('{"a":99999999999999999999999}', "integer"),
    ('{"a":' + "9" * 5000 + "}", ""),
    ('{"a":1', "invalid_json"),
    ('{"a":1,"a":2}', "duplicate"),
    ('{"a":"\\ud800"}', ""),
]


def _submit_arguments(tmp_path: Path, payload: str, language: str = "en") -> list[str]:
    return ["--lang", language, "tx", "submit", "--key", str(tmp_path / "k.json"), "--node", "http://127.0.0.1:1", "--type", "member.suspend", "--payload", payload]


@pytest.mark.parametrize(("payload", "reason_fragment"), INVALID_PAYLOADS)
def test_invalid_payload_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], payload: str, reason_fragment: str) -> None:
    code = main(_submit_arguments(tmp_path, payload))

    error = capsys.readouterr().err
    assert code == 2
    assert error.startswith("error: --payload is invalid: ")
    assert reason_fragment in error
    assert "Traceback" not in error


def test_invalid_payload_chinese(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(_submit_arguments(tmp_path, '{"a":1.5}', language="zh-CN"))

    error = capsys.readouterr().err
    assert code == 2
    assert error.startswith("错误：--payload 无效：")


def test_float_payload_process_output(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "node.cli", *_submit_arguments(tmp_path, '{"a":1.5}')]
    finished = subprocess.run(command, cwd=tmp_path, env={"PYTHONPATH": str(REPOSITORY), "PATH": "/usr/bin:/bin"}, capture_output=True, text=True, timeout=60)

    assert finished.returncode == 2
    assert "Traceback" not in finished.stderr
    assert "--payload is invalid" in finished.stderr
    assert finished.stdout == ""
