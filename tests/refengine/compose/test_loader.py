"""Loading a project: files, .env, merge rules, extends, profiles, project names and
the schema check (pure but for the files each test writes)."""

from __future__ import annotations

import pytest

from reference_runtime.compose.errors import ComposeError
from reference_runtime.compose.loader import LoadOptions, load, normalise_project_name
from reference_runtime.compose.schema import SCHEMA_ENV


def write(directory, name: str, text: str):
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def project(directory, environ=None, **options):
    return load(LoadOptions(**options), environ=environ or {}, cwd=str(directory))


def test_default_file_prefers_compose_yaml_and_adds_the_override(tmp_path):
    write(tmp_path, "compose.yaml", "services: {a: {image: x, environment: {K: base}}}")
    write(tmp_path, "docker-compose.yml", "services: {b: {image: x}}")
    write(tmp_path, "compose.override.yaml", "services: {a: {environment: {K: override}}}")
    p = project(tmp_path)
    assert list(p.services) == ["a"]
    assert p.services["a"].config["environment"] == {"K": "override"}


def test_files_are_found_from_a_subdirectory(tmp_path):
    write(tmp_path, "compose.yaml", "services: {a: {image: x}}")
    (tmp_path / "sub").mkdir()
    p = project(tmp_path / "sub")
    assert p.working_dir == str(tmp_path) and list(p.services) == ["a"]


def test_no_file_is_one_clear_error(tmp_path):
    with pytest.raises(ComposeError, match="no configuration file provided"):
        project(tmp_path)


def test_merge_rules_of_several_files(tmp_path):
    write(tmp_path, "a.yml", """
services:
  web:
    image: one
    command: [a, b]
    environment: [KEEP=1, OVER=1]
    labels: {l1: x}
    ports: ["8080:80"]
    volumes: ["data:/data", "./src:/src"]
volumes: {data: {}}
""")
    write(tmp_path, "b.yml", """
services:
  web:
    image: two
    command: c
    environment: {OVER: "2", NEW: "3"}
    ports: ["8080:80", "9090:90"]
    volumes: ["./other:/src:ro"]
""")
    web = project(tmp_path, files=["a.yml", "b.yml"]).services["web"].config
    assert web["image"] == "two" and web["command"] == ["c"]
    assert web["environment"] == {"KEEP": "1", "OVER": "2", "NEW": "3"}
    assert web["labels"] == {"l1": "x"}
    assert [p["published"] for p in web["ports"]] == ["8080", "9090"]
    assert {v["target"]: v["source"] for v in web["volumes"]} == {"/data": "data", "/src": str(tmp_path / "other")}


def test_extends_from_another_file_with_its_own_relative_paths(tmp_path):
    write(tmp_path, "lib/base.yml", """
services:
  base:
    image: img
    environment: {A: base, B: base}
    volumes: ["./conf:/conf"]
  middle:
    extends: base
    environment: {B: middle}
""")
    write(tmp_path, "compose.yaml", """
services:
  web:
    extends: {file: lib/base.yml, service: middle}
    environment: {C: web}
""")
    web = project(tmp_path).services["web"].config
    assert web["image"] == "img" and "extends" not in web
    assert web["environment"] == {"A": "base", "B": "middle", "C": "web"}
    assert web["volumes"][0]["source"] == str(tmp_path / "lib" / "conf")


def test_extends_cycle_is_an_error(tmp_path):
    write(tmp_path, "compose.yaml", "services: {a: {image: x, extends: b}, b: {image: x, extends: a}}")
    with pytest.raises(ComposeError, match="circular reference"):
        project(tmp_path)


def test_dotenv_env_file_option_and_the_shell(tmp_path):
    write(tmp_path, ".env", "TAG=dotenv\nONLY=dotenv\n")
    write(tmp_path, "alt.env", "TAG=alt\n")
    write(tmp_path, "compose.yaml", "services: {web: {image: 'img:${TAG}', environment: {O: '${ONLY:-none}'}}}")
    assert project(tmp_path).services["web"].image == "img:dotenv"
    assert project(tmp_path, {"TAG": "shell"}).services["web"].image == "img:shell"
    alt = project(tmp_path, env_files=["alt.env"]).services["web"]
    assert alt.image == "img:alt" and alt.config["environment"] == {"O": "none"}


def test_service_env_file_then_environment_then_the_shell_for_bare_names(tmp_path):
    write(tmp_path, "vars.env", "FILE=f\nBOTH=file\n")
    write(tmp_path, "compose.yaml", "services: {web: {image: x, env_file: vars.env, "
                                    "environment: [BOTH=env, FROM_SHELL, NOWHERE]}}")
    env = project(tmp_path, {"FROM_SHELL": "sh"}).services["web"].config["environment"]
    assert env == {"FILE": "f", "BOTH": "env", "FROM_SHELL": "sh"}


