"""A hung node daemon does not hold up gnt-node list and gnt-instance list.

On a real two-node virtual cluster, the second node's daemon and the
children serving its connections are stopped with SIGSTOP: its socket
still accepts connections but nothing answers.
Listing nodes and instances with live fields must answer within about the
live-query deadline (``constants.RPC_TMO_QUERY``, 10 s) instead of the
minute of the RPC timeout class, showing the hung node's live values as
"?" and its instances as ``ERROR_nodedown``, as Ganeti does for a node
whose data could not be fetched. The daemon is resumed (SIGCONT) at the
end and everything is listed normally again.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from vcluster import VirtualCluster, virtual_cluster  # noqa: E402

from ganeti import constants  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

INSTANCE = "hung-inst.example.com"
#: The deadline plus the time of starting the command-line tool
ANSWER_WITHIN = constants.RPC_TMO_QUERY + 2.5


@pytest.fixture(scope="module")
def vc():
    with virtual_cluster(nodes=2) as cluster:
        cluster.run("gnt-instance", "add", "-o", "noop+default", "-t", "diskless",
                    "-n", cluster.names[1], "--no-name-check", "--no-ip-check",
                    INSTANCE)
        yield cluster


def _Lines(result) -> dict[str, list[str]]:
    return {line.split("|")[0]: line.split("|")[1:]
            for line in result.stdout.splitlines()}


def _NodeList(vc: VirtualCluster):
    return vc.run("gnt-node", "list", "--no-headers", "--separator=|")


def _InstanceList(vc: VirtualCluster):
    return vc.run("gnt-instance", "list", "--no-headers", "--separator=|",
                  "-o", "name,pnode,status,oper_state,oper_ram")


def _Children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as fd:
        return [int(child) for child in fd.read().split()]


def _Timed(fn, *args):
    start = time.monotonic()
    result = fn(*args)
    return result, time.monotonic() - start


def test_lists_give_up_on_a_stopped_node_daemon(vc):
    master, hung = vc.names
    healthy_nodes = _Lines(_NodeList(vc))
    assert "?" not in healthy_nodes[hung], healthy_nodes
    assert _Lines(_InstanceList(vc))[INSTANCE] == [hung, "running", "Y", "128"]
    pid = vc.daemons()[(hung, constants.NODED)]
    # The daemon first (it forks no more), then the children serving its
    # open connections
    os.kill(pid, signal.SIGSTOP)
    stopped = [pid] + _Children(pid)
    for child in stopped[1:]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGSTOP)
    try:
        nodes, node_time = _Timed(_NodeList, vc)
        instances, instance_time = _Timed(_InstanceList, vc)
    finally:
        for proc in reversed(stopped):
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc, signal.SIGCONT)
    assert node_time < ANSWER_WITHIN, f"gnt-node list took {node_time:.1f}s"
    assert instance_time < ANSWER_WITHIN, f"gnt-instance list took {instance_time:.1f}s"
    lines = _Lines(nodes)
    # name, dtotal, dfree, mtotal, mnode, mfree, pinst, sinst: the live
    # fields of the hung node are unknown, its configuration is not
    assert lines[hung] == ["?", "?", "?", "?", "?", "1", "0"], nodes.stdout
    assert "?" not in lines[master], nodes.stdout
    assert _Lines(instances)[INSTANCE] == [hung, "ERROR_nodedown", "?", "?"]
    # Resumed, the node answers again
    resumed = _Lines(_NodeList(vc))
    assert "?" not in resumed[hung] and resumed[hung][-2:] == ["1", "0"], resumed
    assert _Lines(_InstanceList(vc))[INSTANCE] == [hung, "running", "Y", "128"]
