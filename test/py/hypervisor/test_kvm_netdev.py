"""Tests for ganeti.hypervisor.hv_kvm.netdev: taps, their NIC scripts, cleanup.

Three layers:

- pure functions (tap names, VLAN syntax, the script's environment);
- the command lines of every NIC mode: the real ``tools/kvm-nic-setup`` runs with
  fake ``ip``, ``bridge`` and ``ovs-vsctl`` first on its PATH, which record
  their arguments (Open vSwitch is not installed here), and CleanupNic runs
  against a recording ``RunCmd``;
- real kernel objects, as root only: each such test creates its own network
  namespace and runs its scenario in a child process inside it, so that no
  interface of the host is touched; the namespace is deleted afterwards.
  Without root these tests are skipped (reported as skipped, not passed).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import struct
import subprocess
import sys
import textwrap
import uuid as uuidlib
from pathlib import Path

import pytest

from ganeti import constants as C
from ganeti import errors, objects, pathutils, utils
from ganeti.hypervisor.hv_kvm import netdev
from ganeti.utils.process import RunResult

IFUP = str(Path(__file__).resolve().parents[3] / "tools" / "kvm-nic-setup")
INST_UUID = "0a1b2c3d-0000-4000-8000-000000000001"
NIC_UUID = "9f8e7d6c-0000-4000-8000-000000000002"
TAP = "gnt1234567-0"


def _Instance(tags=("web", "db")) -> objects.Instance:
    inst = objects.Instance(name="inst1.example.com", uuid=INST_UUID, nics=[],
                            hvparams={}, beparams={})
    for tag in tags:
        inst.AddTag(tag)
    return inst


def _Nic(ip: str | None = "192.0.2.10", **kwargs) -> objects.NIC:
    return objects.NIC(mac="52:54:00:12:34:56", ip=ip, uuid=NIC_UUID, name="eth0",
                       nicparams={}, **kwargs)


def _Params(mode: str, link: str = "", vlan: str = "") -> dict:
    return {C.NIC_MODE: mode, C.NIC_LINK: link, C.NIC_VLAN: vlan}


# --- Tap names -------------------------------------------------------------------


def test_tap_names_are_short_stable_and_distinct():
    names = {netdev.TapName("inst1", idx, uuid=INST_UUID) for idx in range(C.MAX_NICS)}
    assert len(names) == C.MAX_NICS
    for name in names:
        assert len(name.encode()) <= netdev.MAX_IFNAME_LEN
        assert name.startswith(netdev.TapPrefix("inst1", INST_UUID))
    assert netdev.TapName("inst1", 3, uuid=INST_UUID) == netdev.TapName("inst1", 3, INST_UUID)
    # the UUID, not the name, decides: a renamed instance keeps its taps
    assert netdev.TapName("renamed", 3, uuid=INST_UUID) == netdev.TapName("inst1", 3, INST_UUID)
    assert netdev.TapName("inst1", 0) != netdev.TapName("inst2", 0)
    assert netdev.TapName("inst1", 0).startswith(netdev.TapPrefix("inst1"))
    other = str(uuidlib.UUID(int=1))
    assert netdev.TapName("x", 0, INST_UUID) != netdev.TapName("x", 0, other)


def test_tap_name_from_nic_uuid_ignores_the_index():
    first = netdev.TapName("inst1", 0, INST_UUID, nic_uuid=NIC_UUID)
    assert first == netdev.TapName("inst1", 5, INST_UUID, nic_uuid=NIC_UUID)
    assert first != netdev.TapName("inst1", 0, INST_UUID, nic_uuid=str(uuidlib.UUID(int=7)))
    assert first.startswith(netdev.TapPrefix("inst1", INST_UUID))
    assert len(first) <= netdev.MAX_IFNAME_LEN


def test_tap_name_refuses_a_bad_index():
    with pytest.raises(errors.ProgrammerError):
        netdev.TapName("inst1", -1)
    with pytest.raises(errors.ProgrammerError, match="too large"):
        netdev.TapName("inst1", 100000)


# --- VLAN syntax -----------------------------------------------------------------


@pytest.mark.parametrize("text, access, trunks", [
    ("5", 5, ()),
    (".5", 5, ()),
    (".4094", 4094, ()),
    (":10", None, (10,)),
    (":10:20:30", None, (10, 20, 30)),
    (".1:2", 1, (2,)),
    (".100:200:300", 100, (200, 300)),
])
def test_vlan_good(text, access, trunks):
    assert netdev.ParseVlan(text) == netdev.Vlan(access, trunks)


def test_vlan_empty_is_none():
    assert netdev.ParseVlan("") is None
    assert netdev.ParseVlan(None) is None


@pytest.mark.parametrize("text, why", [
    (".", "expected"), (":", "expected"), ("5:6", "expected"), ("x", "expected"),
    ("5.", "expected"), ("::5", "expected"), (".5:", "expected"), ("-1", "expected"),
    (" 5", "expected"), ("12345", "expected"), (".5::6", "expected"),
    ("0", "out of range"), ("4095", "out of range"), (":1:4095", "out of range"),
    (".5:5", "given twice"), (":7:7", "given twice"),
])
def test_vlan_bad(text, why):
    with pytest.raises(errors.HypervisorError, match=why) as err:
        netdev.ParseVlan(text)
    assert f"'{text}'" in str(err.value)


# --- OpenTap without a kernel ---------------------------------------------------


@pytest.mark.parametrize("name", ["", "x" * 16, "a/b", "a b", "a:b", ".", "tab\tx"])
def test_open_tap_refuses_bad_names(name):
    with pytest.raises(errors.HypervisorError, match="Invalid network interface name"):
        netdev.OpenTap(name)


def test_open_tap_refuses_zero_queues():
    with pytest.raises(errors.HypervisorError, match="queues"):
        netdev.OpenTap("gnttest0", queues=0)


def test_open_tap_without_tun_device_names_interface_and_errno(monkeypatch, tmp_path):
    monkeypatch.setattr(netdev, "_TUN_DEVICE", str(tmp_path / "no-tun"))
    with pytest.raises(errors.HypervisorError) as err:
        netdev.OpenTap("gnttest0")
    assert "gnttest0" in str(err.value) and "ENOENT" in str(err.value)


def _OpenFds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


@pytest.mark.parametrize("vnet_hdr, queues, features, expected", [
    (True, 1, netdev._IFF_VNET_HDR, netdev._IFF_VNET_HDR),
    (False, 1, netdev._IFF_VNET_HDR, 0),
    # a kernel without vnet_hdr: opened without, as Ganeti
    (True, 1, 0, 0),
    (True, 3, netdev._IFF_VNET_HDR | netdev._IFF_MULTI_QUEUE,
     netdev._IFF_VNET_HDR | netdev._IFF_MULTI_QUEUE),
])
def test_open_tap_flags(monkeypatch, vnet_hdr, queues, features, expected):
    calls = []

    def ioctl(fd, request, arg):
        calls.append((request, arg))
        if request == netdev._TUNGETFEATURES:
            return struct.pack("I", features)
        return arg

    monkeypatch.setattr(netdev, "_TUN_DEVICE", "/dev/null")
    monkeypatch.setattr(netdev.fcntl, "ioctl", ioctl)
    before = _OpenFds()
    fds = netdev.OpenTap("gnttest0", vnet_hdr=vnet_hdr, queues=queues)
    try:
        assert len(fds) == queues and len(set(fds)) == queues
        # close-on-exec: QEMU gets them only through pass_fds
        assert not any(os.get_inheritable(fd) for fd in fds)
    finally:
        for fd in fds:
            os.close(fd)
    assert _OpenFds() == before
    setiff = [arg for request, arg in calls if request == netdev._TUNSETIFF]
    assert len(setiff) == queues
    for arg in setiff:
        name, flags = struct.unpack(netdev._IFREQ, arg)
        assert name.rstrip(b"\0") == b"gnttest0"
        assert flags == netdev._IFF_TAP | netdev._IFF_NO_PI | expected


def test_open_tap_failure_closes_what_it_opened(monkeypatch):
    count = {"setiff": 0}

    def ioctl(fd, request, arg):
        if request == netdev._TUNGETFEATURES:
            return struct.pack("I", netdev._IFF_MULTI_QUEUE | netdev._IFF_VNET_HDR)
        count["setiff"] += 1
        if count["setiff"] == 2:
            raise OSError(errno.EBUSY, os.strerror(errno.EBUSY))
        return arg

    monkeypatch.setattr(netdev, "_TUN_DEVICE", "/dev/null")
    monkeypatch.setattr(netdev.fcntl, "ioctl", ioctl)
    before = _OpenFds()
    with pytest.raises(errors.HypervisorError) as err:
        netdev.OpenTap("gnttest0", queues=3)
    assert _OpenFds() == before
    message = str(err.value)
    assert "gnttest0" in message and "EBUSY" in message and "queue 2 of 3" in message


def test_open_tap_multiqueue_needs_kernel_support(monkeypatch):
    monkeypatch.setattr(netdev, "_TUN_DEVICE", "/dev/null")
    monkeypatch.setattr(netdev.fcntl, "ioctl",
                        lambda fd, request, arg: struct.pack("I", netdev._IFF_VNET_HDR))
    before = _OpenFds()
    with pytest.raises(errors.HypervisorError, match="multi-queue"):
        netdev.OpenTap("gnttest0", queues=2)
    assert _OpenFds() == before


# --- The environment -------------------------------------------------------------


def test_environment_has_ganeti_names():
    nic = _Nic(network="net-uuid-1", netinfo={
        "name": "office", "uuid": "net-uuid-1", "network": "192.0.2.0/24",
        "gateway": "192.0.2.1", "mac_prefix": "aa:00:00", "tags": ["b", "a"]})
    env = netdev.NicEnvironment("inst1", 2, nic, _Params("bridged", "br0", ".5:6"), TAP,
                                tags={"web", "db"})
    assert env["INSTANCE"] == "inst1" and env["INTERFACE"] == TAP
    assert env["INTERFACE_INDEX"] == "2" and env["INTERFACE_UUID"] == NIC_UUID
    assert env["INTERFACE_NAME"] == "eth0"
    assert env["MAC"] == "52:54:00:12:34:56" and env["IP"] == "192.0.2.10"
    assert env["MODE"] == "bridged" and env["LINK"] == env["BRIDGE"] == "br0"
    assert (env["VLAN"], env["VLAN_ACCESS"], env["VLAN_TRUNKS"]) == (".5:6", "5", "6")
    assert env["TAGS"] == "db web"
    assert env["NETWORK"] == "net-uuid-1" and env["NETWORK_NAME"] == "office"
    assert env["NETWORK_SUBNET"] == "192.0.2.0/24" and env["NETWORK_GATEWAY"] == "192.0.2.1"
    assert env["NETWORK_MAC_PREFIX"] == "aa:00:00" and env["NETWORK_TAGS"] == "a b"
    assert "/usr/sbin" in env["PATH"].split(":")


def test_environment_without_optional_values():
    env = netdev.NicEnvironment("inst1", 0, _Nic(ip=None), _Params("routed"), TAP)
    for key in ("IP", "BRIDGE", "VLAN", "VLAN_ACCESS", "NETWORK", "NETWORK_NAME"):
        assert key not in env, key
    assert env["LINK"] == "" and env["TAGS"] == ""


# --- The up scripts' command lines, with fake tools ------------------------------------

_FAKE_IP = r"""#!/bin/sh
echo "ip $*" >> "{log}"
case "$*" in
  *"link show dev "*)
    dev=$(echo "$*" | sed 's/.* dev //')
    if [ "$dev" = missing0 ]; then
      echo "Device \"$dev\" does not exist." >&2; exit 1
    fi
    filtering=$(cat "{dir}/vlan_filtering")
    printf '%s' "7: $dev: <BROADCAST,MULTICAST> mtu 1400 qdisc noop state DOWN \\"
    printf '%s' "    link/ether 52:aa:bb:cc:dd:ee brd ff:ff:ff:ff:ff:ff bridge"
    echo " vlan_filtering $filtering default_pvid 1 "
    ;;
  "rule del"*)
    echo "RTNETLINK answers: No such file or directory" >&2; exit 2 ;;
  *"{fail}"*)
    echo "Error: bogus failure of $*" >&2; exit 2 ;;
