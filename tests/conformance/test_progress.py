"""Progress: the accounting of a run and of a bench (pure), the plugin's
event lines (a real pytest run, with and without xdist), and ``conformance
run`` under a pseudo-terminal (live lines) and in CI (pytest -v lines)."""

import doctest
import json
import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conformance import bench, progress
from conformance.bench.core import Case
from conformance.progress import BenchClock, BenchProgress, RunTally, format_duration, suite_of, worse


def test_the_module_examples_hold():
    assert doctest.testmod(progress).failed == 0


def test_a_run_is_tallied_per_suite():
    tally = RunTally()
    tally.apply({"collected": {"runtime": 3, "cli": 2}})
    for suite, outcome in [("runtime", "passed"), ("cli", "failed"), ("runtime", "deviation"), ("runtime", "error"),
                           ("cli", "skipped")]:
        tally.apply({"check": f"suites/{suite}/t.py::x", "suite": suite, "outcome": outcome})
    assert list(tally.suites) == ["runtime", "cli"]
    assert tally.line("runtime") == "runtime: 3/3 checks · 1 passed · 1 failed · 1 deviation · 0 skipped"
    assert tally.line("cli") == "cli: 2/2 checks · 0 passed · 1 failed · 0 deviations · 1 skipped"
    assert tally.suites["runtime"].failed == 1 and tally.status is None
    tally.apply({"finished": 1})
    assert tally.status == 1


def test_a_check_before_collection_and_an_unknown_outcome_still_count():
    tally = RunTally()
    tally.apply({"check": "x.py::t", "outcome": "weird"})
    assert tally.line("other") == "other: 1/? checks · 0 passed · 1 failed · 0 deviations · 0 skipped"


def test_suite_of_a_node_id():
    assert suite_of("suites/cli/test_exec.py::test_status[docker]", "suites") == "cli"
    # an installed wheel: rootdir is site-packages, the suites are conformance_suites/
    assert suite_of("conformance_suites/registry/test_api.py::test_v2", "conformance_suites") == "registry"
    assert suite_of("runtime/test_exit.py::t", "") == "runtime"
    assert suite_of("test_alone.py::t", "suites") == "other"


def test_the_worst_phase_counts():
    assert worse(None, "passed") == "passed"
    assert worse("passed", "error") == "error"
    assert worse("failed", "passed") == "failed"
    assert worse("deviation", "error") == "error"


def test_time_left_uses_the_current_case_pace_then_the_mean():
    clock = BenchClock([4, 2], started=100.0)
    assert clock.remaining(at=100.0) is None
    assert clock.line("start", at=100.0).endswith("0/6 rounds · estimating time left")
    clock.case_started(0, at=100.0)
    clock.round_done(0, at=101.0)
    clock.round_done(0, at=102.0)
    assert clock.remaining(at=102.0) == pytest.approx(2 * 1.0 + 2 * 1.0)
    clock.round_done(0, at=103.0)
    clock.round_done(0, at=104.0)
    clock.case_started(1, at=104.0)
    # the second case is slower: its own pace counts for its rounds once one is done
    clock.round_done(1, at=114.0)
    assert clock.remaining(at=114.0) == pytest.approx(10.0)
    assert clock.line("build", at=114.0) == "build: round 1/2 · case 2/2 · 5/6 rounds · about 10 s left"
    clock.round_done(1, at=124.0)
    assert clock.remaining(at=124.0) == 0.0


def test_a_case_not_started_explicitly_starts_with_its_first_round():
    clock = BenchClock([1, 3], started=0.0)
    clock.round_done(0, at=1.0)
    clock.round_done(1, at=5.0)  # the case began when the previous round ended: 4 s a round
    assert (clock.case, clock.case_done, clock.done) == (1, 1, 2)
    assert clock.remaining(at=5.0) == pytest.approx(2 * 4.0)