def test_profiles(tmp_path):
    write(tmp_path, "compose.yaml", "services: {web: {image: x}, dbg: {image: x, profiles: [debug]}}")
    assert list(project(tmp_path).services) == ["web"]
    assert sorted(project(tmp_path, profiles=["debug"]).services) == ["dbg", "web"]
    assert sorted(project(tmp_path, {"COMPOSE_PROFILES": "debug"}).services) == ["dbg", "web"]
    assert sorted(project(tmp_path, requested=["dbg"]).services) == ["dbg", "web"]
    assert project(tmp_path).profiles() == ["debug"]


def test_a_dependency_disabled_by_its_profile_is_an_error(tmp_path):
    write(tmp_path, "compose.yaml", "services: {web: {image: x, depends_on: [db]}, db: {image: x, profiles: [p]}}")
    with pytest.raises(ComposeError, match='"db" was pulled in as a dependency of service "web"'):
        project(tmp_path)


@pytest.mark.parametrize("body,message", [
    ("services: {web: {image: x, depends_on: [nope]}}", "depends on undefined service nope"),
    ("services: {web: {image: x, networks: [nope]}}", "refers to undefined network nope"),
    ("services: {web: {image: x, volumes: ['nope:/d']}}", "refers to undefined volume nope"),
])
def test_references_must_exist(tmp_path, body, message):
    write(tmp_path, "compose.yaml", body)
    with pytest.raises(ComposeError, match=message):
        project(tmp_path)


def test_project_name_precedence(tmp_path):
    directory = tmp_path / "My App.Dir"
    write(directory, "compose.yaml", "services: {web: {image: x}}")
    assert project(directory).name == "myappdir"
    write(directory, "compose.yaml", "name: fromfile\nservices: {web: {image: x}}")
    assert project(directory).name == "fromfile"
    assert project(directory, {"COMPOSE_PROJECT_NAME": "fromenv"}).name == "fromenv"
    assert project(directory, {"COMPOSE_PROJECT_NAME": "fromenv"}, project_name="fromflag").name == "fromflag"
    with pytest.raises(ComposeError, match='invalid project name "Bad Name"'):
        project(directory, project_name="Bad Name")


def test_normalise_project_name():
    assert normalise_project_name("_Hello-World_1") == "hello-world_1"


def test_networks_and_volumes_get_project_names(tmp_path):
    write(tmp_path, "compose.yaml", """
name: demo
services: {web: {image: x, networks: [front, default]}}
networks: {front: {}, ext: {external: true}, named: {name: exact}}
volumes: {data: {}, old: {external: {name: legacy}}}
""")
    p = project(tmp_path)
    assert {k: n["name"] for k, n in p.networks.items()} == \
        {"default": "demo_default", "front": "demo_front", "ext": "ext", "named": "exact"}
    assert {k: v["name"] for k, v in p.volumes.items()} == {"data": "demo_data", "old": "legacy"}


@pytest.mark.parametrize("body,path", [
    ("services: {web: {image: x, ports: '80'}}", "services.web.ports must be a list"),
    ("services: {web: {image: x, bogus: 1}}", "services.web additional property bogus is not allowed"),
    ("services: {web: {image: x, healthcheck: {interval: soon}}}", "services.web.healthcheck.interval"),
    ("services: {web: {image: x, restart: 5}}", "services.web.restart must be a string"),
])
def test_schema_errors_name_the_path(tmp_path, body, path):
    write(tmp_path, "compose.yaml", body)
    with pytest.raises(ComposeError, match=path.replace(".", r"\.")):
        project(tmp_path)


def test_schema_is_checked_after_interpolation(tmp_path):
    write(tmp_path, "compose.yaml", "services: {web: {image: x, ports: ['${P}:80']}}")
    assert project(tmp_path, {"P": "8080"}).services["web"].config["ports"][0]["published"] == "8080"


def test_a_missing_schema_says_which_package_provides_it(tmp_path, monkeypatch):
    monkeypatch.setenv(SCHEMA_ENV, str(tmp_path / "none.json"))
    write(tmp_path, "compose.yaml", "services: {web: {image: x}}")
    with pytest.raises(ComposeError, match="install Debian's docker-compose package"):
        project(tmp_path)


@pytest.mark.parametrize("text,message", [
    ("services: [", "yaml:"), ("- a\n- b\n", "Top-level object must be a mapping"),
])
def test_bad_yaml_is_one_line(tmp_path, text, message):
    write(tmp_path, "compose.yaml", text)
    with pytest.raises(ComposeError, match=message) as info:
        project(tmp_path)
    assert "\n" not in str(info.value)
