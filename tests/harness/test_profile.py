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
    (MINIMAL + '[deviations]\n"test_x" = "why"\n', "is not a check id"),
    (MINIMAL + '[deviations]\n"a/b.py::c" = " "\n', "non-empty reason"),
    (MINIMAL + '[env]\nN = 1\n', "[env] values must be strings"),
    ('name = "x\n', "not valid TOML"),
])
def test_invalid_profiles_are_rejected_with_a_clear_message(text, message):
    with pytest.raises(ConformanceError) as info:
        parse_profile(text, source="p.toml")
    assert message in str(info.value)
    assert str(info.value).startswith("p.toml: ")


def test_deviation_matches_the_check_and_all_its_parameters():
    p = parse_profile(MINIMAL + '[deviations]\n"runtime/t.py::test_a" = "evidence"\n"runtime/t.py::test_b[2]" = "only 2"\n')
    assert p.deviation("runtime/t.py::test_a") == "evidence"
    assert p.deviation("runtime/t.py::test_a[7]") == "evidence"
    assert p.deviation("runtime/t.py::test_b[2]") == "only 2"
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
