"""backend.node.BridgesExist: a bridge is a /sys/class/net/<name>/bridge
directory; the answer lists the missing ones."""

from __future__ import annotations

import pytest

from ganeti.backend import RPCFail
from ganeti.backend import node as bnode
from ganeti.rpc import defs


def test_missing_bridges_listed(tmp_path):
    (tmp_path / "xen-br0" / "bridge").mkdir(parents=True)
    (tmp_path / "eth0").mkdir()             # a device, but not a bridge
    sysnet = str(tmp_path)
    assert bnode.BridgesExist(["xen-br0"], sysnet) == []
    assert bnode.BridgesExist(["xen-br0", "eth0", "nosuchbr"], sysnet) == \
        ["eth0", "nosuchbr"]
    assert bnode.BridgesExist([], sysnet) == []


@pytest.mark.parametrize("name", ["", "../etc", ".", None])
def test_bad_names_refused(tmp_path, name):
    with pytest.raises(RPCFail, match="Invalid bridge name"):
        bnode.BridgesExist([name], str(tmp_path))


def test_declared_as_ganeti_names_it():
    call = defs.CALLS["bridges_exist"]
    assert call.single and call.arg_names == ["bridges_list"]
    assert call.handler == "ganeti.backend.node.BridgesExist"
