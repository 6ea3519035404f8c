"""`config`: the resolved model, interpolation, `.env` and `--env-file`,
`extends`, several `-f` files merged, and a file that breaks the schema.

`config` prints the model the implementation will apply; its layout differs
between implementations, so the checks parse the YAML and assert on the
structure only.
"""

from __future__ import annotations

import pytest
import yaml

from .conftest import CLI, INTERPOLATION, MULTIPLE_FILES, SPEC, subject

pytestmark = pytest.mark.requires("compose")

CONFIG = f"{CLI}/config/"
SCHEMA = "https://github.com/compose-spec/compose-spec/blob/master/schema/compose-spec.json"


def resolved(compose, *args: str, env: dict[str, str] | None = None) -> dict:
    """``config`` parsed; an AssertionError naming what it printed when it fails."""
    result = compose.run(*args, "config", env=env)
    assert result.ok, f"{subject(compose)}: `config` failed:\n{result}"
    try:
        model = yaml.safe_load(result.stdout)
    except yaml.YAMLError as exc:
        raise AssertionError(f"{subject(compose)}: `config` printed no YAML ({exc}):\n{result}") from None
    assert isinstance(model, dict) and isinstance(model.get("services"), dict), \
        f"{subject(compose)}: `config` printed no `services` mapping:\n{result}"
    return model


def environment(service: dict) -> dict[str, str | None]:
    """A service's environment as a mapping, from either documented form."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(e.split("=", 1) if "=" in e else (e, None) for e in env)
    return env


@pytest.mark.spec(CONFIG, "config parses, resolves and renders the Compose file in canonical format: the services it defines, "
                          "each with its image and the environment given as a list, as a mapping")
def test_config_renders_the_model(compose, image):
    compose.write(f"""\
services:
  web:
    image: {image}
    environment: ["A=1", "B=two words"]
  db:
    image: {image}
volumes:
  data: {{}}
""")
    model = resolved(compose)
    assert sorted(model["services"]) == ["db", "web"], f"{subject(compose)}: config lists services {sorted(model['services'])}"
    assert model["services"]["web"].get("image") == image, f"{subject(compose)}: config shows web's image {model['services']['web'].get('image')!r}"
    assert environment(model["services"]["web"]) == {"A": "1", "B": "two words"}, \
        f"{subject(compose)}: config shows web's environment {model['services']['web'].get('environment')!r}"
    assert "data" in (model.get("volumes") or {}), f"{subject(compose)}: config lost the top-level volume: {model.get('volumes')!r}"


@pytest.mark.spec(f"{SPEC}#interpolation", "${VAR} is the value of VAR; ${VAR:-default} the default when VAR is unset or empty; "
                                           "${VAR-default} the default only when VAR is unset")
def test_variables_are_interpolated(compose, image):
    compose.write(f"""\
services:
  web:
    image: {image}
    environment:
      SET: ${{CFT_SET}}
      UNSET_DEFAULT: ${{CFT_UNSET:-fallback}}
      EMPTY_DEFAULT: ${{CFT_EMPTY:-fallback2}}
      EMPTY_KEPT: "${{CFT_EMPTY-kept}}"
      BARE: $CFT_SET
""")
    model = resolved(compose, env={"CFT_SET": "hello", "CFT_EMPTY": ""})
    assert environment(model["services"]["web"]) == {
        "SET": "hello", "UNSET_DEFAULT": "fallback", "EMPTY_DEFAULT": "fallback2", "EMPTY_KEPT": "", "BARE": "hello",
    }, f"{subject(compose)}: interpolated environment {model['services']['web'].get('environment')!r}"


@pytest.mark.spec(f"{SPEC}#interpolation", "${VAR:?err} exits with an error containing err when VAR is unset or empty")
def test_required_variable_missing_is_an_error(compose, image):
    compose.write(f"""\
services:
  web:
    image: "{image}"
    environment:
      NEEDED: "${{CFT_REQUIRED:?CFT_REQUIRED must name the tier}}"
""")
    result = compose.run("config")
    assert result.returncode != 0, f"{subject(compose)}: config of an unset required variable succeeded:\n{result}"
    assert "CFT_REQUIRED must name the tier" in result.stdout + result.stderr, \
        f"{subject(compose)}: the error does not carry the file's message:\n{result}"


@pytest.mark.spec(INTERPOLATION, "a .env file in the project directory supplies variables for interpolation; "
                                 "values set in the shell take precedence over .env")
def test_dotenv_supplies_variables_and_the_shell_wins(compose, image):
    compose.write("CFT_FROM_DOTENV=dotenv\nCFT_BOTH=dotenv\n", ".env")
    compose.write(f"""\
services:
  web:
    image: {image}
    environment:
      ONE: ${{CFT_FROM_DOTENV}}
      TWO: ${{CFT_BOTH}}
