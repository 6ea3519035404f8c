"""``logs``: the container's stdout and stderr on logs' own stdout and stderr,
``--tail``, ``--since``/``--until`` (RFC 3339, unix time and relative
durations), ``-t`` (RFC3339Nano, nine fractional digits), ``-f`` following a
running container to its end, and a missing container.

Timed checks use a container that prints one line, sleeps 2 s, prints a
second, sleeps 2 s, prints a third; the cut-offs are taken from the
container's own StartedAt, one second after a line, so each bound has a
second of margin on either side. Relative durations also carry the engine's
latency between our clock and its cut, so their container spaces the lines
5 s apart and cuts at the midpoints (2.5 s of margin, for a loaded machine).
``-f`` is checked with a container that waits for a file before each later
line: the check releases each line only after the previous one arrived.
"""

from __future__ import annotations

import math
import queue
import re
import subprocess
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest

from .conftest import LOGGING, LOGS

pytestmark = pytest.mark.spec(LOGS, "docker logs fetches the logs of a container")

#: Three lines two seconds apart: "one" at StartedAt, "two" at +2 s, "three" at +4 s.
SPACED = "echo one; sleep 2; echo two; sleep 2; echo three"

#: The same three lines five seconds apart, for relative cut-offs.
WIDE = "echo one; sleep 5; echo two; sleep 5; echo three"

#: docker's RFC3339Nano with the fraction padded to nine digits, then one space.
STAMPED = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\.(\d{9})Z (.*)")


def _parse_time(value: str) -> datetime:
    """An inspect timestamp (RFC 3339, up to nanoseconds) as an aware datetime."""
    m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", value.strip())
    assert m, f"not an RFC 3339 timestamp: {value!r}"
    frac = (m.group(2) or "0")[:6].ljust(6, "0")
    return datetime.fromisoformat(f"{m.group(1)}.{frac}{'+00:00' if m.group(3) == 'Z' else m.group(3)}")


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _spaced_container(engine, image, script: str = SPACED) -> tuple[str, datetime]:
    """Run :data:`SPACED` (or ``script``) to its end; its name and StartedAt."""
    name = engine.new_name()
    result = engine.cli("run", "--name", name, "--label", engine.label, image, "sh", "-c", script, timeout=90)
    assert result.returncode == 0 and result.stdout == "one\ntwo\nthree\n", f"{engine.name}: the container did not run\n{result}"
    return name, _parse_time(engine.state(name)["StartedAt"])


def _logs(engine, name: str, *flags: str):
    return engine.cli("logs", *flags, name, timeout=60)


@pytest.mark.spec(LOGGING, "By default, docker logs shows the command's STDOUT and STDERR "
                  "(as it would appear if you ran the command interactively in a terminal)")
def test_stdout_and_stderr_are_kept_apart(engine, image):
    name = engine.new_name()
    engine.cli("run", "--name", name, "--label", engine.label, image, "sh", "-c",
               "echo out1; echo err1 >&2; echo out2; echo err2 >&2", check=True)
    result = _logs(engine, name)
    assert result.returncode == 0, f"{engine.name}: logs failed\n{result}"
    assert result.stdout == "out1\nout2\n", (
        f"{engine.name}: logs' stdout is {result.stdout!r}; the container's stdout was 'out1\\nout2\\n'\n{result}")
    assert result.stderr == "err1\nerr2\n", (
        f"{engine.name}: logs' stderr is {result.stderr!r}; the container's stderr was 'err1\\nerr2\\n'\n{result}")


@pytest.mark.spec(LOGS, "--tail/-n: number of lines to show from the end of the logs")
@pytest.mark.parametrize("tail,expected", [("2", "line4\nline5\n"), ("1", "line5\n"), ("5", "line1\nline2\nline3\nline4\nline5\n"),
                                           ("9", "line1\nline2\nline3\nline4\nline5\n"), ("0", "")],
                         ids=["2", "1", "all-5", "more-than-all", "0"])
def test_tail_counts_lines_from_the_end(engine, image, tail, expected):
    """The output ends with a newline: that is the end of line5, not an empty sixth line."""
    name = engine.new_name()
    engine.cli("run", "--name", name, "--label", engine.label, image, "sh", "-c",
               "for i in 1 2 3 4 5; do echo line$i; done", check=True)
    result = _logs(engine, name, "--tail", tail)
    assert result.returncode == 0, f"{engine.name}: logs --tail {tail} failed\n{result}"
    assert result.stdout == expected, f"{engine.name}: logs --tail {tail} printed {result.stdout!r}, expected {expected!r}\n{result}"


