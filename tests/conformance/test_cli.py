import json
import subprocess
import sys


def conformance(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "conformance.cli", *args], capture_output=True, text=True, cwd=cwd)


def test_unknown_suite_is_one_line_and_exit_2():
    result = conformance("run", "--engine", "docker", "no-such-suite")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert result.stderr.startswith("conformance: unknown suite 'no-such-suite'; known: ")


def test_report_without_results_is_exit_2(tmp_path):
    result = conformance("report", "--dir", str(tmp_path))
    assert result.returncode == 2
    assert "no results files" in result.stderr and "Traceback" not in result.stderr


def test_report_writes_the_page(tmp_path):
    (tmp_path / "engine-x-1.json").write_text(json.dumps({
        "subject": {"kind": "engine", "name": "x"}, "started": "1",
        "checks": [{"id": "runtime/a.py::t", "outcome": "passed", "spec": {"url": "u", "text": ""}}]}))
    result = conformance("report", "--dir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "index.html").read_text().count("engine:x") >= 2


def test_bench_unknown_area_is_exit_2():
    result = conformance("bench", "--only", "warp")
    assert result.returncode == 2 and "unknown bench area(s) warp" in result.stderr
