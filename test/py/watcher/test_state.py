"""The watcher's per-group state file."""

from __future__ import annotations

import json
import logging
import os

import pytest

from ganeti.watcher import state as wstate


def test_missing_file_is_an_empty_state(tmp_path):
    notepad = wstate.WatcherState.Load(str(tmp_path / "watcher.g.data"))
    assert notepad.instances == {} and notepad.nodes == {}
    assert notepad.NumberOfRestartAttempts("inst1") == 0
    assert notepad.GetNodeBootID("node1") is None


def test_round_trip_and_atomic_mode(tmp_path):
    path = str(tmp_path / "watcher.g.data")
    notepad = wstate.WatcherState()
    assert notepad.RecordRestartAttempt("inst1", 17, now=100.0) == 1
    assert notepad.RecordRestartAttempt("inst1", 18, now=200.0) == 2
    notepad.SetNodeBootID("node1", "boot-a")
    notepad.Save(path)
    assert os.stat(path).st_mode & 0o777 == 0o600
    data = json.loads(open(path).read())
    assert data == {"instance": {"inst1": {"restart_count": 2, "restart_when": 200.0,
                                           "job_id": 18}},
                    "node": {"node1": {"bootid": "boot-a"}}}
    again = wstate.WatcherState.Load(path)
    assert again.NumberOfRestartAttempts("inst1") == 2
    assert again.RestartJob("inst1") == 18
    assert again.GetNodeBootID("node1") == "boot-a"
    # No temporary file left behind
    assert sorted(os.listdir(tmp_path)) == ["watcher.g.data"]


def test_remove_instance_resets_the_counter():
    notepad = wstate.WatcherState()
    notepad.RecordRestartAttempt("inst1")
    notepad.RemoveInstance("inst1")
    notepad.RemoveInstance("never-seen")
    assert notepad.NumberOfRestartAttempts("inst1") == 0


@pytest.mark.parametrize("text", [
    "", "garbage{", "[1, 2]", "null", '{"instance": []}',
    '{"instance": {"a": {"restart_count": -1}}}',
    '{"instance": {"a": {"restart_count": "3"}}}',
    '{"instance": {"a": {"restart_count": true}}}',
    '{"instance": {"a": 5}}', '{"node": {"n": {"bootid": 7}}}',
    '{"instance": {"a": {"restart_count": 1, "restart_when": 2, "job_id": [1]}}}',
    '{"instance": {"a": {"restart_count": 1, "restart_',   # truncated
])
def test_corrupt_file_is_replaced_with_a_warning(tmp_path, caplog, text):
    path = tmp_path / "watcher.g.data"
    path.write_text(text)
    with caplog.at_level(logging.WARNING):
        notepad = wstate.WatcherState.Load(str(path))
    assert notepad.instances == {} and notepad.nodes == {}
    assert any("corrupt" in rec.message and str(path) in rec.message
               for rec in caplog.records)
    notepad.RecordRestartAttempt("inst1", 3)
    notepad.Save(str(path))
    assert wstate.WatcherState.Load(str(path)).NumberOfRestartAttempts("inst1") == 1


def test_binary_garbage(tmp_path, caplog):
    path = tmp_path / "watcher.g.data"
    path.write_bytes(b"\xff\xfe\x00garbage")
    notepad = wstate.WatcherState.Load(str(path))
    assert notepad.instances == {}


def test_prune_forgets_removed_instances_and_nodes():
    notepad = wstate.WatcherState()
    notepad.RecordRestartAttempt("kept")
    notepad.RecordRestartAttempt("deleted")
    notepad.SetNodeBootID("node1", "a")
    notepad.SetNodeBootID("removed", "b")
    gone = notepad.Prune({"kept", "other"}, {"node1"})
    assert gone == ["instance deleted", "node removed"]
    assert set(notepad.instances) == {"kept"} and set(notepad.nodes) == {"node1"}