@pytest.mark.spec(LOGS, "--tail/-n: number of lines to show from the end of the logs")
def test_tail_counts_a_last_line_without_newline(engine, image):
    """A final line the container did not end with a newline is a line of its own, printed as written."""
    name = engine.new_name()
    engine.cli("run", "--name", name, "--label", engine.label, image, "sh", "-c", "printf 'a\\nb\\nlast'", check=True)
    result = _logs(engine, name, "--tail", "1")
    assert (result.returncode, result.stdout) == (0, "last"), (
        f"{engine.name}: logs --tail 1 of 'a\\nb\\nlast' printed {result.stdout!r}, expected 'last'\n{result}")
    whole = _logs(engine, name)
    assert (whole.returncode, whole.stdout) == (0, "a\nb\nlast"), f"{engine.name}: logs printed {whole.stdout!r}\n{whole}"


@pytest.mark.spec(LOGS, "Passing a negative number or a non-integer to --tail is invalid and the value is set to all")
@pytest.mark.parametrize("tail", ["-1", "many", "all"])
def test_tail_that_is_not_a_count_shows_all(engine, image, tail):
    name = engine.new_name()
    engine.cli("run", "--name", name, "--label", engine.label, image, "sh", "-c", "echo a; echo b; echo c", check=True)
    result = _logs(engine, name, f"--tail={tail}")
    assert (result.returncode, result.stdout) == (0, "a\nb\nc\n"), (
        f"{engine.name}: logs --tail={tail} printed {result.stdout!r} (exit {result.returncode}); "
        f"docker documents all lines\n{result}")


@pytest.mark.spec(LOGS, "--since/--until: show logs since / before a timestamp (e.g. 2013-01-02T13:23:37Z)")
def test_since_and_until_rfc3339(engine, image):
    name, started = _spaced_container(engine, image)
    after_one, after_two = _rfc3339(started + timedelta(seconds=1)), _rfc3339(started + timedelta(seconds=3))
    for flags, expected in [(("--since", after_one), "two\nthree\n"), (("--until", after_two), "one\ntwo\n"),
                            (("--since", after_one, "--until", after_two), "two\n")]:
        result = _logs(engine, name, *flags)
        assert (result.returncode, result.stdout) == (0, expected), (
            f"{engine.name}: logs {' '.join(flags)} (lines at StartedAt {_rfc3339(started)} +0/+2/+4 s) "
            f"printed {result.stdout!r}, expected {expected!r}\n{result}")


@pytest.mark.spec(LOGS, "--since: a UNIX timestamp, seconds[.nanoseconds] since the epoch")
def test_since_unix_timestamp(engine, image):
    name, started = _spaced_container(engine, image)
    cut = f"{(started + timedelta(seconds=3)).timestamp():.9f}"
    result = _logs(engine, name, "--since", cut)
    assert (result.returncode, result.stdout) == (0, "three\n"), (
        f"{engine.name}: logs --since {cut} (StartedAt {_rfc3339(started)} + 3 s) printed {result.stdout!r}, "
        f"expected 'three\\n'\n{result}")


@pytest.mark.spec(LOGS, "--since/--until: relative (e.g. 42m for 42 minutes), a Go duration string")
def test_since_and_until_relative(engine, image):
    name, started = _spaced_container(engine, image, WIDE)  # lines at +0, +5, +10 s

    def ago(offset: float) -> str:
        """A whole-second duration back to StartedAt + offset: wait for the next
        whole second, so the cut falls at the offset plus the engine's latency."""
        behind = (datetime.now(timezone.utc) - started).total_seconds() - offset
        time.sleep(math.ceil(behind) - behind)
        return f"{math.ceil(behind)}s"

    for flag, offset, expected in [("--since", 2.5, "two\nthree\n"), ("--until", 7.5, "one\ntwo\n")]:
        value = ago(offset)
        result = _logs(engine, name, flag, value)
        assert (result.returncode, result.stdout) == (0, expected), (
            f"{engine.name}: logs {flag} {value} (StartedAt {_rfc3339(started)}, now "
            f"{_rfc3339(datetime.now(timezone.utc))}) printed {result.stdout!r}, expected {expected!r}\n{result}")


@pytest.mark.spec(LOGS, "--timestamps adds an RFC3339Nano timestamp, e.g. 2014-09-16T06:17:46.000000000Z, to each "
                  "log entry; the nano-second part is padded with zero when necessary")
