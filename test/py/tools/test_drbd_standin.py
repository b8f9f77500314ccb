"""Tests of the DRBD stand-in (tools/drbd-standin) run as programs: what it
accepts and rejects, the files it writes, and how two nodes' ends meet."""

import json
import os
import subprocess
import sys

import pytest

from ganeti import constants
from ganeti.storage import drbd_cmdgen as cg
from ganeti.storage import drbd_info

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
STANDIN = os.path.join(REPO, "tools", "drbd-standin")
IP = {"a": "192.0.2.1", "b": "192.0.2.2"}


class Nodes:
    """Run the stand-in's programs as node "a" or "b" of one virtual cluster."""

    def __init__(self, base_dir):
        self.base = base_dir
        self.env = dict(os.environ, DRBD_STANDIN_TIME="1000000",
                        DRBD_STANDIN_SYNC_MIB_S="1",
                        PATH=f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}")
        for key in ("DRBD_STANDIN_SHARED", "DRBD_STANDIN_KERNEL_VERSION"):
            self.env.pop(key, None)

    def Root(self, node):
        return str(self.base / f"node-{node}")

    def Run(self, node, *argv, program="drbdsetup", **env):
        full_env = dict(self.env, **env)
        if node is not None:
            full_env["GANETI_ROOTDIR"] = self.Root(node)
        else:
            full_env.pop("GANETI_ROOTDIR", None)
        return subprocess.run([os.path.join(STANDIN, program), *argv], env=full_env,
                              capture_output=True, text=True, check=False)

    def Ok(self, node, cmd, **env):
        """Run a command line as drbd_cmdgen makes it; it must succeed."""
        result = self.Run(node, *cmd[1:], program=cmd[0], **env)
        assert result.returncode == 0, (cmd, result.stderr)
        return result.stdout

    def Proc(self, node):
        with open(os.path.join(self.Root(node), "proc/drbd")) as handle:
            return handle.read()

    def Setup(self, node, minor, peer_minor=None, secret="s", **params):
        """A device of ``minor`` as DRBD8Dev sets it up (network if a peer)."""
        meta = f"/dev/xenvg/{node}{minor}.meta"
        self.Ok(node, cg.CreateMetaCmd(minor, meta))
        self.Ok(node, cg.NewResourceCmd(minor))
        self.Ok(node, cg.NewMinorCmd(minor))
        self.Ok(node, cg.AttachCmd(minor, f"/dev/xenvg/{node}{minor}.data", meta, 1024,
                                   params))
        if peer_minor is not None:
            peer = "b" if node == "a" else "a"
            self.Ok(node, cg.ConnectCmd(minor, "ipv4", IP[node], 11000, IP[peer], 11000,
                                        params, secret=secret))


@pytest.fixture
def nodes(tmp_path):
    return Nodes(tmp_path / "vc")


@pytest.mark.parametrize("root", [None, "", "relative/dir", "/"])
def test_refuses_without_a_node_root(nodes, root):
    env = {} if root is None else {"GANETI_ROOTDIR": root}
    result = subprocess.run([os.path.join(STANDIN, "drbdsetup"), "show", "all"],
                            env=dict({k: v for k, v in nodes.env.items()
                                      if k != "GANETI_ROOTDIR"}, **env),
                            capture_output=True, text=True, check=False)
    assert result.returncode == 20
    assert "only serves virtual cluster nodes" in result.stderr
    assert not os.path.exists(nodes.base)


