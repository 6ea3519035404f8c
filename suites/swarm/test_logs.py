"""``service logs``: the lines of every task, prefixed with the task and its node,
and the options that change the prefix or the number of lines."""

from __future__ import annotations

from collections import Counter

import pytest

from .conftest import CONVERGE_TIMEOUT, SERVICE_LOGS, node_ids, wait_running

LINES = ["line-a", "line-b"]
#: Prints LINES, then idles until TERM.
PRINTER = ["sh", "-c", "echo line-a; echo line-b; trap 'exit 0' TERM; sleep 600 & wait"]


@pytest.fixture
def printed(swarm, services):
    """A service of 3 tasks that each printed LINES, and its running tasks."""
    name = services.create("--replicas", "3", "--stop-grace-period", "1s", command=PRINTER)
    running = wait_running(swarm, name, 3)

    def all_logged():
        out = swarm.manager.docker("service", "logs", "--raw", name, check=True).stdout.splitlines()
        return len(out) >= len(LINES) * len(running)
    swarm.wait(all_logged, CONVERGE_TIMEOUT, f"the lines of every task of {name} in service logs")
    return name, running


def logs(swarm, name, *flags) -> list[str]:
    return swarm.manager.docker("service", "logs", *flags, name, check=True).stdout.splitlines()


@pytest.mark.spec(SERVICE_LOGS, "service logs shows the logs of every task of the service; each line is prefixed "
                                "with the task's name.slot.id and the node it runs on")
def test_service_logs_prefixes_each_task_line_with_the_task_and_node(swarm, printed):
    name, running = printed
    hosts = {node_id: node.hostname for node_id, node in node_ids(swarm).items()}
    expected = Counter(f"{name}.{t.slot}.{t.id[:12]}@{hosts[t.node_id]}    | {line}" for t in running for line in LINES)
    got = Counter(logs(swarm, name))
    assert got == expected, f"service logs printed {sorted(got)}, expected {sorted(expected)}"


@pytest.mark.spec(SERVICE_LOGS, "--raw: do not neatly format logs; --no-task-ids: do not include task IDs in "
                                "output; --no-trunc: do not truncate output; --tail: number of lines to show from "
                                "the end of the logs")
def test_service_logs_options(swarm, printed):
    name, running = printed
    hosts = {node_id: node.hostname for node_id, node in node_ids(swarm).items()}
    raw = Counter(logs(swarm, name, "--raw"))
    assert raw == Counter({line: len(running) for line in LINES}), f"--raw printed {raw}"
    no_ids = Counter(logs(swarm, name, "--no-task-ids"))
    assert no_ids == Counter(f"{name}.{t.slot}@{hosts[t.node_id]}    | {line}" for t in running for line in LINES), (
        f"--no-task-ids printed {sorted(no_ids)}")
    tail = Counter(logs(swarm, name, "--tail", "1", "--no-trunc"))
    assert tail == Counter(f"{name}.{t.slot}.{t.id}@{hosts[t.node_id]}    | {LINES[-1]}" for t in running), (
        f"--tail 1 --no-trunc printed {sorted(tail)}")