esac
exit 0
"""

_FAKE_TOOL = """#!/bin/sh
echo "{tool} $*" >> "{log}"
"""


@pytest.fixture
def fake_tools(tmp_path, monkeypatch):
    """Fake ip/bridge/ovs-vsctl first on PATH; no custom scripts."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    log = tmp_path / "commands.log"
    log.touch()
    (tmp_path / "vlan_filtering").write_text("1\n")
    (bindir / "ip").write_text(_FAKE_IP.format(log=log, dir=tmp_path, fail="master failme"))
    for tool in ("bridge", "ovs-vsctl"):
        (bindir / tool).write_text(_FAKE_TOOL.format(tool=tool, log=log))
    for path in bindir.iterdir():
        path.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ.get('PATH', '/usr/bin:/bin')}")
    monkeypatch.setattr(pathutils, "CONF_DIR", str(tmp_path / "etc"))
    monkeypatch.setattr(pathutils, "KVM_IFUP_CUSTOM", str(tmp_path / "etc/kvm-ifup-custom"))
    monkeypatch.setattr(pathutils, "KVM_VIF_BRIDGE", str(tmp_path / "etc/kvm-vif-bridge"))
    monkeypatch.setattr(pathutils, "KVM_IFDOWN_CUSTOM",
                        str(tmp_path / "etc/kvm-ifdown-custom"))
    calls: list[tuple[list[str], dict]] = []
    real = utils.RunCmd

    def recording(cmd, env=None, **kwargs):
        calls.append((list(cmd), dict(env or {})))
        return real(cmd, env=env, **kwargs)

    monkeypatch.setattr(utils, "RunCmd", recording)

    class Fakes:
        dir = tmp_path
        runcmd_calls = calls

        @staticmethod
        def commands() -> list[str]:
            return log.read_text().splitlines()

    return Fakes


