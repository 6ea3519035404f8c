import json

import pytest

from conformance.errors import ConformanceError
from conformance.results import load_run, merge, parse_run


def doc(name, started, checks, kind="engine"):
    return {"subject": {"kind": kind, "name": name, "version": f"{name} 1.0"}, "started": started,
            "checks": [{"id": i, "outcome": o, "reason": r, "spec": {"url": f"https://docs/{i}", "text": "t"}}
                       for i, o, r in checks]}


def test_merge_builds_one_column_per_subject_and_one_row_per_check():
    docker = parse_run(doc("docker", "2026-01-01T00:00:00", [("runtime/a.py::t1", "passed", ""), ("runtime/a.py::t2", "deviation", "evidence")]))
    podman = parse_run(doc("podman", "2026-01-01T00:00:00", [("runtime/a.py::t1", "failed", "boom")]))
    m = merge([podman, docker])
    assert [c.column for c in m.columns] == ["engine:docker", "engine:podman"]
    assert [r.check_id for r in m.rows] == ["runtime/a.py::t1", "runtime/a.py::t2"]
    assert m.rows[0].cells["engine:podman"].outcome == "failed"
    assert "engine:podman" not in m.rows[1].cells
    assert m.counts("engine:docker") == {"passed": 1, "failed": 0, "error": 0, "skipped": 0, "deviation": 1}


def test_the_latest_run_of_a_subject_wins_and_runs_of_other_suites_combine():
    old = parse_run(doc("docker", "2026-01-01T00:00:00", [("runtime/a.py::t1", "failed", "x"), ("build/b.py::t9", "passed", "")]))
    new = parse_run(doc("docker", "2026-02-01T00:00:00", [("runtime/a.py::t1", "passed", "")]))
    m = merge([new, old])
    assert len(m.columns) == 1 and m.columns[0].started == "2026-02-01T00:00:00"
    cells = {r.check_id: r.cells["engine:docker"].outcome for r in m.rows}
    assert cells == {"runtime/a.py::t1": "passed", "build/b.py::t9": "passed"}


def test_engines_and_registries_are_separate_columns():
    m = merge([parse_run(doc("x", "1", [("registry/p.py::t", "passed", "")], kind="registry")),
               parse_run(doc("x", "1", [("runtime/a.py::t", "passed", "")]))])
    assert [c.column for c in m.columns] == ["engine:x", "registry:x"]
    assert [r.suite for r in m.rows] == ["registry", "runtime"]


@pytest.mark.parametrize("data,message", [
    ({"checks": []}, "missing or bad 'subject'"),
    ({"subject": {"kind": "engine", "name": "x"}, "started": "1", "checks": [{"id": "a::b", "outcome": "maybe"}]}, "unknown outcome(s) maybe"),
])
def test_bad_results_files_are_rejected(data, message):
    with pytest.raises(ConformanceError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_run(data, source="r.json")


def test_unreadable_results_file(tmp_path):
    (tmp_path / "r.json").write_text("{not json")
    with pytest.raises(ConformanceError, match="cannot read results file"):
        load_run(tmp_path / "r.json")
    ok = tmp_path / "ok.json"
    ok.write_text(json.dumps(doc("docker", "1", [("runtime/a.py::t", "passed", "")])))
    assert load_run(ok).source == str(ok)
