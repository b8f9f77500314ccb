"""gnt-node power/health/powercycle/failover and gnt-cluster epo
(ganeti.client.node_power): parsing, the jobs submitted, the output.

The master is a fake luxi client (clihelpers.FakeClient) answering node,
group and instance queries; job submission and polling are replaced so
that each test scripts the opcode results.
"""

from __future__ import annotations

from typing import Any

import pytest

from ganeti import cli, constants, opcodes
from ganeti.client import gnt_cluster, gnt_node, node_power

pytestmark = pytest.mark.timeout(60)

NODES = [
    # name, master, pinst, sinst, powered (None: no OOB), offline, group
    ("node1.example.com", True, ["inst-m"], [], True, False, "default"),
    ("node2.example.com", False, ["inst1"], ["inst2"], True, False, "rack2"),
    ("node3.example.com", False, ["inst2"], ["inst1"], True, False, "rack2"),
    ("node4.example.com", False, [], [], None, False, "default"),
]
INSTANCES = {"inst-m": "up", "inst1": "up", "inst2": "down"}


def _NodeRow(node: tuple[Any, ...], field: str) -> tuple[int, Any]:
    name, master, pinst, sinst, powered, offline, group = node
    values = {"name": name, "master": master, "pinst_list": pinst, "sinst_list": sinst,
              "powered": powered, "offline": offline, "noded_address": "127.0.0.1",
              "noded_port": 1811}
    if field == "powered" and powered is None:
        return (constants.RS_UNAVAIL, None)
    return (constants.RS_NORMAL, values[field])


def _Names(qfilter: Any) -> list[str] | None:
    if qfilter is None:
        return None
    return [part[2] for part in qfilter[1:]]


def _Matches(name: str, names: list[str] | None) -> bool:
    return names is None or any(name == n or name.startswith(n + ".") for n in names)


@pytest.fixture
def jobs(fake_client, monkeypatch):
    """Scripted job results: ``results`` is a list of per-job results (the
    last opcode's result for SendJob/PollJob); ``submitted`` records ops."""
    state: dict[str, Any] = {"results": [], "submitted": [], "queued": [],
                             "failed_jobs": set()}

    def _Node(fields, qfilter):
        names = _Names(qfilter)
        return {"data": [[_NodeRow(n, f) for f in fields] for n in NODES
                         if _Matches(n[0], names)]}

    def _Group(fields, qfilter):
        names = _Names(qfilter)
        groups = sorted({n[6] for n in NODES})
        return {"data": [[(constants.RS_NORMAL, g if f == "name" else
                           [n[0] for n in NODES if n[6] == g]) for f in fields]
                         for g in groups if _Matches(g, names)]}

    def _Instance(fields, qfilter):
        return {"data": [[(constants.RS_NORMAL, name if f == "name" else state_)
                          for f in fields] for name, state_ in INSTANCES.items()]}

    fake_client.query[constants.QR_NODE] = _Node
    fake_client.query[constants.QR_GROUP] = _Group
    fake_client.query[constants.QR_INSTANCE] = _Instance

    def _SendJob(ops, cl=None):
        state["submitted"].append(list(ops))
        return len(state["submitted"])

    def _PollJob(job_id, cl=None, feedback_fn=None, reporter=None):
        return [None] * (len(state["submitted"][job_id - 1]) - 1) + [
            state["results"].pop(0)]

    def _SubmitOpCode(op, cl=None, feedback_fn=None, opts=None, reporter=None):
        state["submitted"].append([op])
        return state["results"].pop(0)

    class _Jex:
        def __init__(self, cl=None, opts=None, **kwargs):
            self.names = []

        def QueueJob(self, name, *ops):
            state["queued"].append((name, *ops))
            self.names.append(name)

        def GetResults(self):
            return [(name not in state["failed_jobs"], None) for name in self.names]

    monkeypatch.setattr(cli, "SendJob", _SendJob)
    monkeypatch.setattr(cli, "PollJob", _PollJob)
    monkeypatch.setattr(cli, "SubmitOpCode", _SubmitOpCode)
    monkeypatch.setattr(cli, "JobExecutor", _Jex)
    monkeypatch.setattr(cli, "AskUser", lambda *args, **kwargs: False)
    return state


def _Row(name, status=constants.RS_NORMAL, answer=None):
    return [(constants.RS_NORMAL, name), (status, answer)]


def _Node(*args):
    return gnt_node.Main(["gnt-node", *args])


def _Cluster(*args):
    return gnt_cluster.Main(["gnt-cluster", *args])


