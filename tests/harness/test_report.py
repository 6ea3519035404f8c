"""The HTML matrix: its content, checked in the parsed page."""

from html.parser import HTMLParser

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
    assert exit_row[1:] == [("passed", "pass"), ("failed", "FAIL assert 1 == 0")]
    assert oom_row[1:] == [("deviation", "known deviation seen: seen known deviation of docker: OOMKilled <false> "
                                         "seen: seen known deviation of docker: OOMKilled <false> "
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
