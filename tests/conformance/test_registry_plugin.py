"""The registry plugin driven through throwaway pytest runs: it starts a
registry from a profile, tags results, skips, xfails, stops and cleans up."""

import json
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest

from conformance import SUITES_DIR
from conformance.registry_plugin import FIXTURES

# A stand-in registry: reads the YAML the harness wrote, answers /v2/, and
# notes where its config lived so the test can see the dir was removed.
FAKE_SERVER = textwrap.dedent("""
    import http.server, os, sys, yaml
    config = yaml.safe_load(open(sys.argv[1]))
    with open(os.environ["FAKE_LOG"], "a") as log:
        log.write(sys.argv[1] + "\\n")
    host, port = config["http"]["addr"].rsplit(":", 1)

    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200 if self.path == "/v2/" else 404)
            self.send_header("Docker-Distribution-API-Version", "registry/2.0")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")
        def log_message(self, *a):
            pass

    http.server.HTTPServer((host, int(port)), H).serve_forever()
""")

CHECKS = """
import pytest

@pytest.mark.spec("https://example/spec#v2", "GET /v2/ answers 200")
def test_v2(registry):
    with registry.client() as c:
        assert c.get("/v2/").status_code == 200

@pytest.mark.requires("referrers")
def test_needs_referrers(registry):
    raise AssertionError("must not run")

def test_known_deviation(registry):
    with registry.client() as c:
        assert c.get("/v2/nothing").status_code == 200

def test_same_registry_twice(registry, request):
    assert registry is request.getfixturevalue("registry")
"""


@pytest.fixture
def fake(pytester):
    pytester.makepyfile(fake_server=FAKE_SERVER, test_checks=CHECKS)
    pytester.makefile(".toml", fake=f"""
name = "fake"
serve = ["{sys.executable}", "{pytester.path / 'fake_server.py'}", "{{config}}"]
capabilities = ["delete"]
[env]
FAKE_LOG = "{pytester.path / 'started.log'}"
[deviations."test_checks.py::test_known_deviation"]
match = "assert 404 == 200"
evidence = "fake answers 404 for everything: evidence"
""")
    return pytester


def test_profile_starts_checks_skips_xfails_and_cleans_up(fake):
    result = fake.runpytest_subprocess("--registry-profile", "fake.toml", "--report-dir", "out", "-rsx")
    result.assert_outcomes(passed=2, skipped=1, xfailed=1)
    result.stdout.fnmatch_lines(["*registry fake lacks capability referrers*", "*known deviation of fake*evidence*"])
    started = (fake.path / "started.log").read_text().split()
    assert len(started) == 1, "one registry per configuration and session"
    assert not Path(started[0]).parent.exists(), "the registry's temp dir is removed"
    [results] = list((fake.path / "out").glob("registry-fake-*.json"))
    doc = json.loads(results.read_text())
    assert doc["subject"]["kind"] == "registry" and doc["subject"]["name"] == "fake"
    outcomes = {c["id"]: c["outcome"] for c in doc["checks"]}
    assert outcomes == {"test_checks.py::test_v2": "passed", "test_checks.py::test_needs_referrers": "skipped",
                        "test_checks.py::test_known_deviation": "deviation", "test_checks.py::test_same_registry_twice": "passed"}
    assert [c["spec"]["url"] for c in doc["checks"] if c["id"].endswith("test_v2")] == ["https://example/spec#v2"]


def test_url_mode_uses_the_capabilities_given(fake):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = fake.path / "c.yml"
    config.write_text(f"http: {{addr: '127.0.0.1:{port}'}}\n")
    server = subprocess.Popen([sys.executable, str(fake.path / "fake_server.py"), str(config)],
                              env={"FAKE_LOG": str(fake.path / "url.log"), "PATH": "/usr/bin:/bin"})
    try:
        for _ in range(100):
            try:
                httpx.get(f"http://127.0.0.1:{port}/v2/")
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        result = fake.runpytest_subprocess("--registry", f"http://127.0.0.1:{port}", "--registry-capability", "referrers",
                                           "--registry-name", "mine", "--report-dir", "out", "-rsx", "-k", "v2 or referrers")
        result.assert_outcomes(passed=1, failed=1)  # referrers is claimed, so the check runs (and fails here)
        assert list((fake.path / "out").glob("registry-mine-*.json"))
    finally:
        server.terminate()
        server.wait(10)


@pytest.mark.parametrize("args,message", [
    (["--registry-impl", "nope"], "unknown registry implementation 'nope'"),
    (["--registry", "http://127.0.0.1:1", "--registry-impl", "distribution"], "do not combine it"),
    (["--registry", "ftp://x"], "must be a base URL"),
    (["--registry", "http://127.0.0.1:1", "--registry-capability", "warp"], "unknown registry capability warp"),
])
def test_bad_options_are_one_line_usage_errors(fake, args, message):
    result = fake.runpytest_subprocess(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{message}*"])
    assert "Traceback" not in result.stderr.str()


def test_every_check_of_the_registry_suite_runs_against_the_registry(pytester):
    """A check that reaches a registry only through ``request.getfixturevalue``
    is invisible to the plugin (no subject, capabilities or deviations, no
    results): every check must name a registry fixture (or one depending on it)."""
    items, _ = pytester.inline_genitems(str(SUITES_DIR / "registry"), "--registry-impl", "refregistry", "-p", "no:xdist",
                                        "--report-dir", str(pytester.path / "out"))
    assert len(items) > 50, [item.nodeid for item in items]
    untied = [item.nodeid for item in items if not FIXTURES & set(item.fixturenames)]
    assert not untied, f"checks not tied to a registry fixture: {untied}"
    assert {dict(item.user_properties).get("subject") for item in items} == {"registry:refregistry"}
