"""The HTML matrix: its content, checked in the parsed page."""

import json
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from conformance.errors import ConformanceError
from conformance.report import latest_bench, render_html
from conformance.results import merge, parse_run


def run(name, checks, kind="engine"):
    return parse_run({"subject": {"kind": kind, "name": name, "version": f"{name} 9"}, "started": "2026-01-01",
                      "checks": [{"id": i, "outcome": o, "reason": r, "spec": {"url": u, "text": "documented <thing>"},
                                  **({"message": f"seen {r}"} if o == "deviation" else {})}
                                 for i, o, r, u in checks]})


class Cells(HTMLParser):
    """Collects the matrix rows as lists of (class, text) and the links."""

    def __init__(self):
        super().__init__()
        self.rows, self.links, self._cell, self._in_matrix = [], {}, None, False
        self._href = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if self._cell is not None:  # text of nested elements reads as separate words
            self._cell[1] += " "
        if tag == "table" and attrs.get("class") == "matrix":
            self._in_matrix = True
        if self._in_matrix and tag == "tr":
            self.rows.append([])
        if self._in_matrix and tag in ("td", "th"):
            self._cell = [attrs.get("class", ""), ""]
        if tag == "a":
            self._href = attrs["href"]

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None and self._in_matrix:
            self.rows[-1].append((self._cell[0], " ".join(self._cell[1].split())))
            self._cell = None
        if tag == "table":
            self._in_matrix = False
        if tag == "a":
            self._href = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell[1] += data
        if self._href:
            self.links[data.strip()] = self._href


def test_matrix_has_a_cell_per_check_and_engine_with_reasons_and_spec_links():
    docker = run("docker", [
        ("runtime/test_a.py::test_exit", "passed", "", "https://docs.docker.com/run#exit"),
        ("runtime/test_a.py::test_oom", "deviation", "known deviation of docker: OOMKilled <false>", "https://docs.docker.com/oom"),
    ])
    podman = run("podman", [
        ("runtime/test_a.py::test_exit", "failed", "assert 1 == 0", "https://docs.docker.com/run#exit"),
        ("runtime/test_a.py::test_oom", "skipped", "engine podman lacks capability oom-kill", "https://docs.docker.com/oom"),
    ])
    page = render_html(merge([docker, podman]), generated="now")
    parser = Cells()
    parser.feed(page)
    header, suite, exit_row, oom_row = parser.rows
    assert [text for _, text in header] == ["check", "engine:docker", "engine:podman"]
    assert suite == [("", "runtime")]
    # a failure's first line shows; its whole message opens below it
    assert exit_row[1:] == [("passed", "pass"), ("failed", "FAIL: assert 1 == 0 assert 1 == 0")]
    assert oom_row[1:] == [("deviation", "known deviation seen: seen known deviation of docker: OOMKilled <false> "
                                         "recorded: known deviation of docker: OOMKilled <false>"),
                           ("skipped", "skip engine podman lacks capability oom-kill")]
    assert exit_row[0][1].startswith("runtime/test_a.py::test_exit documented <thing>")
    assert parser.links["runtime/test_a.py::test_exit"] == "https://docs.docker.com/run#exit"
    # text is escaped, never markup
    assert "OOMKilled &lt;false&gt;" in page and "<false>" not in page
    assert "docker 9" in page and "podman 9" in page


def test_a_check_missing_from_one_run_is_shown_as_not_run():
    page = render_html(merge([run("docker", [("image/t.py::a", "passed", "", "")]), run("podman", [])]))
    parser = Cells()
    parser.feed(page)
    assert parser.rows[2][1:] == [("passed", "pass"), ("missing", "not run")]


class Page(HTMLParser):
    """The page's tables as (class, [rows]) and each row as (class, [cell texts])."""

    def __init__(self):
        super().__init__()
        self.tables, self.tbody_classes, self._cell = [], [], None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            self.tables.append((attrs.get("class", ""), []))
        elif tag == "tbody":
            self.tbody_classes.append(attrs.get("class", ""))
        elif tag == "tr" and self.tables:
            self.tables[-1][1].append((attrs.get("class", ""), []))
        elif tag in ("td", "th"):
            self._cell = ""
        elif self._cell is not None:
            self._cell += " "

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][1][-1][1].append(" ".join(self._cell.split()))
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data

    def of_class(self, cls):
        return [rows for c, rows in self.tables if c == cls]


