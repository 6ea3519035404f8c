"""Object IDs in docker swarm's form: 25 characters of lowercase base36 from
128 random bits (swarmkit's ``identity.NewID``), for nodes, services, tasks,
networks and the cluster."""

from __future__ import annotations

import secrets

ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
ID_LENGTH = 25  # 36**25 > 2**128


def base36(number: int, width: int) -> str:
    """``number`` in lowercase base36, zero-padded to ``width``.

    >>> base36(0, 3), base36(35, 2), base36(36, 1)
    ('000', '0z', '10')
    """
    digits = []
    while number:
        number, digit = divmod(number, 36)
        digits.append(ALPHABET[digit])
    return "".join(reversed(digits)).rjust(width, "0")


def new_id() -> str:
    """A fresh random ID.

    >>> len(new_id()), set(new_id()) <= set(ALPHABET)
    (25, True)
    """
    return base36(secrets.randbits(128), ID_LENGTH)
