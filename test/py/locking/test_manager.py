"""Tests for ganeti.locking.GanetiLockManager and lock queries."""

from __future__ import annotations

import threading

import pytest
from lockhelpers import wait_until

from ganeti import errors, locking

pytestmark = pytest.mark.timeout(60)

NODES = ["node1", "node2"]
GROUPS = ["group1"]
INSTANCES = ["inst1", "inst2", "inst3"]
NETWORKS = ["net1"]


@pytest.fixture
def glm():
    return locking.GanetiLockManager(NODES, GROUPS, INSTANCES, NETWORKS)


def test_levels_follow_ganeti():
    assert locking.LEVELS == (0, 1, 2, 3, 4, 5)
    assert [locking.LEVEL_NAMES[level] for level in locking.LEVELS] == [
        "cluster", "instance", "nodegroup", "node", "node-res", "network"]
    assert (locking.LEVEL_CLUSTER, locking.LEVEL_INSTANCE, locking.LEVEL_NODEGROUP,
            locking.LEVEL_NODE, locking.LEVEL_NODE_RES, locking.LEVEL_NETWORK) == locking.LEVELS
    assert locking.LEVEL_CLUSTER not in locking.LEVELS_MOD
    assert locking.BGL == "BGL" and locking.ALL_SET is None


def test_members_per_level(glm):
    assert glm.names(locking.LEVEL_CLUSTER) == {"BGL"}
    assert glm.names(locking.LEVEL_INSTANCE) == set(INSTANCES)
    assert glm.names(locking.LEVEL_NODEGROUP) == set(GROUPS)
    assert glm.names(locking.LEVEL_NODE) == set(NODES)
    assert glm.names(locking.LEVEL_NODE_RES) == set(NODES)
    assert glm.names(locking.LEVEL_NETWORK) == set(NETWORKS)


def test_acquire_in_level_order(glm):
    assert glm.acquire(locking.LEVEL_CLUSTER, [locking.BGL], shared=1) == {"BGL"}
    assert glm.acquire(locking.LEVEL_INSTANCE, ["inst1"]) == {"inst1"}
    assert glm.acquire(locking.LEVEL_NODE, locking.ALL_SET, shared=1) == set(NODES)
    assert glm.acquire(locking.LEVEL_NODE_RES, ["node1"]) == {"node1"}
    assert glm.list_owned(locking.LEVEL_NODE) == set(NODES)
    assert glm.owning_all(locking.LEVEL_NODE) and not glm.owning_all(locking.LEVEL_INSTANCE)
    assert glm.check_owned(locking.LEVEL_INSTANCE, "inst1", shared=0)
    assert glm.is_owned(locking.LEVEL_NODE_RES) and not glm.is_owned(locking.LEVEL_NETWORK)
    # Releasing a level while holding later ones is fine; the BGL is not
    glm.release(locking.LEVEL_INSTANCE)
    with pytest.raises(errors.ProgrammerError, match="Big Ganeti Lock"):
        glm.release(locking.LEVEL_CLUSTER)
    glm.release(locking.LEVEL_NODE_RES)
    glm.release(locking.LEVEL_NODE)
    glm.release(locking.LEVEL_CLUSTER)
    assert not any(glm.is_owned(level) for level in locking.LEVELS)


def test_bgl_comes_first(glm):
    with pytest.raises(errors.ProgrammerError, match="Big Ganeti Lock"):
        glm.acquire(locking.LEVEL_INSTANCE, ["inst1"])
    assert not glm.is_owned(locking.LEVEL_INSTANCE)


def test_levels_cannot_be_taken_backwards(glm):
    glm.acquire(locking.LEVEL_CLUSTER, locking.BGL, shared=1)
    glm.acquire(locking.LEVEL_NODE, ["node1"])
    with pytest.raises(errors.ProgrammerError, match="later levels"):
        glm.acquire(locking.LEVEL_INSTANCE, ["inst1"])
    with pytest.raises(errors.ProgrammerError, match="already holds"):
        glm.acquire(locking.LEVEL_NODE, ["node2"])
    glm.release(locking.LEVEL_NODE)
    glm.release(locking.LEVEL_CLUSTER)


def test_bad_input(glm):
    for level in (6, -1, "node", None, True):
        with pytest.raises(errors.ProgrammerError, match="Unknown lock level"):
            glm.acquire(level, ["x"])  # type: ignore[arg-type]
        with pytest.raises(errors.ProgrammerError, match="Unknown lock level"):
            glm.release(level)  # type: ignore[arg-type]
    with pytest.raises(errors.LockError, match="nonexisting"):
        glm.acquire(locking.LEVEL_CLUSTER, ["nonexisting"])
    glm.acquire(locking.LEVEL_CLUSTER, locking.BGL)
    with pytest.raises(errors.LockError, match="inst9"):
        glm.acquire(locking.LEVEL_INSTANCE, ["inst1", "inst9"])
    with pytest.raises(errors.ProgrammerError):
        glm.acquire(locking.LEVEL_INSTANCE, ["inst1"], timeout=-3)
    with pytest.raises(errors.ProgrammerError):
        glm.release(locking.LEVEL_NODE)
    with pytest.raises(errors.ProgrammerError):
        glm.release(locking.LEVEL_CLUSTER, ["inst1"])
    assert glm.list_owned(locking.LEVEL_INSTANCE) == set()
    glm.release(locking.LEVEL_CLUSTER)


