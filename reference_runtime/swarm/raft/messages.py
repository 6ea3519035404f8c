"""The shape of Raft messages between members: JSON objects, checked here
before the core looks at them, so a malformed or hostile message is dropped
whole instead of half-applied.

Every message has ``type``, ``term`` and ``from`` (the sender's ID), and
``addr`` (the sender's address) when the sender knows its own; then::

    pre_vote, vote            last_index, last_term (the candidate's log)
    pre_vote_resp, vote_resp  granted
    append                    prev_index, prev_term, commit, entries [{term, kind, data}]
    append_resp               success, match_index, reject_index,
                              conflict_index, conflict_term (int or null)

A pre-vote carries the term the sender would campaign in, not its own.
"""

from __future__ import annotations

from typing import Any

from .storage import KINDS

_FIELDS: dict[str, dict[str, type]] = {
    "pre_vote": {"last_index": int, "last_term": int},
    "vote": {"last_index": int, "last_term": int},
    "pre_vote_resp": {"granted": bool},
    "vote_resp": {"granted": bool},
    "append": {"prev_index": int, "prev_term": int, "commit": int, "entries": list},
    "append_resp": {"success": bool, "match_index": int, "reject_index": int, "conflict_index": int},
}
TYPES = frozenset(_FIELDS)


def _is(value: Any, kind: type) -> bool:
    # bool is an int to isinstance; a term of `true` is still malformed
    if kind is int:
        return type(value) is int and value >= 0
    return type(value) is kind


def _valid_members(members: Any) -> bool:
    return (isinstance(members, dict) and bool(members)
            and all(isinstance(k, str) and k and isinstance(v, str) and v for k, v in members.items()))


def _valid_entries(entries: list, prev_term: int, term: int) -> bool:
    last = prev_term
    for raw in entries:
        if not (isinstance(raw, dict) and _is(raw.get("term"), int) and raw.get("kind") in KINDS
                and isinstance(raw.get("data"), dict)):
            return False
        if not last <= raw["term"] <= term:  # a log's terms never go down, nor past its leader's
            return False
        if raw["kind"] == "config" and not _valid_members(raw["data"].get("members")):
            return False
        last = raw["term"]
    return True


def is_valid(msg: Any) -> bool:
    """Whether ``msg`` is a well-formed Raft message.

    >>> is_valid({"type": "vote_resp", "term": 2, "from": "a", "granted": True})
    True
    >>> is_valid({"type": "vote_resp", "term": True, "from": "a", "granted": True})
    False
    """
    if not isinstance(msg, dict) or msg.get("type") not in TYPES:
        return False
    if not (_is(msg.get("term"), int) and isinstance(msg.get("from"), str) and msg["from"]):
        return False
    if "addr" in msg and not (isinstance(msg["addr"], str) and msg["addr"]):
        return False
    if not all(_is(msg.get(name), kind) for name, kind in _FIELDS[msg["type"]].items()):
        return False
    if msg["type"] == "append":
        return _valid_entries(msg["entries"], msg["prev_term"], msg["term"])
    if msg["type"] == "append_resp":
        return "conflict_term" in msg and (msg["conflict_term"] is None or _is(msg["conflict_term"], int))
    return True
