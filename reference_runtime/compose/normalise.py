"""One service's keys in the Compose specification's long (canonical) form, and
the merge of two such services (compose-spec merge.md). Pure.

Short forms are expanded first so that merging only ever sees one shape:
``environment``/``labels`` lists become mappings, ``depends_on`` and
``networks`` lists become mappings, ``ports`` and ``volumes`` strings become
their long syntax, ``command``/``entrypoint`` strings become argv lists.

>>> normalise_service({"ports": ["127.0.0.1:8080:80/udp"]}, "/p")["ports"]
[{'mode': 'ingress', 'target': 80, 'published': '8080', 'protocol': 'udp', 'host_ip': '127.0.0.1'}]
>>> normalise_service({"volumes": ["data:/d:ro", "./src:/s"]}, "/p")["volumes"][1]
{'type': 'bind', 'source': '/p/src', 'target': '/s', 'bind': {'create_host_path': True}}
"""

from __future__ import annotations

import os
import shlex

from .errors import ComposeError

#: Sequences an override replaces instead of extending (compose-spec merge.md).
REPLACED = ("command", "entrypoint")
#: Keys whose list form is a KEY=VALUE mapping.
KEY_VALUE_LISTS = ("environment", "labels", "sysctls", "extra_hosts")


def key_value_map(items, *, separator: str = "=") -> dict:
    """``["A=1", "B"]`` -> ``{"A": "1", "B": None}``; a mapping keeps its keys, its
    scalar values as strings (``1`` -> ``"1"``, ``true`` -> ``"true"``, null -> None)."""
    if isinstance(items, dict):
        return {str(k): _scalar(v) for k, v in items.items()}
    out: dict = {}
    for item in items or []:
        key, sep, value = str(item).partition(separator)
        out[key] = value if sep else None
    return out