def mixed_runs():
    docker = run("docker", [
        ("runtime/test_a.py::test_exit", "passed", "", "https://docs.docker.com/run#exit"),
        ("runtime/test_a.py::test_oom", "deviation", "known deviation of docker: OOMKilled false", ""),
        ("cli/test_b.py::test_exec", "failed", "AssertionError: docker: exec exited 255; docker documents 1", ""),
    ])
    podman = run("podman", [("runtime/test_a.py::test_exit", "passed", "", ""),
                            ("runtime/test_a.py::test_oom", "passed", "", "")])
    registry = run("refregistry", [("registry/test_api.py::test_v2", "passed", "", ""),
                                   ("registry/test_api.py::test_tags", "error", "fixture failed", "")], kind="registry")
    return merge([docker, podman, registry])


def test_engines_and_registries_get_a_table_each_without_cells_they_never_run():
    page = Page()
    page.feed(render_html(mixed_runs(), generated="now"))
    engines, registries = page.of_class("matrix")
    assert engines[0][1] == ["check", "engine:docker", "engine:podman"]
    assert registries[0][1] == ["check", "registry:refregistry"]
    engine_checks = [cells[0].split()[0] for cls, cells in engines if "check" in cls.split()]
    assert engine_checks == ["cli/test_b.py::test_exec", "runtime/test_a.py::test_exit", "runtime/test_a.py::test_oom"]
    registry_checks = [cells for cls, cells in registries if "check" in cls.split()]
    assert [cells[0].split()[0] for cells in registry_checks] == ["registry/test_api.py::test_tags", "registry/test_api.py::test_v2"]
    assert all(len(cells) == 2 for cells in registry_checks), "a registry row has a cell for an engine"
    # podman never ran cli: that is "not run", and only within the engines' table
    assert [cells[2] for cls, cells in engines if cells[0].startswith("cli/")] == ["not run"]


def test_each_table_has_a_summary_per_suite():
    page = Page()
    page.feed(render_html(mixed_runs(), generated="now"))
    engines, registries = page.of_class("suites")
    assert [cells for _, cells in engines] == [
        ["suite", "engine:docker", "engine:podman"],
        ["cli", "1 FAIL", "not run"],
        ["runtime", "1 pass · 1 known deviation", "2 pass"],
    ]
    assert [cells for _, cells in registries] == [["suite", "registry:refregistry"], ["registry", "1 pass · 1 ERROR"]]


def test_rows_and_suites_carry_what_the_filters_select():
    page = Page()
    html = render_html(mixed_runs(), generated="now")
    page.feed(html)
    engines, registries = page.of_class("matrix")
    flags = {cells[0].split()[0]: cls for cls, cells in engines + registries if cls.startswith("check")}
    assert flags == {"cli/test_b.py::test_exec": "check failure", "runtime/test_a.py::test_exit": "check ",
                     "runtime/test_a.py::test_oom": "check deviation",
                     "registry/test_api.py::test_tags": "check failure", "registry/test_api.py::test_v2": "check "}
    assert page.tbody_classes == ["suite failure", "suite deviation", "suite failure"]
    assert 'value="failure"> checks with a failure (2)' in html and 'value="deviation"> with a known deviation (1)' in html


