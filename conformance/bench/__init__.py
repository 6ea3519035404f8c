"""``conformance bench``: engines and registries measured side by side.

Case modules expose ``cases(options) -> list[Case]``; this package lists them,
runs each case with :func:`~conformance.bench.core.run_case` and writes
``reports/bench-<stamp>.json`` plus an SVG chart of the medians.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from .core import CaseResult, run_case

#: area -> module; a module that does not exist yet is reported, not fatal.
CASE_MODULES = {
    "start": "conformance.bench.start",
    "build": "conformance.bench.build",
    "registry": "conformance.bench.registry",
}


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
    """A bar chart of the medians, one group per case; no plotting library needed."""
    rows = [(res.case.name, res.case.unit, name, r.median) for res in results
            for name, r in res.subjects.items() if r.median is not None]
    height = 24 * len(rows) + 30 * len(results) + 20
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="900" height="{height}" font-family="sans-serif" font-size="12">']
    y = 20
    for res in results:
        out.append(f'<text x="5" y="{y}" font-weight="bold">{res.case.name} ({res.case.unit})</text>')
        y += 10
        values = [r.median for r in res.subjects.values() if r.median is not None]
        top = max(values) if values else 1
        for name, r in res.subjects.items():
            if r.median is None:
                continue
            width = 500 * r.median / top if top else 0
            out.append(f'<text x="5" y="{y + 15}">{name}</text>')
            out.append(f'<rect x="230" y="{y + 3}" width="{width:.1f}" height="16" fill="#4a7ab5"/>')
            out.append(f'<text x="{235 + width:.1f}" y="{y + 15}">{r.median:.1f}</text>')
            y += 24
        y += 20
    out.append("</svg>")
    return "\n".join(out)


def write_results(results: list[CaseResult], out_dir: Path) -> tuple[Path, Path]:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, svg_path = out_dir / f"bench-{stamp}.json", out_dir / f"bench-{stamp}.svg"
    json_path.write_text(json.dumps({"started": stamp, "cases": [r.as_dict() for r in results]}, indent=1) + "\n")
    svg_path.write_text(svg_chart(results))
    return json_path, svg_path


def run_all(options: Options, progress=lambda s: None) -> tuple[list[CaseResult], list[str]]:
    cases, notes = collect(options)
    return [run_case(c, options.rounds, options.warmup, progress) for c in cases], notes
