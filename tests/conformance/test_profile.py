import pytest

from conformance.errors import ConformanceError
from conformance.profile import available_profiles, load_profile, parse_profile, profile_by_name

MINIMAL = 'name = "x"\nargv = ["x"]\n'


def test_minimal_profile():
    p = parse_profile(MINIMAL)
    assert p.name == "x" and p.argv == ("x",) and p.capabilities == frozenset() and dict(p.deviations) == {}


def test_profile_dir_is_expanded_in_argv_and_env(tmp_path):
    path = tmp_path / "e.toml"
    path.write_text('name = "e"\nargv = ["{profile_dir}/bin"]\n[env]\nCONF = "{profile_dir}/c.conf"\n')
    p = load_profile(path)
    assert p.argv == (f"{tmp_path}/bin",)
    assert p.env["CONF"] == f"{tmp_path}/c.conf"
    assert p.path == path


@pytest.mark.parametrize("text,message", [
    ('name = "x"\nargv = ["x"]\ncolour = 1\n', "unknown key(s) colour"),
    ('argv = ["x"]\n', "'name' must be a non-empty string"),
    ('name = "x"\nargv = "docker"\n', "'argv' must be a non-empty list"),
    ('name = "x"\nargv = []\n', "'argv' must be a non-empty list"),
    (MINIMAL + 'capabilities = ["swarm", "flying"]\n', "unknown capability flying"),
    (MINIMAL + '[deviations."test_x"]\nmatch = "x"\nevidence = "e"\n', "is not a check id"),
    (MINIMAL + '[deviations]\n"a/b.py::c" = "why"\n', "a deviation names the failure it expects"),
    (MINIMAL + '[deviations."a/b.py::c"]\nevidence = "seen"\n', "'match' must be a non-empty regex"),
    (MINIMAL + '[deviations."a/b.py::c"]\nmatch = "(unclosed"\nevidence = "seen"\n', "'match' is not a valid regex"),
    (MINIMAL + '[deviations."a/b.py::c"]\nmatch = "x"\nevidence = " "\n', "'evidence' must say what was seen"),
    (MINIMAL + '[deviations."a/b.py::c"]\nmatch = "x"\nevidence = "e"\nraises = "not a type!"\n', "'raises' must be an exception type name"),
    (MINIMAL + '[deviations."a/b.py::c"]\nmatch = "x"\nevidence = "e"\nreason = "old"\n', "unknown key(s) reason"),
    (MINIMAL + '[deviations."a/b.py::c"]\nmatch = "x"\nevidence = "e"\nintermittent = "yes"\n', "'intermittent' must be true or false"),
    (MINIMAL + '[env]\nN = 1\n', "[env] values must be strings"),
    ('name = "x\n', "not valid TOML"),
])
def test_invalid_profiles_are_rejected_with_a_clear_message(text, message):
    with pytest.raises(ConformanceError) as info:
        parse_profile(text, source="p.toml")
    assert message in str(info.value)
    assert str(info.value).startswith("p.toml: ")


def test_deviation_matches_the_check_and_all_its_parameters():
    p = parse_profile(MINIMAL + '[deviations."runtime/t.py::test_a"]\nmatch = "a"\nevidence = "evidence"\n'
                      '[deviations."runtime/t.py::test_b[2]"]\nmatch = "b"\nevidence = "only 2"\n')
    assert p.deviation("runtime/t.py::test_a").evidence == "evidence"
    assert p.deviation("runtime/t.py::test_a[7]").evidence == "evidence"
    assert p.deviation("runtime/t.py::test_b[2]").evidence == "only 2"
    assert p.deviation("runtime/t.py::test_b[3]") is None
    assert p.deviation("runtime/t.py::test_ab") is None


def test_every_shipped_profile_loads():
    names = set(available_profiles())
    assert {"docker", "podman", "nerdctl", "refengine"} <= names
    for name in names:
        assert profile_by_name(name).name == name


def test_unknown_engine_names_the_known_ones():
    with pytest.raises(ConformanceError, match="unknown engine 'nope'; known: .*docker"):
        profile_by_name("nope")


def test_missing_profile_file(tmp_path):
    with pytest.raises(ConformanceError, match="cannot read engine profile"):
        load_profile(tmp_path / "absent.toml")


def test_a_deviation_expects_its_exception_type_and_message_only():
    p = parse_profile(MINIMAL + '[deviations."s/t.py::test_a"]\nmatch = "OOMKilled (False|false)"\nevidence = "e"\n'
                      '[deviations."s/t.py::test_b"]\nmatch = "exit 125"\nevidence = "e"\nraises = "EngineCallFailed"\n')
    oom = p.deviation("s/t.py::test_a")
    assert oom.expects(AssertionError("podman: OOMKilled False after exit 137"))
    assert not oom.expects(AssertionError("podman: exit 0 after OOM"))
    assert not oom.expects(RuntimeError("OOMKilled False"))

    class EngineCallFailed(Exception):
        pass

    class Subclass(EngineCallFailed):
        pass

    engine = p.deviation("s/t.py::test_b")
    assert engine.expects(EngineCallFailed("-> exit 125")) and engine.expects(Subclass("-> exit 125"))
    assert not engine.expects(AssertionError("-> exit 125"))


def test_shipped_profiles_declare_only_capabilities_some_check_requires():
    from conformance.checks import unrequired_capabilities
    from conformance.registry_profile import available_registry_profiles, load_registry_profile

    profiles = [load_profile(p) for p in available_profiles().values()]
    profiles += [load_registry_profile(p) for p in available_registry_profiles().values()]
    assert {p.name: unrequired_capabilities(p) for p in profiles if unrequired_capabilities(p)} == {}


def test_conformance_run_warns_of_a_capability_no_check_requires(tmp_path, capsys):
    from conformance.cli import main

    (tmp_path / "e.toml").write_text('name = "e"\nargv = ["/nonexistent/e"]\ncapabilities = ["swarm", "init"]\n')
    main(["run", "--engine-profile", str(tmp_path / "e.toml"), "--report-dir", str(tmp_path / "out"),
          "runtime", "--pytest-args", "--collect-only", "-q"])
    err = capsys.readouterr().err
    assert "conformance: warning: profile e declares capability that no check requires: swarm" in err