def test_a_failure_message_opens_in_full_from_its_first_line():
    message = "AssertionError: podman: exit 3\nassert 3 == 0\n +  where 3 = r.returncode"
    matrix = merge([parse_run({"subject": {"kind": "engine", "name": "podman"}, "started": "2026",
                               "checks": [{"id": "runtime/t.py::x", "outcome": "failed", "reason": message.splitlines()[0],
                                           "message": message}]})])
    html = render_html(matrix, generated="now")
    assert ('<details class="message"><summary>FAIL: AssertionError: podman: exit 3</summary>'
            '<pre>AssertionError: podman: exit 3\nassert 3 == 0\n +  where 3 = r.returncode</pre>') in html


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def rendered(page: Path, fragment: str, tmp_path: Path) -> str:
    """The page as headless Chromium renders it (scripts run), with a probe
    that records which check rows are displayed and which suites' headers."""
    probe = page.with_name("probed-" + page.name)
    probe.write_text(page.read_text().replace("</body>", """<script>
var shown = function (sel) { return Array.prototype.filter.call(document.querySelectorAll(sel),
    function (e) { return e.offsetParent !== null; }); };
document.body.setAttribute("data-shown-rows", shown("tr.check").map(function (r) {
    return r.querySelector("td.check").textContent.trim().split(/\\s/)[0]; }).join(" "));
document.body.setAttribute("data-shown-suites", shown("tr.suite").map(function (r) {
    return r.textContent.trim(); }).join(" "));
</script></body>"""))
    done = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path / 'profile'}",
                           "--dump-dom", probe.as_uri() + fragment], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def attribute(dom: str, name: str) -> list[str]:
    match = re.search(rf'{name}="([^"]*)"', dom)
    assert match, f"{name} not in the rendered page"
    return match.group(1).split()


@pytest.mark.skipif(not CHROMIUM, reason="headless Chromium (Debian's chromium) is not installed")
def test_filters_in_a_browser(tmp_path):
    page = tmp_path / "index.html"
    page.write_text(render_html(mixed_runs(), generated="now"))
    every = rendered(page, "", tmp_path)
    assert attribute(every, "data-shown-rows") == ["cli/test_b.py::test_exec", "runtime/test_a.py::test_exit",
                                                   "runtime/test_a.py::test_oom", "registry/test_api.py::test_tags",
                                                   "registry/test_api.py::test_v2"]
    failures = rendered(page, "#failure", tmp_path)
    assert attribute(failures, "data-shown-rows") == ["cli/test_b.py::test_exec", "registry/test_api.py::test_tags"]
    assert attribute(failures, "data-shown-suites") == ["cli", "registry"]
    deviations = rendered(page, "#deviation", tmp_path)
    assert attribute(deviations, "data-shown-rows") == ["runtime/test_a.py::test_oom"]
    both = rendered(page, "#failure-deviation", tmp_path)
    assert attribute(both, "data-shown-rows") == ["cli/test_b.py::test_exec", "runtime/test_a.py::test_oom",
                                                  "registry/test_api.py::test_tags"]
    # and a person sees it: a screenshot of the filtered page
    shot = tmp_path / "failures.png"
    subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path / 'profile'}",
                    f"--screenshot={shot}", "--window-size=1200,800", page.as_uri() + "#failure"],
                   capture_output=True, timeout=120, check=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# The latest bench run, after the matrix: tables and charts with the spread.

def bench_doc(started, refengine_median=42.0):
    def subject(median, p10, p90, n=15, ratio=None, unavailable=""):
        return {"median": median, "p10": p10, "p90": p90, "n": n, "values": [], "unavailable": unavailable,
                "ratio": ratio}

    return {"started": started, "cases": [
        {"case": "start-to-exit: run --rm IMG true", "unit": "ms", "higher_is_better": False, "baseline": "docker",
         "description": "wall time <of> the CLI call", "error": "",
         "subjects": {"refengine": subject(refengine_median, 35.4, 51.4, ratio=0.12),
                      "docker": subject(348.9, 307.5, 374.9, ratio=1.0),
                      "nerdctl": subject(None, None, None, n=0, unavailable="nerdctl is not installed")}},
        {"case": "registry: manifest GET", "unit": "requests/s", "higher_is_better": True, "baseline": "docker-registry",
         "description": "", "error": "",
         "subjects": {"refregistry": subject(900.0, 700.0, 1000.0, n=5, ratio=0.9),
                      "docker-registry": subject(1000.0, 950.0, 1100.0, n=5, ratio=1.0)}},
    ]}


@pytest.fixture
def bench_dir(tmp_path):
    """Results of one engine and two bench runs (the later one must be shown)."""
    (tmp_path / "bench-20261127T100000Z.json").write_text(json.dumps(bench_doc("20261127T100000Z", 999.0)))
    (tmp_path / "bench-20261128T080000Z.json").write_text(json.dumps(bench_doc("20261128T080000Z")))
    (tmp_path / "bench-20261128T080000Z.svg").write_text("<svg/>")  # the bench's own chart: not a results file
    return tmp_path