def test_accepts_every_generated_command(nodes):
    params = dict(constants.DISK_DT_DEFAULTS[constants.DT_DRBD8])
    params.update({constants.DRBD_DISK_BARRIERS: "bfd", constants.DRBD_META_BARRIERS: True,
                   constants.DRBD_DYNAMIC_RESYNC: True, constants.DRBD_PROTOCOL: "B",
                   constants.DRBD_DISK_CUSTOM: "--al-extents 3389 --disk-timeout=0",
                   constants.DRBD_NET_CUSTOM: "--max-buffers 8000 --tcp-cork=no"})
    nodes.Setup("a", 0, 1, **params)
    nodes.Setup("b", 1, 0, **params)
    nodes.Ok("a", cg.PrimaryCmd(0, force=True))
    nodes.Ok("a", cg.ResizeCmd(0, 2048))
    nodes.Ok("a", cg.ShowCmd(0))
    nodes.Ok("a", cg.ShowCmd("all"))
    nodes.Ok("a", cg.StatusCmd())
    nodes.Ok("a", cg.SecondaryCmd(0))
    nodes.Ok("a", cg.DisconnectCmd("ipv4", IP["a"], 11000, IP["b"], 11000))
    nodes.Ok("a", cg.ConnectCmd(0, "ipv4", IP["a"], 11000, IP["b"], 11000, params,
                                dual_primary=True, secret="s"))
    nodes.Ok("a", cg.DetachCmd(0))
    nodes.Ok("a", cg.DownCmd(0))
    assert "resource0" not in nodes.Ok("a", cg.ShowCmd("all"))


@pytest.mark.parametrize("argv,message", [
    (["frobnicate"], "unknown command 'frobnicate'"),
    ([], "unknown command ''"),
    (["new-minor", "resource0", "0"], "expected 3 arguments, got 2"),
    (["show"], "expected 1 arguments, got 0"),
    (["attach", "0", "/dev/d", "/dev/m", "0", "--no-such-option"],
     "unrecognized option '--no-such-option'"),
    (["attach", "0", "/dev/d", "/dev/m", "0", "--size"], "'--size' needs a value"),
    (["attach", "0", "/dev/d", "/dev/m", "0", "--size", "big"], "invalid number 'big'"),
    (["attach", "0", "/dev/d", "/dev/m", "0", "--disk-barrier=maybe"], "yes or no"),
    (["attach", "0", "/dev/d", "/dev/m", "meta"], "invalid meta data index"),
    (["connect", "r", "ipv4:1.2.3.4:1", "ipv4:1.2.3.5:1", "--protocol", "D"],
     "invalid value 'D' for --protocol"),
    (["connect", "r", "ipv4:1.2.3.4", "ipv4:1.2.3.5:1"], "invalid address"),
    (["connect", "r", "ipv6:::1:1", "ipv6:[::2]:1"], "invalid address"),
    (["connect", "r", "ipv4:1.2.3.4:1", "ipv4:1.2.3.4:1"], "must differ"),
    (["connect", "r", "1.2.3.4:1", "1.2.3.5:1", "--tentative=yes"], "takes no value"),
    (["primary", "zero"], "invalid minor 'zero'"),
    (["new-resource", "bad/name"], "invalid resource name"),
    (["status", "a", "b"], "expected 0 to 1 arguments"),
])
def test_rejects_bad_command_lines(nodes, argv, message):
    result = nodes.Run("a", *argv)
    assert result.returncode == 20
    assert message in result.stderr and result.stderr.startswith("drbdsetup")


@pytest.mark.parametrize("argv,message", [
    (["--force", "/dev/drbd0", "v08", "/dev/m", "0", "dump-md"], "only runs"),
    (["--force", "/dev/drbd0", "v09", "/dev/m", "0", "create-md"], "only runs"),
    (["/dev/drbd0", "v08", "/dev/m", "create-md"], "only runs"),
    (["--force", "/dev/drbdX", "v08", "/dev/m", "0", "create-md"], "invalid minor"),
    (["--force", "/dev/drbd0", "v08", "/dev/m", "flex", "create-md"], "invalid meta data"),
])
def test_drbdmeta_rejects(nodes, argv, message):
    result = nodes.Run("a", *argv, program="drbdmeta")
    assert result.returncode == 20 and message in result.stderr