def test_power_status_table(jobs, capsys):
    jobs["results"] = [[_Row("node2.example.com", answer={"powered": True}),
                        _Row("node3.example.com", answer={"powered": False})]]
    assert _Node("power", "status", "node2", "node3") == constants.EXIT_SUCCESS
    (op,) = jobs["submitted"][0]
    assert isinstance(op, opcodes.OpOobCommand)
    assert (op.command, op.node_names, op.timeout) == (
        constants.OOB_POWER_STATUS, ["node2", "node3"], constants.OOB_TIMEOUT)
    assert capsys.readouterr().out.split("\n")[:3] == [
        "Node              Status", "node2.example.com powered",
        "node3.example.com unpowered"]


def test_power_errors_exit_failure(jobs, capsys):
    jobs["results"] = [[_Row("node2.example.com", constants.RS_NODATA),
                        _Row("node4.example.com", constants.RS_UNAVAIL)]]
    assert _Node("power", "--no-headers", "status") == constants.EXIT_FAILURE
    assert jobs["submitted"][0][0].node_names == []
    out = capsys.readouterr().out
    assert "node2.example.com (nodata)" in out and "node4.example.com (unavail)" in out


def test_power_off_marks_offline_first(jobs, capsys):
    jobs["results"] = [[_Row("node2.example.com")]]
    assert _Node("power", "--force", "--oob-timeout", "5", "off", "node2") == 0
    setparams, oob_op = jobs["submitted"][0]
    assert isinstance(setparams, opcodes.OpNodeSetParams)
    assert (setparams.node_name, setparams.offline) == ("node2", True)
    assert (oob_op.command, oob_op.timeout, oob_op.ignore_status) == (
        constants.OOB_POWER_OFF, 5, False)
    assert "node2.example.com invoked" in capsys.readouterr().out
    jobs["results"] = [[_Row("node2.example.com")]]
    assert _Node("power", "-f", "--ignore-status", "off", "node2") == 0
    (oob_op,) = jobs["submitted"][1]
    assert oob_op.ignore_status


def test_power_off_needs_names_or_all_and_confirmation(jobs, capsys):
    assert _Node("power", "off") == constants.EXIT_FAILURE
    assert "at least one node" in capsys.readouterr().err
    assert _Node("power", "cycle", "--all", "node2") == constants.EXIT_FAILURE
    # no terminal: the confirmation says no
    assert _Node("power", "cycle", "node2") == constants.EXIT_FAILURE
    assert jobs["submitted"] == []
    jobs["results"] = [[_Row(n) for n in ("node2.example.com", "node3.example.com",
                                          "node4.example.com")]]
    assert _Node("power", "cycle", "--all", "--force") == 0
    (op,) = jobs["submitted"][0]
    assert op.node_names == ["node2.example.com", "node3.example.com",
                             "node4.example.com"]


@pytest.mark.parametrize("argv", [
    ["power", "dance", "node2"], ["power"], ["power", "--power-delay", "-1", "on"],
    ["power", "--power-delay", "x", "on"], ["power", "--oob-timeout", "0", "status"],
    ["health", "--oob-timeout", "abc"], ["powercycle"], ["powercycle", "a", "b"],
    ["failover"],
])
def test_bad_command_lines(jobs, argv, capsys):
    assert _Node(*argv) != constants.EXIT_SUCCESS
    assert jobs["submitted"] == []


def test_power_on_delay(jobs):
    jobs["results"] = [[]]
    assert _Node("power", "--power-delay", "0.5", "on", "node2") == 0
    assert jobs["submitted"][0][0].power_delay == 0.5


def test_health(jobs, capsys):
    jobs["results"] = [[_Row("node2.example.com", answer=[["fan", "OK"],
                                                          ["temp", "WARNING"]]),
                        _Row("node3.example.com", constants.RS_NODATA)]]
    assert _Node("health", "--separator=|") == constants.EXIT_FAILURE
    assert jobs["submitted"][0][0].command == constants.OOB_HEALTH
    assert capsys.readouterr().out.splitlines() == [
        "Node|Status", "node2.example.com|fan=OK", "|temp=WARNING",
        "node3.example.com|(nodata)"]


def test_powercycle(jobs, monkeypatch, capsys):
    submitted = []

    def _SubmitOrSend(op, opts, cl=None, feedback_fn=None):
        submitted.append(op)
        return "Reboot scheduled in 5 seconds"
    monkeypatch.setattr(cli, "SubmitOrSend", _SubmitOrSend)
    assert _Node("powercycle", "node2") == constants.EXIT_CONFIRMATION
    assert submitted == []
    assert _Node("powercycle", "--yes", "--force", "node1") == 0
    assert (submitted[0].node_name, submitted[0].force) == ("node1", True)
    assert "Reboot scheduled" in capsys.readouterr().err


