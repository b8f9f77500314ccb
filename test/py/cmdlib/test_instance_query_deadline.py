"""gnt-instance info (LUInstanceQueryData) asks nodes with the live-query
deadline, and does not ask a node that did not answer about each disk."""

from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import instancehelpers  # noqa: E402

from ganeti import constants, opcodes  # noqa: E402


@pytest.fixture
def ctx(tmp_path):
    ctx = instancehelpers.MakeContext(tmp_path)
    for name in ("inst1.example.com", "inst2.example.com"):
        instancehelpers.Run(ctx, instancehelpers.CreateOp(
            instance_name=name, disk_template="file",
            disks=[{"size": 2048}, {"size": 1024}]))
    ctx.rpc.calls.clear()
    ctx.rpc.read_timeouts.clear()
    return ctx


def test_live_calls_use_the_query_deadline(ctx):
    data, _ = instancehelpers.Run(ctx, opcodes.OpInstanceQueryData(instances=[],
                                                                    static=False))
    assert [data[name]["run_state"] for name in sorted(data)] == ["up", "up"]
    assert ctx.rpc.read_timeouts == \
        [("instance_list", constants.RPC_TMO_QUERY)] + \
        [("blockdev_find", constants.RPC_TMO_QUERY)] * 4


def test_unreachable_primary_is_not_asked_about_disks(ctx):
    ctx.rpc.fail["instance_list"] = "Timeout: no answer from node daemon"
    data, _ = instancehelpers.Run(ctx, opcodes.OpInstanceQueryData(instances=[],
                                                                    static=False))
    assert "blockdev_find" not in ctx.rpc.names()
    for name in ("inst1.example.com", "inst2.example.com"):
        assert data[name]["run_state"] is None
        assert [disk["pstatus"] for disk in data[name]["disks"]] == [None, None]
        assert [disk["size"] for disk in data[name]["disks"]] == [2048, 1024]