def _Configure(mode, link="", vlan="", ip="192.0.2.10", tap=TAP, **kwargs):
    netdev.ConfigureNic(_Instance(), 1, _Nic(ip=ip), _Params(mode, link, vlan), tap, **kwargs)


def test_configure_runs_our_script_with_the_tap_and_environment(fake_tools):
    _Configure("bridged", "br0")
    [(argv, env)] = fake_tools.runcmd_calls
    assert argv == [IFUP, TAP]
    assert os.access(IFUP, os.X_OK)
    assert env["INTERFACE"] == TAP and env["MODE"] == "bridged" and env["LINK"] == "br0"
    assert env["INSTANCE"] == "inst1.example.com" and env["TAGS"] == "db web"
    assert env["ACTION"] == "up" and "DRY_RUN" not in env


def test_bridged(fake_tools):
    _Configure("bridged", "br0")
    assert fake_tools.commands() == [
        "ip -o link show dev br0",
        f"ip -o link show dev {TAP}",
        # the tap's own address, with fe first: never the bridge's lowest
        f"ip link set dev {TAP} address fe:aa:bb:cc:dd:ee",
        f"ip link set dev {TAP} mtu 1400",
        f"ip link set dev {TAP} master br0",
        f"ip link set dev {TAP} up",
    ]


