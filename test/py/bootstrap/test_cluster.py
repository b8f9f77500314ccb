"""Tests for ganeti.bootstrap.cluster, daemon_util, gnt_cluster's parsers and
the node side of gnt-cluster command/copyfile."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

from ganeti import constants, errors, pathutils
from ganeti.bootstrap import cluster as bootstrap
from ganeti.client import gnt_cluster
from ganeti.rpc.client import RpcResult

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))


class VoteRunner:
    def __init__(self, answers):
        self.answers = answers

    def call_master_node_name(self, names):
        result = {}
        for name in names:
            answer = self.answers.get(name)
            result[name] = (RpcResult(data="Connection refused", failed=True)
                            if answer is None else RpcResult(data=[True, answer]))
        return result


def test_gather_master_votes_counts_and_sorts():
    runner = VoteRunner({"n2": "n1", "n3": "n1", "n4": "n9", "n5": None})
    votes = bootstrap.GatherMasterVotes(["n2", "n3", "n4", "n5"], runner)
    assert votes == [("n1", 2), (None, 1), ("n9", 1)]
    assert bootstrap.GatherMasterVotes([], runner) == []


def test_check_master_votes():
    bootstrap.CheckMasterVotes("n1", [("n1", 2), (None, 1)], 3)
    bootstrap.CheckMasterVotes("n1", [], 0)      # no other node: nothing to ask
    with pytest.raises(errors.OpPrereqError, match="No majority.*2 of 4"):
        bootstrap.CheckMasterVotes("n1", [("n1", 2), (None, 2)], 4)
    with pytest.raises(errors.OpPrereqError, match="most nodes did not respond"):
        bootstrap.CheckMasterVotes("n1", [(None, 3), ("n1", 1)], 4)
    with pytest.raises(errors.OpPrereqError, match="other nodes voted n7"):
        bootstrap.CheckMasterVotes("n1", [("n7", 3)], 3)


@pytest.mark.parametrize("text,expected", [
    ("maxmem=256M,vcpus=2", {"maxmem": "256M", "vcpus": "2"}),
    ("no_auto_balance,-vcpus", {"auto_balance": False, "vcpus": "default"}),
    ("link=br\\,x", {"link": "br,x"}),
    ("", {}),
])
def test_parse_key_val(text, expected):
    assert gnt_cluster.ParseKeyVal(text) == expected


def test_parse_errors():
    with pytest.raises(argparse.ArgumentTypeError, match="more than once"):
        gnt_cluster.ParseKeyVal("a=1,a=2")
    with pytest.raises(argparse.ArgumentTypeError, match="Invalid user-id 'x'"):
        gnt_cluster.ParseUidPool("x")
    with pytest.raises(argparse.ArgumentTypeError, match="add:NAME"):
        gnt_cluster.ParseOsMods("delete:foo")
    assert gnt_cluster.ParseUidPool("1000-2000, 3000") == [(1000, 2000), (3000, 3000)]
    assert gnt_cluster.ParseIdentKeyVal("fake:migration_mode=live") == \
        ("fake", {"migration_mode": "live"})
    assert gnt_cluster.ParseOsMods("add:a,remove:b") == [["add", "a"], ["remove", "b"]]


def test_format_info_nests():
    lines = gnt_cluster.FormatInfo([("A", 1), ("B", {"x": {"y": 2}}), ("C", [])])
    assert lines == ["A: 1", "B:", "  x:", "    y: 2", "C: (none)"]


def _Env(root, name):
    return dict(os.environ, GANETI_ROOTDIR=root, GANETI_HOSTNAME=name,
                PYTHONPATH=os.path.join(REPO, "build", "pylib"))


def _Py(code, env):
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=60)


@pytest.fixture
def short_base():
    """A short temporary base directory (socket paths stay short)."""
    base = tempfile.mkdtemp(prefix="gv", dir="/tmp")
    yield base
    shutil.rmtree(base, ignore_errors=True)


def test_listen_args_from_ssconf(short_base):
    base = short_base
    root = os.path.join(base, "n1.vc.test")
    data = os.path.join(root, constants.DEFAULT_DATA_DIR.lstrip("/"))
    os.makedirs(data)
    with open(os.path.join(data, "ssconf_node_primary_ips"), "w") as fd:
        fd.write("n1.vc.test 127.0.9.1\nn2.vc.test 127.0.9.2\n")
    code = ("from ganeti import daemon_util as d;"
            "print(d.GetListenArgs('ganeti-noded'), d.GetListenArgs('ganeti-masterd'))")
    proc = _Py(code, _Env(root, "n1.vc.test"))
    assert proc.stdout.strip() == "['-b', '127.0.9.1'] []", proc.stderr
    with open(os.path.join(data, "ssconf_node_noded_endpoints"), "w") as fd:
        fd.write("n1.vc.test 127.0.9.1:2811\n")
    proc = _Py(code, _Env(root, "n1.vc.test"))
    assert proc.stdout.strip() == "['-b', '127.0.9.1', '-p', '2811'] []", proc.stderr
    proc = _Py("from ganeti import daemon_util as d; print(d.Main(['check',"
               " 'ganeti-noded']))", _Env(root, "n1.vc.test"))
    assert "ganeti-noded not running" in proc.stdout and proc.stdout.strip()[-1] == "1"


@pytest.mark.timeout(120)
def test_init_without_daemons_and_refusal(short_base):
    """InitCluster in a fresh root (run in a child: paths follow the env)."""
    base = short_base
    root = os.path.join(base, "m1.vc.test")
    os.makedirs(root)
    code = """
