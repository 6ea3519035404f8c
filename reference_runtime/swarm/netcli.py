"""``refengine network create|ls|inspect|rm`` for the swarm's networks: what
reference_runtime/engine/netcmds.py asks this node's swarmd (a manager's)."""

from __future__ import annotations

import sys

from .cli import Daemon, daemon_error
from .errors import SwarmError


def swarm_documents(root_path: str) -> list[dict]:
    """Every swarm network, as ``network ls``/``inspect`` show it ([] outside a swarm or on a worker)."""
    daemon = Daemon(root_path)
    if not daemon.present():
        return []
    try:
        return daemon.call("network.ls", {}) or []
    except (SwarmError, OSError):
        return []


def cli_create(root_path: str, name: str, params: dict) -> int:
    """``network create --driver overlay NAME`` on a manager."""
    from .cli import daemon_error
    try:
        created = Daemon(root_path).call("network.create", dict(params, name=name))
    except SwarmError as exc:
        sys.stderr.write(daemon_error(exc) + "\n")
        return 1
    sys.stdout.write(created["ID"] + "\n")
    return 0


def cli_rm(root_path: str, ref: str) -> str | None:
    """``network rm REF`` of a swarm network: None when REF is no swarm network,
    else "" on success or the error line to print."""
    from .cli import daemon_error
    if not any(ref in (d["Name"], d["Id"]) or (len(ref) >= 1 and d["Id"].startswith(ref))
               for d in swarm_documents(root_path)):
        return None
    try:
        Daemon(root_path).call("network.rm", {"ref": ref})
    except SwarmError as exc:
        return daemon_error(exc)
    return ""


def find_document(root_path: str, ref: str) -> dict | None:
    docs = swarm_documents(root_path)
    for doc in docs:
        if doc["Id"] == ref or doc["Name"] == ref:
            return doc
    prefixed = [d for d in docs if ref and d["Id"].startswith(ref)]
    return prefixed[0] if len(prefixed) == 1 else None
