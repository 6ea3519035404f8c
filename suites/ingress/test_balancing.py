"""Fairness: round robin spreads requests evenly over the replicas, for
clients that open a connection per request and for clients that keep theirs."""

from __future__ import annotations

import statistics

import pytest

from conformance.load import unfair_shares

from .conftest import HAPROXY_BALANCE, INGRESS, NGINX_UPSTREAM, load

pytestmark = pytest.mark.requires("ingress-balance")

#: Requests a fairness figure is measured over (at least).
REQUESTS = 3000
#: A share may be off 1/N by 10% of 1/N. Round robin is exact up to the
#: requests in flight; even a random choice passes: with 3000 requests and 3
#: replicas a count's standard deviation is sqrt(3000/3 * 2/3) = 26 requests,
#: and 10% of 1000 is 3.9 of them.
TOLERANCE = 0.10
#: Keep-alive users: each keeps one connection, so these are the connections a
#: per-connection balancer places. With 10, round robin gives each of 3 replicas
#: at least 3, and a random choice puts them all on one replica with probability
#: 3 * (1/3)**10 = 5e-5 (with 6 users it would be 0.4%).
KEEPALIVE_USERS = 10


@pytest.mark.spec(INGRESS, "the routing mesh load balances requests to a published port across the service's replicas")
@pytest.mark.spec(HAPROXY_BALANCE, "roundrobin: each server is used in turns")
@pytest.mark.spec(NGINX_UPSTREAM, "by default, requests are distributed between the servers using round-robin")
def test_new_connection_per_request_is_fair(balancer, load_dir):
    replicas = sorted(balancer.replicas())
    result = load(balancer, load_dir, mode="close", max_requests=REQUESTS + 100)
    assert len(result.succeeded()) >= REQUESTS, f"fewer than {REQUESTS} answered requests: {result.summary()}"
    assert not result.failures(), f"requests failed with nothing changing: {result.summary()}"
    unfair = unfair_shares(result.counts(), replicas, TOLERANCE)
    assert not unfair, (f"shares off 1/{len(replicas)} by more than {TOLERANCE:.0%}: {unfair}; "
                        f"{result.summary()}")


@pytest.mark.spec(INGRESS, "the routing mesh load balances requests to a published port across the service's replicas")
@pytest.mark.spec("https://github.com/moby/moby/issues/25325", "a keep-alive client behind IPVS sticks to one replica")
def test_keep_alive_clients_are_balanced_as_the_profile_documents(balancer, balancer_profile, load_dir):
    replicas = sorted(balancer.replicas())
    result = load(balancer, load_dir, mode="keepalive", users=KEEPALIVE_USERS, max_requests=REQUESTS + 100)
    assert len(result.succeeded()) >= REQUESTS, f"fewer than {REQUESTS} answered requests: {result.summary()}"
    assert not result.failures(), f"requests failed with nothing changing: {result.summary()}"
    per_connection = result.requests_per_connection()
    # Without reuse a keep-alive client is just a client that reconnects: the
    # check would show nothing about keep-alive. 10 requests per connection is
    # far below what a kept connection carries here (hundreds in one run).
    reuse = statistics.median(per_connection.values())
    assert reuse >= 10, (f"connections were not kept: median {reuse} requests per connection over "
                         f"{len(per_connection)} connections; {result.summary()}")
    if balancer_profile.keepalive == "per-request":
        unfair = unfair_shares(result.counts(), replicas, TOLERANCE)
        assert not unfair, (f"per-request balancing, yet keep-alive shares are off 1/{len(replicas)} by more "
                            f"than {TOLERANCE:.0%}: {unfair}; {result.summary()}")
    else:
        mixed = {key: sorted(names) for key, names in result.replicas_per_connection().items() if len(names) > 1}
        assert not mixed, f"per-connection balancing, yet connections were answered by several replicas: {mixed}"
        used = set().union(*result.replicas_per_user().values())
        if balancer_profile.choice == "round-robin":
            # round robin gives the users' connections to each replica in turn: with
            # at least as many users as replicas, every replica serves one
            assert used == set(replicas), (f"the {len(result.replicas_per_user())} users' connections went to "
                                           f"{sorted(used)}, not spread over {replicas}")
        else:
            # a random choice may miss a replica ((2/3)**10 = 1.7% each), but not all but one
            assert len(used) >= 2, (f"the {len(result.replicas_per_user())} users' connections all went to "
                                    f"{sorted(used)}, of {replicas}")
