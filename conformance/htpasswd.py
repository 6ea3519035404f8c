"""htpasswd files with bcrypt hashes, the only format distribution accepts.

>>> line = htpasswd_line("alice", "s3cret")
>>> line.startswith("alice:$2y$")
True
>>> verify(line, "alice", "s3cret")
True
"""

from __future__ import annotations

from pathlib import Path

import bcrypt

from .errors import ConformanceError

#: Low cost: the hashes protect throwaway test passwords, and every request hashes once.
COST = 5


def htpasswd_line(user: str, password: str, cost: int = COST) -> str:
    """``user:$2y$...``; Apache's ``$2y$`` prefix, which is bcrypt's ``$2b$``."""
    if not user or ":" in user or "\n" in user:
        raise ConformanceError(f"htpasswd user name {user!r} must be non-empty without ':' or newlines")
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=cost)).decode()
    return f"{user}:$2y${hashed[4:]}"


def verify(line: str, user: str, password: str) -> bool:
    """Whether ``line`` grants ``user`` with ``password`` (pure apart from bcrypt)."""
    name, _, hashed = line.strip().partition(":")
    if name != user or not hashed.startswith(("$2y$", "$2b$", "$2a$")):
        return False
    return bcrypt.checkpw(password.encode(), ("$2b$" + hashed[4:]).encode())


def write_htpasswd(path: Path, users: dict[str, str]) -> Path:
    """Write an htpasswd file granting each ``user: password``."""
    path.write_text("".join(htpasswd_line(u, p) + "\n" for u, p in users.items()))
    return path
