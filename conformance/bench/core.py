"""The benchmark runner: cases measured side by side, alternating, medians.

A :class:`Case` names one measurement and a callable per subject (engine or
registry); each call performs ONE measurement and returns it in ``unit``.
Subjects are alternated round by round (rotating the order) so drift of the
machine hits them all alike; the report gives medians, spread and the ratio
to the baseline subject. A subject that cannot run here raises
:class:`Unavailable` and is reported with the reason.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from typing import Callable


class Unavailable(Exception):
    """This subject cannot be measured here (say why)."""


@dataclass
class Case:
    name: str
    unit: str
    higher_is_better: bool
    subjects: dict[str, Callable[[], float]]
    baseline: str
    setup: Callable[[], None] | None = None
    teardown: Callable[[], None] | None = None
    description: str = ""
    #: caps for cases whose round takes many seconds (1 GiB blobs): at most this many rounds
    max_rounds: int | None = None
    max_warmup: int | None = None

    def plan(self, rounds: int, warmup: int) -> tuple[int, int]:
        """(rounds, warmup) asked for, within this case's caps."""
        return (min(rounds, self.max_rounds or rounds), min(warmup, warmup if self.max_warmup is None else self.max_warmup))


@dataclass
class SubjectResult:
    values: list[float] = field(default_factory=list)
    unavailable: str = ""

    @property
    def median(self) -> float | None:
        return statistics.median(self.values) if self.values else None

    def quantile(self, q: float) -> float | None:
        if not self.values:
            return None
        ordered = sorted(self.values)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass
class CaseResult:
    case: Case
    subjects: dict[str, SubjectResult]
    error: str = ""

    def ratio(self, subject: str) -> float | None:
        """median(subject) / median(baseline)."""
        base = self.subjects.get(self.case.baseline)
        mine = self.subjects.get(subject)
        if not base or not mine or not base.median or mine.median is None:
            return None
        return mine.median / base.median

    def as_dict(self) -> dict:
        return {
            "case": self.case.name, "unit": self.case.unit, "higher_is_better": self.case.higher_is_better,
            "baseline": self.case.baseline, "description": self.case.description, "error": self.error,
            "subjects": {
                name: {"median": r.median, "p10": r.quantile(0.1), "p90": r.quantile(0.9), "n": len(r.values),
                       "values": r.values, "unavailable": r.unavailable, "ratio": self.ratio(name)}
                for name, r in self.subjects.items()
            },
        }


def run_case(case: Case, rounds: int, warmup: int = 1,
             progress: Callable[[int, int], None] = lambda done, total: None) -> CaseResult:
    """Measure every subject ``rounds`` times, alternating, after ``warmup``
    unrecorded rounds; ``progress(done, total)`` after each round."""
    rounds, warmup = case.plan(rounds, warmup)
    results = {name: SubjectResult() for name in case.subjects}
    if case.setup:
        try:
            case.setup()
        except Unavailable as exc:
            for r in results.values():
                r.unavailable = str(exc)
            return CaseResult(case, results, error=str(exc))
    try:
        order = list(case.subjects)
        for rnd in range(warmup + rounds):
            shift = rnd % len(order)
            for name in order[shift:] + order[:shift]:
                r = results[name]
                if r.unavailable:
                    continue
                try:
                    value = case.subjects[name]()
                except Unavailable as exc:
                    r.unavailable = str(exc) or "unavailable"
                    continue
                if rnd >= warmup:
                    r.values.append(value)
            progress(rnd + 1, warmup + rounds)
    finally:
        if case.teardown:
            case.teardown()
    return CaseResult(case, results)


def timed(fn: Callable[[], object]) -> float:
    """Milliseconds one call of ``fn`` takes."""
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000.0