@pytest.mark.parametrize("vlan, expected", [
    (".100", ["bridge vlan del dev {tap} vid 1 master",
              "bridge vlan add dev {tap} vid 100 pvid untagged master"]),
    ("100", ["bridge vlan del dev {tap} vid 1 master",
             "bridge vlan add dev {tap} vid 100 pvid untagged master"]),
    (".100:200:300", ["bridge vlan del dev {tap} vid 1 master",
                      "bridge vlan add dev {tap} vid 100 pvid untagged master",
                      "bridge vlan add dev {tap} vid 200 master",
                      "bridge vlan add dev {tap} vid 300 master"]),
    # the bridge's default VLAN (1) asked for: kept, re-added tagged
    (":1:20", ["bridge vlan add dev {tap} vid 1 master",
               "bridge vlan add dev {tap} vid 20 master"]),
])
def test_bridged_vlans(fake_tools, vlan, expected):
    _Configure("bridged", "br0", vlan)
    commands = fake_tools.commands()
    assert f"ip link set dev {TAP} master br0" in commands
    assert "ip -d -o link show dev br0" in commands
    assert [c for c in commands if c.startswith("bridge")] == \
        [line.format(tap=TAP) for line in expected]


def test_bridged_vlan_needs_vlan_filtering(fake_tools):
    (fake_tools.dir / "vlan_filtering").write_text("0\n")
    with pytest.raises(errors.HypervisorError) as err:
        _Configure("bridged", "br0", ".100")
    assert "VLAN filtering" in str(err.value) and "br0" in str(err.value)
    assert not [c for c in fake_tools.commands() if c.startswith("bridge")]


def test_bridged_needs_a_bridge(fake_tools):
    with pytest.raises(errors.HypervisorError, match="needs a bridge"):
        _Configure("bridged", "")


