"""Compose files as docker compose v2 reads them: YAML 1.2's core schema, not
PyYAML's YAML 1.1. The difference matters in Compose files: under 1.1
``ports: [22:22]`` is the base-60 integer 1342, ``restart: no`` is false and
``010`` is 8, ``2020-01-01`` a date; under 1.2 they are the string "22:22", the string
"no", 10 and a string.

>>> load("ports: [22:22]\\nrestart: no\\nn: 010\\nok: true\\nx: 0x1f\\nf: 1.5\\nnothing: ~")
{'ports': ['22:22'], 'restart': 'no', 'n': 10, 'ok': True, 'x': 31, 'f': 1.5, 'nothing': None}
"""

from __future__ import annotations

import re

import yaml

_BOOL = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
_INT = re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$")
_FLOAT = re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
                    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$")
#: 1.1's resolvers replaced (timestamps are not in 1.2's core schema at all: they stay strings)
_REPLACED = {"tag:yaml.org,2002:bool", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float",
             "tag:yaml.org,2002:timestamp"}


class Loader(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2 core-schema booleans and numbers."""


# Each loader class has its own copy of the resolver table (copied on first add).
Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in _REPLACED]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
Loader.add_implicit_resolver("tag:yaml.org,2002:bool", _BOOL, list("tTfF"))
Loader.add_implicit_resolver("tag:yaml.org,2002:int", _INT, list("-+0123456789"))
Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789."))


def _int(loader: Loader, node: yaml.ScalarNode) -> int:
    text = loader.construct_scalar(node)
    if text.startswith("0o"):
        return int(text[2:], 8)
    if text.startswith("0x"):
        return int(text[2:], 16)
    return int(text, 10)


def _float(loader: Loader, node: yaml.ScalarNode) -> float:
    text = loader.construct_scalar(node).lower()
    if text == ".nan":
        return float("nan")
    if text.endswith("inf"):
        return float("-inf") if text.startswith("-") else float("inf")
    return float(text)


def _mapping(loader: Loader, node: yaml.MappingNode) -> dict:
    """A mapping whose keys are unique: a repeated key is an error (go-yaml v3, so docker
    compose), not PyYAML's silent last-one-wins."""
    seen: dict = {}
    for key_node, _ in node.value:
        if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f'mapping key "{key}" already defined at line {seen[key] + 1}', key_node.start_mark)
        seen[key] = key_node.start_mark.line
    return loader.construct_yaml_map(node)


Loader.add_constructor("tag:yaml.org,2002:map", _mapping)
Loader.add_constructor("tag:yaml.org,2002:int", _int)
Loader.add_constructor("tag:yaml.org,2002:float", _float)


#: Bounds of a loaded document, aliases expanded: a "billion laughs" file of nested
#: aliases is a few lines that every walk of the tree would expand exponentially.
MAX_NODES = 1_000_000
MAX_DEPTH = 200


class TooLarge(ValueError):
    """The document is bigger or deeper than a Compose file has any reason to be."""


def load(text: str):
    """One YAML document under YAML 1.2's core schema, its expanded size bounded
    (:class:`TooLarge`; tests/refengine/compose/test_hostile_files.py)."""
    try:
        document = yaml.load(text, Loader=Loader)  # noqa: S506 - a SafeLoader subclass
    except RecursionError:
        raise TooLarge(f"nested deeper than {MAX_DEPTH} levels") from None
    _check_size(document)
    return document


def _check_size(document) -> None:
    """Walk the tree as every later step will (aliases expanded), without recursion."""
    count = 0
    stack = [(document, 0)]
    while stack:
        node, depth = stack.pop()
        count += 1
        if count > MAX_NODES:
            raise TooLarge(f"more than {MAX_NODES} values once its aliases are expanded")
        if depth > MAX_DEPTH:
            raise TooLarge(f"nested deeper than {MAX_DEPTH} levels")
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)
