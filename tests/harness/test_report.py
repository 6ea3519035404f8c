"""The HTML matrix: its content, checked in the parsed page."""

import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from conformance.report import render_html
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
