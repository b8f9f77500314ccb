"""Tests for gnt-instance move (lib/cmdlib/instance_move.py) and the
master side of disk transfers (lib/cmdlib/impexp.py), through mcpu on a
three-node configuration with a fake RPC runner that keeps each node's
logical volumes, their contents, and simulates the import/export daemons."""

from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import instancehelpers  # noqa: E402
import test_instance_convert as conv  # noqa: E402

from ganeti import constants, errors, opcodes  # noqa: E402
from ganeti.cmdlib import impexp  # noqa: E402

NAME = conv.NAME


class MoveRpc(conv.StorageRpc):
    """Also: LV contents (``data``: node -> {"vg/lv": bytes}) and the
    import/export daemons; ``impexp_fail`` = {"import"|"export": message}
    makes that side end with an error; ``never_listen`` keeps the importer
    from reporting a port."""

    def __init__(self):
        super().__init__()
        self.data: dict[str, dict[str, bytes]] = {}
        self.daemons: dict[str, dict] = {}
        self.impexp_fail: dict[str, str] = {}
        self.never_listen = False
        self.aborted: list[str] = []
        self.cleaned: list[str] = []

    def _Start(self, kind, node, opts, ieio, **extra):
        name = f"{kind}-{len(self.daemons)}"
        self.calls.append((f"{kind}_start", node, ieio[0], opts["compress"]))
        msg = self._Check(f"{kind}_start", node)
        if msg:
            return instancehelpers._Fail(msg)
        self.daemons[name] = dict(kind=kind, node=node, ieio=ieio, polls=0,
                                  opts=opts, **extra)
        return instancehelpers._Ok(name)

    def call_import_start(self, node, opts, instance, component, ieio):
        return self._Start("import", node, opts, ieio)

    def call_export_start(self, node, opts, host, port, instance, component, ieio):
        return self._Start("export", node, opts, ieio, host=host, port=port)

    def _Finish(self, exp):
        imp = next(d for d in self.daemons.values() if d["kind"] == "import"
                   and d.get("exit") is None)
        src = "/".join(exp["ieio"][1][0]["logical_id"])
        dst = "/".join(imp["ieio"][1][0]["logical_id"])
        self.data.setdefault(imp["node"], {})[dst] = \
            self.data.get(exp["node"], {}).get(src, b"")
        exp["exit"] = imp["exit"] = 0

    def call_impexp_status(self, node, names):
        out = []
        for name in names:
            daemon = self.daemons.get(name)
            if daemon is None:
                out.append(None)
                continue
            daemon["polls"] += 1
            status = {"recent_output": [], "listen_port": None, "connected": False,
                      "progress_mbytes": 1.0, "progress_throughput": None,
                      "progress_eta": None, "progress_percent": None,
                      "exit_status": daemon.get("exit"), "error_message": None,
                      "ctime": 0.0, "mtime": 0.0}
            kind = daemon["kind"]
            if kind == "import" and not self.never_listen:
                status["listen_port"] = 40000
            if kind in self.impexp_fail and daemon.get("exit") is None:
                daemon["exit"] = status["exit_status"] = 1
                status["error_message"] = self.impexp_fail[kind]
            elif kind == "export" and daemon.get("exit") is None:
                self._Finish(daemon)
                status["exit_status"] = 0
            out.append(status)
        return instancehelpers._Ok(out)

    def call_impexp_abort(self, node, name):
        self.aborted.append(name)
        return instancehelpers._Ok()

    def call_impexp_cleanup(self, node, name):
        self.cleaned.append(name)
        return instancehelpers._Ok()

    def call_blockdev_remove(self, node, disk):
        result = super().call_blockdev_remove(node, disk)
        if not result.fail_msg:
            self.data.get(node, {}).pop("/".join(disk["logical_id"]), None)
        return result


@pytest.fixture
def ctx(tmp_path, monkeypatch):
    monkeypatch.setattr(impexp, "POLL_INTERVAL", 0)
    context = conv.MakeStorageContext(tmp_path)
    context.rpc = MoveRpc()
    return context


def _Move(ctx, node=conv.NODE2, **kwargs):
    return conv._Run(ctx, opcodes.OpInstanceMove(instance_name=NAME, target_node=node,
                                                 **kwargs))


def _Plain(ctx, payload=b"data"):
    inst = conv._Create(ctx, "plain", sizes=(1024, 2048))
    for disk in ctx.cfg.GetInstanceDisks(inst.uuid):
        lv = "/".join(disk.logical_id)
        ctx.rpc.data.setdefault(ctx.node1, {})[lv] = payload + lv.encode()
    ctx.rpc.calls.clear()
    return inst


