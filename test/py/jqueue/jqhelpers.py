"""Helpers of the job queue tests: queues in temporary directories, lock holders."""

from __future__ import annotations

import threading

from ganeti import constants, jqueue, locking

WAIT = 10
MASTER = "node1-uuid"


class FakeConfig:
    """Just enough configuration for the test LUs: a master node."""

    def GetMasterNode(self):
        return MASTER


class LockHolder:
    """Another thread holding the master node's lock until released."""

    def __init__(self, glm):
        self._glm = glm
        self._ready = threading.Event()
        self._release = threading.Event()
        self._thread = threading.Thread(target=self._run, name="LockHolder")

    def _run(self):
        self._glm.acquire(locking.LEVEL_CLUSTER, locking.BGL, shared=1)
        self._glm.acquire(locking.LEVEL_NODE, [MASTER])
        self._ready.set()
        self._release.wait(WAIT * 3)
        self._glm.release(locking.LEVEL_NODE)
        self._glm.release(locking.LEVEL_CLUSTER)

    def __enter__(self):
        self._thread.start()
        assert self._ready.wait(WAIT)
        return self

    def release(self):
        self._release.set()
        self._thread.join(WAIT)

    def __exit__(self, *exc):
        self.release()


class QueueEnv:
    """Makes started job queues on one queue directory and stops them."""

    def __init__(self, tmp_path):
        self.queue_dir = str(tmp_path / "queue")
        self.glm = locking.GanetiLockManager(nodes=[MASTER])
        self.queues = []

    def make(self, start=True, **kwargs):
        kwargs.setdefault("num_workers", 4)
        queue_kwargs = {key: kwargs.pop(key) for key in ("log_write_delay",)
                        if key in kwargs}
        ctx = jqueue.JobQueueContext(glm=self.glm, queue_dir=self.queue_dir,
                                     cfg=FakeConfig(), **kwargs)
        queue = jqueue.JobQueue(ctx, **queue_kwargs)
        self.queues.append(queue)
        if start:
            queue.Start()
        return queue

    def holder(self):
        return LockHolder(self.glm)

    def close(self):
        for queue in self.queues:
            assert queue.Shutdown(WAIT)


def wait_for(queue, job_id, statuses, timeout=WAIT):
    """Wait until the job's status is one of ``statuses``; its info."""
    if isinstance(statuses, str):
        statuses = [statuses]
    event = threading.Event()
    handle = queue.Subscribe(job_id, event.set)
    try:
        while True:
            event.clear()
            info = queue.GetJobInfo(job_id)
            if info is not None and info["status"] in statuses:
                return info
            assert event.wait(timeout), \
                f"job {job_id} still {info and info['status']}, wanted {statuses}"
    finally:
        queue.Unsubscribe(handle)


def wait_final(queue, job_id, timeout=WAIT):
    """Wait until the job has finished; its info."""
    return wait_for(queue, job_id, list(constants.JOBS_FINALIZED), timeout)


def blocking_op(**kwargs):
    """An opcode that waits for the master node's lock (held by a LockHolder)."""
    from ganeti import opcodes
    return opcodes.OpTestDelay(duration=0.001, on_master=True, no_locks=False, **kwargs)


def delay_op(**kwargs):
    from ganeti import opcodes
    return opcodes.OpTestDelay(duration=0.001, **kwargs)

