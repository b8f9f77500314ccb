"""tools/move-instance: options, the creation request built from the source
instance, job error texts (the moves themselves run in
test/integration/test_move_instance.py)."""

from __future__ import annotations

import pytest

from ganeti import constants
from ganeti.tools import move_instance as mi

BASE = ["src.example.com", "dest.example.com"]


def _Parse(*args: str):
    parser = mi.BuildParser()
    opts = parser.parse_args([*args])
    mi.CheckOptions(parser, opts)
    return opts


def test_destination_defaults_to_source():
    opts = _Parse("--src-rapi-port", "5081", "--src-ca-file", "/ca", "--src-username",
                  "u", "--src-password-file", "/pw", *BASE, "inst1")
    assert (opts.dest_rapi_port, opts.dest_ca_file, opts.dest_username,
            opts.dest_password_file) == (5081, "/ca", "u", "/pw")
    opts = _Parse("--dest-rapi-port", "6000", *BASE, "inst1")
    assert (opts.src_rapi_port, opts.dest_rapi_port) == (constants.DEFAULT_RAPI_PORT, 6000)
    moves = mi._Moves(_Parse("--dest-instance-name", "new", "--dest-primary-node", "n1",
                             *BASE, "inst1"))
    assert [(m.src_name, m.dest_name, m.pnode) for m in moves] == [("inst1", "new", "n1")]


@pytest.mark.parametrize("args, message", [
    (["--dest-instance-name", "x", *BASE, "a", "b"], "only valid when moving a single"),
    (["--net", "0:ip=1.2.3.4", *BASE, "a", "b"], "single instance: --net"),
    (["-I", "hail", "--dest-primary-node", "n1", *BASE, "a"], "either an iallocator"),
    (["--dest-secondary-node", "n2", *BASE, "a"], "needs a primary node"),
    (["--opportunistic-tries", "2", *BASE, "a"], "needs an iallocator"),
    (["--parallel", "0", *BASE, "a"], "at least 1"),
    (["--src-username", "u", *BASE, "a"], "needs --src-password-file"),
    (BASE, "required"),
])
def test_bad_options(capsys, args, message):
    with pytest.raises(SystemExit) as info:
        _Parse(*args)
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_nics_from_source():
    info = {"nic.macs": ["aa:00:00:00:00:01", "aa:00:00:00:00:02"],
            "nic.ips": [None, "192.0.2.5"], "nic.modes": ["bridged", "routed"],
            "nic.links": ["br0", "100"], "nic.networks.names": [None, "net1"],
            "nic.names": [None, None]}
    nics = mi._Nics(info, [("0", {"link": "br1"})])
    assert nics == [{"mac": "aa:00:00:00:00:01", "mode": "bridged", "link": "br1"},
                    {"mac": "aa:00:00:00:00:02", "ip": "192.0.2.5", "network": "net1"}]
    with pytest.raises(mi.MoveError, match="has 2 NIC"):
        mi._Nics(info, [("2", {})])
    with pytest.raises(mi.MoveError, match="Invalid NIC index"):
        mi._Nics(info, [("x", {})])
    assert mi._Disks({"disk.sizes": [128, 256]}) == [
        {"size": 128, "mode": "rw"}, {"size": 256, "mode": "rw"}]


def test_job_errors():
    job = {"status": "error", "opstatus": ["error"],
           "opresult": [["OpPrereqError", ["Invalid handshake: no", "wrong_input"]]]}
    assert mi._JobError(job) == "OpPrereqError: Invalid handshake: no"
    assert mi._ErrorCode(job) == "wrong_input"
    assert mi._JobError({"status": "canceled", "opstatus": [], "opresult": []}) == \
        "job status canceled"


def test_unreadable_password_file(tmp_path):
    with pytest.raises(mi.MoveError, match="Cannot read the password file"):
        mi.MakeClient("h", 5080, None, "u", str(tmp_path / "missing"))
