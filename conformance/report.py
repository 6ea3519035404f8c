"""``conformance report``: the HTML matrix of several runs, one file that a
browser opens without a server (inline CSS, a few lines of inline script for
the filters; without scripts the page shows everything).

Engines and registries get a table each: a suite only ever targets one kind
of subject, so no column is full of checks it could never run. Each table
has a summary per suite, and each row says whether any of its cells failed
or deviated, which is what the filters show.

When the results directory also holds ``bench-<stamp>.json`` files (written
by ``conformance bench``), the latest one follows the matrix: per case a
table of medians, spread and ratios, and its chart (bars for the medians,
whiskers for p10-p90) inlined as SVG.
"""

from __future__ import annotations

import itertools
import json
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from markupsafe import Markup

from .bench.chart import chart_case, chart_svg
from .errors import ConformanceError
from .results import OUTCOMES, Matrix, Row, Run, load_run, merge

LABELS = {"passed": "pass", "failed": "FAIL", "error": "ERROR", "skipped": "skip", "deviation": "known deviation"}
TITLES = {"engine": "Engines", "registry": "Registries"}
FAILING = ("failed", "error")


@dataclass(frozen=True)
class Group:
    """The rows of one suite in one table, with its counts per subject."""

    suite: str
    rows: list[Row]
    counts: dict[str, dict[str, int]]

    @property
    def flags(self) -> set[str]:
        return set().union(*(row_flags(r) for r in self.rows)) if self.rows else set()


@dataclass(frozen=True)
class Table:
    """One kind of subject: its columns and its checks grouped by suite."""

    kind: str
    title: str
    columns: list[Run]
    groups: list[Group]


def row_flags(row: Row) -> set[str]:
    """``failure`` if a cell failed or errored, ``deviation`` if one deviated:
    the classes the filters select rows by."""
    outcomes = {cell.outcome for cell in row.cells.values()}
    return ({"failure"} if outcomes & set(FAILING) else set()) | ({"deviation"} if "deviation" in outcomes else set())


def tables(matrix: Matrix) -> list[Table]:
    """The matrix split by kind of subject (engines first), each row in the
    table of the subjects that ran it."""
    order = list(TITLES)
    kinds = sorted({c.kind for c in matrix.columns}, key=lambda k: (order.index(k) if k in order else len(order), k))
    out = []
    for kind in kinds:
        columns = [c for c in matrix.columns if c.kind == kind]
        names = {c.column for c in columns}
        rows = [Row(r.check_id, r.spec_url, r.spec_text, {k: v for k, v in r.cells.items() if k in names})
                for r in matrix.rows if names & r.cells.keys()]
        groups = []
        for suite, suite_rows in itertools.groupby(rows, key=lambda r: r.suite):
            suite_rows = list(suite_rows)
            counts = {c.column: {o: sum(1 for r in suite_rows if c.column in r.cells and r.cells[c.column].outcome == o)
                                 for o in OUTCOMES} for c in columns}
            groups.append(Group(suite, suite_rows, counts))
        out.append(Table(kind, TITLES.get(kind, kind.capitalize() + "s"), columns, groups))
    return out


@dataclass(frozen=True)
class BenchSubject:
    """One subject's line in a bench table."""

    name: str
    median: float | None
    p10: float | None
    p90: float | None
    n: int
    ratio: float | None
    unavailable: str


@dataclass(frozen=True)
class BenchCase:
    """One case of a bench run: its table and its chart (SVG we drew, so safe)."""

    name: str
    unit: str
    higher_is_better: bool
    baseline: str
    description: str
    error: str
    subjects: list[BenchSubject]
    svg: Markup


@dataclass(frozen=True)
class Bench:
    """The bench run the page shows (the latest in the directory)."""

    path: Path
    started: str
    cases: list[BenchCase]


def load_bench(path: Path) -> Bench:
    """A ``bench-<stamp>.json`` as ``conformance bench`` writes it."""
    try:
        doc = json.loads(Path(path).read_text())
        cases = [BenchCase(c["case"], c.get("unit", ""), bool(c.get("higher_is_better")), c.get("baseline", ""),
                           c.get("description", ""), c.get("error", ""),
                           [BenchSubject(name, s.get("median"), s.get("p10"), s.get("p90"), int(s.get("n", 0)),
                                         s.get("ratio"), s.get("unavailable", ""))
                            for name, s in c["subjects"].items()],
                           Markup(chart_svg([chart_case(c)])))
                 for c in doc["cases"]]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConformanceError(f"{path}: not a bench results file (as `conformance bench` writes): {exc!r}") from None
    return Bench(Path(path), str(doc.get("started", "")), cases)


def latest_bench(directory: Path) -> Bench | None:
    """The newest ``bench-<stamp>.json`` in a directory (stamps sort by time), if any."""
    found = sorted(Path(directory).glob("bench-*.json"))
    return load_bench(found[-1]) if found else None


def render_html(matrix: Matrix, *, generated: str | None = None, bench: Bench | None = None) -> str:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("conformance", "templates"),
        autoescape=True, trim_blocks=True, lstrip_blocks=True,
    )
    return env.get_template("report.html.j2").render(
        matrix=matrix, tables=tables(matrix), bench=bench, outcomes=OUTCOMES, labels=LABELS, failing=FAILING, row_flags=row_flags,
        flag_counts={flag: sum(1 for r in matrix.rows if flag in row_flags(r)) for flag in ("failure", "deviation")},
        generated=generated or datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    )


def latest_runs(directory: Path) -> list[Run]:
    """Every results file in a directory (merge keeps the latest per subject)."""
    return [load_run(p) for p in sorted(Path(directory).glob("*.json")) if not p.name.startswith("bench-")]


def write_report(runs: list[Run], out: Path, *, bench: Bench | None = None) -> Path:
    """Write the report through a temporary file and a rename: two runs that end at
    once (two `conformance run` in parallel) never leave a half-written page."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    tmp.write_text(render_html(merge(runs), bench=bench))
    os.replace(tmp, out)
    return out
