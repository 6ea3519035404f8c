"""docker's json-file log format (pure)."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from reference_runtime.engine import logs

T = "2026-11-27T19:53:18.378445300Z"


def test_record_is_dockers_json_line():
    line = logs.encode(b"hello\n", "stderr", T)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert json.loads(line) == {"log": "hello\n", "stream": "stderr", "time": T}


def test_invalid_utf8_is_replaced_not_fatal():
    assert json.loads(logs.encode(b"\xff\n", "stdout", T))["log"] == "\ufffd\n"


def test_lines_are_split_at_newlines_and_partial_lines_kept_until_eof():
    s = logs.LineSplitter()
    assert s.feed(b"a\nb") == [b"a\n"]
    assert s.feed(b"c\nd") == [b"bc\n"]
    assert s.flush() == [b"d"]
    assert s.flush() == []


def test_long_lines_become_16k_partial_records():
    s = logs.LineSplitter()
    out = s.feed(b"x" * (logs.MAX_LINE * 2 + 5) + b"\n")
    assert [len(r) for r in out] == [logs.MAX_LINE, logs.MAX_LINE, 6]


@given(st.lists(st.binary(max_size=40), max_size=20))
def test_splitting_loses_and_reorders_nothing(chunks):
    s = logs.LineSplitter()
    records = [r for c in chunks for r in s.feed(c)] + s.flush()
    assert b"".join(records) == b"".join(chunks)
    assert all(r.endswith(b"\n") for r in records[:-1])


def test_select_since_until_tail():
    records = [{"log": str(i), "stream": "stdout", "time": str(i)} for i in range(10)]
    pick = logs.select(records, since=2, until=7, tail=3, time_of=float)
    assert [r["log"] for r in pick] == ["5", "6", "7"]
    assert logs.select(records, tail=0, time_of=float) == []
    assert logs.parse_tail("all") is None and logs.parse_tail("3") == 3


def test_a_torn_line_is_skipped():
    assert logs.parse(b'{"log":"x') is None
    assert logs.parse(logs.encode(b"x", "stdout", T))["log"] == "x"
