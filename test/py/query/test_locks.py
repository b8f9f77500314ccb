"""Tests for the "lock" query resource against a real GanetiLockManager."""

from __future__ import annotations

import threading
import time
import types

import pytest

from ganeti import constants, errors, locking, query
from ganeti.constants import RS_NORMAL

pytestmark = pytest.mark.timeout(30)

SOON = 10.0


def wait_for(predicate, timeout: float = SOON) -> None:
    """Wait (bounded) until the lock manager shows the expected state."""
    pause = threading.Event()
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, "lock state not reached in time"
        pause.wait(0.002)


@pytest.fixture
def glm():
    return locking.GanetiLockManager(nodes=["node1", "node2", "node10"],
                                     instances=["inst1"])


@pytest.fixture
def context(glm):
    return types.SimpleNamespace(jobqueue=None, glm=glm)


def rows_by_name(context, fields, qfilter=None):
    result = query.Query("lock", ["name"] + fields, qfilter, context)
    assert all(status == RS_NORMAL for row in result["data"] for status, _ in row)
    return {row[0][1]: [value for _, value in row[1:]] for row in result["data"]}


def test_lock_fields_are_ganetis():
    fields = query.QueryFields("lock", None)["fields"]
    assert [(f["name"], f["title"], f["kind"]) for f in fields] == [
        ("mode", "Mode", constants.QFT_OTHER),
        ("name", "Name", constants.QFT_TEXT),
        ("owner", "Owner", constants.QFT_OTHER),
        ("pending", "Pending", constants.QFT_OTHER),
    ]


def test_free_locks_in_natural_order(context):
    result = query.Query("lock", ["name", "mode", "owner", "pending"], None, context)
    names = [row[0][1] for row in result["data"]]
    nodes = [name for name in names if name.startswith("node/")]
    assert nodes == ["node/[lockset]", "node/node1", "node/node2", "node/node10"]
    assert "cluster/BGL" in names and "instance/inst1" in names
    assert all(row[1:] == [[RS_NORMAL, None], [RS_NORMAL, None], [RS_NORMAL, []]]
               for row in result["data"])


def test_held_and_pending_locks(context, glm):
    """Two "jobs" hold locks, a third waits; the query shows all of it."""
    holding = threading.Event()
    release = threading.Event()
    waiting_started = threading.Event()
    failures: list[BaseException] = []

    def holder(name: str, shared: int) -> None:
        try:
            locking.set_owner_name(name)
            glm.acquire(locking.LEVEL_CLUSTER, locking.BGL, shared=1)
            glm.acquire(locking.LEVEL_NODE, ["node10", "node2"], shared=shared)
            holding.set()
            assert release.wait(SOON)
            glm.release(locking.LEVEL_NODE)
            glm.release(locking.LEVEL_CLUSTER)
        except BaseException as err:  # reported by the test
            failures.append(err)
            holding.set()

    def waiter() -> None:
        try:
            locking.set_owner_name("job/3")
            glm.acquire(locking.LEVEL_CLUSTER, locking.BGL, shared=1)
            waiting_started.set()
            glm.acquire(locking.LEVEL_NODE, ["node2"], shared=1)
            glm.release(locking.LEVEL_NODE)
            glm.release(locking.LEVEL_CLUSTER)
        except BaseException as err:
            failures.append(err)

    threads = [threading.Thread(target=holder, args=("job/10", 0), daemon=True)]
    threads[0].start()
    try:
        assert holding.wait(SOON)
        threads.append(threading.Thread(target=waiter, daemon=True))
        threads[1].start()
        assert waiting_started.wait(SOON)
        wait_for(lambda: rows_by_name(context, ["pending"])["node/node2"] != [[]])

        rows = rows_by_name(context, ["mode", "owner", "pending"])
        assert rows["cluster/BGL"] == ["shared", ["job/3", "job/10"], []]
        assert rows["node/node2"] == ["exclusive", ["job/10"], [["shared", ["job/3"]]]]
        assert rows["node/node10"] == ["exclusive", ["job/10"], []]
        assert rows["node/node1"] == [None, None, []]

        # filters on lock fields
        held = query.Query("lock", ["name"], ["=", "mode", "exclusive"], context)
        assert [row[0][1] for row in held["data"]] == ["node/node2", "node/node10"]
        mine = query.Query("lock", ["name"], ["&", ["=[]", "owner", "job/3"],
                                              ["=~", "name", "^cluster/"]], context)
        assert [row[0][1] for row in mine["data"]] == ["cluster/BGL"]
        contended = query.Query("lock", ["name", "owner"], ["?", "pending"], context)
        assert contended["data"] == [[[RS_NORMAL, "node/node2"], [RS_NORMAL, ["job/10"]]]]
        by_name = query.Query("lock", ["mode"], ["=", "name", "node/node10"], context)
        assert by_name["data"] == [[[RS_NORMAL, "exclusive"]]]
    finally:
        release.set()
        for thread in threads:
            thread.join(SOON)
    assert not any(thread.is_alive() for thread in threads)
    assert not failures, failures
    rows = rows_by_name(context, ["mode", "owner", "pending"])
    assert rows["node/node2"] == [None, None, []]


def test_only_the_requested_lock_data_is_collected(context, glm):
    seen = []
    real = glm.monitor.GetLockInfo

    def spy(requested):
        seen.append(frozenset(requested))
        return real(requested)

    glm.monitor.GetLockInfo = spy
    query.Query("lock", ["name"], None, context)
    query.Query("lock", ["name", "owner"], ["?", "pending"], context)
    assert seen == [frozenset(["name"]), frozenset(["name", "owner", "pending"])]


def test_unknown_lock_fields(context):
    result = query.Query("lock", ["name", "nosuch"], None, context)
    assert result["fields"][1]["kind"] == constants.QFT_UNKNOWN
    assert {row[1][0] for row in result["data"]} == {constants.RS_UNKNOWN}
    with pytest.raises(errors.QueryFilterParseError, match="nosuch"):
        query.Query("lock", ["name"], ["?", "nosuch"], context)
