"""Registry profiles: parsed strictly, shipped ones valid, commands filled in."""

import pytest

from conformance.errors import ConformanceError
from conformance.registry_profile import (available_registry_profiles, parse_registry_profile, registry_profile_by_name,
                                          resolve_program, url_profile)

GOOD = """
name = "r"
serve = ["/usr/bin/r", "serve", "{config}"]
garbage_collect = ["/usr/bin/r", "garbage-collect", "{config}"]
capabilities = ["delete", "catalog"]
[deviations."registry/test_x.py::test_y"]
match = "answers 200"
evidence = "r 1.0 answers 200: evidence"
"""


def test_parse_good_profile():
    p = parse_registry_profile(GOOD)
    assert p.name == "r" and p.has("delete") and not p.has("referrers")
    assert p.command("serve", "/c.yml") == ["/usr/bin/r", "serve", "/c.yml"]
    assert p.command("garbage-collect", "/c.yml") == ["/usr/bin/r", "garbage-collect", "/c.yml"]
    assert p.deviation("registry/test_x.py::test_y[3]").evidence == "r 1.0 answers 200: evidence"
    assert p.deviation("registry/test_x.py::test_z") is None


@pytest.mark.parametrize("text,message", [
    ('name = "r"\nserve = ["r", "serve"]', "must name the configuration file"),
    ('name = "r"', "'serve' must be a non-empty list"),
    ('serve = ["r", "{config}"]', "'name' must be a non-empty string"),
    ('name = "r"\nserve = ["r", "{config}"]\ncapabilities = ["teleport"]', "unknown registry capability teleport"),
    ('name = "r"\nserve = ["r", "{config}"]\nargv = ["x"]', "unknown key(s) argv"),
    ('name = "r"\nserve = ["r", "{config}"]\n[deviations."test_y"]\nmatch = "x"\nevidence = "e"', "is not a check id"),
    ('name = "r"\nserve = ["r", "{config}"]\n[deviations]\n"a.py::t" = "why"', "a deviation names the failure it expects"),
    ('name = = "r"', "not valid TOML"),
])
def test_bad_profiles_say_what_is_wrong(text, message):
    with pytest.raises(ConformanceError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_registry_profile(text, source="p.toml")


def test_command_without_gc_is_an_error():
    p = parse_registry_profile('name = "r"\nserve = ["r", "{config}"]')
    with pytest.raises(ConformanceError, match="no 'garbage_collect' command"):
        p.command("garbage_collect", "/c")


def test_shipped_profiles_load():
    assert {"distribution", "refregistry"} <= set(available_registry_profiles())
    for name in available_registry_profiles():
        profile = registry_profile_by_name(name)
        assert profile.startable and profile.garbage_collect
        assert all(key.startswith("registry/test_") and "::" in key for key in profile.deviations)


def test_unknown_implementation_lists_the_known_ones():
    with pytest.raises(ConformanceError, match="unknown registry implementation 'nope'; known: .*distribution"):
        registry_profile_by_name("nope")


def test_url_profile_checks_capabilities():
    assert url_profile("x", ["delete"]).has("delete")
    with pytest.raises(ConformanceError, match="unknown registry capability deletes"):
        url_profile("x", ["deletes"])


def test_resolve_program_falls_back_to_the_venv(tmp_path):
    assert resolve_program("/abs/path") == "/abs/path"
    assert resolve_program("sh") == "sh"
    assert resolve_program("pytest").endswith("pytest")


def test_tag_delete_is_a_capability_of_its_own():
    """Tag deletion is a MAY of the spec: refregistry offers it, distribution 2.8 (delete by digest only) does not,
    and a --registry URL claims it with --registry-capability tag-delete."""
    assert registry_profile_by_name("refregistry").has("tag-delete")
    distribution = registry_profile_by_name("distribution")
    assert distribution.has("delete") and not distribution.has("tag-delete")
    assert url_profile("x", ["delete", "tag-delete"]).has("tag-delete")
