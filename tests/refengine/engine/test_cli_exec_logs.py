"""``exec`` and ``logs`` without a kernel: the exit statuses of exec's errors
(1 like docker's CLI, 125 only for a bad flag) and ``--tail`` (pure)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reference_runtime.engine import cli, logs


@pytest.mark.parametrize("argv", [["exec", "nothing", "true"], ["exec", "-u", "nobody", "nothing", "id"]])
def test_exec_into_a_missing_container_exits_1_naming_it(tmp_path, capsys, argv):
    status = cli.main(["--root", str(tmp_path), *argv])
    _, err = capsys.readouterr()
    assert status == 1
    assert err.startswith("refengine: ") and err.count("\n") == 1
    assert "No such container: nothing" in err and "Traceback" not in err


def test_exec_with_an_unknown_flag_still_exits_125(tmp_path, capsys):
    status = cli.main(["--root", str(tmp_path), "exec", "--no-such-flag", "c", "true"])
    _, err = capsys.readouterr()
    assert status == 125
    assert "no-such-flag" in err and err.count("\n") == 1


@pytest.mark.parametrize("value,expected", [
    ("3", 3), ("0", 0), ("+2", 2), (None, None), ("all", None),
    # docker: "a negative number or a non-integer ... is set to all"
    ("-1", None), ("many", None), ("1.5", None), ("", None), (" 3", None), ("1_0", None), ("\u0663", None),
])
def test_parse_tail(value, expected):
    assert logs.parse_tail(value) == expected


def _records(n: int) -> list[dict]:
    return [{"log": f"line{i}\n", "stream": "stdout", "time": "2026-01-01T00:00:00.000000000Z"} for i in range(n)]


def test_tail_beyond_the_log_is_all_of_it():
    assert logs.select(_records(5), tail=9) == _records(5)
    assert logs.select(_records(5), tail=0) == []
    assert logs.select([], tail=3) == []


@given(st.integers(0, 30), st.integers(0, 40))
def test_tail_keeps_the_last_n_in_order(length, n):
    records = _records(length)
    assert logs.select(records, tail=n) == records[max(0, length - n):]
