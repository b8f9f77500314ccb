"""A recording fake RPC runner and a one-node configuration for the
instance LU tests (test_instance_*.py)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from ganeti import config, constants, errors, mcpu, objects, opcodes
from ganeti.config import base as config_base
from ganeti.rpc.client import RpcResult
from ganeti.server import masterd

MASTER = "node1.example.com"


def _Ok(payload=None):
    return RpcResult(data=[True, payload])


def _Fail(msg):
    return RpcResult(data=[False, msg])


class FakeRpc:
    """Records calls; answers like healthy nodes unless told to fail."""

    def __init__(self):
        self.calls = []
        self.fail = {}
        self.memory_free = 4096
        #: free memory of particular nodes (others have memory_free)
        self.node_memory_free: dict[str, int] = {}
        self.storage_free = 10240
        self.running = set()
        #: (call name, read_timeout) of the calls made with one
        self.read_timeouts: list[tuple[str, float]] = []

    def _Answer(self, name, payload=None):
        if name in self.fail:
            return _Fail(self.fail[name])
        return _Ok(payload)

    def call_node_info(self, nodes, storage, hv_specs):
        self.calls.append(("node_info", storage))
        space = [{"type": s[0], "name": s[1], "storage_free": self.storage_free,
                  "storage_size": 20480} for s in storage]
        return {node: self._Answer("node_info", ["boot", space, [
            {"memory_free": self.node_memory_free.get(node, self.memory_free),
             "memory_total": 8192, "cpu_total": 4}]]) for node in nodes}

    def call_instance_list(self, nodes, hypervisors, hvparams, read_timeout=None):
        self.calls.append(("instance_list", tuple(nodes)))
        if read_timeout is not None:
            self.read_timeouts.append(("instance_list", read_timeout))
        return {node: self._Answer("instance_list", sorted(self.running))
                for node in nodes}

    def call_instance_info(self, nodes, name, hvname, hvparams):
        payload = {"state": "running"} if name in self.running else {}
        return {node: self._Answer("instance_info", payload) for node in nodes}

    def call_os_validate(self, nodes, *args):
        self.calls.append(("os_validate", args))
        return {node: self._Answer("os_validate", True) for node in nodes}

    def call_hypervisor_validate_params(self, nodes, *args):
        return {node: self._Answer("hypervisor_validate_params", None) for node in nodes}

    def call_instance_start(self, node, inst, paused, reason):
        self.calls.append(("instance_start", inst["name"]))
        result = self._Answer("instance_start", None)
        if not result.fail_msg:
            self.running.add(inst["name"])
        return result

    def call_instance_shutdown(self, node, inst, timeout, reason):
        self.calls.append(("instance_shutdown", inst["name"], timeout))
        self.running.discard(inst["name"])
        return self._Answer("instance_shutdown", None)

    def __getattr__(self, attr):
        if not attr.startswith("call_"):
            raise AttributeError(attr)
        name = attr[5:]

        def _Call(*args, read_timeout=None):
            self.calls.append((name, *args))
            if read_timeout is not None:
                self.read_timeouts.append((name, read_timeout))
            if args and isinstance(args[0], list):
                return {node: self._Answer(name, None) for node in args[0]}
            return self._Answer(name, None)
        return _Call

    def names(self):
        return [call[0] for call in self.calls]


class Callbacks(mcpu.OpExecCbBase):
    def __init__(self):
        self.feedback = []

    def Feedback(self, *args):
        self.feedback.append(args)


class JobCallbacks(mcpu.OpExecCbBase):
    """The feedback messages and the jobs an LU submits (IDs from 100)."""

    def __init__(self):
        self.feedback = []
        self.jobs = []

    def Feedback(self, *args):
        self.feedback.append(args[-1])

    def SubmitManyJobs(self, jobs):
        self.jobs.extend(jobs)
        return [(True, 100 + idx) for idx in range(len(jobs))]


def MakeContext(tmp_path):
    """A context (cfg, glm, rpc=FakeRpc) with a one-node cluster whose
    file and diskless templates are enabled."""
    path = str(tmp_path / "config.data")
    cluster = objects.Cluster(
        cluster_name="cluster.example.com", master_ip="192.0.2.254",
        master_netdev="lo", enabled_hypervisors=[constants.HT_FAKE],
        enabled_disk_templates=[constants.DT_FILE, constants.DT_DISKLESS],
        file_storage_dir="/srv/ganeti/file-storage",
        mac_prefix="aa:00:00", rsahostkeypub="ssh-rsa AAAA", candidate_pool_size=3)
    master = objects.Node(name=MASTER, primary_ip="192.0.2.1")
    config_base.InitConfig(constants.CONFIG_VERSION, cluster, master, path)
    cfg = config.ConfigWriter(path, accept_foreign=True)
    return SimpleNamespace(cfg=cfg, glm=masterd.BuildLockManager(cfg), rpc=FakeRpc())


def Run(ctx, op, callbacks=Callbacks):
    cbs = callbacks()
    return mcpu.Processor(ctx, ec_id=1).ExecOpCode(op, cbs), cbs


def CreateOp(name="inst1.example.com", **kwargs):
    params = dict(instance_name=name, mode=constants.INSTANCE_CREATE,
                  disk_template=constants.DT_DISKLESS, disks=[], nics=[{}],
                  pnode=MASTER, os_type="noop+default")
    params.update(kwargs)
    return opcodes.OpInstanceCreate(**params)


def Refused(ctx, op, code, match):
    serial = ctx.cfg.GetConfigSerialNo()
    with pytest.raises(errors.OpPrereqError, match=match) as info:
        Run(ctx, op)
    assert info.value.args[1] == code
    assert ctx.cfg.GetConfigSerialNo() == serial
    assert not ctx.cfg.GetInstanceList()