def test_durations_read_like_people_write_them():
    assert [format_duration(s) for s in (0, 59.4, 60, 185, 3599, 3600, 3725)] == [
        "0 s", "59 s", "1 min 00 s", "3 min 05 s", "59 min 59 s", "1 h 00 min", "1 h 02 min"]


def test_the_bench_in_ci_prints_one_line_per_round_with_the_time_left(monkeypatch):
    ticks = iter([0.0, 0.0, 2.0, 4.0, 4.0, 10.0, 16.0])
    lines = []
    watch = BenchProgress(plain=True, now=lambda: next(ticks), write=lines.append)
    values = iter(range(100))
    cases = [Case("fast", "ms", False, {"a": lambda: next(values)}, baseline="a"),
             Case("slow", "ms", False, {"a": lambda: next(values), "b": lambda: next(values)}, baseline="a")]
    monkeypatch.setattr(bench, "collect", lambda options: (cases, []))
    results, _ = bench.run_all(bench.Options(rounds=1, warmup=1), watch)
    watch.close()
    assert [r.subjects["a"].values for r in results] == [[1], [5]]  # the second round of "slow" runs b first
    assert lines == [
        "fast: round 1/2 · case 1/2 · 1/4 rounds · about 6 s left",
        "fast: round 2/2 · case 1/2 · 2/4 rounds · about 4 s left",
        "slow: round 1/2 · case 2/2 · 3/4 rounds · about 6 s left",
        "slow: round 2/2 · case 2/2 · 4/4 rounds · about 0 s left",
    ]


def test_without_a_display_the_bench_runs_as_before(monkeypatch):
    monkeypatch.setattr(bench, "collect", lambda options: ([Case("c", "ms", False, {"a": lambda: 1.0}, "a")], []))
    results, notes = bench.run_all(bench.Options(rounds=2, warmup=0))
    assert results[0].subjects["a"].values == [1.0, 1.0] and notes == []


# A throwaway suite and engine for the runs below (like tests/conformance/test_baseline.py).

FAKE_ENGINE = """
name = "fake"
argv = ["true"]
[deviations."demo/test_checks.py::test_known_deviation"]
match = "exit 2 instead of 0"
evidence = "fake engine exits 2 here"
"""

CHECKS = """
import pytest

def test_one(engine):
    pass

def test_two(engine):
    pass

def test_fails(engine):
    assert False, "fake: broken"

@pytest.mark.skip(reason="not here")
def test_skipped(engine):
    pass

def test_known_deviation(engine):
    assert 1 == 2, "fake: exit 2 instead of 0"
"""

OTHER = """
def test_elsewhere(engine):
    pass
"""


@pytest.fixture
def demo(tmp_path: Path) -> dict:
    """Suites `demo` (five checks: 2 pass, 1 fails, 1 skipped, 1 known
    deviation) and `more` (one check), and the environment that points the
    harness at them."""
    for suite, text in (("demo", CHECKS), ("more", OTHER)):
        (tmp_path / "suites" / suite).mkdir(parents=True)
        (tmp_path / "suites" / suite / "__init__.py").write_text("")
        (tmp_path / "suites" / suite / "test_checks.py").write_text(text)
    (tmp_path / "fake.toml").write_text(FAKE_ENGINE)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    return {"env": {**env, "CONFORMANCE_SUITES": str(tmp_path / "suites")}, "profile": str(tmp_path / "fake.toml"),
            "dir": tmp_path}