import json
from ganeti import errors, pathutils, ssconf
import os
from ganeti.bootstrap import cluster as b
try:
    b.InitCluster("c2.vc.test", node_ip="nonsense", start_daemons=False)
except errors.OpPrereqError as err:
    bad_ip = str(err)
bad_ip += " created" if os.path.exists(pathutils.CLUSTER_CONF_FILE) else ""
data = b.InitCluster("c.vc.test", node_ip="127.0.9.5", noded_port=2811,
                     enabled_hypervisors=["fake"], enabled_disk_templates=["diskless"],
                     master_netdev="lo", modify_etc_hosts=False, modify_ssh_setup=False,
                     hvparams={"fake": {"migration_mode": "non-live"}},
                     beparams={"maxmem": "512M"}, uid_pool=[(100, 200)],
                     candidate_pool_size=4, start_daemons=False)
before = open(pathutils.CLUSTER_CONF_FILE, "rb").read()
try:
    b.InitCluster("c.vc.test", node_ip="127.0.9.5", start_daemons=False)
    refused = None
except errors.OpPrereqError as err:
    refused = str(err)
same = open(pathutils.CLUSTER_CONF_FILE, "rb").read() == before
c = data.cluster
master = data.nodes[c.master_node]
print(json.dumps([refused, same, bad_ip, c.master_ip, master.name, master.noded_port,
                  c.hvparams["fake"]["migration_mode"], c.beparams["default"]["maxmem"],
                  c.candidate_pool_size, c.modify_etc_hosts, c.modify_ssh_setup,
                  ssconf.SimpleStore().GetMasterNode(), b.GetMaster(),
                  sorted(ssconf.SimpleStore().GetNodedEndpoints().items())]))
"""
    proc = _Py(code, _Env(root, "m1.vc.test"))
    assert proc.returncode == 0, proc.stderr
    import json
    (refused, same, bad_ip, master_ip, name, port, mode, maxmem, pool, etc_hosts,
     ssh, ss_master, getmaster, endpoints) = json.loads(proc.stdout.splitlines()[-1])
    assert "already initialised" in refused and same
    assert "Invalid node IP 'nonsense'" in bad_ip and "created" not in bad_ip
    assert master_ip == "127.0.9.5" and name == "m1.vc.test" and port == 2811
    assert mode == "non-live" and maxmem == 512 and pool == 4
    assert etc_hosts is False and ssh is False
    assert ss_master == getmaster == "m1.vc.test"
    assert endpoints == [["m1.vc.test", ["127.0.9.5", 2811]]]
    for name in ("server.pem", "client.pem", "hmac.key", "rapi.pem"):
        assert os.path.exists(os.path.join(root, "var/lib/ganeti", name))
    assert pathutils.GetRootDirectory() != root   # this process is untouched
