"""``conformance bench``: engines and registries measured side by side.

Case modules expose ``cases(options) -> list[Case]``; this package lists them,
runs each case with :func:`~conformance.bench.core.run_case` and writes
``reports/bench-<stamp>.json`` plus an SVG chart of the medians with their
spread (p10-p90).
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Protocol

from .chart import chart_case, chart_svg
from .core import CaseResult, run_case

#: area -> module; a module that does not exist yet is reported, not fatal.
CASE_MODULES = {
    "start": "conformance.bench.start",
    "build": "conformance.bench.build",
    "registry": "conformance.bench.registry",
    "network": "conformance.bench.network",
    "swarm": "conformance.bench.swarm",
    "ingress": "conformance.bench.ingress",
}


#: The project's own subjects: they always run where the bench does, so one that
#: could not be measured is a failure of the bench (exit 1), where an engine or
#: a balancer that is not installed is only reported.
REFERENCE_SUBJECTS = ("refengine", "refregistry")


def reference_failures(results: list[CaseResult]) -> list[str]:
    """One line per reference subject that could not be measured, or whose case failed.

    >>> from .core import Case, SubjectResult
    >>> case = Case("start", "ms", False, {"docker": float, "refengine": float}, "docker")
    >>> ok = CaseResult(case, {"docker": SubjectResult([1.0]), "refengine": SubjectResult([2.0])})
    >>> lost = CaseResult(case, {"docker": SubjectResult(unavailable="not installed"),
    ...                          "refengine": SubjectResult(unavailable="exited 125")})
    >>> reference_failures([ok]), reference_failures([lost])
    ([], ['start: refengine: exited 125'])
    """
    return [f"{r.case.name}: {name}: {s.unavailable}" for r in results for name, s in r.subjects.items()
            if s.unavailable and name.startswith(REFERENCE_SUBJECTS)]


@dataclass
class Options:
    rounds: int = 15
    warmup: int = 2
    areas: tuple[str, ...] = tuple(CASE_MODULES)


def collect(options: Options) -> tuple[list, list[str]]:
    cases, notes = [], []
    for area in options.areas:
        try:
            module = importlib.import_module(CASE_MODULES[area])
        except ModuleNotFoundError as exc:
            notes.append(f"{area}: no cases ({exc.name} not found)")
            continue
        cases += module.cases(options)
    return cases, notes


def format_table(result: CaseResult) -> list[str]:
    """Plain-text table of one case (also what the README quotes)."""
    case = result.case
    lines = [f"{case.name} [{case.unit}, {'higher' if case.higher_is_better else 'lower'} is better; "
             f"ratio = median / median of {case.baseline}]",
             "| subject | median | p10 | p90 | n | ratio |", "|---|---:|---:|---:|---:|---:|"]
    for name, r in result.subjects.items():
        if r.unavailable and not r.values:
            lines.append(f"| {name} | unavailable: {r.unavailable} | | | | |")
            continue
        ratio = result.ratio(name)
        lines.append(f"| {name} | {r.median:.1f} | {r.quantile(0.1):.1f} | {r.quantile(0.9):.1f} | {len(r.values)} | "
                     f"{'' if ratio is None else f'{ratio:.3f}'} |")
    return lines


def svg_chart(results: list[CaseResult]) -> str:
    """Medians as bars, p10-p90 as whiskers, one group per case (see :mod:`.chart`)."""
    return chart_svg([chart_case(r.as_dict()) for r in results])


def write_results(results: list[CaseResult], out_dir: Path) -> tuple[Path, Path]:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, svg_path = out_dir / f"bench-{stamp}.json", out_dir / f"bench-{stamp}.svg"
    json_path.write_text(json.dumps({"started": stamp, "cases": [r.as_dict() for r in results]}, indent=1) + "\n")
    svg_path.write_text(svg_chart(results))
    return json_path, svg_path


class RoundProgress(Protocol):
    """What :func:`run_all` tells a progress display (``conformance.progress.BenchProgress``)."""

    def planned(self, cases: list[tuple[str, int]]) -> None:
        """The cases about to run, each with its number of rounds (warmup included)."""

    def case_started(self, index: int) -> None:
        """Case ``index`` begins (its setup counts towards its first round)."""

    def round_done(self, index: int) -> None:
        """One more round of case ``index`` is measured."""


def run_all(options: Options, progress: RoundProgress | None = None) -> tuple[list[CaseResult], list[str]]:
    cases, notes = collect(options)
    if progress is None:
        return [run_case(c, options.rounds, options.warmup) for c in cases], notes
    progress.planned([(c.name, sum(c.plan(options.rounds, options.warmup))) for c in cases])
    results = []
    for index, case in enumerate(cases):
        progress.case_started(index)
        results.append(run_case(case, options.rounds, options.warmup,
                                lambda done, total, index=index: progress.round_done(index)))
    return results, notes
