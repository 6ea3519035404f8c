"""The control API's network methods (``network.create|ls|inspect|rm``), run by the
Raft leader for :class:`.control.Control`: the objects and rules are :mod:`.networks`'."""

from __future__ import annotations

from ..net.links import host_routes
from .errors import RpcError
from .ids import new_id
from .networks import document, find, new_network, next_subnet, subnet_of
from .state import rfc3339_now


async def create(control, params: dict) -> dict:
    name = params.get("name", "")
    if not isinstance(name, str) or not name:  # an unnamed network could only be removed by ID
        raise RpcError("InvalidArgument", f"a network needs a name, not {name!r}")
    if any(n["Spec"]["Name"] == name for n in control.store.networks.values()):
        raise RpcError("AlreadyExists", f"network with name {name} already exists")
    taken = [subnet_of(n) for n in control.store.networks.values()]
    subnet, vni = next_subnet(taken, host_routes())
    network_id = new_id()
    await control.propose({"op": "network.create", "id": network_id, "at": rfc3339_now(),
                           "network": new_network(name, params, subnet, vni)})
    return {"ID": network_id}


def _resolve(control, ref: str) -> dict:
    net = find(list(control.store.networks.values()), ref)
    if net is None:
        raise RpcError("NotFound", f"network {ref} not found")
    return net


async def ls(control, params: dict) -> list:
    return [document(n) for n in control.store.networks.values()]


async def inspect(control, params: dict) -> dict:
    return document(_resolve(control, params.get("ref", "")))


async def rm(control, params: dict) -> dict:
    net = _resolve(control, params.get("ref", ""))
    await control.propose({"op": "network.remove", "id": net["ID"]})
    return {}