def test_drbdmeta_needs_force_to_overwrite(nodes):
    nodes.Ok("a", ["drbdmeta", "/dev/drbd0", "v08", "/dev/m", "0", "create-md"])
    result = nodes.Run("a", "/dev/drbd0", "v08", "/dev/m", "0", "create-md",
                       program="drbdmeta")
    assert result.returncode == 20 and "--force" in result.stderr
    nodes.Setup("a", 1)
    result = nodes.Run("a", *cg.CreateMetaCmd(1, "/dev/xenvg/a1.meta")[1:],
                       program="drbdmeta")
    assert result.returncode == 20 and "in use by minor 1" in result.stderr


def test_kernel_failures(nodes):
    result = nodes.Run("a", "new-minor", "resource0", "0", "0")
    assert (result.returncode, result.stderr.strip()) == \
        (10, "resource0: Failure: (158) Unknown resource")
    nodes.Ok("a", cg.NewResourceCmd(0))
    nodes.Ok("a", cg.NewResourceCmd(0))  # again: fine, as drbdsetup
    result = nodes.Run("a", "new-minor", "resource0", "0", "1")
    assert result.returncode == 20 and "volume 0 only" in result.stderr
    nodes.Ok("a", cg.NewMinorCmd(0))
    result = nodes.Run("a", *cg.NewMinorCmd(0)[1:])
    assert result.returncode == 10 and "(161) Minor or volume exists" in result.stderr
    result = nodes.Run("a", *cg.AttachCmd(0, "/dev/d", "/dev/m", 10, {})[1:])
    assert result.returncode == 10 and "(119) No valid meta data found" in result.stderr
    result = nodes.Run("a", *cg.PrimaryCmd(0)[1:])
    assert (result.returncode, result.stderr.strip()) == \
        (11, "0: State change failed: (-2) Need access to UpToDate data")
    result = nodes.Run("a", *cg.SecondaryCmd(5)[1:])
    assert result.returncode == 10 and "(127) Device minor not allocated" in result.stderr
    nodes.Setup("a", 1)
    result = nodes.Run("a", *cg.AttachCmd(0, "/dev/xenvg/a1.data", "/dev/other", 10,
                                          {})[1:])
    assert result.returncode == 10 and "(114) Lower device is already claimed" in \
        result.stderr
    result = nodes.Run("a", *cg.DisconnectCmd("ipv4", IP["a"], 1, IP["b"], 1)[1:])
    assert result.returncode == 10 and "Unknown connection" in result.stderr


def test_state_files_and_registry(nodes):
    nodes.Setup("a", 0, 1, secret="xyz")
    state = os.path.join(nodes.Root("a"), "var/lib/drbd-standin", "state.json")
    with open(state) as handle:
        node_state = json.load(handle)
    rec = node_state["resources"]["resource0"]
    assert list(node_state["metadata"]["disks"]) == ["/dev/xenvg/a0.meta"]
    assert rec["minor"] == 0 and rec["dstate"] == "Inconsistent"
    assert rec["net"]["local"] == f"ipv4:{IP['a']}:11000" and rec["net"]["secret"] == "xyz"
    assert rec["size_kib"] == 1024 * 1024
    registry = nodes.base / "drbd-standin"

    def Endpoints():
        with open(registry / "endpoints.json") as handle:
            return json.load(handle)

    assert sorted(os.listdir(registry)) == [".lock", "endpoints.json"]
    assert Endpoints() == {f"ipv4:{IP['a']}:11000": {"root": nodes.Root("a"),
                                                     "resource": "resource0"}}
    # another node cannot take the same local address
    nodes.Ok("b", cg.NewResourceCmd(4))
    result = nodes.Run("b", *cg.ConnectCmd(4, "ipv4", IP["a"], 11000, IP["b"], 11000, {})[1:])
    assert result.returncode == 10 and "(102) Local address(port) already in use" in \
        result.stderr
    nodes.Ok("a", cg.DownCmd(0))
    assert Endpoints() == {}
    with open(state) as handle:
        assert json.load(handle)["resources"] == {}