""")
    model = resolved(compose, env={"CFT_BOTH": "shell"})
    assert environment(model["services"]["web"]) == {"ONE": "dotenv", "TWO": "shell"}, \
        f"{subject(compose)}: with .env and CFT_BOTH=shell, config shows {model['services']['web'].get('environment')!r}"


@pytest.mark.spec(f"{INTERPOLATION}#substitute-with---env-file", "--env-file names another environment file, used instead of .env")
def test_env_file_option_replaces_dotenv(compose, image):
    compose.write("CFT_WHICH=dotenv\nCFT_ONLY_DOTENV=yes\n", ".env")
    compose.write("CFT_WHICH=alt\n", "alt.env")
    compose.write(f"""\
services:
  web:
    image: {image}
    environment:
      WHICH: ${{CFT_WHICH}}
      ONLY_DOTENV: ${{CFT_ONLY_DOTENV:-unset}}
""")
    model = resolved(compose, "--env-file", "alt.env")
    assert environment(model["services"]["web"]) == {"WHICH": "alt", "ONLY_DOTENV": "unset"}, \
        f"{subject(compose)}: with --env-file alt.env, config shows {model['services']['web'].get('environment')!r}"


@pytest.mark.spec(f"{SPEC}#extends", "extends shares a service's configuration from another file; "
                                     "mappings such as environment and labels are merged, the local service's values win")
def test_extends_merges_the_base_service(compose, image):
    compose.write(f"""\
services:
  base:
    image: {image}
    command: ["echo", "from-base"]
    environment: {{BASE_ONLY: b, SHARED: base}}
    labels: {{from.base: "yes"}}
""", "common.yml")
    compose.write("""\
services:
  web:
    extends: {file: common.yml, service: base}
    environment: {OWN: w, SHARED: web}
""")
    web = resolved(compose)["services"]["web"]
    assert web.get("image") == image, f"{subject(compose)}: the extended service's image is {web.get('image')!r}"
    assert web.get("command") in (["echo", "from-base"], "echo from-base"), f"{subject(compose)}: command {web.get('command')!r}"
    assert environment(web) == {"BASE_ONLY": "b", "SHARED": "web", "OWN": "w"}, f"{subject(compose)}: environment {web.get('environment')!r}"
    labels = web.get("labels") or {}
    labels = dict(item.split("=", 1) for item in labels) if isinstance(labels, list) else labels
    assert labels.get("from.base") == "yes", f"{subject(compose)}: labels {web.get('labels')!r}"


@pytest.mark.spec(MULTIPLE_FILES, "with several -f files, later files override earlier ones: single values are replaced, "
                                  "mappings such as environment merged, services of either file kept")
def test_multiple_files_are_merged(compose, image):
    compose.write(f"""\
services:
  web:
    image: {image}
    command: ["echo", "base"]
    environment: {{KEEP: base, OVERRIDE: base}}
  db:
    image: {image}
""", "base.yml")
    compose.write("""\
services:
  web:
    command: ["echo", "override"]
    environment: {OVERRIDE: override, ADDED: override}
  cache:
    image: busybox-not-pulled
""", "override.yml")
    model = resolved(compose, "-f", "base.yml", "-f", "override.yml")
    assert sorted(model["services"]) == ["cache", "db", "web"], f"{subject(compose)}: merged services {sorted(model['services'])}"
    web = model["services"]["web"]
    assert web.get("command") == ["echo", "override"], f"{subject(compose)}: merged command {web.get('command')!r}"
    assert web.get("image") == image, f"{subject(compose)}: merged image {web.get('image')!r}"
    assert environment(web) == {"KEEP": "base", "OVERRIDE": "override", "ADDED": "override"}, \
        f"{subject(compose)}: merged environment {web.get('environment')!r}"


@pytest.mark.spec(SCHEMA, "a Compose file is validated against the Compose schema, where a service's ports is an array: "
                  "a file whose services.web.ports is a string is refused, the error naming services.web.ports")
def test_schema_violation_is_refused_with_the_path(compose, image):
    compose.write(f"""\
services:
  web:
    image: {image}
    ports: "8080"
""")
    result = compose.run("config")
    assert result.returncode != 0, f"{subject(compose)}: a file with a string services.web.ports passed config:\n{result}"
    out = result.stdout + result.stderr
    assert "services.web.ports" in out, f"{subject(compose)}: the refusal does not name services.web.ports:\n{result}"


@pytest.mark.spec(f"{SPEC}#compose-file", "the default Compose file is compose.yaml in the working directory; "
                                          "docker-compose.yml is supported too, and when both exist compose.yaml is preferred")
def test_compose_yaml_is_the_preferred_default_file(compose, image):
    compose.write(f"services:\n  canonical:\n    image: {image}\n", "compose.yaml")
    compose.write(f"services:\n  legacy:\n    image: {image}\n", "docker-compose.yml")
    model = resolved(compose)
    assert sorted(model["services"]) == ["canonical"], \
        f"{subject(compose)}: with compose.yaml and docker-compose.yml, config shows services {sorted(model['services'])}"