def test_bridged_missing_bridge(fake_tools):
    with pytest.raises(errors.HypervisorError, match="bridge missing0 not found"):
        _Configure("bridged", "missing0")


def test_routed_with_table(fake_tools):
    _Configure("routed", "100")
    assert fake_tools.commands() == [
        f"ip link set dev {TAP} up",
        f"ip rule del iif {TAP}",
        f"ip rule add iif {TAP} table 100",
        f"ip route replace 192.0.2.10 table 100 proto static dev {TAP}",
    ]


def test_routed_main_table(fake_tools):
    _Configure("routed", "")
    assert fake_tools.commands() == [
        f"ip link set dev {TAP} up",
        f"ip route replace 192.0.2.10 proto static dev {TAP}",
    ]


def test_routed_needs_an_ip(fake_tools):
    with pytest.raises(errors.HypervisorError, match="needs the NIC's IP"):
        _Configure("routed", "100", ip=None)
    assert fake_tools.commands() == []


@pytest.mark.parametrize("vlan, extra", [
    ("", ""),
    (".10", " tag=10 vlan_mode=access"),
    ("10", " tag=10 vlan_mode=access"),
    (":10:20", " trunks=10,20 vlan_mode=trunk"),
    (".10:20:30", " tag=10 trunks=20,30 vlan_mode=native-untagged"),
])
def test_openvswitch(fake_tools, vlan, extra):
    _Configure("openvswitch", "ovsbr0", vlan)
    assert fake_tools.commands() == [
        f"ip link set dev {TAP} up",
        f"ovs-vsctl --if-exists del-port {TAP} -- add-port ovsbr0 {TAP}{extra}",
    ]


def test_openvswitch_needs_a_switch(fake_tools):
    with pytest.raises(errors.HypervisorError, match="needs a switch"):
        _Configure("openvswitch", "")


def test_failing_command_gives_its_output(fake_tools):
    with pytest.raises(errors.HypervisorError) as err:
        _Configure("bridged", "failme")
    message = str(err.value)
    assert TAP in message and "inst1.example.com" in message
    assert "bogus failure of link set" in message and "exit code" in message


@pytest.mark.parametrize("params, match", [
    (_Params("bridged", "br0", "5:6"), "Invalid VLAN '5:6'"),
    (_Params("bogus", "br0"), "Invalid mode 'bogus'"),
    ({C.NIC_LINK: "br0"}, "Invalid mode None"),
])
def test_bad_parameters_run_nothing(fake_tools, params, match):
    with pytest.raises(errors.HypervisorError, match=match):
        netdev.ConfigureNic(_Instance(), 0, _Nic(), params, TAP)
    assert fake_tools.runcmd_calls == [] and fake_tools.commands() == []


def test_bad_tap_name_runs_nothing(fake_tools):
    with pytest.raises(errors.HypervisorError, match="Invalid network interface"):
        _Configure("bridged", "br0", tap="x" * 16)
    assert fake_tools.runcmd_calls == []


def _WriteScript(path: Path, body: str, mode: int = 0o755) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(mode)


@pytest.mark.parametrize("attr", ["KVM_IFUP_CUSTOM", "KVM_VIF_BRIDGE"])
def test_custom_script_replaces_ours(fake_tools, attr):
    custom = Path(getattr(pathutils, attr))
    out = fake_tools.dir / "custom.out"
    _WriteScript(custom, f'echo "$1 $MODE $LINK $VLAN_ACCESS $X" > "{out}"\n')
    _Configure("bridged", "br0", ".7", extra_env={"X": "extra"})
    assert fake_tools.runcmd_calls[0][0] == [str(custom), TAP]
    assert out.read_text().split() == [TAP, "bridged", "br0", "7", "extra"]
    assert fake_tools.commands() == []


def test_custom_script_not_executable_is_ignored(fake_tools):
    _WriteScript(Path(pathutils.KVM_IFUP_CUSTOM), "exit 1\n", mode=0o644)
    _Configure("routed", "")
    assert fake_tools.runcmd_calls[0][0] == [IFUP, TAP]


def test_custom_script_failure(fake_tools):
    _WriteScript(Path(pathutils.KVM_IFUP_CUSTOM), "echo 'no way' >&2; exit 3\n")
    with pytest.raises(errors.HypervisorError, match="no way") as err:
        _Configure("routed", "")
    assert "exit code 3" in str(err.value)


