"""A run compared with a recorded one (a baseline): what regressed, what
improved, what else changed. Pure: the results come in as :class:`Run` values.

A CI gate on an engine with known gaps fails only when it gets worse. A
*regression* is a check of the baseline that

- disappeared (no result any more),
- passed or was skipped and now fails or errors,
- ran under its recorded deviation and now fails otherwise,
- passed or was skipped and now is a known deviation (a new deviation),
- passed and now is skipped (no longer verified: skipping is no way to go green).

An *improvement* is a check that failed, errored or deviated and now passes,
was skipped and now passes, or whose recorded deviation no longer happens (the
run reports that as a failure until the profile drops the deviation; here it
is good news). Every other difference is listed, as are checks the baseline
does not have; none of these fail the gate.

>>> from conformance.results import CheckResult, Run
>>> before = Run("engine", "e", "1", "t0", (CheckResult("a/t.py::x", "passed"), CheckResult("a/t.py::y", "failed")))
>>> after = Run("engine", "e", "2", "t1", (CheckResult("a/t.py::x", "failed"), CheckResult("a/t.py::y", "passed")))
>>> c = compare(before, after)
>>> [(ch.check_id, ch.what) for ch in c.regressions], [(ch.check_id, ch.what) for ch in c.improvements]
([('a/t.py::x', 'now fails')], [('a/t.py::y', 'fixed')])
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ConformanceError
from .results import CheckResult, Run

FAILING = ("failed", "error")

#: What outcome_of/mark_for_subject put in a check's reason when a recorded
#: deviation did not happen (the check passed).
STALE_DEVIATION = "no longer happens"


@dataclass(frozen=True)
class Change:
    """One check whose result differs between the baseline and the run."""

    check_id: str
    before: CheckResult | None
    after: CheckResult | None
    what: str

    @property
    def transition(self) -> str:
        return f"{self.before.outcome if self.before else 'absent'} -> {self.after.outcome if self.after else 'absent'}"

    @property
    def detail(self) -> str:
        """The first line of what the run said about the check, if it failed."""
        if not self.after:
            return ""
        text = self.after.message or (self.after.reason if self.after.outcome != "passed" else "")
        return text.strip().splitlines()[0][:200] if text.strip() else ""


@dataclass(frozen=True)
class Comparison:
    baseline: Run
    current: Run
    regressions: tuple[Change, ...]
    improvements: tuple[Change, ...]
    other: tuple[Change, ...]
    new: tuple[Change, ...]
    unchanged: int

    @property
    def ok(self) -> bool:
        return not self.regressions


def classify(before: CheckResult | None, after: CheckResult | None) -> tuple[str, str] | None:
    """(category, what happened) for one check, or None when nothing changed.
    Categories: ``regression``, ``improvement``, ``other``, ``new``.

    >>> classify(CheckResult("x", "passed"), None)
    ('regression', 'disappeared')
    >>> classify(CheckResult("x", "deviation"), CheckResult("x", "failed", "known deviation of e no longer happens"))
    ('improvement', 'recorded deviation no longer happens')
    >>> classify(CheckResult("x", "failed"), CheckResult("x", "deviation"))
    ('other', 'failure now recorded as a deviation')
    """
    if after is None:
        return ("regression", "disappeared") if before is not None else None
    if before is None:
        return "new", f"new check, {after.outcome}"
    b, a = before.outcome, after.outcome
    stale = a == "failed" and STALE_DEVIATION in (after.reason + after.message)
    if stale and b == "passed":
        return "other", "deviation recorded for a passing check"
    if stale:
        return "improvement", "recorded deviation no longer happens"
    if b == a or (b in FAILING and a in FAILING):
        return None if b == a else ("other", f"still failing ({a})")
    if a in FAILING:
        verb = "fails" if a == "failed" else "errors"
        return "regression", {"passed": f"now {verb}", "skipped": f"was skipped, now {verb}",
                              "deviation": f"{verb} otherwise than its recorded deviation"}[b]
    if a == "deviation":
        return ("other", "failure now recorded as a deviation") if b in FAILING else ("regression", "new deviation")
    if a == "skipped":
        return ("regression", "no longer verified (now skipped)") if b == "passed" else ("other", f"was {b}, now skipped")
    # a == "passed"
    return "improvement", ("newly verified" if b == "skipped" else "fixed")


def suite_of(check_id: str) -> str:
    return check_id.split("/", 1)[0] if "/" in check_id.split("::", 1)[0] else ""


def compare(baseline: Run, current: Run, *, suites: tuple[str, ...] | None = None) -> Comparison:
    """Compare two runs check by check. With ``suites``, only the baseline's
    checks of those suites are expected (a run of some suites is compared with
    the part of a fuller baseline that it covers)."""
    before = {c.id: c for c in baseline.checks if suites is None or suite_of(c.id) in suites}
    after = {c.id: c for c in current.checks}
    groups: dict[str, list[Change]] = {"regression": [], "improvement": [], "other": [], "new": []}
    unchanged = 0
    for check in sorted(before.keys() | after.keys()):
        verdict = classify(before.get(check), after.get(check))
        if verdict is None:
            unchanged += 1
            continue
        category, what = verdict
        groups[category].append(Change(check, before.get(check), after.get(check), what))
    return Comparison(baseline, current, tuple(groups["regression"]), tuple(groups["improvement"]),
                      tuple(groups["other"]), tuple(groups["new"]), unchanged)


def _describe(run: Run) -> str:
    version = f" ({run.version})" if run.version else ""
    return f"{run.column}{version}, started {run.started[:19]}" + (f", {run.source}" if run.source else "")


def format_comparison(c: Comparison) -> list[str]:
    """The comparison for people: each group with one line per check."""
    lines = [f"baseline: {_describe(c.baseline)}", f"current:  {_describe(c.current)}"]
    if c.baseline.column != c.current.column:
        lines.append(f"note: the runs are of different subjects ({c.baseline.column} and {c.current.column})")
    for title, changes in (("REGRESSIONS", c.regressions), ("improvements", c.improvements),
                           ("other changes", c.other), ("new checks", c.new)):
        if not changes:
            continue
        lines += ["", f"{title} ({len(changes)}):"]
        for ch in changes:
            lines.append(f"  {ch.check_id}: {ch.what} [{ch.transition}]")
            if ch.detail and ch.after and ch.after.outcome != "passed":
                lines.append(f"      {ch.detail}")
    lines += ["", f"{len(c.regressions)} regression{'s' if len(c.regressions) != 1 else ''}, "
                  f"{len(c.improvements)} improvement{'s' if len(c.improvements) != 1 else ''}, "
                  f"{len(c.other)} other change{'s' if len(c.other) != 1 else ''}, {len(c.new)} new, "
                  f"{c.unchanged} unchanged"]
    return lines


def gate(baselines: list[Run], runs: list[Run], *, suites: tuple[str, ...] | None = None) -> tuple[int, list[str]]:
    """``conformance run --baseline``: compare each baseline with this run's
    results for the same subject. Returns (exit status, lines to print):
    0 without regressions, 1 with any. A baseline whose subject this run did
    not produce raises :class:`ConformanceError` (bad input: exit 2)."""
    by_column = {run.column: run for run in sorted(runs, key=lambda r: r.started)}
    status, lines = 0, []
    for baseline in baselines:
        current = by_column.get(baseline.column)
        if current is None:
            raise ConformanceError(f"this run wrote no results for {baseline.column}, the subject of baseline "
                                   f"{baseline.source} (it wrote: {', '.join(sorted(by_column)) or 'nothing'})")
        comparison = compare(baseline, current, suites=suites)
        lines += format_comparison(comparison) + [""]
        status = status or (0 if comparison.ok else 1)
    lines.append("conformance: baseline gate " + ("passed: no regression" if status == 0 else "FAILED: regressions above"))
    return status, lines