def test_timestamps_are_rfc3339_nano(engine, image):
    name, started = _spaced_container(engine, image)
    finished = _parse_time(engine.state(name)["FinishedAt"])
    result = _logs(engine, name, "-t")
    assert result.returncode == 0, f"{engine.name}: logs -t failed\n{result}"
    lines = result.stdout.splitlines()
    assert len(lines) == 3, f"{engine.name}: logs -t printed {len(lines)} lines, expected 3\n{result}"
    stamps = []
    for line, text in zip(lines, ["one", "two", "three"]):
        m = STAMPED.fullmatch(line)
        assert m, f"{engine.name}: {line!r} is not '<RFC3339Nano with 9 fractional digits>Z {text}'\n{result}"
        assert m.group(3) == text, f"{engine.name}: {line!r} carries {m.group(3)!r}, expected {text!r}"
        stamps.append(_parse_time(f"{m.group(1)}.{m.group(2)}Z"))
    slack = timedelta(seconds=1)
    assert started - slack <= stamps[0] and stamps[-1] <= finished + slack, (
        f"{engine.name}: stamps {[_rfc3339(s) for s in stamps]} are outside the run "
        f"{_rfc3339(started)}..{_rfc3339(finished)}")
    gaps = [(b - a).total_seconds() for a, b in zip(stamps, stamps[1:])]
    # at least the 2 s sleep less a second of slack; no upper bound: a loaded
    # machine may stretch a sleep, and the run's bounds above already hold them
    assert all(g >= 1.0 for g in gaps), f"{engine.name}: the lines were printed 2 s apart; stamps differ by {gaps}"


def _reader(stream, name: str, out: queue.Queue) -> threading.Thread:
    def pump():
        for line in iter(stream.readline, ""):
            out.put((time.monotonic(), name, line))
        out.put((time.monotonic(), name, None))

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    return thread


#: Prints "first", then "second" on stderr once /tmp/go1 exists, then "third" once /tmp/go2 exists.
GATED = ("echo first; until [ -e /tmp/go1 ]; do sleep 0.1; done; echo second >&2; "
         "until [ -e /tmp/go2 ]; do sleep 0.1; done; echo third")


@pytest.mark.spec(LOGS, "docker logs --follow continues streaming the new output from the container's STDOUT and "
                  "STDERR (and ends when the container exits)")
def test_follow_streams_while_running_and_ends_with_the_container(engine, image):
    name = engine.new_name()
    engine.cli("run", "-d", "--name", name, "--label", engine.label, image, "sh", "-c", GATED, check=True)
    proc = engine.popen("logs", "-f", name, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                        text=True)
    seen: list[tuple[str, str]] = []
    try:
        lines: queue.Queue = queue.Queue()
        _reader(proc.stdout, "stdout", lines)
        _reader(proc.stderr, "stderr", lines)
        open_streams = 2

        def next_line(what: str) -> tuple[str, str] | None:
            """The next line of either stream within 30 s; None once both closed."""
            nonlocal open_streams
            deadline = time.monotonic() + 30
            while open_streams:
                try:
                    _, stream, line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
                except queue.Empty:
                    raise AssertionError(f"{engine.name}: logs -f gave no line within 30 s while waiting for "
                                         f"{what}; seen {seen}") from None
                if line is None:
                    open_streams -= 1
                    continue
                seen.append((stream, line))
                return stream, line
            return None

        # Each later line is released only after the one before it came out of
        # logs -f: lines that arrive so were streamed, not read at the end.
        for expected, release in [(("stdout", "first\n"), "/tmp/go1"), (("stderr", "second\n"), "/tmp/go2")]:
            got = next_line(repr(expected[1]))
            assert got == expected, f"{engine.name}: logs -f printed {seen}; expected {expected} next"
            state = engine.state(name)
            assert state["Running"] is True, \
                f"{engine.name}: the container is {state['Status']} before {release} was created"
            engine.cli("exec", name, "touch", release, check=True, timeout=30)
        got = next_line("'third\\n'")
        assert got == ("stdout", "third\n"), f"{engine.name}: logs -f printed {seen}; expected third last"
        rest = next_line("the end of the streams")
        assert rest is None, f"{engine.name}: logs -f printed more than the three lines: {seen}"
        status = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert status == 0, f"{engine.name}: logs -f exited {status} when the container ended"


@pytest.mark.spec(LOGS, "docker logs CONTAINER: a missing container is an error (docker 20.10 exits 1: observed; the reference documents no status) naming it")
def test_logs_of_a_missing_container_fails_with_1(engine):
    missing = engine.new_name(track=False)
    result = engine.cli("logs", missing)
    assert result.returncode == 1, f"{engine.name}: logs of a missing container exited {result.returncode}; docker exits 1\n{result}"
    assert missing in result.stderr, f"{engine.name}: the error does not name {missing}\n{result}"