def test_cluster_level_is_fixed(glm):
    glm.acquire(locking.LEVEL_CLUSTER, locking.BGL)
    with pytest.raises(errors.ProgrammerError, match="cannot be added or removed"):
        glm.add(locking.LEVEL_CLUSTER, ["BGL2"])
    with pytest.raises(errors.ProgrammerError, match="cannot be added or removed"):
        glm.remove(locking.LEVEL_CLUSTER, [locking.BGL])
    glm.release(locking.LEVEL_CLUSTER)


def test_add_and_remove_rules(glm):
    with pytest.raises(errors.ProgrammerError, match="Big Ganeti Lock"):
        glm.add(locking.LEVEL_INSTANCE, ["inst4"])
    with pytest.raises(errors.ProgrammerError, match="Big Ganeti Lock"):
        glm.remove(locking.LEVEL_INSTANCE, ["inst1"])
    glm.acquire(locking.LEVEL_CLUSTER, locking.BGL, shared=1)
    glm.acquire(locking.LEVEL_NODE, ["node1"])
    with pytest.raises(errors.ProgrammerError, match="later levels"):
        glm.add(locking.LEVEL_INSTANCE, ["inst4"])
    with pytest.raises(errors.ProgrammerError, match="later levels"):
        glm.remove(locking.LEVEL_INSTANCE, ["inst1"])
    glm.release(locking.LEVEL_NODE)
    glm.add(locking.LEVEL_INSTANCE, ["inst4"], acquired=1)
    assert glm.list_owned(locking.LEVEL_INSTANCE) == {"inst4"}
    glm.acquire(locking.LEVEL_NODE, ["node1"])
    # Holding the lock already, removal is allowed out of order
    assert glm.remove(locking.LEVEL_INSTANCE, ["inst4"]) == ["inst4"]
    assert glm.names(locking.LEVEL_INSTANCE) == set(INSTANCES)
    glm.release(locking.LEVEL_NODE)
    glm.add(locking.LEVEL_NODE, ["node3"])
    assert "node3" not in glm.names(locking.LEVEL_NODE_RES)
    glm.release(locking.LEVEL_CLUSTER)


def test_downgrade_level(glm):
    glm.acquire(locking.LEVEL_CLUSTER, locking.BGL, shared=1)
    glm.acquire(locking.LEVEL_INSTANCE, ["inst1", "inst2"])
    assert glm.downgrade(locking.LEVEL_INSTANCE, ["inst2"])
    assert glm.check_owned(locking.LEVEL_INSTANCE, "inst2", shared=1)
    assert glm.check_owned(locking.LEVEL_INSTANCE, "inst1", shared=0)
    glm.release(locking.LEVEL_INSTANCE)
    glm.release(locking.LEVEL_CLUSTER)


def test_query_locks(glm, runner):
    locking.set_owner_name("job/42")
    try:
        glm.acquire(locking.LEVEL_CLUSTER, locking.BGL, shared=1)
        glm.acquire(locking.LEVEL_INSTANCE, ["inst2"])
    finally:
        locking.set_owner_name(None)
    queued = threading.Event()
    got = threading.Event()

    def job43():
        locking.set_owner_name("job/43")
        glm.acquire(locking.LEVEL_CLUSTER, locking.BGL, shared=1)
        queued.set()
        glm.acquire(locking.LEVEL_INSTANCE, ["inst2"], shared=1)
        got.set()
        glm.release(locking.LEVEL_INSTANCE)
        glm.release(locking.LEVEL_CLUSTER)

    runner.start(job43)
    try:
        assert queued.wait(10)
        wait_until(lambda: ["instance/inst2", [(locking.MODE_SHARED, ["job/43"])]]
                   in glm.QueryLocks(["name", "pending"]))
        rows = {row[0]: row[1:] for row in glm.QueryLocks(list(locking.LOCK_QUERY_FIELDS))}
        assert rows["cluster/BGL"] == [locking.MODE_SHARED, ["job/42", "job/43"], []]
        assert rows["instance/inst2"] == [locking.MODE_EXCLUSIVE, ["job/42"],
                                          [(locking.MODE_SHARED, ["job/43"])]]
        assert rows["instance/inst1"] == [None, None, []]
        assert "node/[lockset]" in rows and "node-res/node1" in rows
        names = [row[0] for row in glm.QueryLocks(["name"])]
        # one set-level lock per level, plus every member
        assert names == sorted(names) and len(names) == 6 + 1 + 3 + 1 + 2 + 2 + 1
        with pytest.raises(errors.ParameterError, match="bogus"):
            glm.QueryLocks(["name", "bogus"])
    finally:
        glm.release(locking.LEVEL_INSTANCE)
    assert got.wait(10)
    glm.release(locking.LEVEL_CLUSTER)
