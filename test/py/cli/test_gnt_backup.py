"""gnt-backup's opcodes and queries, and gnt-instance add's hand-off to an
import, against a fake luxi client (jobs only submitted, with --submit)."""

from __future__ import annotations

from ganeti import constants
from ganeti.client import gnt_backup, gnt_instance


def _Submitted(fake_client):
    (ops,) = fake_client.submitted
    return ops[0]


def test_import_through_gnt_instance_add_keeps_add_options(fake_client):
    assert gnt_instance.Main([
        "gnt-instance", "add", "--src-node", "node2", "--src-dir", "inst1.example.com",
        "-n", "node1", "-g", "grp", "--tags", "a,b", "--no-wait-for-sync",
        "--no-name-check", "--no-ip-check", "--submit", "inst1.example.com"]) == 0
    op = _Submitted(fake_client)
    assert (op["OP_ID"], op["mode"]) == ("OP_INSTANCE_CREATE", constants.INSTANCE_IMPORT)
    assert op["src_node"] == "node2"
    assert op["src_path"] == constants.DEFAULT_EXPORT_DIR + "/inst1.example.com"
    assert (op["group_name"], op["tags"], op["wait_for_sync"]) == ("grp", ["a", "b"],
                                                                   False)
    # No --net: the export's NICs, not a default one
    assert op["nics"] == []


def test_import_and_export_opcodes(fake_client):
    assert gnt_backup.Main(["gnt-backup", "import", "-n", "node1", "--src-node", "node2",
                            "--compress", "gzip", "--submit", "inst1.example.com"]) == 0
    op = _Submitted(fake_client)
    assert (op["mode"], op["compress"], op["src_path"]) == (
        constants.INSTANCE_IMPORT, "gzip", None)
    assert op["group_name"] is None and op["wait_for_sync"] is True
    fake_client.submitted.clear()
    assert gnt_backup.Main(["gnt-backup", "export", "-n", "node2", "--noshutdown",
                            "--submit", "inst1.example.com"]) == 0
    op = _Submitted(fake_client)
    assert (op["OP_ID"], op["target_node"], op["shutdown"]) == (
        "OP_BACKUP_EXPORT", "node2", False)


def test_export_needs_a_node(fake_client, capsys):
    assert gnt_backup.Main(["gnt-backup", "export", "inst1.example.com"]) != 0
    assert "Target node must be specified" in capsys.readouterr().err
    assert not fake_client.submitted


def test_list_is_an_export_query(fake_client, capsys):
    fake_client.query[constants.QR_EXPORT] = {
        "fields": [{"name": "node", "title": "Node", "kind": constants.QFT_TEXT},
                   {"name": "export", "title": "Export", "kind": constants.QFT_TEXT}],
        "data": [[[constants.RS_NORMAL, "node1"], [constants.RS_NORMAL, "inst1"]],
                 [[constants.RS_NORMAL, "node2"], [constants.RS_NODATA, None]]]}
    assert gnt_backup.Main(["gnt-backup", "list", "--node", "node1", "--node",
                            "node2"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["Node", "Export"]
    assert out[1].split() == ["node1", "inst1"]
    assert out[2].split()[0] == "node2"
    (query,) = [args for name, args in fake_client.calls if name == "Query"]
    assert query == (constants.QR_EXPORT, ["node", "export"],
                     ["|", ["=", "node", "node1"], ["=", "node", "node2"]])
