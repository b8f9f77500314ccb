"""gnt-instance grow-disk, activate-disks, deactivate-disks, recreate-disks,
failover and migrate: option parsing and the opcodes they submit (against
the fake luxi client of conftest.py, with --submit)."""

from __future__ import annotations

from ganeti import cli, constants
from ganeti.client import gnt_instance


def _Run(*argv):
    return gnt_instance.Main(["gnt-instance", *argv])


def _Submitted(fake_client):
    (ops,) = fake_client.submitted
    fake_client.submitted.clear()
    return ops[0]


def test_disk_commands(fake_client):
    assert _Run("grow-disk", "--submit", "i1", "1", "2G") == 0
    op = _Submitted(fake_client)
    assert (op["OP_ID"], op["disk"], op["amount"], op["absolute"], op["wait_for_sync"]) \
        == ("OP_INSTANCE_GROW_DISK", 1, 2048, False, True)
    assert _Run("grow-disk", "--absolute", "--no-wait-for-sync", "--submit", "i1", "0",
                "512") == 0
    op = _Submitted(fake_client)
    assert (op["amount"], op["absolute"], op["wait_for_sync"]) == (512, True, False)
    assert _Run("activate-disks", "--ignore-size", "--submit", "i1") == 0
    op = _Submitted(fake_client)
    assert (op["OP_ID"], op["ignore_size"]) == ("OP_INSTANCE_ACTIVATE_DISKS", True)
    assert _Run("deactivate-disks", "-f", "--submit", "i1") == 0
    op = _Submitted(fake_client)
    assert (op["OP_ID"], op["force"]) == ("OP_INSTANCE_DEACTIVATE_DISKS", True)
    assert _Run("recreate-disks", "--disk", "1:size=1G,mode=ro", "-n", "node2",
                "--submit", "i1") == 0
    op = _Submitted(fake_client)
    assert op["OP_ID"] == "OP_INSTANCE_RECREATE_DISKS"
    assert op["disks"] == [[1, {"size": 1024, "mode": "ro"}]]
    assert op["nodes"] == ["node2"]


def test_bad_disk_arguments_submit_nothing(fake_client, capsys):
    assert _Run("grow-disk", "--submit", "i1", "0", "10X") != 0
    assert "10X" in capsys.readouterr().err
    assert _Run("grow-disk", "--submit", "i1", "first", "1G") != 0
    assert "first" in capsys.readouterr().err
    assert _Run("recreate-disks", "--disk", "0:size=3Q", "--submit", "i1") != 0
    assert "3Q" in capsys.readouterr().err
    assert not fake_client.submitted


def test_move_commands(fake_client, capsys, monkeypatch):
    assert _Run("failover", "-f", "-n", "node2", "--shutdown-timeout", "7",
                "--ignore-consistency", "--submit", "i1") == 0
    op = _Submitted(fake_client)
    assert (op["OP_ID"], op["target_node"], op["shutdown_timeout"],
            op["ignore_consistency"]) == ("OP_INSTANCE_FAILOVER", "node2", 7, True)
    assert _Run("migrate", "-f", "--non-live", "-n", "node2", "--submit", "i1") == 0
    op = _Submitted(fake_client)
    assert (op["OP_ID"], op["mode"], op["target_node"], op["cleanup"]) == \
        ("OP_INSTANCE_MIGRATE", constants.HT_MIGRATION_NONLIVE, "node2", False)
    assert _Run("migrate", "-f", "--migration-mode", "live", "--allow-failover",
                "--no-runtime-changes", "--target-node", "n2", "--submit", "i1") == 0
    op = _Submitted(fake_client)
    assert (op["mode"], op["allow_failover"], op["allow_runtime_changes"]) == \
        (constants.HT_MIGRATION_LIVE, True, False)
    assert _Run("migrate", "-f", "--cleanup", "-n", "n2", "--submit", "i1") == 0
    assert _Submitted(fake_client)["cleanup"] is True
    # contradicting options
    assert _Run("migrate", "-f", "--non-live", "--migration-mode", "live", "--submit",
                "i1") != 0
    assert _Run("failover", "-f", "-n", "n2", "-I", "hail", "--submit", "i1") != 0
    assert "either an iallocator" in capsys.readouterr().err
    # without -f the user is asked; "no" submits nothing
    questions = []
    monkeypatch.setattr(cli, "AskUser", lambda text, *a: questions.append(text) and False)
    assert _Run("migrate", "-n", "n2", "--submit", "i1") == constants.EXIT_CONFIRMATION
    assert "will be migrated" in questions[-1]
    assert _Run("failover", "-n", "n2", "--submit", "i1") == constants.EXIT_CONFIRMATION
    assert "failed over" in questions[-1]
    assert not fake_client.submitted
