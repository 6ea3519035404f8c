"""The bench chart: per case, each subject's median as a bar and its spread
(p10 to p90) as a whisker across the bar's end, in plain SVG (no plotting
library, no script). ``conformance bench`` writes it to
``reports/bench-<stamp>.svg``; the HTML matrix inlines one chart per case.

Pure: data in, SVG text out.

>>> svg = chart_svg([ChartCase("start", "ms", [Bar("docker", 300.0, 250.0, 380.0, 15)])])
>>> svg.count('class="median"'), svg.count('class="spread"')
(1, 1)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape

LABEL_WIDTH = 210  # subject names
PLOT_WIDTH = 460  # the longest whisker or bar ends here
ROW_HEIGHT = 24
TITLE_HEIGHT = 26
CASE_GAP = 16
WIDTH = LABEL_WIDTH + PLOT_WIDTH + 200  # room for "median (p10 – p90)" after the longest whisker


@dataclass(frozen=True)
class Bar:
    """One subject of one case: its median and spread, or why it has none."""

    subject: str
    median: float | None
    p10: float | None = None
    p90: float | None = None
    n: int = 0
    unavailable: str = ""


@dataclass(frozen=True)
class ChartCase:
    title: str
    unit: str
    bars: list[Bar] = field(default_factory=list)


def _num(value: float) -> str:
    return f"{value:.1f}"


def _case_height(case: ChartCase) -> int:
    return TITLE_HEIGHT + ROW_HEIGHT * max(1, len(case.bars))


def _case(case: ChartCase, top: int) -> list[str]:
    """The elements of one case, starting at ``top``."""
    out = [f'<text class="case" x="5" y="{top + 16}" font-weight="bold">{escape(case.title)} ({escape(case.unit)})</text>']
    measured = [b for b in case.bars if b.median is not None]
    # One scale per case: the farthest point drawn is the largest p90 (or median).
    scale_top = max((max(b.median, b.p90 if b.p90 is not None else b.median) for b in measured), default=0.0)

    def x(value: float) -> float:
        return LABEL_WIDTH + (PLOT_WIDTH * value / scale_top if scale_top > 0 else 0.0)

    y = top + TITLE_HEIGHT
    for bar in case.bars:
        mid = y + ROW_HEIGHT / 2 - 2
        out.append(f'<g class="subject" data-subject="{escape(bar.subject)}">')
        out.append(f'<text x="5" y="{mid + 4:.0f}">{escape(bar.subject)}</text>')
        if bar.median is None:
            reason = f"unavailable: {bar.unavailable}" if bar.unavailable else "no measurement"
            out.append(f'<text class="unavailable" x="{LABEL_WIDTH}" y="{mid + 4:.0f}" fill="#777">{escape(reason[:110])}</text>')
        else:
            low = bar.p10 if bar.p10 is not None else bar.median
            high = bar.p90 if bar.p90 is not None else bar.median
            tip = f"{bar.subject}: median {_num(bar.median)} {case.unit}, p10 {_num(low)}, p90 {_num(high)}, n {bar.n}"
            out.append(f"<title>{escape(tip)}</title>")
            out.append(f'<rect class="median" x="{LABEL_WIDTH}" y="{y + 3}" width="{x(bar.median) - LABEL_WIDTH:.1f}" '
                       f'height="{ROW_HEIGHT - 8}" fill="#4a7ab5" data-value="{bar.median!r}"/>')
            # The whisker: p10 to p90, with caps, drawn over the bar's end.
            out.append(f'<line class="spread" x1="{x(low):.1f}" x2="{x(high):.1f}" y1="{mid:.1f}" y2="{mid:.1f}" '
                       f'stroke="#222" stroke-width="1.5" data-p10="{low!r}" data-p90="{high!r}"/>')
            for end in (low, high):
                out.append(f'<line class="cap" x1="{x(end):.1f}" x2="{x(end):.1f}" y1="{mid - 5:.1f}" y2="{mid + 5:.1f}" '
                           f'stroke="#222" stroke-width="1.5"/>')
            out.append(f'<text class="value" x="{max(x(bar.median), x(high)) + 6:.1f}" y="{mid + 4:.0f}">'
                       f'{_num(bar.median)} ({_num(low)} – {_num(high)})</text>')
        out.append("</g>")
        y += ROW_HEIGHT
    return out


def chart_svg(cases: list[ChartCase]) -> str:
    """One SVG with the cases stacked, each on its own scale."""
    height = sum(_case_height(c) for c in cases) + CASE_GAP * max(0, len(cases) - 1) + 8
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" class="bench" width="{WIDTH}" height="{height}" '
           f'viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">',
           f'<desc>Bars: medians. Whiskers: p10 to p90. Values: median (p10 – p90).</desc>']
    top = 0
    for case in cases:
        out += _case(case, top)
        top += _case_height(case) + CASE_GAP
    out.append("</svg>")
    return "\n".join(out)


def chart_case(doc: dict) -> ChartCase:
    """A case as ``bench-<stamp>.json`` records it (``CaseResult.as_dict``):
    the bench's own chart and the HTML matrix read the same shape."""
    bars = [Bar(name, s.get("median"), s.get("p10"), s.get("p90"), s.get("n", 0), s.get("unavailable", ""))
            for name, s in doc.get("subjects", {}).items()]
    return ChartCase(doc.get("case", "?"), doc.get("unit", ""), bars)