def events_of(demo: dict, *extra: str) -> list[dict]:
    """The event lines the plugin writes in a real pytest run."""
    read_fd, write_fd = os.pipe()
    tmp = demo["dir"]
    done = subprocess.run([sys.executable, "-m", "pytest", str(tmp / "suites"), "--engine-profile", demo["profile"],
                           "--report-dir", str(tmp / "out"), "--rootdir", str(tmp), "-p", "no:cacheprovider",
                           "-q", "-p", "conformance.progress", f"--progress-fd={write_fd}", *extra],
                          cwd=tmp, env=demo["env"], pass_fds=(write_fd,), capture_output=True, text=True, timeout=300)
    os.close(write_fd)
    with os.fdopen(read_fd) as lines:
        events = [json.loads(line) for line in lines]
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-2000:]
    # pytest's letters give way to the live lines; its summary stays
    assert not re.search(r"^[.sFxE]+\s*(\[|$)", done.stdout, re.M), done.stdout
    assert re.search(r"1 failed, 3 passed, 1 skipped, 1 xfailed", done.stdout), done.stdout
    return events


@pytest.mark.parametrize("workers", [[], ["-p", "xdist", "-n", "2"]], ids=["alone", "xdist"])
def test_the_plugin_writes_totals_then_each_check_then_the_status(demo, workers):
    events = events_of(demo, *workers)
    assert events[0] == {"collected": {"demo": 5, "more": 1}}
    checks = {e["check"].split("::")[1]: (e["suite"], e["outcome"]) for e in events[1:-1]}
    assert checks == {"test_one": ("demo", "passed"), "test_two": ("demo", "passed"), "test_fails": ("demo", "failed"),
                      "test_skipped": ("demo", "skipped"), "test_known_deviation": ("demo", "deviation"),
                      "test_elsewhere": ("more", "passed")}
    assert len(events) == 8 and events[-1] == {"finished": 1}


def under_pty(argv: list[str], env: dict, cwd: Path, timeout: float = 240) -> tuple[str, int]:
    """Run ``argv`` on a pseudo-terminal; its whole output and exit status."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: never return into pytest
        try:
            os.chdir(cwd)
            os.execve(argv[0], argv, {**env, "COLUMNS": "120", "LINES": "40", "TERM": "xterm-256color"})
        finally:
            os._exit(127)
    out, deadline = b"", time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 1)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    else:
        os.kill(pid, 9)
    os.close(fd)
    _, status = os.waitpid(pid, 0)
    return out.decode(errors="replace"), os.waitstatus_to_exitcode(status)


def plain(text: str) -> str:
    """Terminal output without escape sequences, one line per redraw."""
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text).replace("\r", "\n")


def test_run_on_a_terminal_shows_a_live_line_per_suite(demo):
    out, status = under_pty([sys.executable, "-m", "conformance.cli", "run", "--engine-profile", demo["profile"],
                             "--jobs", "2", "--report-dir", str(demo["dir"] / "out"), "demo", "more"],
                            demo["env"], demo["dir"])
    text = plain(out)
    assert status == 1, text[-3000:]
    lines = [line.strip() for line in text.splitlines()]
    # the live lines, as they ended
    assert any(re.fullmatch(r"demo\s+━+\s+5/5\s+2 passed · 1 failed · 1 deviation · 1 skipped\s+\S+", line)
               for line in lines), text[-3000:]
    assert any(re.fullmatch(r"more\s+━+\s+1/1\s+1 passed · 0 failed · 0 deviations · 0 skipped\s+\S+", line)
               for line in lines), text[-3000:]
    # pytest's failure and summary still show, above the lines; no -v lines
    assert "fake: broken" in text and "1 failed, 3 passed, 1 skipped, 1 xfailed" in text
    assert "PASSED" not in text
    assert "conformance report: " in text


def test_run_in_ci_prints_pytest_lines_as_before(demo):
    out, status = under_pty([sys.executable, "-m", "conformance.cli", "run", "--engine-profile", demo["profile"],
                             "--jobs", "1", "--report-dir", str(demo["dir"] / "out"), "demo"],
                            {**demo["env"], "CI": "true"}, demo["dir"])
    text = plain(out)
    assert status == 1, text[-3000:]
    assert "conformance.progress" not in text and "━" not in text
    assert re.search(r"PASSED .*test_one", text), text[-3000:]
    assert re.search(r"FAILED .*test_fails", text), text[-3000:]
