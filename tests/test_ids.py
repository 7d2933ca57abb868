"""Request and decision ids: UUID4 hex, never repeated, not even across a fork."""

from __future__ import annotations

import os
import uuid

from policyd.ids import new_id


def test_ids_are_uuid4_hex_and_unique():
    ids = [new_id() for _ in range(2000)]  # several refills of the random pool
    assert len(set(ids)) == len(ids)
    for value in ids[:300]:
        parsed = uuid.UUID(hex=value)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122 and parsed.hex == value


def test_a_forked_child_does_not_repeat_the_parents_ids():
    new_id()  # the pool now holds bytes a child would inherit
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.write(write, new_id().encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 64).decode()
    os.close(read)
    os.waitpid(pid, 0)
    assert len(child) == 32 and child != new_id()
