"""Progress for people watching a terminal: ``conformance run`` per suite,
``conformance bench`` per round with an estimate of the time left.

``conformance run`` on a terminal starts pytest with ``-q -p
conformance.progress --progress-fd=N``: this module is then also a small
pytest plugin that, in the process that sees every report (the xdist
controller), writes one JSON line per event to descriptor N::

    {"collected": {"runtime": 40, "cli": 12}}            # checks per suite
    {"check": "suites/runtime/t.py::x", "suite": "runtime", "outcome": "passed"}
    {"finished": 1}                                       # pytest's exit status

and keeps pytest's per-check letters off the screen. The parent reads the
lines into a :class:`RunTally` and draws a live line per suite with rich,
printing pytest's own output (headers, failures, the summary) above it.
In CI (``CI`` set, or stdout not a terminal) none of this runs: pytest -v
prints plain lines as before.

The accounting (:class:`RunTally`, :class:`BenchClock`) is pure and tested
directly; the rest is thin.

>>> tally = RunTally()
>>> tally.apply({"collected": {"runtime": 2}})
>>> tally.apply({"check": "suites/runtime/t.py::a", "suite": "runtime", "outcome": "deviation"})
>>> tally.line("runtime")
'runtime: 1/2 checks · 0 passed · 0 failed · 1 deviation · 0 skipped'
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Callable, Sequence

import pytest
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.text import Text

from . import SUITES_DIR
from .report_plugin import OUTCOME_RANK, outcome_of

# ---------------------------------------------------------------- accounting


@dataclass
class SuiteTally:
    """Checks of one suite: how many there are, how many finished, how."""

    suite: str
    total: int | None = None  # None until collection says
    done: int = 0
    outcomes: dict[str, int] = field(default_factory=lambda: {o: 0 for o in OUTCOME_RANK})

    @property
    def failed(self) -> int:
        """Failures and errors: what makes the run red."""
        return self.outcomes["failed"] + self.outcomes["error"]

    def summary(self) -> str:
        deviations = self.outcomes["deviation"]
        return (f"{self.outcomes['passed']} passed · {self.failed} failed · "
                f"{deviations} deviation{'' if deviations == 1 else 's'} · {self.outcomes['skipped']} skipped")


class RunTally:
    """The events of one run, per suite (in the order suites appear)."""

    def __init__(self) -> None:
        self.suites: dict[str, SuiteTally] = {}
        self.status: int | None = None

    def _suite(self, name: str) -> SuiteTally:
        return self.suites.setdefault(name, SuiteTally(name))

    def apply(self, event: dict) -> None:
        """One event line (see the module's docstring); unknown keys are ignored."""
        if "collected" in event:
            for name, total in event["collected"].items():
                self._suite(name).total = int(total)
        if "check" in event:
            tally = self._suite(event.get("suite") or "other")
            tally.done += 1
            outcome = event.get("outcome", "error")
            tally.outcomes[outcome if outcome in tally.outcomes else "error"] += 1
        if "finished" in event:
            self.status = int(event["finished"])

    def line(self, suite: str) -> str:
        """The plain line of one suite: ``runtime: 12/40 checks · 10 passed · ...``."""
        tally = self.suites[suite]
        total = "?" if tally.total is None else str(tally.total)
        return f"{suite}: {tally.done}/{total} checks · {tally.summary()}"


def suite_of(nodeid: str, suites_prefix: str = "") -> str:
    """The suite a check belongs to: the first directory below the suites
    directory (``suites_prefix``, relative to pytest's rootdir).

    >>> suite_of("suites/runtime/test_exit.py::test_status[docker]", "suites")
    'runtime'
    >>> suite_of("test_alone.py::test_x", "suites")
    'other'
    """
    path = nodeid.split("::", 1)[0]
    prefix = suites_prefix.strip("/")
    if prefix and path.startswith(prefix + "/"):
        path = path[len(prefix) + 1:]
    head, sep, _ = path.partition("/")
    return head if sep else "other"


def worse(a: str | None, b: str) -> str:
    """The outcome that counts when a check's phases disagree (as in the results file)."""
    return b if a is None or OUTCOME_RANK[b] > OUTCOME_RANK[a] else a


@dataclass
class BenchClock:
    """Rounds of a bench run and an estimate of the time left. Pure: the
    caller passes the times.

    The current case's rounds left are estimated at that case's own pace
    (rounds differ a lot between cases: a build is not a ``true``); later
    cases at the mean pace of every round so far.

    >>> clock = BenchClock([3, 3], started=0.0)
    >>> clock.case_started(0, at=0.0); clock.round_done(0, at=2.0)
    >>> clock.remaining(at=2.0)  # 2 rounds of this case at 2 s, 3 later rounds at 2 s
    10.0
    """

    rounds: list[int]  # rounds (warmup included) of each case, in order
    started: float
    case: int = 0
    case_started_at: float | None = None  # None: when the clock started
    case_done: int = 0
    done: int = 0  # rounds done over all cases
    last_at: float | None = None  # when the latest round ended

    def __post_init__(self) -> None:
        if self.case_started_at is None:
            self.case_started_at = self.started

    def case_started(self, index: int, *, at: float) -> None:
        self.case, self.case_started_at, self.case_done = index, at, 0

    def round_done(self, index: int, *, at: float) -> None:
        if index != self.case:  # nobody said the case began: it began when the previous round ended
            self.case_started(index, at=self.started if self.last_at is None else self.last_at)
        self.case_done += 1
        self.done += 1
        self.last_at = at

    @property
    def total(self) -> int:
        return sum(self.rounds)

    def remaining(self, *, at: float) -> float | None:
        """Seconds left, or None before the first round ended."""
        if not self.done:
            return None
        overall = (at - self.started) / self.done
        here = (at - self.case_started_at) / self.case_done if self.case_done else overall
        left_here = self.rounds[self.case] - self.case_done
        left_later = sum(self.rounds[self.case + 1:])
        return max(0.0, left_here * here + left_later * overall)

    def line(self, name: str, *, at: float) -> str:
        """``start-to-exit: round 3/17 · case 1/4 · 42/120 rounds · about 1 min 05 s left``."""
        left = self.remaining(at=at)
        return (f"{name}: round {self.case_done}/{self.rounds[self.case]} · case {self.case + 1}/{len(self.rounds)} · "
                f"{self.done}/{self.total} rounds · "
                + ("estimating time left" if left is None else f"about {format_duration(left)} left"))


def format_duration(seconds: float) -> str:
    """``42 s``, ``3 min 05 s``, ``1 h 02 min``.

    >>> format_duration(4.4), format_duration(185), format_duration(3725)
    ('4 s', '3 min 05 s', '1 h 02 min')
    """
    s = int(round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


# ------------------------------------------------------ the pytest plugin side


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("conformance").addoption(
        "--progress-fd", type=int, default=None, metavar="FD",
        help="write one JSON line per finished check to this descriptor (used by `conformance run` on a terminal)")


def pytest_configure(config: pytest.Config) -> None:
    fd = config.getoption("progress_fd")
    if fd is not None and not hasattr(config, "workerinput"):  # under xdist the controller sees every report
        try:
            os.set_inheritable(fd, False)  # not for the engines' processes: EOF must come when pytest exits
            out = os.fdopen(fd, "w", buffering=1)
        except OSError as exc:
            raise pytest.UsageError(f"--progress-fd {fd}: not an open descriptor ({exc.strerror})") from None
        config.pluginmanager.register(ProgressWriter(config, out), "conformance-progress")


class ProgressWriter:
    """Writes the event lines; registered only when ``--progress-fd`` is given."""

    def __init__(self, config: pytest.Config, out: IO[str]):
        self.out = out
        self.pending: dict[str, str] = {}  # nodeid -> worst outcome so far
        self.collected = False
        try:
            self.prefix = SUITES_DIR.resolve().relative_to(config.rootpath.resolve()).as_posix()
        except ValueError:
            self.prefix = ""

    def emit(self, event: dict) -> None:
        if self.out.closed:
            return
        try:
            self.out.write(json.dumps(event) + "\n")
        except OSError:  # the reader went away: the run goes on without progress
            self.out.close()

    def _collected(self, nodeids: list[str]) -> None:
        if self.collected:  # every xdist worker reports the same collection
            return
        self.collected = True
        counts: dict[str, int] = {}
        for nodeid in nodeids:
            suite = suite_of(nodeid, self.prefix)
            counts[suite] = counts.get(suite, 0) + 1
        self.emit({"collected": counts})

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self._collected([item.nodeid for item in session.items])

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node, ids: list[str]) -> None:
        self._collected(ids)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        found = outcome_of(report)
        if found:
            self.pending[report.nodeid] = worse(self.pending.get(report.nodeid), found[0])
        if report.when == "teardown":
            self._finish(report.nodeid)

    def _finish(self, nodeid: str) -> None:
        self.emit({"check": nodeid, "suite": suite_of(nodeid, self.prefix),
                   "outcome": self.pending.pop(nodeid, "passed")})

    @pytest.hookimpl(wrapper=True)
    def pytest_report_teststatus(self, report: pytest.TestReport, config: pytest.Config):
        # The live lines replace pytest's letters; categories still count for its summary.
        result = yield
        if result and config.get_verbosity() <= 0:
            category, _letter, word = result
            return category, "", word
        return result

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        for nodeid in list(self.pending):  # a crashed worker's check gets no teardown report
            self._finish(nodeid)
        self.emit({"finished": int(exitstatus)})
        self.out.close()


# ----------------------------------------------------------- the parent side


def run_with_progress(argv: list[str], cwd: Path, user_args: Sequence[str] = ()) -> int:
    """Run pytest (``argv``, then the user's own ``user_args``) with a live
    line per suite; pytest's own output goes above the lines. Returns
    pytest's exit status."""
    read_fd, write_fd = os.pipe()
    argv = [*argv, "-q", "-p", "conformance.progress", f"--progress-fd={write_fd}",
            "-o", "console_output_style=classic", "--color=yes", *user_args]
    console = Console()
    tally = RunTally()
    columns = (TextColumn("{task.description:>12}"), BarColumn(bar_width=30), MofNCompleteColumn(),
               TextColumn("{task.fields[counts]}"), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as progress:
        tasks: dict[str, TaskID] = {}

        def show(suite: str) -> None:
            t = tally.suites[suite]
            style = "red" if t.failed else ("yellow" if t.outcomes["deviation"] else "green")
            fields = {"completed": t.done, "total": t.total, "counts": f"[{style}]{t.summary()}[/]"}
            if suite not in tasks:
                tasks[suite] = progress.add_task(suite, **fields)
            else:
                progress.update(tasks[suite], **fields)

        def read_events() -> None:
            with os.fdopen(read_fd, "r") as events:
                for line in events:
                    try:
                        event = json.loads(line)
                    except ValueError:
                        continue
                    tally.apply(event)
                    for suite in event.get("collected", {}) or ([event.get("suite") or "other"] if "check" in event else []):
                        show(suite)

        # pytest writes into a pipe: tell it the terminal's width for its separators
        proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                pass_fds=(write_fd,), env={**os.environ, "COLUMNS": str(console.width)})
        os.close(write_fd)  # EOF when pytest (the only writer) exits

        def forward_output() -> None:
            assert proc.stdout is not None
            for raw in proc.stdout:
                # as pytest wrote it: its colours, and the terminal (not rich) wraps long lines
                progress.console.print(Text.from_ansi(raw.decode(errors="replace").rstrip("\n")), soft_wrap=True)

        readers = [threading.Thread(target=read_events, daemon=True), threading.Thread(target=forward_output, daemon=True)]
        for reader in readers:
            reader.start()
        try:
            status = proc.wait()
        except KeyboardInterrupt:  # pytest got the same SIGINT: let it print its summary
            status = proc.wait()
        for reader in readers:
            reader.join(timeout=10)
    return status


class BenchProgress:
    """Round progress of ``conformance bench``: a rich line on a terminal, a
    plain line per round in CI; both with the estimate of the time left.

    Used by :func:`conformance.bench.run_all` through three calls:
    ``planned`` (cases and their rounds), ``case_started``, ``round_done``.
    """

    def __init__(self, *, plain: bool, now: Callable[[], float] = time.monotonic,
                 write: Callable[[str], None] | None = None):
        self.plain, self.now = plain, now
        self.write = write or (lambda s: print(s, flush=True))
        self.clock: BenchClock | None = None
        self.names: list[str] = []
        self.live: Progress | None = None
        self.task: TaskID | None = None

    def planned(self, cases: list[tuple[str, int]]) -> None:
        self.names = [name for name, _ in cases]
        self.clock = BenchClock([rounds for _, rounds in cases], started=self.now())
        if not self.plain and cases:
            self.live = Progress(TextColumn("{task.description}"), BarColumn(bar_width=30), MofNCompleteColumn(),
                                 TextColumn("{task.fields[left]}"), console=Console(stderr=True), transient=True)
            self.live.start()
            self.task = self.live.add_task(self.names[0], total=self.clock.total, left="estimating time left")

    def case_started(self, index: int) -> None:
        assert self.clock is not None
        self.clock.case_started(index, at=self.now())
        if self.live and self.task is not None:
            self.live.update(self.task, description=f"{self.names[index]} (case {index + 1}/{len(self.names)})")

    def round_done(self, index: int) -> None:
        assert self.clock is not None
        at = self.now()
        self.clock.round_done(index, at=at)
        if self.live and self.task is not None:
            left = self.clock.remaining(at=at)
            self.live.update(self.task, completed=self.clock.done,
                             left="estimating time left" if left is None else f"about {format_duration(left)} left")
        else:
            self.write(self.clock.line(self.names[index], at=at))

    def close(self) -> None:
        if self.live:
            self.live.stop()
            self.live = None


def plain_output() -> bool:
    """CI (``CI`` set) or not a terminal: plain lines, no live display."""
    return bool(os.environ.get("CI")) or not sys.stdout.isatty()