def test_shared_directory_from_the_environment(nodes, tmp_path):
    shared = tmp_path / "elsewhere"
    nodes.env["DRBD_STANDIN_SHARED"] = str(shared)
    nodes.Setup("a", 0, 1)
    with open(shared / "endpoints.json") as handle:
        assert f"ipv4:{IP['a']}:11000" in json.load(handle)


def test_proc_drbd_format_and_sync(nodes):
    nodes.Setup("a", 0, 1)
    assert nodes.Proc("a").splitlines() == [
        "version: 8.4.11 (api:1/proto:86-101)",
        "srcversion: 0D57A19DC3E4E0CE5DA0ED4",
        " 0: cs:WFConnection ro:Secondary/Unknown ds:Inconsistent/DUnknown C r-----",
        "    ns:0 nr:0 dw:0 dr:0 al:0 bm:0 lo:0 pe:0 ua:0 ap:0 ep:1 wo:f oos:0"]
    nodes.Setup("b", 1, 0)
    nodes.Ok("b", cg.PrimaryCmd(1, force=True))
    # 1 GiB at 1 MiB/s, 256 seconds later
    nodes.Ok("a", cg.ShowCmd(0), DRBD_STANDIN_TIME="1000256")
    lines = nodes.Proc("a").splitlines()
    assert lines[2] == \
        " 0: cs:SyncTarget ro:Secondary/Primary ds:Inconsistent/UpToDate C r-----"
    assert lines[4] == "\t[====>...............] sync'ed: 25.0% (786432/1048576)K"
    assert lines[5] == "\tfinish: 0:12:48 speed: 1,024 (1,024) K/sec"
    status = drbd_info.ParseProcDrbd(nodes.Proc("a")).GetMinor(0)
    assert status.sync_percent == 25.0 and status.est_time == 768
    nodes.Ok("a", cg.ShowCmd(0), DRBD_STANDIN_TIME="1002000")
    status = drbd_info.ParseProcDrbd(nodes.Proc("a")).GetMinor(0)
    assert status.is_connected and status.is_disk_uptodate and status.peer_primary
    # the peer's file was rewritten too
    assert drbd_info.ParseProcDrbd(nodes.Proc("b")).GetMinor(1).is_connected
    with open(os.path.join(nodes.Root("a"),
                           "sys/module/drbd/parameters/usermode_helper")) as handle:
        assert handle.read() == "/bin/true\n"


def test_show_and_status_parse(nodes):
    nodes.Setup("a", 0, 1, secret="xyz")
    nodes.Setup("b", 1, 0, secret="xyz")
    info = drbd_info.ParseShow(nodes.Ok("a", cg.ShowCmd(0)))
    assert info.resource == "resource0" and info.minor == 0
    assert info.local_dev == "/dev/xenvg/a0.data" and info.meta_index == 0
    assert info.local_addr == ("ipv4", IP["a"], 11000) and info.secret == "xyz"
    assert info.disk_options["size"] == f"{1024 * 2048}s"
    resources = drbd_info.ParseDrbd9Status(nodes.Ok("a", cg.StatusCmd()))
    minors = drbd_info.MinorsFromDrbd9(resources)
    assert minors[0].is_connected and minors[0].rdisk == "Inconsistent"
    assert resources[0].connections[0].name == "node-b"


def test_dual_primary_rules(nodes):
    nodes.Setup("a", 0, 1)
    nodes.Setup("b", 1, 0)
    nodes.Ok("a", cg.PrimaryCmd(0, force=True))
    result = nodes.Run("b", *cg.PrimaryCmd(1)[1:])
    assert result.returncode == 11 and "Multiple primaries not allowed" in result.stderr
    for node, minor, peer in (("a", 0, "b"), ("b", 1, "a")):
        nodes.Ok(node, cg.DisconnectCmd("ipv4", IP[node], 11000, IP[peer], 11000))
        nodes.Ok(node, cg.ConnectCmd(minor, "ipv4", IP[node], 11000, IP[peer], 11000, {},
                                     dual_primary=True, secret="s"))
    nodes.Ok("b", cg.PrimaryCmd(1))
    status = drbd_info.ParseProcDrbd(nodes.Proc("b")).GetMinor(1)
    assert status.is_primary and status.peer_primary