# --- CleanupNic's command lines, with a recording runner --------------------------


class FakeRunner:
    """Answers commands by prefix; records every command line."""

    def __init__(self, answers=None, tap_kind="tun"):
        self.calls: list[list[str]] = []
        self.envs: list[dict] = []
        self.answers = dict(answers or {})
        self.tap_kind = tap_kind
        self.rules = 0

    def __call__(self, cmd, env=None, **kwargs):
        cmd = list(cmd)
        self.calls.append(cmd)
        self.envs.append(dict(env or {}))
        line = " ".join(cmd)
        for prefix, answer in self.answers.items():
            if line.startswith(prefix):
                if isinstance(answer, Exception):
                    raise answer
                code, out = answer
                return RunResult(code, None, out if code == 0 else "",
                                 out if code else "", cmd)
        if line.startswith("ip rule del"):
            if self.rules:
                self.rules -= 1
                return RunResult(0, None, "", "", cmd)
            return RunResult(2, None, "", "RTNETLINK answers: No such file or directory",
                             cmd)
        if line.startswith("ip -d -j link show dev"):
            if self.tap_kind is None:
                return RunResult(1, None, "", f'Device "{cmd[-1]}" does not exist.', cmd)
            info = json.dumps([{"ifname": cmd[-1], "linkinfo": {"info_kind": self.tap_kind}}])
            return RunResult(0, None, info, "", cmd)
        return RunResult(0, None, "", "", cmd)


@pytest.fixture
def runner(monkeypatch, tmp_path):
    monkeypatch.setattr(pathutils, "KVM_IFDOWN_CUSTOM", str(tmp_path / "kvm-ifdown-custom"))
    monkeypatch.setattr(pathutils, "CONF_DIR", str(tmp_path / "etc"))

    def install(**kwargs) -> FakeRunner:
        fake = FakeRunner(**kwargs)
        monkeypatch.setattr(utils, "RunCmd", fake)
        return fake

    return install


@pytest.mark.parametrize("mode, link", [("bridged", "br0"), ("routed", "100"),
                                        ("openvswitch", "ovsbr0")])
def test_cleanup_runs_the_down_script_then_deletes_the_tap(runner, mode, link):
    fake = runner()
    netdev.CleanupNic("inst1", 0, _Nic(), _Params(mode, link), TAP)
    assert fake.calls == [[IFUP, TAP],
                          ["ip", "-d", "-j", "link", "show", "dev", TAP],
                          ["ip", "link", "del", "dev", TAP]]
    assert fake.envs[0]["ACTION"] == "down" and fake.envs[0]["MODE"] == mode


def test_cleanup_down_script_failure_is_reported_after_the_rest(runner):
    fake = runner(answers={IFUP: (1, "database connection failed")})
    with pytest.raises(errors.HypervisorError, match="database connection failed"):
        netdev.CleanupNic("inst1", 0, _Nic(), _Params("openvswitch", "ovsbr0"), TAP)
    assert fake.calls[-1] == ["ip", "link", "del", "dev", TAP]


def test_cleanup_when_everything_is_gone(runner):
    fake = runner(tap_kind=None)
    netdev.CleanupNic("inst1", 0, _Nic(), _Params("routed", "100"), TAP)
    assert ["ip", "link", "del", "dev", TAP] not in fake.calls


def test_cleanup_leaves_a_non_tap_alone(runner):
    fake = runner(tap_kind="bridge")
    with pytest.raises(errors.HypervisorError, match="not a tap interface"):
        netdev.CleanupNic("inst1", 0, _Nic(), _Params("bridged", "br0"), "br0")
    assert ["ip", "link", "del", "dev", "br0"] not in fake.calls


def test_cleanup_runs_custom_ifdown(runner, tmp_path, monkeypatch):
    monkeypatch.undo()
    monkeypatch.setattr(pathutils, "KVM_IFDOWN_CUSTOM", str(tmp_path / "kvm-ifdown-custom"))
    out = tmp_path / "ifdown.out"
    _WriteScript(tmp_path / "kvm-ifdown-custom", f'echo "$1 $MODE $IP" > "{out}"\n')
    calls = []
    real = utils.RunCmd

    def fake(cmd, env=None, **kwargs):
        calls.append(list(cmd))
        if cmd[0] == "ip":
            return RunResult(1, None, "", f'Device "{TAP}" does not exist.', cmd)
        return real(cmd, env=env, **kwargs)

    monkeypatch.setattr(utils, "RunCmd", fake)
    netdev.CleanupNic("inst1", 0, _Nic(), _Params("routed", ""), TAP)
    assert calls[0] == [str(tmp_path / "kvm-ifdown-custom"), TAP]
    assert out.read_text().split() == [TAP, "routed", "192.0.2.10"]


