"""What ``refengine events`` shows of the event log (``ROOT/events.log``, one
docker events JSON a line, written by :meth:`.state.Root.event`): dockerd's
filters, its default line and what a ``--format`` template sees. Pure.

Filters as dockerd's events filter has them: values of one key are an OR,
keys are an AND; ``container``, ``network`` and ``volume`` match an ID or
name by prefix (the event's actor, whatever its type), ``image`` and
``type``/``event`` exactly, ``label`` a key or key=value among the
attributes.

>>> ev = {"Type": "container", "Action": "die", "Actor": {"ID": "ab12", "Attributes": {"name": "web", "exitCode": "3"}}}
>>> matches(ev, parse_filters(["container=web", "event=die", "event=kill"]))
True
>>> matches(ev, parse_filters(["container=web", "type=image"]))
False
"""

from __future__ import annotations

from ..errors import ContainerError
from .state import rfc3339

FILTER_KEYS = ("container", "event", "image", "label", "network", "type", "volume", "daemon", "plugin", "scope",
               "node", "service", "secret", "config")


def parse_filters(values: list[str]) -> dict[str, list[str]]:
    """``--filter`` values (``key=value``) by key; an unknown key is docker's error.

    >>> parse_filters(["event=die", "event=start", "label=a=b"])
    {'event': ['die', 'start'], 'label': ['a=b']}
    """
    filters: dict[str, list[str]] = {}
    for item in values:
        key, eq, value = item.partition("=")
        if not eq:
            raise ContainerError(f"bad format of filter (expected name=value): {item}")
        if key not in FILTER_KEYS:
            raise ContainerError(f"Invalid filter '{key}'")
        filters.setdefault(key, []).append(value)
    return filters


def _fuzzy(values: list[str] | None, *sources: str) -> bool:
    """dockerd's FuzzyMatch: no values passes; else a value equal to, or a prefix of, a source."""
    if not values:
        return True
    return any(s and (s == v or s.startswith(v)) for v in values for s in sources)


def _exact(values: list[str] | None, *sources: str) -> bool:
    return not values or any(s in values for s in sources if s)


def _strip_tag(ref: str) -> str:
    name, _, tag = ref.rpartition(":")
    return name if name and "/" not in tag else ref


def matches(ev: dict, filters: dict[str, list[str]]) -> bool:
    """Whether ``ev`` passes every filter (dockerd's events Filter.Include)."""
    actor = ev.get("Actor") or {}
    actor_id, attrs = actor.get("ID", ""), actor.get("Attributes") or {}
    name, kind = attrs.get("name", ""), ev.get("Type", "")
    image = name if kind == "image" else attrs.get("image", "")
    if not (_exact(filters.get("type"), kind) and _exact(filters.get("event"), ev.get("Action", ""))
            and _exact(filters.get("scope"), ev.get("scope", "local"))):
        return False
    for key in ("container", "network", "volume", "daemon", "plugin", "node", "service", "secret", "config"):
        if not _fuzzy(filters.get(key), actor_id, name):  # by the actor, whatever its type: as dockerd
            return False
    if not _exact(filters.get("image"), actor_id, image, _strip_tag(actor_id), _strip_tag(image)):
        return False
    for label in filters.get("label", []):
        key, eq, value = label.partition("=")
        if key not in attrs or (eq and attrs[key] != value):
            return False
    return True


def well_formed(ev: object) -> bool:
    """Whether a decoded log line is an event this module can read: a line torn by a crash
    or written by hand is skipped, never a traceback.

    >>> well_formed({"Type": "container", "Action": "die", "timeNano": 1, "Actor": {"ID": "a", "Attributes": {}}})
    True
    >>> well_formed({"timeNano": "x"}), well_formed([1]), well_formed({"Type": "c", "Action": "a", "timeNano": 1.5})
    (False, False, False)
    """
    if not isinstance(ev, dict) or type(ev.get("timeNano")) is not int:
        return False
    if not isinstance(ev.get("Type"), str) or not isinstance(ev.get("Action"), str):
        return False
    actor = ev.get("Actor") or {}
    return isinstance(actor, dict) and isinstance(actor.get("Attributes") or {}, dict) \
        and isinstance(actor.get("ID", ""), str)


def default_line(ev: dict) -> str:
    """docker's default events line: time, type, action, actor ID and its attributes, sorted.

    >>> default_line({"Type": "container", "Action": "create", "timeNano": 1_700_000_000_000_000_001,
    ...               "Actor": {"ID": "ab", "Attributes": {"name": "w", "image": "i"}}})
    '2023-11-14T22:13:20.000000001Z container create ab (image=i, name=w)'
    """
    attrs = (ev.get("Actor") or {}).get("Attributes") or {}
    text = f"{rfc3339(ev['timeNano'])} {ev['Type']} {ev['Action']} {(ev.get('Actor') or {}).get('ID', '')}"
    if attrs:
        text += " (" + ", ".join(f"{k}={v}" for k, v in sorted(attrs.items())) + ")"
    return text


def template_view(ev: dict) -> dict:
    """The event as a ``--format`` template sees it: the JSON's fields, plus docker's Go
    field names of the legacy ones (``.Status``, ``.ID``, ``.From``), which ``{{json .}}``
    leaves out (they are methods of the view).

    >>> view = template_view({"status": "die", "id": "ab", "Type": "container"})
    >>> view["Status"](), view["From"]()
    ('die', '')
    """
    return {**ev, "Status": lambda: ev.get("status", ""), "ID": lambda: ev.get("id", ""),
            "From": lambda: ev.get("from", "")}