class BenchPage(HTMLParser):
    """The bench section: its tables' rows, and per chart each subject's bar
    (rect.median) and whisker (line.spread) attributes."""

    def __init__(self):
        super().__init__()
        self.tables, self.charts, self._cell, self._subject = [], [], None, None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table" and attrs.get("class") == "bench":
            self.tables.append([])
        elif tag == "tr" and self.tables and self._cell is None:
            self.tables[-1].append([])
        elif tag in ("td", "th") and self.tables:
            self._cell = ""
        elif tag == "svg" and attrs.get("class") == "bench":
            self.charts.append({})
        elif tag == "g" and attrs.get("class") == "subject":
            self._subject = self.charts[-1].setdefault(attrs["data-subject"], {})
        elif tag in ("rect", "line") and self._subject is not None:
            self._subject.setdefault(attrs["class"], []).append(attrs)

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append(" ".join(self._cell.split()))
            self._cell = None
        elif tag == "table":
            self._cell = None
        elif tag == "g":
            self._subject = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data
        elif self._subject is not None and data.strip():
            self._subject.setdefault("text", []).append(data.strip())


def test_the_latest_bench_run_follows_the_matrix_with_its_spread(bench_dir):
    bench = latest_bench(bench_dir)
    assert bench.path.name == "bench-20261128T080000Z.json"
    html = render_html(mixed_runs(), generated="now", bench=bench)
    page = BenchPage()
    page.feed(html)
    start, registry = page.tables
    assert start == [["subject", "median", "p10", "p90", "n", "ratio"],
                     ["refengine", "42.0", "35.4", "51.4", "15", "0.120"],
                     ["docker", "348.9", "307.5", "374.9", "15", "1.000"],
                     ["nerdctl", "unavailable: nerdctl is not installed"]]
    assert registry[2] == ["docker-registry", "1000.0", "950.0", "1100.0", "5", "1.000"]
    assert "requests/s, higher is better; ratio = median / median of docker-registry." in html
    assert "wall time &lt;of&gt; the CLI call" in html and "<of>" not in html

    start_chart, registry_chart = page.charts
    assert list(start_chart) == ["refengine", "docker", "nerdctl"]
    assert "median" not in start_chart["nerdctl"] and start_chart["nerdctl"]["text"][-1] == "unavailable: nerdctl is not installed"
    for chart, values in ((start_chart, {"refengine": (42.0, 35.4, 51.4), "docker": (348.9, 307.5, 374.9)}),
                          (registry_chart, {"refregistry": (900.0, 700.0, 1000.0),
                                            "docker-registry": (1000.0, 950.0, 1100.0)})):
        # one scale per chart: the largest p90 ends the plot
        scale = (max(p90 for _, _, p90 in values.values())) / 460
        for name, (median, p10, p90) in values.items():
            (bar,), (whisker,) = chart[name]["median"], chart[name]["spread"]
            left = float(bar["x"])
            assert float(bar["width"]) == pytest.approx(median / scale, abs=0.1), (name, bar)
            assert float(whisker["x1"]) == pytest.approx(left + p10 / scale, abs=0.1), (name, whisker)
            assert float(whisker["x2"]) == pytest.approx(left + p90 / scale, abs=0.1), (name, whisker)
            assert float(whisker["x1"]) <= left + float(bar["width"]) <= float(whisker["x2"]), name
            assert len(chart[name]["cap"]) == 2
            assert chart[name]["text"][-1] == f"{median:.1f} ({p10:.1f} – {p90:.1f})"
    assert 'href="#bench"' in html


def test_without_bench_results_the_page_has_no_bench_section(tmp_path):
    assert latest_bench(tmp_path) is None
    html = render_html(mixed_runs(), generated="now", bench=None)
    assert 'id="bench"' not in html and 'href="#bench"' not in html


def test_a_broken_bench_file_is_a_clear_error(tmp_path):
    (tmp_path / "bench-20261128T080000Z.json").write_text('{"cases": [{"unit": "ms"}]}')
    with pytest.raises(ConformanceError, match=r"bench-20261128T080000Z.json: not a bench results file"):
        latest_bench(tmp_path)


