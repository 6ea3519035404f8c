"""What a node keeps on disk under ``<root>/swarm/``, and the paths of its
daemon's socket, pid file and log.

::

    <root>/swarm/
        node.json            this node's identity in its swarm (absent: not in a swarm)
        certificates/        swarm-root-ca.crt, swarm-root-ca.key (managers),
                             swarm-node.crt, swarm-node.key
        raft/                the Raft log and vote (managers)
        swarmd.sock          the local API (mode 0600)
        swarmd.pid swarmd.log
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..atomicfile import write_atomic
from .errors import SwarmError

PORT = 2377


def split_addr(addr: str, default_port: int = PORT) -> tuple[str, int]:
    """``host[:port]`` -> (host, port).

    >>> split_addr("10.0.0.1"), split_addr("10.0.0.1:2378")
    (('10.0.0.1', 2377), ('10.0.0.1', 2378))
    """
    host, sep, port = addr.rpartition(":")
    if not sep:
        return addr, default_port
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise SwarmError(f"invalid address {addr!r}: bad port")
    return host, int(port)


@dataclass
class NodeConfig:
    node_id: str
    cluster_id: str
    role: str  # "manager" | "worker": the role of this node's certificate
    advertise_addr: str  # host:port other nodes reach this one at
    listen_addr: str  # host:port the manager's server binds
    hostname: str
    #: manager addresses (host:port) to reach the swarm through, best first
    remotes: list[str] = field(default_factory=list)


class NodeFiles:
    def __init__(self, root_path: str):
        self.dir = Path(root_path) / "swarm"
        self.certs = self.dir / "certificates"
        self.raft = self.dir / "raft"
        self.config_path = self.dir / "node.json"
        self.socket = self.dir / "swarmd.sock"
        self.pidfile = self.dir / "swarmd.pid"
        self.log = self.dir / "swarmd.log"

    def ensure(self) -> None:
        self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)

    def load(self) -> NodeConfig | None:
        try:
            data = json.loads(self.config_path.read_text())
        except FileNotFoundError:
            return None
        return NodeConfig(**data)

    def save(self, config: NodeConfig) -> None:
        self.ensure()
        write_atomic(self.config_path, (json.dumps(asdict(config), indent=1) + "\n").encode())

    def cert(self, name: str) -> Path:
        return self.certs / name

    def write_cert(self, name: str, pem: bytes | str, *, secret: bool = False) -> None:
        self.certs.mkdir(mode=0o700, parents=True, exist_ok=True)
        data = pem.encode() if isinstance(pem, str) else pem
        write_atomic(self.certs / name, data, mode=0o600 if secret else 0o644)

    def read_cert(self, name: str) -> bytes:
        return (self.certs / name).read_bytes()

    def forget(self) -> None:
        """Leave: identity, certificates and Raft state go; the socket stays."""
        self.config_path.unlink(missing_ok=True)
        shutil.rmtree(self.certs, ignore_errors=True)
        shutil.rmtree(self.raft, ignore_errors=True)