def test_move_copies_the_disks_and_switches_the_primary(ctx):
    inst = _Plain(ctx)
    before = dict(ctx.rpc.data[ctx.node1])
    _, cbs = _Move(ctx, compress="gzip")
    moved = conv._Inst(ctx)
    assert moved.primary_node == ctx.node2
    assert ctx.rpc.lvs.get(ctx.node1) == {}
    assert set(ctx.rpc.lvs[ctx.node2]) == set(before)
    assert ctx.rpc.data[ctx.node2] == before
    assert all(disk.nodes == [ctx.node2] for disk in conv._Disks(ctx))
    starts = [c for c in ctx.rpc.calls if c[0] in ("import_start", "export_start")]
    assert starts == [("import_start", ctx.node2, "raw", "gzip"),
                      ("export_start", ctx.node1, "raw", "gzip")] * 2
    # The exporter was sent to the target's secondary address
    exports = [d for d in ctx.rpc.daemons.values() if d["kind"] == "export"]
    assert {d["host"] for d in exports} == {"198.51.100.2"}
    assert sorted(ctx.rpc.cleaned) == sorted(ctx.rpc.daemons)
    assert not ctx.rpc.aborted
    assert inst.admin_state != constants.ADMINST_UP
    assert "instance_start" not in ctx.rpc.names()
    text = " ".join(str(f) for f in cbs.feedback)
    assert "disk/0" in text and "disk/1" in text


def test_move_of_a_running_instance_restarts_it_on_the_target(ctx):
    inst = _Plain(ctx)
    ctx.cfg.MarkInstanceUp(inst.uuid)
    ctx.rpc.running.add(NAME)
    _Move(ctx)
    names = ctx.rpc.names()
    assert names.index("instance_shutdown") < names.index("import_start")
    assert names[-1] == "instance_start" or "instance_start" in names
    assert conv._Inst(ctx).primary_node == ctx.node2


def test_failed_copy_keeps_the_instance_on_its_node(ctx):
    _Plain(ctx)
    before = dict(ctx.rpc.lvs[ctx.node1])
    ctx.rpc.impexp_fail["export"] = "cannot read /dev/xenvg/x"
    with pytest.raises(errors.OpExecError, match="stays on node"):
        _Move(ctx)
    inst = conv._Inst(ctx)
    assert inst.primary_node == ctx.node1
    assert ctx.rpc.lvs[ctx.node1] == before
    assert ctx.rpc.lvs.get(ctx.node2, {}) == {}
    # Both daemons of the failed transfer were aborted and cleaned up
    assert ctx.rpc.aborted and set(ctx.rpc.aborted) <= set(ctx.rpc.cleaned)
    assert all(disk.nodes == [ctx.node1] for disk in conv._Disks(ctx))


def test_importer_without_port_fails_the_transfer(ctx, monkeypatch):
    _Plain(ctx)
    clock = iter(range(0, 10000, 30))
    monkeypatch.setattr(impexp, "Clock", lambda: next(clock))
    ctx.rpc.never_listen = True
    with pytest.raises(errors.OpExecError, match="stays on node"):
        _Move(ctx)
    assert conv._Inst(ctx).primary_node == ctx.node1
    assert ctx.rpc.lvs.get(ctx.node2, {}) == {}
    assert "export_start" not in ctx.rpc.names()


def test_creation_failure_on_target_leaves_nothing(ctx):
    _Plain(ctx)
    ctx.rpc.fail_at["blockdev_create"] = [ctx.rpc.counts["blockdev_create"] + 2]
    with pytest.raises(errors.OpExecError, match="Can't create block device"):
        _Move(ctx)
    assert conv._Inst(ctx).primary_node == ctx.node1
    assert ctx.rpc.lvs.get(ctx.node2, {}) == {}


@pytest.mark.parametrize("kwargs,code,match", [
    (dict(node=instancehelpers.MASTER), errors.ECODE_STATE, "already on the node"),
    (dict(node="nosuch.example.com"), errors.ECODE_NOENT, "nosuch"),
    (dict(compress="bzip9"), errors.ECODE_INVAL, "Compression tool 'bzip9'"),
])
def test_bad_moves_are_refused(ctx, kwargs, code, match):
    _Plain(ctx)
    serial = ctx.cfg.GetConfigSerialNo()
    with pytest.raises(errors.OpPrereqError, match=match) as info:
        _Move(ctx, **kwargs)
    assert info.value.args[1] == code
    assert ctx.cfg.GetConfigSerialNo() == serial
    assert "import_start" not in ctx.rpc.names()


def test_mirrored_instances_cannot_be_moved(ctx):
    conv._Create(ctx, "drbd", sizes=(1024,))
    with pytest.raises(errors.OpPrereqError, match="drbd not suitable for copying"):
        _Move(ctx, node=conv.NODE3)


def test_offline_target_is_refused(ctx):
    _Plain(ctx)
    node = ctx.cfg.GetNodeInfo(ctx.node3)
    node.offline = True
    ctx.cfg.Update(node)
    with pytest.raises(errors.OpPrereqError, match="offline"):
        _Move(ctx, node=conv.NODE3)