def test_conformance_report_includes_the_bench(bench_dir):
    (bench_dir / "engine-docker-1.json").write_text(json.dumps({
        "subject": {"kind": "engine", "name": "docker"}, "started": "1",
        "checks": [{"id": "runtime/a.py::t", "outcome": "passed", "spec": {"url": "u", "text": ""}}]}))
    done = subprocess.run([sys.executable, "-m", "conformance.cli", "report", "--dir", str(bench_dir)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    page = BenchPage()
    page.feed((bench_dir / "index.html").read_text())
    assert len(page.tables) == 2 and len(page.charts) == 2
    assert page.tables[0][1][:2] == ["refengine", "42.0"]  # the later run, not the one with 999.0


@pytest.mark.skipif(not CHROMIUM, reason="headless Chromium (Debian's chromium) is not installed")
def test_bench_charts_in_a_browser(bench_dir, tmp_path):
    """As drawn: each bar ends inside its whisker, the longer median has the
    longer bar, and the bench stays shown when the matrix is filtered."""
    page = bench_dir / "index.html"
    page.write_text(render_html(mixed_runs(), generated="now", bench=latest_bench(bench_dir)))
    probe = page.with_name("probed-" + page.name)
    probe.write_text(page.read_text().replace("</body>", """<script>
var drawn = Array.prototype.map.call(document.querySelectorAll("svg.bench g.subject"), function (g) {
    var bar = g.querySelector("rect.median"), whisker = g.querySelector("line.spread");
    if (!bar) { return g.getAttribute("data-subject").replace(/ /g, "_") + ":none"; }
    var b = bar.getBoundingClientRect(), w = whisker.getBoundingClientRect();
    return [g.getAttribute("data-subject").replace(/ /g, "_"), Math.round(b.left), Math.round(b.right),
            Math.round(w.left), Math.round(w.right)].join(":");
});
document.body.setAttribute("data-bars", drawn.join(" "));
document.body.setAttribute("data-bench-shown", String(document.getElementById("bench").offsetParent !== null));
</script></body>"""))
    done = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path / 'profile'}",
                           "--window-size=1200,800", "--dump-dom", probe.as_uri() + "#failure"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert attribute(done.stdout, "data-bench-shown") == ["true"]
    bars = {}
    for entry in attribute(done.stdout, "data-bars"):
        name, *numbers = entry.split(":")
        bars[name] = None if numbers == ["none"] else [int(n) for n in numbers]
    assert list(bars) == ["refengine", "docker", "nerdctl", "refregistry", "docker-registry"]
    assert bars["nerdctl"] is None
    for name, (left, right, p10, p90) in ((n, b) for n, b in bars.items() if b):
        assert right > left and p10 <= right <= p90, f"{name}: bar {left}-{right}, whisker {p10}-{p90}"
    assert bars["docker"][1] - bars["docker"][0] > 5 * (bars["refengine"][1] - bars["refengine"][0])
    shot = tmp_path / "bench.png"
    subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path / 'profile'}",
                    f"--screenshot={shot}", "--window-size=1200,2400", page.as_uri()],
                   capture_output=True, timeout=120, check=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_bench_writes_the_same_chart_with_whiskers(tmp_path):
    from conformance.bench import write_results
    from conformance.bench.core import Case, CaseResult, SubjectResult

    case = Case("start", "ms", False, {"docker": lambda: 0.0, "refengine": lambda: 0.0}, baseline="docker")
    result = CaseResult(case, {"docker": SubjectResult([300.0, 320.0, 350.0, 400.0]),
                               "refengine": SubjectResult([40.0, 42.0, 45.0, 60.0])})
    json_path, svg_path = write_results([result], tmp_path)
    page = BenchPage()
    page.feed(svg_path.read_text())
    (chart,) = page.charts
    for name, r in result.subjects.items():
        (whisker,) = chart[name]["spread"]
        assert (float(whisker["data-p10"]), float(whisker["data-p90"])) == (r.quantile(0.1), r.quantile(0.9))
        assert float(chart[name]["median"][0]["data-value"]) == r.median
    # and the report draws the very same chart from the JSON
    assert latest_bench(tmp_path).cases[0].svg == svg_path.read_text()
