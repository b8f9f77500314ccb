"""The per-group logic of the watcher against a fake luxi client."""

from __future__ import annotations

import logging
from typing import Any

from ganeti import constants
from ganeti.watcher import group
from ganeti.watcher import state as wstate


class FakeClient:
    """Records submitted jobs; job statuses are set by the test."""

    def __init__(self) -> None:
        self.submitted: list[list[Any]] = []
        self.status: dict[Any, str] = {}
        self.next_id = 100

    def SubmitJob(self, ops: list[Any]) -> int:
        self.next_id += 1
        self.submitted.append(ops)
        self.status[self.next_id] = constants.JOB_STATUS_QUEUED
        return self.next_id

    def SubmitManyJobs(self, jobs: list[list[Any]]) -> list[Any]:
        return [(True, self.SubmitJob(ops)) for ops in jobs]

    def QueryJobs(self, ids: list[Any], fields: list[str]) -> list[Any]:
        return [[job_id, self.status[job_id]] if job_id in self.status else None
                for job_id in ids]


def _Inst(name: str, status: str, pnode: str = "node1", disks_active: bool = True,
          template: str = constants.DT_FILE) -> dict[str, Any]:
    return {"name": name, "status": status, "admin_state": "up",
            "disks_active": disks_active, "pnode": pnode, "snodes": [],
            "disk_template": template}


def _Finish(client: FakeClient) -> None:
    for job_id in client.status:
        client.status[job_id] = constants.JOB_STATUS_ERROR


def test_restart_counted_and_given_up_once(caplog):
    client, notepad = FakeClient(), wstate.WatcherState()
    down = [_Inst("inst1", constants.INSTST_ERRORDOWN)]
    for attempt in range(1, wstate.MAXTRIES + 1):
        assert group.CheckInstances(client, notepad, down) == {"inst1"}
        assert notepad.NumberOfRestartAttempts("inst1") == attempt
        _Finish(client)
    assert len(client.submitted) == wstate.MAXTRIES
    assert client.submitted[0][0].OP_ID == "OP_INSTANCE_STARTUP"
    assert client.submitted[0][0].instance_name == "inst1"
    with caplog.at_level(logging.DEBUG):
        for _ in range(3):
            assert group.CheckInstances(client, notepad, down) == set()
    assert len(client.submitted) == wstate.MAXTRIES
    given_up = [r for r in caplog.records if "giving up" in r.message]
    assert len(given_up) == 1 and given_up[0].levelno == logging.ERROR


def test_no_second_job_while_the_first_is_pending():
    client, notepad = FakeClient(), wstate.WatcherState()
    down = [_Inst("inst1", constants.INSTST_ERRORDOWN)]
    group.CheckInstances(client, notepad, down)
    group.CheckInstances(client, notepad, down)
    assert len(client.submitted) == 1
    assert notepad.NumberOfRestartAttempts("inst1") == 1
    client.status[client.next_id] = constants.JOB_STATUS_RUNNING
    group.CheckInstances(client, notepad, down)
    assert len(client.submitted) == 1
    _Finish(client)
    group.CheckInstances(client, notepad, down)
    assert len(client.submitted) == 2


def test_archived_or_unknown_job_is_not_pending():
    client, notepad = FakeClient(), wstate.WatcherState()
    notepad.RecordRestartAttempt("inst1", 4242)
    group.CheckInstances(client, notepad, [_Inst("inst1", constants.INSTST_ERRORDOWN)])
    assert len(client.submitted) == 1


def test_running_again_resets_and_others_are_left_alone():
    client, notepad = FakeClient(), wstate.WatcherState()
    notepad.RecordRestartAttempt("back")
    notepad.RecordRestartAttempt("admin-down")
    instances = [_Inst("back", constants.INSTST_RUNNING),
                 _Inst("admin-down", constants.INSTST_ADMINDOWN),
                 _Inst("user", constants.INSTST_USERDOWN),
                 _Inst("nodedown", constants.INSTST_NODEDOWN)]
    assert group.CheckInstances(client, notepad, instances) == set()
    assert client.submitted == []
    assert notepad.instances == {}


def test_rebooted_node_activates_disks_once():
    client, notepad = FakeClient(), wstate.WatcherState()
    nodes = [{"name": "node1", "bootid": "a", "offline": False},
             {"name": "node2", "bootid": "b", "offline": False},
             {"name": "node3", "bootid": None, "offline": True}]
    instances = [_Inst("on1", constants.INSTST_RUNNING, "node1"),
                 _Inst("on2", constants.INSTST_RUNNING, "node2"),
                 _Inst("diskless", constants.INSTST_RUNNING, "node1",
                       template=constants.DT_DISKLESS),
                 _Inst("inactive", constants.INSTST_ADMINDOWN, "node1", disks_active=False),
                 _Inst("started", constants.INSTST_ERRORDOWN, "node1")]
    notepad.SetNodeBootID("node1", "a")
    notepad.SetNodeBootID("node2", "old")
    assert group.CheckRebootedNodes(client, notepad, nodes, instances,
                                    {"started"}) == ["on2"]
    assert [ops[0].instance_name for ops in client.submitted] == ["on2"]
    assert client.submitted[0][0].OP_ID == "OP_INSTANCE_ACTIVATE_DISKS"
    assert notepad.GetNodeBootID("node2") == "b"
    assert notepad.GetNodeBootID("node3") is None
    # The next run sees the same boot IDs: nothing to do
    assert group.CheckRebootedNodes(client, notepad, nodes, instances, set()) == []
    assert len(client.submitted) == 1


def test_instance_status_file(tmp_path):
    path = tmp_path / "watcher.g.instance-status"
    group.WriteInstanceStatus(str(path), [_Inst("a", "running"),
                                          _Inst("b", constants.INSTST_ERRORDOWN),
                                          {**_Inst("c", "x"), "status": None}])
    assert path.read_text() == "a running\nb ERROR_down\n"


def test_user_down_not_restarted_but_cleaned_up():
    """A guest shut down from inside (USER_down, still marked up) gets a
    shutdown by its user, never a start; one already marked down nothing."""
    client, notepad = FakeClient(), wstate.WatcherState()
    marked_up = _Inst("inst1", constants.INSTST_USERDOWN)
    marked_down = dict(_Inst("inst2", constants.INSTST_USERDOWN), admin_state="down")
    instances = [marked_up, marked_down]
    assert group.CheckInstances(client, notepad, instances) == set()
    assert group.CleanupUserDown(client, instances) == ["inst1"]
    assert len(client.submitted) == 1
    op = client.submitted[0][0]
    assert op.OP_ID == "OP_INSTANCE_SHUTDOWN" and op.instance_name == "inst1"
    assert op.admin_state_source == constants.USER_SOURCE
