"""Many threads taking random locks at random levels: the invariants hold.

Every thread runs a seeded random sequence of "jobs": the BGL (mostly
shared), then a few later levels in order, each with random names or
ALL_SET, random mode, timeout and priority; sometimes a downgrade, an
added-and-removed instance. An independent ledger checks on every change
that exclusive holders are alone; the test checks that timed-out acquires
leave nothing held, that shared holders really overlapped, and that every
thread finishes (no deadlock).
"""

from __future__ import annotations

import random
import threading

import pytest
from lockhelpers import ThreadRunner

from ganeti import constants, locking

MEMBERS = {
    locking.LEVEL_INSTANCE: [f"inst{num}" for num in range(10)],
    locking.LEVEL_NODEGROUP: ["group0", "group1", "group2"],
    locking.LEVEL_NODE: [f"node{num}" for num in range(6)],
    locking.LEVEL_NODE_RES: [f"node{num}" for num in range(6)],
    locking.LEVEL_NETWORK: ["net0", "net1"],
}
TIMEOUTS = [None, None, 0, 0.001, 0.01, 0.05]


class Ledger:
    """Who holds which lock in which mode, as the threads report it."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._holders: dict[tuple[int, str], dict[int, bool]] = {}
        self.max_shared = 0
        self.timeouts = 0
        self.acquired = 0

    def enter(self, level: int, names, shared: bool) -> None:
        me = threading.get_ident()
        with self._mutex:
            for name in names:
                holders = self._holders.setdefault((level, name), {})
                assert me not in holders
                if shared:
                    assert all(holders.values()), f"{level}/{name}: shared with exclusive"
                else:
                    assert not holders, f"{level}/{name}: exclusive but not alone"
                holders[me] = shared
                self.max_shared = max(self.max_shared, len(holders) if shared else 0)
            self.acquired += 1

    def downgrade(self, level: int, names) -> None:
        me = threading.get_ident()
        with self._mutex:
            for name in names:
                self._holders[(level, name)][me] = True

    def leave(self, level: int, names) -> None:
        me = threading.get_ident()
        with self._mutex:
            for name in names:
                del self._holders[(level, name)][me]

    def timed_out(self) -> None:
        with self._mutex:
            self.timeouts += 1


def _job(glm, ledger, rng, tmp_names):
    prio = rng.randint(constants.OP_PRIO_HIGHEST, constants.OP_PRIO_LOWEST)
    bgl_shared = rng.random() < 0.9
    held = []
    got = glm.acquire(locking.LEVEL_CLUSTER, locking.BGL, shared=int(bgl_shared),
                      timeout=rng.choice(TIMEOUTS), priority=prio)
    if got is None:
        assert not glm.is_owned(locking.LEVEL_CLUSTER)
        ledger.timed_out()
        return
    ledger.enter(locking.LEVEL_CLUSTER, got, bgl_shared)
    held.append(locking.LEVEL_CLUSTER)
    try:
        if rng.random() < 0.05:
            # Add an instance, holding it, and remove it again
            name = tmp_names.pop()
            glm.add(locking.LEVEL_INSTANCE, [name], acquired=1)
            ledger.enter(locking.LEVEL_INSTANCE, [name], False)
            ledger.leave(locking.LEVEL_INSTANCE, [name])
            assert glm.remove(locking.LEVEL_INSTANCE, [name]) == [name]
            assert not glm.is_owned(locking.LEVEL_INSTANCE)
        levels = sorted(rng.sample(sorted(MEMBERS), rng.randint(0, 3)))
        for level in levels:
            members = MEMBERS[level]
            if rng.random() < 0.15:
                names = locking.ALL_SET
            else:
                names = rng.sample(members, rng.randint(1, min(3, len(members))))
            shared = rng.random() < 0.5
            result = glm.acquire(level, names, shared=int(shared),
                                 timeout=rng.choice(TIMEOUTS), priority=prio)
            if result is None:
                assert not glm.is_owned(level) and glm.list_owned(level) == set()
                ledger.timed_out()
                break
            if names is locking.ALL_SET:
                assert set(members) <= result
            else:
                assert result == set(names)
            ledger.enter(level, result, shared)
            held.append(level)
            if not shared and rng.random() < 0.1:
                ledger.downgrade(level, result)
                glm.downgrade(level)
        if rng.random() < 0.3:
            threading.Event().wait(0.0005)  # "work" while holding the locks
    finally:
        for level in reversed(held):
            ledger.leave(level, glm.list_owned(level))
            glm.release(level)
    assert not any(glm.is_owned(level) for level in locking.LEVELS)


def _run_stress(seed: int, nthreads: int, jobs: int) -> Ledger:
    glm = locking.GanetiLockManager(MEMBERS[locking.LEVEL_NODE],
                                    MEMBERS[locking.LEVEL_NODEGROUP],
                                    MEMBERS[locking.LEVEL_INSTANCE],
                                    MEMBERS[locking.LEVEL_NETWORK])
    ledger = Ledger()
    runner = ThreadRunner()

    def worker(num):
        rng = random.Random(seed * 1000 + num)
        tmp_names = [f"tmp-{num}-{job}" for job in range(jobs)]
        locking.set_owner_name(f"job-{num}")
        for _ in range(jobs):
            _job(glm, ledger, rng, tmp_names)

    for num in range(nthreads):
        runner.start(worker, num, name=f"worker{num}")
    runner.join_all(timeout=120)
    # Everything is free again, nobody is left queued
    for name, mode, owner, pending in glm.GetLockInfo(frozenset(locking.LOCK_QUERY_FIELDS)):
        assert (mode, owner, pending) == (None, None, []), name
    assert glm.names(locking.LEVEL_INSTANCE) == set(MEMBERS[locking.LEVEL_INSTANCE])
    return ledger


@pytest.mark.timeout(120)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_jobs_keep_the_invariants(seed):
    ledger = _run_stress(seed, nthreads=8, jobs=800)
    assert ledger.acquired > 8 * 800
    assert ledger.max_shared >= 2       # shared holders did coexist
    assert ledger.timeouts > 0          # and the timeout paths ran


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_random_jobs_long_run():
    ledger = _run_stress(42, nthreads=25, jobs=5000)
    assert ledger.max_shared >= 2 and ledger.timeouts > 0