def test_list_taps_filters_by_prefix_and_kind(runner):
    prefix = netdev.TapPrefix("inst1", INST_UUID)
    links = [
        {"ifname": "lo"},
        {"ifname": prefix + "1", "linkinfo": {"info_kind": "tun"}},
        {"ifname": prefix + "0", "linkinfo": {"info_kind": "tun"}},
        {"ifname": prefix + "9", "linkinfo": {"info_kind": "bridge"}},
        {"ifname": "gntffffff-0", "linkinfo": {"info_kind": "tun"}},
    ]
    runner(answers={"ip -d -j link show": (0, json.dumps(links))})
    assert netdev.ListTaps(prefix) == [prefix + "0", prefix + "1"]
    assert netdev.ListTaps() == sorted([prefix + "0", prefix + "1", "gntffffff-0"])


# --- Real taps, bridges and routes in a private network namespace (root) -----------

needs_root_netns = pytest.mark.skipif(
    os.geteuid() != 0 or not os.path.exists("/dev/net/tun") or not shutil.which("ip"),
    reason="real taps, bridges and network namespaces need root, /dev/net/tun and ip")

# Runs inside the namespace; prints one JSON object of observations
_CHILD = textwrap.dedent(r"""
    import json, os, subprocess, sys
    from ganeti import errors, objects
    from ganeti.hypervisor.hv_kvm import netdev

    def ip(*args):
        proc = subprocess.run(["ip", "-j", *args], capture_output=True, text=True)
        return json.loads(proc.stdout) if proc.returncode == 0 and proc.stdout.strip() \
            else None

    def link(name):
        found = ip("-d", "link", "show", "dev", name)
        return found[0] if found else None

    def error(func, *args, **kwargs):
        try:
            func(*args, **kwargs)
        except errors.HypervisorError as err:
            return str(err)
        return None

    scenario, tap = sys.argv[1], sys.argv[2]
    inst = objects.Instance(name="inst1", uuid="u-1", nics=[], hvparams={}, beparams={})
    nic = objects.NIC(mac="52:54:00:00:00:01", ip="10.99.0.2", uuid="n-1", nicparams={})
    out = {}
    if scenario == "open":
        fds = netdev.OpenTap(tap)
        out["single"] = link(tap)["linkinfo"]["info_data"]
        out["single_fds"] = len(fds)
        out["reattach_mq"] = error(netdev.OpenTap, tap, queues=2)
        mq = netdev.OpenTap(tap + "q", queues=4)
        out["mq"] = link(tap + "q")["linkinfo"]["info_data"]
        out["mq_fds"] = len(set(mq))
        for fd in fds + mq:
            os.close(fd)
        out["after_close"] = [link(tap), link(tap + "q")]
    elif scenario == "bridged":
        subprocess.run(["ip", "link", "add", "gntbr0", "type", "bridge"], check=True)
        subprocess.run(["ip", "link", "set", "dev", "gntbr0", "mtu", "1400"], check=True)
        fds = netdev.OpenTap(tap)
        params = {"mode": "bridged", "link": "gntbr0", "vlan": ""}
        netdev.ConfigureNic(inst, 0, nic, params, tap)
        out["tap"] = link(tap)
        out["listed"] = netdev.ListTaps(tap[:-1])
        out["vlan_error"] = error(netdev.ConfigureNic, inst, 0, nic,
                                  {"mode": "bridged", "link": "gntbr0", "vlan": ".5"}, tap)
        netdev.CleanupNic("inst1", 0, nic, params, tap)
        out["after"] = link(tap)
        out["bridge_after"] = link("gntbr0") is not None
        out["again"] = error(netdev.CleanupNic, "inst1", 0, nic, params, tap)
        for fd in fds:
            os.close(fd)
    elif scenario == "routed":
        fds = netdev.OpenTap(tap)
        params = {"mode": "routed", "link": "100", "vlan": ""}
        netdev.ConfigureNic(inst, 0, nic, params, tap)
        # configuring again (e.g. a retried start) leaves one rule
        netdev.ConfigureNic(inst, 0, nic, params, tap)
        out["routes"] = ip("route", "show", "table", "100")
        out["rules"] = [r for r in ip("rule", "show") if r.get("iif") == tap]
        with open(f"/proc/sys/net/ipv4/conf/{tap}/proxy_arp") as fd:
            out["proxy_arp"] = fd.read().strip()
        with open(f"/proc/sys/net/ipv4/conf/{tap}/forwarding") as fd:
            out["forwarding"] = fd.read().strip()
        netdev.CleanupNic("inst1", 0, nic, params, tap)
        out["after_routes"] = ip("route", "show", "table", "100")
        out["after_rules"] = [r for r in ip("rule", "show") if r.get("iif") == tap]
        out["after"] = link(tap)
        out["again"] = error(netdev.CleanupNic, "inst1", 0, nic, params, tap)
        main = {"mode": "routed", "link": "", "vlan": ""}
        fds2 = netdev.OpenTap(tap)
        netdev.ConfigureNic(inst, 0, nic, main, tap)
        out["main_routes"] = ip("route", "show", "10.99.0.2")
        netdev.CleanupNic("inst1", 0, nic, main, tap)
        out["main_after"] = ip("route", "show", "10.99.0.2")
        for fd in fds + fds2:
            os.close(fd)
    print(json.dumps(out))
""")


