"""Validation of a Compose file against the Compose specification's JSON schema,
with ``jsonschema``. The schema is never ours: it is the one Debian's
``docker-compose`` package installs (``compose/config/compose_spec.json``),
or the file ``$REFENGINE_COMPOSE_SCHEMA`` names.

Errors read like docker compose v2's (compose-go picks the most specific of the
validator's errors): ``services.web.ports must be a list``,
``services.web additional property foo is not allowed``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
from functools import lru_cache

from .errors import ComposeError

#: Where Debian's docker-compose (1.29) installs the Compose specification's schema.
DEBIAN_SCHEMA = "/usr/lib/python3/dist-packages/compose/config/compose_spec.json"
SCHEMA_ENV = "REFENGINE_COMPOSE_SCHEMA"


def schema_path() -> str:
    """The schema file to use: ``$REFENGINE_COMPOSE_SCHEMA``, else docker-compose's,
    else the one a ``compose`` package on this Python's path ships."""
    override = os.environ.get(SCHEMA_ENV)
    if override:
        return override
    if os.path.isfile(DEBIAN_SCHEMA):
        return DEBIAN_SCHEMA
    try:
        spec = importlib.util.find_spec("compose")  # a top-level package: found, not imported
    except (ImportError, ValueError):
        spec = None
    for location in (spec.submodule_search_locations or []) if spec else []:
        candidate = os.path.join(location, "config", "compose_spec.json")
        if os.path.isfile(candidate):
            return candidate
    return DEBIAN_SCHEMA


@lru_cache(maxsize=4)
def _validator(path: str):
    import jsonschema

    try:
        with open(path, encoding="utf-8") as f:
            schema = json.load(f)
    except FileNotFoundError:
        raise ComposeError(f"the Compose schema {path} is missing: install Debian's docker-compose package "
                           f"(it ships compose_spec.json) or set {SCHEMA_ENV} to a copy of the Compose "
                           "specification's schema") from None
    except (OSError, ValueError) as exc:
        raise ComposeError(f"cannot read the Compose schema {path}: {exc}") from None
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)
    checker = jsonschema.FormatChecker()  # a new one: the library's shared checker stays as it is
    checker.checks("duration", raises=ValueError)(_is_duration)
    return cls(schema, format_checker=checker)


def _is_duration(value: object) -> bool:
    """The schema's ``duration`` format: Go's durations (``1m30s``, ``500ms``)."""
    from ..engine.flags import parse_go_duration

    if not isinstance(value, str):
        return True
    parse_go_duration(value)
    return True


def validate(document: dict, source: str) -> None:
    """Raise :class:`ComposeError` naming the bad key's path if ``document`` (one file,
    interpolated) breaks the schema."""
    validator = _validator(schema_path())
    if "name" in document and "name" not in validator.schema.get("properties", {}):
        # docker-compose 1.29's schema predates the specification's top-level `name`
        # (a string: the project name, checked as such by the loader)
        if not isinstance(document["name"], str):
            raise ComposeError(f"validating {source}: name must be a string")
        document = {k: v for k, v in document.items() if k != "name"}
    errors = list(validator.iter_errors(document))
    if errors:
        raise ComposeError(f"validating {source}: {describe(most_specific(errors))}")


def _path(error) -> str:
    return ".".join(str(p) if not isinstance(p, int) else f"{p}" for p in error.absolute_path)


def most_specific(errors: list):
    """compose-go's choice: the error deepest in the document; a type error wins a tie;
    inside a oneOf/anyOf, the deepest of its alternatives' errors."""
    def depth(e) -> int:
        return len(list(e.absolute_path))

    best = errors[0]
    for e in errors[1:]:
        if depth(e) > depth(best) or (depth(e) == depth(best) and e.validator == "type" and best.validator != "type"):
            best = e
    if best.validator in ("oneOf", "anyOf") and best.context:
        deeper = [c for c in best.context if depth(c) > depth(best)]
        if deeper:
            return most_specific(deeper)
    return best


_TYPE_NAMES = {"object": "mapping", "array": "list"}


def _type_name(expected) -> str:
    if isinstance(expected, list):
        names = [_type_name(t) for t in expected]
        return ", ".join(names[:-1]) + " or " + names[-1] if len(names) > 1 else names[0]
    return _TYPE_NAMES.get(expected, str(expected))


def describe(error) -> str:
    """One error as ``<path> <what is wrong>`` (the path of the key that is wrong)."""
    path = _path(error)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        schema = error.schema
        allowed = set(schema.get("properties") or {})
        patterns = list((schema.get("patternProperties") or {}))
        extra = [k for k in error.instance if k not in allowed and not any(re.search(p, k) for p in patterns)]
        names = ", ".join(str(k) for k in extra) or "?"
        where = path or "(root)"
        return f"{where} additional property {names} is not allowed"
    if error.validator == "type":
        return f"{path or '(root)'} must be a {_type_name(error.validator_value)}"
    if error.validator in ("oneOf", "anyOf"):
        types = [s.get("type") for s in error.validator_value if isinstance(s, dict) and s.get("type")]
        if types:
            return f"{path or '(root)'} must be a {_type_name(types)}"
        return f"{path or '(root)'} contains an invalid type"
    if error.validator == "enum":
        return f"{path} must be one of the following: " + ", ".join(json.dumps(v) for v in error.validator_value)
    if error.validator == "required":
        return f"{path or '(root)'} {error.message}"
    if error.validator == "format":
        return f"{path} Does not match format '{error.validator_value}'"
    return f"{path or '(root)'} {error.message}"
