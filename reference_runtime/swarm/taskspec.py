"""A task's container, as the refengine command line that creates it (pure).

The agent runs a task as an ordinary refengine container: the
``ContainerSpec`` of the task (docker's Engine API shape) becomes the ``create``
flags a user would type, with swarm's labels, so ``ps``/``inspect``/``logs`` on
the node show it as docker shows a task's container.
"""

from __future__ import annotations

import re

#: Labels docker puts on a task's container (moby daemon/cluster/executor/container).
SERVICE_ID = "com.docker.swarm.service.id"
SERVICE_NAME = "com.docker.swarm.service.name"
TASK_ID = "com.docker.swarm.task.id"
TASK_NAME = "com.docker.swarm.task.name"
NODE_ID = "com.docker.swarm.node.id"
TASK = "com.docker.swarm.task"

NS = 1_000_000_000


def task_containers(root) -> dict[str, tuple[str, dict]]:
    """Task ID -> (container ID, container state) of the task containers in the
    refengine state root ``root`` (a :class:`reference_runtime.state.Root`)."""
    found = {}
    for cid in root.container_ids():
        try:
            labels = root.read_config(cid).get("Config", {}).get("Labels") or {}
            state = root.read_state(cid)
        except Exception:  # a container being created or removed right now
            continue
        if labels.get(TASK_ID):
            found[labels[TASK_ID]] = (cid, state)
    return found


def task_name(service_name: str, task: dict) -> str:
    """``service.slot.taskid`` (replicated) or ``service.nodeid.taskid`` (global),
    docker's task and container name.

    >>> task_name("web", {"ID": "t1", "Slot": 2, "NodeID": "n1"})
    'web.2.t1'
    >>> task_name("agent", {"ID": "t2", "NodeID": "n1"})
    'agent.n1.t2'
    """
    slot = task.get("Slot")
    return f"{service_name}.{slot if slot else task.get('NodeID', '')}.{task['ID']}"


def stop_seconds(nanoseconds: int) -> str:
    """A whole number of seconds for ``--stop-timeout``, rounded up so a grace
    period of 1.5 s is never cut short.

    >>> stop_seconds(1_500_000_000), stop_seconds(10 * NS), stop_seconds(0)
    ('2', '10', '0')
    """
    return str(-(-int(nanoseconds) // NS))


def _duration(nanoseconds: int) -> str:
    """Go duration text for the health flags: ``1500ms``.

    >>> _duration(1_500_000_000), _duration(30 * NS)
    ('1500ms', '30000ms')
    """
    return f"{int(nanoseconds) // 1_000_000}ms"


def _mount_flag(mount: dict) -> list[str]:
    kind = mount.get("Type", "volume")
    parts = [f"type={kind}"]
    if mount.get("Source"):
        parts.append(f"source={mount['Source']}")
    parts.append(f"target={mount['Target']}")
    if mount.get("ReadOnly"):
        parts.append("readonly")
    return ["--mount", ",".join(parts)]


def create_argv(task: dict, service_name: str) -> list[str]:
    """The ``refengine create`` arguments (after ``create``) for ``task``.

    >>> create_argv({"ID": "t1", "Slot": 1, "NodeID": "n1", "ServiceID": "s1",
    ...              "Spec": {"ContainerSpec": {"Image": "img", "Args": ["sleep", "9"],
    ...                       "Env": ["A=1"], "StopGracePeriod": 2 * NS}}}, "web")
    ... # doctest: +NORMALIZE_WHITESPACE
    ['--name', 'web.1.t1', '--label', 'com.docker.swarm.node.id=n1', '--label',
     'com.docker.swarm.service.id=s1', '--label', 'com.docker.swarm.service.name=web', '--label',
     'com.docker.swarm.task=', '--label', 'com.docker.swarm.task.id=t1', '--label',
     'com.docker.swarm.task.name=web.1.t1', '--env', 'A=1', '--stop-timeout', '2', 'img', 'sleep', '9']
    """
    spec = task.get("Spec", {}).get("ContainerSpec", {})
    name = task_name(service_name, task)
    labels = dict(spec.get("Labels") or {})
    labels.update({SERVICE_ID: task.get("ServiceID", ""), SERVICE_NAME: service_name, TASK_ID: task["ID"],
                   TASK_NAME: name, NODE_ID: task.get("NodeID", ""), TASK: ""})
    argv = ["--name", name]
    for key in sorted(labels):
        argv += ["--label", f"{key}={labels[key]}"]
    for entry in spec.get("Env") or []:
        argv += ["--env", entry]
    if spec.get("Dir"):
        argv += ["--workdir", spec["Dir"]]
    if spec.get("User"):
        argv += ["--user", spec["User"]]
    if spec.get("Hostname"):
        argv += ["--hostname", spec["Hostname"]]
    if spec.get("StopSignal"):
        argv += ["--stop-signal", spec["StopSignal"]]
    if spec.get("Init"):
        argv.append("--init")
    # docker's default grace period for a task is 10 s, as for `docker stop`
    argv += ["--stop-timeout", stop_seconds(spec.get("StopGracePeriod", 10 * NS))]
    health = spec.get("Healthcheck") or {}
    test = health.get("Test") or []
    if test[:1] == ["NONE"]:
        argv.append("--no-healthcheck")
    elif test[:1] == ["CMD-SHELL"] and len(test) > 1:
        argv += ["--health-cmd", test[1]]
    elif test[:1] == ["CMD"] and len(test) > 1:
        # the CLI can only say CMD-SHELL: quote each word for sh
        argv += ["--health-cmd", " ".join(_sh_quote(word) for word in test[1:])]
    for key, flag in (("Interval", "--health-interval"), ("Timeout", "--health-timeout"),
                      ("StartPeriod", "--health-start-period")):
        if health.get(key):
            argv += [flag, _duration(health[key])]
    if health.get("Retries"):
        argv += ["--health-retries", str(health["Retries"])]
    for mount in spec.get("Mounts") or []:
        argv += _mount_flag(mount)
    # the first overlay network: the node's bridge network for it, with the leader's address;
    # the service's name as an alias (DNS round robin among the tasks of this node)
    for attachment in (task.get("NetworksAttachments") or [])[:1]:
        argv += ["--network", attachment["Network"]["Spec"]["Name"],
                 "--ip", attachment["Addresses"][0].split("/")[0], "--network-alias", service_name]
    command = list(spec.get("Command") or [])
    if command:
        argv += ["--entrypoint", command[0]]
    argv.append(spec["Image"])
    argv += command[1:] + list(spec.get("Args") or [])
    return argv


_SAFE = re.compile(r"^[A-Za-z0-9_@%+=:,./-]+$")


def _sh_quote(word: str) -> str:
    """A word for ``sh -c``, quoted only when it needs it.

    >>> _sh_quote("a b"), _sh_quote("ok")
    ("'a b'", 'ok')
    """
    return word if _SAFE.match(word) else "'" + word.replace("'", "'\"'\"'") + "'"
