"""Several nodes: every node's published port reaches every replica, and a
drained node's replicas leave the rotation."""

from __future__ import annotations

import time

import pytest

from .conftest import DRAIN_TUTORIAL, INGRESS, background, load

pytestmark = pytest.mark.requires("ingress-balance")

#: A response already on its way may be read this much after drain returned (seconds).
IN_TRANSIT = 1.0


@pytest.mark.requires("ingress-nodes")
@pytest.mark.spec(INGRESS, "a published port is available on every node: the routing mesh routes a request to any "
                           "node to an active container, even on a node that runs no task of the service")
def test_every_node_answers_and_reaches_replicas_on_other_nodes(balancer, load_dir):
    replicas = balancer.replicas()
    assert len(set(replicas.values())) >= 2, f"the replicas run on one node only: {replicas}"
    entrypoints = balancer.entrypoints()
    assert len(entrypoints) >= 2, f"a subject with nodes has one entry point per node, not {entrypoints}"
    for index, url in enumerate(entrypoints):
        # 300 requests in round robin over 3 replicas: each answers ~100 times
        result = load(balancer, load_dir, mode="close", target=index, max_requests=300)
        assert not result.failures(), f"requests to {url} failed: {result.summary()}"
        assert set(result.counts()) == set(replicas), (
            f"requests to {url} reached {sorted(result.counts())}, not every replica {replicas}")


@pytest.mark.requires("ingress-drain")
@pytest.mark.spec(DRAIN_TUTORIAL, "a drained node's tasks are stopped and started on active nodes; "
                                  "it receives no new tasks")
def test_drained_node_replicas_receive_no_new_requests(balancer, load_dir):
    replicas = balancer.replicas()
    node = sorted(n for n in replicas.values() if n)[0]
    leaving = sorted(name for name, n in replicas.items() if n == node)
    with background(balancer, load_dir) as run:
        balancer.drain(node)
        drained = time.monotonic()
        time.sleep(3.0)
        result = run.stop()
    late = {name: t - drained for name in leaving if (t := result.last_seen(name)) and t > drained + IN_TRANSIT}
    assert not late, f"replicas of drained node {node} answered after drain returned (seconds after): {late}"
    assert result.between(after=drained + IN_TRANSIT).succeeded(), f"nothing answered after the drain: {result.summary()}"