def _scalar(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def argv(value, key: str) -> list[str] | None:
    """``command``/``entrypoint``: a string is split like a shell would (no expansion)."""
    if value is None or isinstance(value, list):
        return value
    try:
        return shlex.split(str(value))
    except ValueError as exc:
        raise ComposeError(f"invalid {key} {value!r}: {exc}") from None


def parse_port(spec, where: str) -> list[dict]:
    """One ``ports`` entry in its long syntax (a range gives one entry per port).

    >>> parse_port("8000-8001:80-81", "x")[1]
    {'mode': 'ingress', 'target': 81, 'published': '8001', 'protocol': 'tcp'}
    """
    if isinstance(spec, dict):
        entry = {"mode": spec.get("mode", "ingress"), "target": int(spec["target"])}
        if spec.get("published") not in (None, ""):
            entry["published"] = str(spec["published"])
        entry["protocol"] = spec.get("protocol", "tcp")
        if spec.get("host_ip"):
            entry["host_ip"] = spec["host_ip"]
        return [entry]
    text = str(spec)
    text, _, protocol = text.partition("/")
    host_ip = ""
    if text.startswith("["):  # [::1]:8080:80
        end = text.find("]")
        host_ip, text = text[1:end], text[end + 2:]
    parts = text.split(":")
    if len(parts) == 3:
        host_ip, published, target = parts
    elif len(parts) == 2:
        published, target = parts
    elif len(parts) == 1:
        published, target = "", parts[0]
    else:
        raise ComposeError(f"invalid port {spec!r} in {where}")
    targets, publisheds = _port_range(target, spec, where), _port_range(published, spec, where) if published else []
    if publisheds and len(publisheds) != len(targets):
        if len(targets) != 1:
            raise ComposeError(f"invalid port {spec!r} in {where}: the ranges differ in length")
    out = []
    for i, t in enumerate(targets):
        entry: dict = {"mode": "ingress", "target": t}
        if publisheds:
            entry["published"] = str(publisheds[i]) if len(publisheds) == len(targets) else \
                f"{publisheds[0]}-{publisheds[-1]}"
        entry["protocol"] = protocol or "tcp"
        if host_ip:
            entry["host_ip"] = host_ip
        out.append(entry)
    return out


def _port_range(text: str, spec, where: str) -> list[int]:
    low, sep, high = text.partition("-")
    try:
        first, last = int(low), int(high) if sep else int(low)
    except ValueError:
        raise ComposeError(f"invalid port {spec!r} in {where}") from None
    if not (0 <= first <= last <= 65535):
        raise ComposeError(f"invalid port {spec!r} in {where}")
    return list(range(first, last + 1))


def parse_volume(spec, base_dir: str, where: str) -> dict:
    """One service ``volumes`` entry in its long syntax; relative bind sources resolved
    against ``base_dir`` (the directory of the file that names them)."""
    if isinstance(spec, dict):
        entry = dict(spec)
        if entry.get("type") == "bind" and entry.get("source"):
            entry["source"] = _host_path(entry["source"], base_dir)
        return entry
    parts = str(spec).split(":")
    mode = ""
    if len(parts) == 1:
        return {"type": "volume", "target": parts[0]}
    if len(parts) == 3:
        mode = parts[2]
    elif len(parts) != 2:
        raise ComposeError(f"invalid volume specification {spec!r} in {where}")
    source, target = parts[0], parts[1]
    entry: dict
    if source.startswith(("/", ".", "~")):
        entry = {"type": "bind", "source": _host_path(source, base_dir), "target": target}
    else:
        entry = {"type": "volume", "source": source, "target": target}
    options = [m for m in mode.split(",") if m]
    if "ro" in options:
        entry["read_only"] = True
    if entry["type"] == "bind":
        entry["bind"] = {"create_host_path": True}
    else:
        entry["volume"] = {}
        if "nocopy" in options:
            entry["volume"] = {"nocopy": True}
    return entry


def _host_path(path: str, base_dir: str) -> str:
    path = os.path.expanduser(path)
    return os.path.normpath(os.path.join(base_dir, path))


def normalise_service(service: dict, base_dir: str, name: str = "") -> dict:
    """``service`` with its short forms expanded (see the module's docstring)."""
    out = dict(service)
    where = f"services.{name}" if name else "service"
    for key in KEY_VALUE_LISTS:
        if key in out:
            out[key] = key_value_map(out[key], separator=":" if key == "extra_hosts" and
                                     not isinstance(out[key], dict) and any("=" not in str(i) for i in out[key])
                                     else "=")
    for key in REPLACED:
        if key in out:
            out[key] = argv(out[key], key)
    if "depends_on" in out:
        deps = out["depends_on"]
        out["depends_on"] = {d: {"condition": "service_started"} for d in deps} if isinstance(deps, list) else \
            {d: dict(v or {"condition": "service_started"}) for d, v in deps.items()}
    if "networks" in out:
        nets = out["networks"]
        out["networks"] = {n: None for n in nets} if isinstance(nets, list) else dict(nets)
    if "ports" in out:
        out["ports"] = [p for spec in out["ports"] for p in parse_port(spec, f"{where}.ports")]
    if "expose" in out:
        out["expose"] = [str(e) for e in out["expose"]]
    if "volumes" in out:
        out["volumes"] = [parse_volume(v, base_dir, f"{where}.volumes") for v in out["volumes"]]
    if "env_file" in out:
        files = out["env_file"] if isinstance(out["env_file"], list) else [out["env_file"]]
        out["env_file"] = [_host_path(f if isinstance(f, str) else f["path"], base_dir) for f in files]
    if "build" in out:
        build = {"context": out["build"]} if isinstance(out["build"], str) else dict(out["build"])
        build["context"] = _host_path(build.get("context") or ".", base_dir)
        if isinstance(build.get("args"), list):
            build["args"] = key_value_map(build["args"])
        out["build"] = build
    if isinstance(out.get("extends"), str):
        out["extends"] = {"service": out["extends"]}
    if isinstance(out.get("healthcheck"), dict) and isinstance(out["healthcheck"].get("test"), str):
        out["healthcheck"] = {**out["healthcheck"], "test": ["CMD-SHELL", out["healthcheck"]["test"]]}
    for key in ("dns", "dns_search", "tmpfs"):
        if isinstance(out.get(key), str):
            out[key] = [out[key]]
    return out


def merge_service(base: dict, override: dict) -> dict:
    """Two normalised services merged by compose-spec merge.md: mappings merged key by
    key, ``command``/``entrypoint``/``healthcheck.test`` replaced, ``ports`` appended
    without duplicates, ``volumes`` merged by target, other sequences appended.

    >>> merge_service({"environment": {"A": "1"}, "command": ["a"], "volumes": [{"target": "/d", "source": "x"}]},
    ...               {"environment": {"B": "2"}, "command": ["b"], "volumes": [{"target": "/d", "source": "y"}]})
    {'environment': {'A': '1', 'B': '2'}, 'command': ['b'], 'volumes': [{'target': '/d', 'source': 'y'}]}
    """
    out = dict(base)
    for key, value in override.items():
        old = out.get(key)
        if key in REPLACED or old is None:
            out[key] = value
        elif key == "volumes":
            by_target = {v.get("target"): v for v in old}
            by_target.update({v.get("target"): v for v in value})
            out[key] = list(by_target.values())
        elif key == "healthcheck" and isinstance(old, dict) and isinstance(value, dict):
            out[key] = {**old, **value}
        elif isinstance(old, dict) and isinstance(value, dict):
            out[key] = merge_mapping(old, value)
        elif isinstance(old, list) and isinstance(value, list):
            out[key] = old + [v for v in value if v not in old]
        else:
            out[key] = value
    return out


def merge_mapping(base: dict, override: dict) -> dict:
    """Mappings merged recursively; anything else replaced."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(out.get(key), dict) and isinstance(value, dict):
            out[key] = merge_mapping(out[key], value)
        else:
            out[key] = value
    return out