@pytest.fixture
def netns():
    """A network namespace of this test's own; deleted, and checked gone, after."""
    name = f"gnt-test-{os.getpid()}-{uuidlib.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True)
        listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
        assert name not in listed.stdout


def _InNetns(netns: str, scenario: str, tap: str) -> dict:
    proc = subprocess.run(
        ["ip", "netns", "exec", netns, sys.executable, "-c", _CHILD, scenario, tap],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(
            [str(Path(__file__).resolve().parents[3] / "build" / "pylib"),
             os.environ.get("PYTHONPATH", "")])})
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _HostLinks() -> set[str]:
    return set(os.listdir("/sys/class/net"))


@needs_root_netns
def test_real_open_tap(netns):
    host = _HostLinks()
    out = _InNetns(netns, "open", "gnttest0-0")
    assert out["single"]["type"] == "tap" and out["single"]["vnet_hdr"] is True
    assert out["single"]["multi_queue"] is False and out["single"]["pi"] is False
    assert out["single_fds"] == 1
    assert "gnttest0-0" in out["reattach_mq"] and "EINVAL" in out["reattach_mq"]
    assert out["mq"]["multi_queue"] is True and out["mq_fds"] == 4
    # not persistent: gone with the last descriptor
    assert out["after_close"] == [None, None]
    assert _HostLinks() == host


@needs_root_netns
def test_real_bridged(netns):
    host = _HostLinks()
    tap = netdev.TapName("inst1", 0, "u-1")
    out = _InNetns(netns, "bridged", tap)
    assert out["tap"]["master"] == "gntbr0"
    assert "UP" in out["tap"]["flags"]
    assert out["tap"]["mtu"] == 1400
    assert out["tap"]["address"].startswith("fe:")
    assert out["listed"] == [tap]
    # this kernel has no bridge VLAN filtering, and it is off anyway
    assert out["vlan_error"] and "VLAN filtering" in out["vlan_error"]
    assert out["after"] is None and out["bridge_after"] is True
    assert out["again"] is None
    assert _HostLinks() == host


@needs_root_netns
def test_real_routed(netns):
    host = _HostLinks()
    tap = netdev.TapName("inst1", 0, "u-1")
    out = _InNetns(netns, "routed", tap)
    assert [(r["dst"], r["dev"], r.get("protocol")) for r in out["routes"]] == \
        [("10.99.0.2", tap, "static")]
    assert [r["table"] for r in out["rules"]] == ["100"]
    assert out["proxy_arp"] == "1" and out["forwarding"] == "1"
    assert out["after_routes"] in (None, [])
    assert out["after_rules"] == []
    assert out["after"] is None and out["again"] is None
    assert [r["dev"] for r in out["main_routes"]] == [tap]
    assert out["main_after"] in (None, [])
    assert _HostLinks() == host
