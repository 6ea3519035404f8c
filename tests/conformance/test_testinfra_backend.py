"""The testinfra backend that runs commands with ``ENGINE exec``, against a
fake engine: a script that runs ``exec [-u USER] NAME CMD...`` on this host
and logs the argv it was given."""

from __future__ import annotations

import json
import sys
import textwrap

import pytest
import testinfra.host

from conformance.engine import Engine
from conformance.profile import parse_profile
from conformance.testinfra_backend import EngineBackend, engine_host

FAKE = textwrap.dedent("""\
    import json, os, subprocess, sys
    args = sys.argv[1:]
    with open(os.environ["FAKE_LOG"], "a") as log:
        log.write(json.dumps(args) + "\\n")
    assert args[0] == "exec", args
    args = args[1:]
    if args[0] == "-u":
        os.environ["FAKE_USER"] = args[1]
        args = args[2:]
    if args[0] == "missing":
        sys.stderr.write("Error: No such container: missing\\n")
        sys.exit(1)
    sys.exit(subprocess.run(args[1:]).returncode)
    """)


@pytest.fixture
def fake(tmp_path, monkeypatch):
    script = tmp_path / "fake_engine.py"
    script.write_text(FAKE)
    log = tmp_path / "argv.log"
    monkeypatch.setenv("FAKE_LOG", str(log))
    profile = parse_profile(f'name = "fake"\nargv = [{json.dumps(sys.executable)}, {json.dumps(str(script))}]\n')
    engine = Engine(profile, run_id="t1")
    yield engine, log
    engine.close()


def calls(log) -> list[list[str]]:
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_commands_run_through_engine_exec_in_the_container(fake):
    engine, log = fake
    host = engine_host(engine, "web")
    result = host.run("echo out; echo err >&2; exit 3")
    assert (result.rc, result.stdout, result.stderr) == (3, "out\n", "err\n")
    assert calls(log)[-1] == ["exec", "web", "/bin/sh", "-c", "echo out; echo err >&2; exit 3"]


def test_arguments_are_quoted_once(fake):
    engine, log = fake
    host = engine_host(engine, "web")
    assert host.check_output("printf '%%s|' %s %s", "a b", "c; echo injected") == "a b|c; echo injected|"


def test_a_user_spec_becomes_exec_u(fake):
    engine, log = fake
    host = engine_host(engine, "nobody@web")
    assert host.check_output("echo $FAKE_USER") == "nobody"
    assert calls(log)[-1][:4] == ["exec", "-u", "nobody", "web"]


def test_testinfra_modules_work_through_the_backend(fake, tmp_path):
    engine, _ = fake
    target = tmp_path / "hosts"
    target.write_text("127.0.0.1\tlocalhost\n10.0.0.2\tweb\n")
    host = engine_host(engine, "web")
    assert host.file(str(target)).exists
    assert host.file(str(target)).contains("10.0.0.2")
    assert host.file(str(target)).content_string.splitlines()[1] == "10.0.0.2\tweb"
    assert not host.file(str(tmp_path / "absent")).exists


def test_an_engine_error_is_the_commands_result(fake):
    engine, _ = fake
    result = engine_host(engine, "missing").run("true")
    assert result.rc == 1 and "No such container: missing" in result.stderr


def test_a_profile_is_enough(fake):
    engine, log = fake
    host = engine_host(engine.profile, "db")
    assert isinstance(host, testinfra.host.Host) and isinstance(host.backend, EngineBackend)
    assert host.check_output("echo ok") == "ok"
    assert calls(log)[-1][:2] == ["exec", "db"]
    assert host.backend.get_pytest_id() == "fake://db"


def test_container_host_fixture(pytester, tmp_path, monkeypatch):
    script = tmp_path / "fake_engine.py"
    script.write_text(FAKE)
    monkeypatch.setenv("FAKE_LOG", str(tmp_path / "argv.log"))
    profile = tmp_path / "fake.toml"
    profile.write_text(f'name = "fake"\nargv = [{json.dumps(sys.executable)}, {json.dumps(str(script))}]\n')
    pytester.makeconftest(textwrap.dedent(f"""\
        import pytest
        from conformance.engine import Engine
        from conformance.profile import load_profile
        from conformance.testinfra_backend import container_host

        @pytest.fixture
        def engine():
            return Engine(load_profile({str(profile)!r}), run_id="t2")
        """))
    pytester.makepyfile(textwrap.dedent("""\
        def test_it(container_host):
            assert container_host("web").check_output("echo hi") == "hi"
        """))
    result = pytester.runpytest("-p", "no:conformance", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