def test_failover(jobs, capsys):
    assert _Node("failover", "node4") == 0
    assert "No primary instances on node node4.example.com" in capsys.readouterr().out
    assert _Node("failover", "node2") == constants.EXIT_CONFIRMATION
    assert _Node("failover", "-f", "--ignore-consistency", "node2") == 0
    ((name, op),) = jobs["queued"]
    assert name == "inst1" and isinstance(op, opcodes.OpInstanceFailover)
    assert op.ignore_consistency and op.instance_name == "inst1"
    assert op.iallocator is None
    assert "All 1 instance(s) failed over successfully." in capsys.readouterr().out
    jobs["queued"].clear()
    assert _Node("failover", "-f", "-I", "hail", "node2") == 0
    assert jobs["queued"][0][1].iallocator == "hail"
    jobs["failed_jobs"].add("inst1")
    assert _Node("failover", "-f", "node2") == constants.EXIT_FAILURE
    assert _Node("failover", "-f", "nodeX") != 0


def test_epo_argument_rules(jobs, capsys):
    assert _Cluster("epo", "--groups", "--all") == constants.EXIT_FAILURE
    assert _Cluster("epo", "--all", "node2") == constants.EXIT_FAILURE
    assert _Cluster("epo") == constants.EXIT_FAILURE
    assert _Cluster("epo", "-f", "node1") == constants.EXIT_FAILURE
    assert "master-failover" in capsys.readouterr().err
    assert _Cluster("epo", "-f", "--groups", "nogroup") != 0
    assert _Cluster("epo", "node2") == constants.EXIT_FAILURE  # not confirmed
    assert jobs["submitted"] == [] and jobs["queued"] == []


def test_epo_off_and_on_for_a_group(jobs, monkeypatch, capsys):
    jobs["results"] = [[_Row("node2.example.com"), _Row("node3.example.com")]]
    assert _Cluster("epo", "-f", "--groups", "rack2", "--shutdown-timeout", "7") == 0
    # only instances marked up are stopped, without recording it
    ((name, op),) = jobs["queued"]
    assert name == "inst1" and isinstance(op, opcodes.OpInstanceShutdown)
    assert op.no_remember and op.timeout == 7
    (oob_op,) = jobs["submitted"][0]
    assert (oob_op.command, oob_op.node_names, oob_op.ignore_status) == (
        constants.OOB_POWER_OFF, ["node2.example.com", "node3.example.com"], True)

    # --on: the nodes are marked off now; start inst1 once they answer
    monkeypatch.setattr(node_power, "NodeReachable", lambda addr, port: True)
    global NODES
    saved = NODES
    NODES = [n[:4] + (False if n[6] == "rack2" else n[4],) + n[5:] for n in saved]
    try:
        jobs["queued"].clear()
        jobs["results"] = [[_Row("node2.example.com"), _Row("node3.example.com")]]
        monkeypatch.setattr(node_power, "_WaitAndStart", _WaitAndStartNoSleep)
        assert _Cluster("epo", "-f", "--on", "--groups", "rack2",
                        "--power-delay", "0") == 0
    finally:
        NODES = saved
    on_op = jobs["submitted"][1][0]
    assert (on_op.command, on_op.power_delay) == (constants.OOB_POWER_ON, 0)
    ((name, op),) = jobs["queued"]
    assert name == "inst1" and isinstance(op, opcodes.OpInstanceStartup)


_RealWaitAndStart = node_power._WaitAndStart


def _WaitAndStartNoSleep(opts, endpoints, inst_map, cl):
    return _RealWaitAndStart(opts, endpoints, inst_map, cl,
                             reachable_fn=lambda addr, port: True,
                             sleep_fn=lambda s: None)


def test_wait_and_start_times_out(jobs, monkeypatch, capsys):
    clock = iter(range(0, 100000, 100))
    started = []
    monkeypatch.setattr(node_power, "_InstanceStart",
                        lambda opts, names, start, cl: started.extend(names) or True)
    monkeypatch.setattr(node_power, "EPO_REACHABLE_TIMEOUT", 250)
    ok = node_power._WaitAndStart(
        None, {"a": ("127.0.0.1", 1), "b": ("127.0.0.1", 2)},
        {"i1": {"a"}, "i2": {"a", "b"}, "i3": set()}, None,
        reachable_fn=lambda addr, port: port == 1, sleep_fn=lambda s: None,
        now_fn=lambda: next(clock))
    assert not ok and started == ["i1", "i3"]
    assert "Nodes b did not come back" in capsys.readouterr().err