def test_fail_disk(nodes):
    result = nodes.Run("a", "explode", program="drbdsetup-standin-ctl")
    assert result.returncode == 20 and "fail-disk MINOR" in result.stderr
    nodes.Setup("a", 0, 1)
    nodes.Setup("b", 1, 0)
    nodes.Ok("a", cg.PrimaryCmd(0, force=True))
    nodes.Ok("a", cg.ShowCmd(0), DRBD_STANDIN_TIME="1002000")
    out = nodes.Ok("b", ["drbdsetup-standin-ctl", "fail-disk", "1"],
                   DRBD_STANDIN_TIME="1002000")
    assert "now Diskless" in out
    status = drbd_info.ParseProcDrbd(nodes.Proc("a")).GetMinor(0)
    assert status.rdisk == "Diskless" and status.is_connected
    assert not drbd_info.ParseShow(nodes.Ok("b", cg.ShowCmd(1))).has_local_disk
    result = nodes.Run("b", "fail-disk", "1", program="drbdsetup-standin-ctl")
    assert result.returncode == 10 and "does not have a disk" in result.stderr


def test_failed_command_changes_nothing(nodes):
    nodes.Ok("a", cg.NewResourceCmd(0))
    result = nodes.Run("a", "connect", "resource0", "ipv4:1.2.3.4:1", "ipv4:1.2.3.5:1",
                       "--protocol", "Z")
    assert result.returncode == 20
    assert not drbd_info.ParseShow(nodes.Ok("a", cg.ShowCmd("all"))).has_network


def test_parallel_commands(nodes):
    procs = []
    for minor in range(8):
        env = dict(nodes.env, GANETI_ROOTDIR=nodes.Root("a"))
        procs.append(subprocess.Popen(
            [os.path.join(STANDIN, "drbdsetup"), "new-resource", f"resource{minor}"],
            env=env))
    assert [proc.wait() for proc in procs] == [0] * 8
    with open(os.path.join(nodes.Root("a"), "var/lib/drbd-standin", "state.json")) as handle:
        names = sorted(json.load(handle)["resources"])
    assert names == sorted(f"resource{minor}" for minor in range(8))


def test_state_of_the_earlier_layout_is_moved(nodes):
    nodes.Setup("a", 0, 1)
    nodes.Setup("b", 1, 0)
    state = os.path.join(nodes.Root("a"), "var/lib/drbd-standin")
    registry = nodes.base / "drbd-standin"
    with open(os.path.join(state, "state.json")) as handle:
        node_state = json.load(handle)
    with open(registry / "endpoints.json") as handle:
        endpoints = json.load(handle)
    # the earlier layout: a file per resource and per endpoint
    os.unlink(os.path.join(state, "state.json"))
    os.unlink(registry / "endpoints.json")
    for name, rec in node_state["resources"].items():
        with open(os.path.join(state, f"res-{name}.json"), "w") as handle:
            json.dump(rec, handle)
    with open(os.path.join(state, "metadata.json"), "w") as handle:
        json.dump({"name": ".metadata", **node_state["metadata"]}, handle)
    for endpoint, entry in endpoints.items():
        with open(registry / endpoint, "w") as handle:
            json.dump(entry, handle)
    before = nodes.Proc("a")
    nodes.Ok("a", cg.ShowCmd("all"))
    assert nodes.Proc("a") == before and "cs:Connected" in before
    assert sorted(os.listdir(state)) == ["state.json"]
    assert sorted(os.listdir(registry)) == [".lock", "endpoints.json"]
    with open(os.path.join(state, "state.json")) as handle:
        assert json.load(handle) == node_state
